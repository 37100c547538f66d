"""``revise train srf``: self-reflective fine-tuning of the generator with its own VLM as the critic.

ReViSE's objective (../shared/PAPER.md §3), implemented here (no code was released)::

    L = L_FM + lambda * ( -log p_critic(Yes | decode(x0_hat), source, instruction) )

``x0_hat = x_t - t v_theta`` is the one-step clean estimate of the current step (it keeps its graph);
"decode" is the identity up to scaling for this pixel-space generator ([-1, 1] -> [0, 1]); the critic is
the unified model's internal VLM asked its ``judge`` prompt. Its weights are frozen, but the gradient
flows *through* it into the generator: no external critic, no policy gradient. The reward term is applied
to samples whose ``t`` lies in ``reward_t_range`` (where x0_hat is a usable picture) and whose condition
was not dropped for CFG, every ``reward_every`` steps.

``unfreeze_critic_head`` trains the critic's output head too, as the official config does: here the
head is the pair of Yes/No rows of the VLM's output matrix, copied into a separate parameter (the
matrix is tied to the input embeddings, which stay frozen). Trained on the reward alone such a head
learns to say Yes to anything; so while it trains it also sees the true target (Yes) and the
unchanged source (No) of each batch (binary cross-entropy, weight ``head_anchor``). The trained head is
written back into ``vlm/`` so the checkpoint's critic is the one that was trained.

``lambda = 0`` is FM-only fine-tuning from the same initialisation: exactly the same batches, noise and
updates as the ablation's counterpart (the reward is then not even computed). Same loop, checkpoints,
exact resume, CSV/TensorBoard logging and progress bar as :mod:`revise.train.sft`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .common import OneStage, check_settings, run_from_checkpoint
from .engine import SFTResult, lr_scale
from .sft import _Trainer


@dataclass
class SRFConfig(OneStage):
    """Every setting of a self-reflective run (stored in ``OUT/srf_config.json``)."""

    STAGE = "srf"
    seed: int = 0
    per_dimension: int = 150
    steps: int = 300
    batch_size: int = 8
    lr: float = 2e-4
    warmup: int = 20
    lam: float = 0.1
    reward_t_range: tuple[float, float] = (0.0, 0.6)
    reward_every: int = 1
    unfreeze_critic_head: bool = False
    head_lr: float = 1e-4
    head_anchor: float = 1.0
    grad_checkpointing: bool = False
    loss_space: str = "x0"
    change_weight: float = 0.0
    max_minutes: float | None = None
    calibration_steps: int = 10
    checkpoint_every: int = 100
    log_every: int = 25

    def __post_init__(self):
        check_settings(self, "srf config", ("steps", "batch_size", "reward_every", "checkpoint_every", "log_every",
                                            "per_dimension"), t_range=True, loss_space=True)
        if not self.lam >= 0:
            raise ConfigError(f"srf config: lambda must be >= 0, got {self.lam}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reward_t_range"] = list(self.reward_t_range)
        return d



def to_unit_video(x):
    """Generator layout ``(B, 3, T, H, W)`` in [-1, 1] -> the VLM's ``(B, T, 3, H, W)`` in [0, 1] ("decode")."""
    return ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4)


def critic_logit(vlm, head, source01, candidate01, instructions: list[str]):
    """``log p(Yes) - log p(No)`` of the critic's judge prompt with Yes/No rows ``head`` ``(2, hidden)``;
    differentiable in ``candidate01`` (and in ``head``)."""
    hidden, _ = vlm.encode(source01, instructions, candidate01)
    return hidden[:, -1] @ (head[0] - head[1])


def reward_loss(vlm, head, source, x0_hat, instructions: list[str]):
    """The self-reflective term ``-log p_critic(Yes | decode(x0_hat), source, instruction)``, averaged.

    ``source`` and ``x0_hat`` are generator tensors ``(B, 3, T, H, W)`` in [-1, 1]; ``p`` is renormalised
    over Yes/No, so the term is ``softplus(-logit)``. Returns ``(loss, logit)``.
    """
    import torch.nn.functional as F

    logit = critic_logit(vlm, head, to_unit_video(source), to_unit_video(x0_hat), instructions)
    return F.softplus(-logit).mean(), logit


def parse_range(text: str) -> tuple[float, float]:
    """``"0.0,0.6"`` -> ``(0.0, 0.6)`` with a one-line error."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--reward-t-range {text!r}: expected two numbers like 0.0,0.6") from None
    return lo, hi


def train_srf(init: str | os.PathLike, data: str | os.PathLike, out_dir: str | os.PathLike,
              config: SRFConfig | None = None, *, resume: bool = False, threads: int | None = 1,
              progress: bool = True) -> SFTResult:
    """Fine-tune the generator of ``init`` (a unified checkpoint or ``revise-tiny``) into ``out_dir``."""
    return run_from_checkpoint(_SRFTrainer, init, data, out_dir, config or SRFConfig(), "srf_config.json", resume=resume,
                               threads=threads, progress=progress)


class _SRFTrainer(_Trainer):
    def __init__(self, init: Path, data: Path, out: Path, config: SRFConfig, resume: bool, progress: bool):
        super().__init__(data, out, config, resume, progress)
        self.init = init

    def run(self) -> SFTResult:
        from ..model.unified import ReviseModel
        from ..provenance import base_provenance

        provenance = base_provenance()  # the code this run starts with, not what the tree holds when it ends
        self.bank = self.load_bank(self.begin(), 32)
        model = ReviseModel.from_pretrained(self.init)
        if model.generator.vae is not None:
            raise ConfigError(f"{self.init}: train srf does not support a latent-space generator yet (its reward "
                              "reads pixels; the VAE decode is not in its loss); use a pixel-space checkpoint")
        finished = self.train(model)  # a finished stage restores its last state (no steps): write() needs it
        if finished and self.accelerator.is_main_process:
            self.write(model, provenance)
        return self.end(finished)

    def train(self, unified) -> bool:
        import torch
        import torch.nn.functional as F

        from ..model.flow import flow_matching_loss

        cfg, acc = self.cfg, self.accelerator
        vlm, generator = unified.vlm, unified.generator
        dev = acc.device  # the critic runs beside the generator; the bank stays on the CPU
        vlm.to(dev).eval()
        for p in vlm.parameters():
            p.requires_grad_(False)
        hidden, masks = self.vlm_features(vlm)
        ids = torch.stack([generator.pad_ids(unified.text_ids(s.instruction))[0] for s in self.bank.samples])
        instructions = [s.instruction for s in self.bank.samples]
        frames = self.generator_bank(generator)  # at the generator's size; the VLM's features from its own
        source, target = frames.source, frames.target  # uint8 (N, T, H, W, 3), memory-mapped (read-only) when cached
        # the critic's Yes/No head: a separate copy of the two output rows, trainable only on request
        head = torch.nn.Parameter(vlm.yes_no_rows().detach().clone(),
                                  requires_grad=cfg.unfreeze_critic_head)
        head_module = torch.nn.ParameterDict({"yes_no": head})
        groups = [{"params": list(generator.parameters()), "lr": cfg.lr, "weight_decay": 0.01}]
        if cfg.unfreeze_critic_head:
            groups.append({"params": [head], "lr": cfg.head_lr, "weight_decay": 0.0})
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.99))
        generator.train()
        if cfg.grad_checkpointing:
            generator.transformer.enable_gradient_checkpointing()
            (getattr(vlm.lm, "activation_checkpointing_enable", None) or vlm.lm.gradient_checkpointing_enable)()
            vlm.lm.train()  # transformers only checkpoints in training mode; the toy LM has no dropout
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + 29 + acc.process_index)
        modules = {"generator": generator, "critic_head": head_module}
        step = self.restore("srf", modules, optimizer, {"data": gen})
        wrapped, optimizer = self.prepare(generator, optimizer)  # the frozen critic is not wrapped
        lo, hi = cfg.reward_t_range

        def unit(clips, idx):  # the batch's clips, read from the bank -> (B, 3, T, H, W) in [-1, 1]
            x = torch.from_numpy(np.ascontiguousarray(clips[idx.numpy()])).permute(0, 4, 1, 2, 3)
            return x.to(dev).float() / 127.5 - 1.0

        def step_fn(i: int, total: int):
            for g_index, group in enumerate(optimizer.param_groups):
                base = cfg.lr if g_index == 0 else cfg.head_lr
                group["lr"] = base * lr_scale(i, total, cfg.warmup)
            idx = torch.randint(0, len(source), (cfg.batch_size,), generator=gen)
            src = unit(source, idx)
            batch = {"source": src, "target": unit(target, idx), "text_ids": ids[idx].to(dev),
                     "vlm_hidden": hidden[idx].to(dev), "vlm_mask": masks[idx].to(dev)}
            loss_fm, extras = flow_matching_loss(wrapped, batch, gen, change_weight=cfg.change_weight,
                                                 loss_space=cfg.loss_space)
            loss = loss_fm
            detail = {"loss_fm": float(loss_fm.item())}
            if cfg.lam > 0 and i % cfg.reward_every == 0:
                use = (extras.t >= lo) & (extras.t <= hi) & ~extras.drop
                if bool(use.any()):
                    rows = torch.nonzero(use)[:, 0]
                    texts = [instructions[int(j)] for j in idx[rows.cpu()]]
                    reward, logit = reward_loss(vlm, head, src[rows], extras.x0_hat[rows], texts)
                    loss = loss + cfg.lam * reward
                    detail.update({"reward_loss": float(reward.item()),
                                   "critic_p_yes": float(torch.sigmoid(logit).mean().item()),
                                   "reward_rows": float(len(rows))})
            if cfg.unfreeze_critic_head:
                s01, t01 = to_unit_video(src), to_unit_video(batch["target"])
                texts = [instructions[int(j)] for j in idx]
                anchor_logits = torch.cat([critic_logit(vlm, head, s01, t01, texts),
                                           critic_logit(vlm, head, s01, s01, texts)])
                labels = torch.cat([torch.ones(len(idx)), torch.zeros(len(idx))]).to(anchor_logits.device)
                anchor = F.binary_cross_entropy_with_logits(anchor_logits, labels)
                loss = loss + cfg.head_anchor * anchor
                detail["head_anchor_loss"] = float(anchor.item())
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if cfg.unfreeze_critic_head and self.world > 1 and self.strategy != "deepspeed":
                # DDP / FSDP average the generator's gradients, not the head's (DeepSpeed's engine holds the head
                # too: it averaged and applied its gradient inside acc.backward)
                head.grad = acc.reduce(head.grad, reduction="mean")
            acc.clip_grad_norm_(wrapped.parameters(), 1.0)
            optimizer.step()
            return float(loss.item()), optimizer.param_groups[0]["lr"], detail

        def save(i: int):
            self.checkpoint("srf", modules, optimizer, {"data": gen}, i)

        done = self.loop("srf", cfg.steps, step, step_fn, save)
        generator.eval()
        unified.generator = self.full_module(generator)  # every rank: FSDP / DeepSpeed gather the full weights
        vlm.lm.eval()
        if cfg.grad_checkpointing:
            generator.transformer.disable_gradient_checkpointing()
            (getattr(vlm.lm, "activation_checkpointing_disable", None) or vlm.lm.gradient_checkpointing_disable)()
        self.head = head.detach().cpu().clone()
        if done and "srf" not in self.meta["done"]:
            self.meta["done"].append("srf")
            self.checkpoint("srf", modules, optimizer, {"data": gen}, int(self.meta["stage_steps"]["srf"]))
        return done

    def write(self, unified, provenance: dict) -> None:
        """The fine-tuned checkpoint: the init's VLM (plus ``critic_head.safetensors`` when the head trained)
        and the new generator, and ``revise.json`` recording both trainings."""
        from safetensors.torch import save_file

        from ..model.unified import FORMAT, MANIFEST_NAME
        from ..model.vlm import CRITIC_HEAD_NAME

        shutil.rmtree(self.out / "vlm", ignore_errors=True)
        shutil.copytree(self.init / "vlm", self.out / "vlm")
        if self.cfg.unfreeze_critic_head and getattr(self, "head", None) is not None:
            # the VLM stores one matrix tied to its input embeddings; the trained Yes/No rows go beside it
            save_file({"yes_no": self.head.contiguous()}, str(self.out / "vlm" / CRITIC_HEAD_NAME))
        unified.generator.save_pretrained(self.out / "generator", safe_serialization=True)
        before = json.loads((self.init / MANIFEST_NAME).read_text())
        manifest = {"format": FORMAT, "vlm": "vlm", "generator": "generator",
                    "text": "the generator's instruction ids come from vlm/tokenizer.json",
                    "training": {"recipe": "srf", "init": str(self.init), "config": self.cfg.to_dict(),
                                 "steps": self.meta["stage_steps"], "seconds": round(self.elapsed(), 1),
                                 "train_samples": len(self.bank), "final_loss": self.meta["loss"],
                                 "init_training": before.get("training")},
                    "provenance": provenance}
        (self.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
