"""``revise train sft|srf --config MODEL.yaml``: the unified model over pretrained parts, on the same loop.

The model is :class:`revise.model.scaled.ScaledUnifiedModel` built from a config file naming a Wan
transformer, a Wan VAE and a Qwen-VL model (docs/gpu.md, "Training at scale"). The VLM and the VAE are
frozen and pretrained, so both recipes train the generator side only (the transformer or its LoRA
weights, the context adapters, a widened patch embedding):

* ``sft``: flow matching on RVE-Sim (``lambda = 0``);
* ``srf``: ``L_FM + lambda * -log p_critic(Yes | decode(x0_hat))`` with the same Qwen-VL model as the
  critic, from ``--init`` (an ``sft`` run folder) or from the pretrained parts.

Everything else is :class:`revise.train.sft._Trainer`'s: ``accelerate`` (one process, or ``accelerate
launch`` with the configs in configs/accelerate/), warm-up + cosine learning rate, gradient clipping,
``--max-minutes`` planning, ``metrics.csv`` + TensorBoard, a progress bar, the training state in
safetensors + JSON every ``checkpoint_every`` steps and exact ``--resume``. Only the *trainable* weights
enter the state and the result; the pretrained parts are read again from the config on resume and on
load. Clips are decoded per batch (``frames`` = 1 + 4k for Wan's VAE, square ``size``), so the data set
is never held in memory.

A run folder holds ``trainable.safetensors`` (the trainable weights), ``scaled_model.json`` (the model
config with its folders made absolute, so :func:`load_trained` rebuilds the model from the folder
alone), ``scaled_train.json`` (every setting; ``--resume`` refuses a change), ``metrics.csv``,
``tensorboard/`` and ``state/``.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ConfigError
from .common import OneStage, check_settings
from .engine import SFTResult, lr_scale, run_in_folder
from .sft import _Trainer

STAGE = "scaled"
TRAINABLE_NAME = "trainable.safetensors"
MODEL_CONFIG_NAME = "scaled_model.json"
RECIPES = ("sft", "srf")


@dataclass
class ScaledTrainConfig(OneStage):
    """Every setting of a scaled run (stored in ``OUT/scaled_train.json``; ``resume`` refuses a changed one).
    ``batch_size`` is per process and per micro-batch; a step averages ``grad_accum`` micro-batches."""

    STAGE = STAGE
    recipe: str = "sft"
    seed: int = 0
    per_dimension: int = 150
    steps: int = 1000
    batch_size: int = 1
    grad_accum: int = 1
    lr: float = 1e-4
    warmup: int = 50
    weight_decay: float = 0.01
    lam: float = 0.0
    reward_t_range: tuple[float, float] = (0.0, 1.0)
    reward_every: int = 1
    grad_checkpointing: bool = False
    loss_space: str = "velocity"
    frames: int = 17
    size: int = 256
    max_minutes: float | None = None
    calibration_steps: int = 10
    checkpoint_every: int = 100
    log_every: int = 10

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ConfigError(f"scaled training: recipe must be one of {RECIPES}, got {self.recipe!r}")
        check_settings(self, "scaled training", ("steps", "batch_size", "grad_accum", "size", "reward_every",
                                                 "checkpoint_every", "log_every", "per_dimension"),
                       t_range=True, loss_space=True)
        if self.frames < 1 or (self.frames - 1) % 4:
            raise ConfigError(f"scaled training: frames must be 1 + 4k (Wan's VAE), got {self.frames}")
        if not self.lam >= 0:
            raise ConfigError(f"scaled training: lambda must be >= 0, got {self.lam}")
        if self.recipe == "sft" and self.lam != 0:
            raise ConfigError("scaled training: sft is flow matching only (lambda 0); self-reflection is `train srf`")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reward_t_range"] = list(self.reward_t_range)
        return d



def absolute_model_config(path: str | os.PathLike) -> dict:
    """The model config file's content with every local folder made absolute (hub ids stay as they are)."""
    from ..model.scaled import _part, load_config_file

    path = Path(path).resolve()
    data = load_config_file(path)
    out = dict(data)
    for key in ("transformer", "vae", "vlm"):
        if key in data:
            out[key] = _part(data, key, path.parent)
    if data.get("hub_cache"):
        cache = Path(str(data["hub_cache"]))
        out["hub_cache"] = str(cache if cache.is_absolute() else path.parent / cache)
    return out


def load_clip(path, frames: int, size: int):
    """One clip as ``(3, frames, size, size)`` float in [-1, 1] (resampled in time, resized)."""
    import numpy as np
    import torch

    from ..video import read_video
    from ..video.frames import match_length, resize_frames

    video = read_video(path).frames
    small = resize_frames(match_length(video, frames), size, size)
    return torch.from_numpy(np.ascontiguousarray(small)).float().permute(3, 0, 1, 2) / 127.5 - 1.0


def train_scaled(model_config: str | os.PathLike, data: str | os.PathLike, out_dir: str | os.PathLike,
                 config: ScaledTrainConfig | None = None, *, init: str | os.PathLike | None = None,
                 resume: bool = False, threads: int | None = None, progress: bool = True) -> SFTResult:
    """Train the scaled unified model of ``model_config`` on the RVE-Sim folder ``data`` into ``out_dir``.

    ``init``: a run folder of an earlier scaled run whose trainable weights start this one (an ``srf``
    run from its ``sft`` run); it must have been trained from the same model config."""
    config = config or ScaledTrainConfig()
    parts = absolute_model_config(model_config)
    init_path = None
    if init is not None:
        init_path = Path(init).resolve()
        if not (init_path / TRAINABLE_NAME).is_file():
            raise ConfigError(f"{init_path}: no {TRAINABLE_NAME}; --init with --config takes a folder written by "
                              "`revise train sft --config` (or srf)")
    out = Path(out_dir)
    record = {"model_config": parts, "init": None if init_path is None else str(init_path), **config.to_dict()}
    return run_in_folder(out, "scaled_train.json", record, resume, threads,
                         lambda: _ScaledTrainer(parts, init_path, Path(data), out, config, resume, progress).run())


def write_model_config(parts: dict, folder: Path) -> Path:
    path = folder / MODEL_CONFIG_NAME
    path.write_text(json.dumps(parts, indent=2) + "\n", encoding="utf-8")
    return path


def load_trained(run_dir: str | os.PathLike, **option_overrides):
    """The :class:`~revise.model.scaled.ScaledUnifiedModel` of a finished run folder: the pretrained parts
    its ``scaled_model.json`` names, with the trained ``trainable.safetensors`` loaded over them."""
    from ..model.scaled import ScaledUnifiedModel

    run_dir = Path(run_dir)
    for name in (MODEL_CONFIG_NAME, TRAINABLE_NAME):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir}: no {name}; not a finished `revise train sft|srf --config` run")
    model = ScaledUnifiedModel.from_config(run_dir / MODEL_CONFIG_NAME, **option_overrides)
    model.load_trainable(run_dir / TRAINABLE_NAME)
    return model.eval()


class _ScaledTrainer(_Trainer):
    def __init__(self, parts: dict, init: Path | None, data: Path, out: Path, config: ScaledTrainConfig,
                 resume: bool, progress: bool):
        super().__init__(data, out, config, resume, progress)
        self.parts, self.init = parts, init

    def run(self) -> SFTResult:
        from ..data import load_manifest
        from ..model.scaled import ScaledUnifiedModel
        from ..provenance import base_provenance

        cfg, acc = self.cfg, self.accelerator
        provenance = base_provenance()  # the code this run starts with, not what the tree holds when it ends
        manifest = self.begin()
        self.samples = [s for s in load_manifest(manifest) if s.target is not None]
        if not self.samples:
            raise ConfigError(f"{manifest}: no sample has a target video to train on")
        config_file = self.out / MODEL_CONFIG_NAME  # the parts with absolute folders; every rank loads them
        if acc.is_main_process:
            write_model_config(self.parts, self.out)
        acc.wait_for_everyone()
        overrides = {"device": "cpu" if acc.device.type == "cpu" else str(acc.device)}
        if cfg.grad_checkpointing:
            overrides.update(gradient_checkpointing_generator=True, gradient_checkpointing_vlm=True)
        model = ScaledUnifiedModel.from_config(config_file, **overrides)
        if self.init is not None:
            model.load_trainable(self.init / TRAINABLE_NAME)
        finished = self.train(model)  # a finished stage restores its last state: write() needs it
        if finished and acc.is_main_process:
            self.write(model, provenance)
        return self.end(finished)

    def batch(self, gen):
        import torch

        cfg = self.cfg
        idx = torch.randint(0, len(self.samples), (cfg.batch_size,), generator=gen).tolist()
        chosen = [self.samples[i] for i in idx]
        return {"source": torch.stack([load_clip(s.source, cfg.frames, cfg.size) for s in chosen]),
                "target": torch.stack([load_clip(s.target, cfg.frames, cfg.size) for s in chosen]),
                "instructions": [s.instruction for s in chosen]}

    def train(self, model) -> bool:
        import numpy as np
        import torch

        from ..model.scaled import CoreNet

        cfg, acc = self.cfg, self.accelerator
        params = model.trainable_parameters()
        if not params:
            raise ConfigError("scaled training: the model has no trainable weights")
        if self.strategy == "deepspeed" and cfg.grad_accum > 1:
            raise ConfigError("train --config under DeepSpeed: --grad-accum must be 1 (the engine steps the optimizer "
                              "in every backward pass); use DDP or FSDP to accumulate")

        def holding(named) -> torch.nn.ParameterDict:  # the state holds the trainable weights only (shared)
            return torch.nn.ParameterDict({name.replace(".", "/"): p for name, p in named if p.requires_grad})

        modules = {"trainable": holding(params.items())}
        optimizer = torch.optim.AdamW(list(params.values()), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                      betas=(0.9, 0.99))
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + 31 + acc.process_index)
        step = self.restore(STAGE, modules, optimizer, {"data": gen})
        model.train()
        # only the trainable core (transformer + context) is wrapped: DDP replicates, FSDP2 shards, DeepSpeed
        # partitions it; the frozen VLM and VAE stay plain modules outside the wrapper
        core = model.trainable_core()
        wrapped, optimizer = self.prepare(core, optimizer, unused_parameters=True)
        net = CoreNet(model, wrapped)
        modules["trainable"] = holding(core.named_parameters())  # FSDP2 replaced them with its sharded ones
        outside = sorted({n.replace(".", "/") for n in params} - set(modules["trainable"].keys()))
        del params  # under FSDP2 the unsharded originals may now be freed
        if outside:
            raise ConfigError(f"scaled training: trainable weights outside the transformer and context modules "
                              f"({outside[:3]})")

        def step_fn(i: int, total: int):
            lr = cfg.lr * lr_scale(i, total, cfg.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            lam = cfg.lam if cfg.lam > 0 and i % cfg.reward_every == 0 else 0.0
            optimizer.zero_grad(set_to_none=True)
            losses, fms, rewards, p_yes = [], [], [], []
            for micro in range(cfg.grad_accum):
                batch = self.batch(gen)
                sync = nullcontext() if micro == cfg.grad_accum - 1 else acc.no_sync(wrapped)
                with sync:
                    loss, parts = model.training_step(batch, srf_lambda=lam, generator=gen, net=net,
                                                      loss_space=cfg.loss_space, reward_t_range=cfg.reward_t_range)
                    if not torch.isfinite(loss.detach()):
                        raise ConfigError(f"scaled training: step {i + 1}: the loss is not finite "
                                          f"({float(loss.detach())}); lower --lr or check the data")
                    acc.backward(loss / cfg.grad_accum)
                losses.append(float(loss.detach()))
                fms.append(float(parts["fm"].detach()))
                if parts["reward"] is not None:
                    rewards.append(float(parts["reward"].detach()))
                    p_yes += torch.exp(parts["log_p_yes"].float()).tolist()
            acc.clip_grad_norm_(wrapped.parameters(), 1.0)
            optimizer.step()
            detail = {"loss_fm": float(np.mean(fms))}
            if rewards:
                detail.update(reward_loss=float(np.mean(rewards)), critic_p_yes=float(np.mean(p_yes)))
            return float(np.mean(losses)), lr, detail

        def save(i: int):
            self.checkpoint(STAGE, modules, optimizer, {"data": gen}, i)

        done = self.loop(STAGE, cfg.steps, step, step_fn, save)
        model.eval()
        if done and STAGE not in self.meta["done"]:
            self.meta["done"].append(STAGE)
            self.checkpoint(STAGE, modules, optimizer, {"data": gen}, int(self.meta["stage_steps"][STAGE]))
        # the full trainable weights, gathered from the shards on every rank (a collective), for write()
        self.final = {k.replace("/", "."): v.detach().to("cpu").contiguous()
                      for k, v in self.full_weights(modules["trainable"]).items()}
        return done

    def write(self, model, provenance: dict) -> None:
        """``trainable.safetensors`` and the run record ``scaled_run.json`` (beside ``scaled_model.json``)."""
        model.save_trainable(self.out / TRAINABLE_NAME, state=self.final)
        trainable = self.final
        record = {"recipe": self.cfg.recipe, "config": self.cfg.to_dict(), "init": None if self.init is None
                  else str(self.init), "steps": self.meta["stage_steps"], "seconds": round(self.elapsed(), 1),
                  "train_samples": len(self.samples), "final_loss": self.meta["loss"],
                  "processes": self.world, "trainable_tensors": len(trainable),
                  "trainable_parameters": int(sum(p.numel() for p in trainable.values())),
                  "provenance": provenance}
        (self.out / "scaled_run.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
