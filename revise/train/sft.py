"""``revise train sft``: supervised training of the unified model on RVE-Sim, in two stages of one run.

1. **vlm**: the internal VLM from scratch on describe / reason / judge (teacher-forced cross-entropy on
   the answer tokens, as :mod:`revise.train.vlm`).
2. **generator**: the flow-matching generator, conditioned on the *frozen* stage-1 VLM's hidden states
   of the ``reason`` prompt (computed once per training sample), the source video and the instruction's
   tokens (the VLM's tokenizer); ``L_x0`` or the paper's ``L_FM`` (:func:`revise.model.flow.flow_matching_loss`).

Each stage is its own module: :mod:`revise.train.sft_vlm` (stage 1) and :mod:`revise.train.sft_generator`
(stage 2, with the EMA and the draw weights); both run on the machinery every trainer shares
(:mod:`revise.train.engine`: the run folder, accelerate and its strategies, checkpoints and resume, the step
loop and its time-budget plan). This module holds the settings, the entry point and the run itself.
``init_vlm`` (``--init-vlm``) runs the generator stage alone against a VLM it is given (copied into
``OUT/vlm``): the recipe for ablating the generator with the VLM held fixed. ``gen_vae`` (``--gen-vae``) puts
the generator in the latent space of a ``revise train vae`` VAE (frozen, saved inside the generator): the
train clips are encoded once, the denoiser learns on latents, the checkpoint still takes and returns pixels.

The loop runs through ``accelerate`` (one CPU process by default; ``accelerate launch`` for several, each
rank drawing its own batches, gradients averaged by DDP; see "Distributed training" in docs/training.md).
Only rank 0 writes files; the others wait at barriers. Every ``checkpoint_every`` steps, at the end of
each stage, the whole training state (weights, AdamW moments, every
rank's data RNG, counters) is written to ``OUT/state`` in safetensors + JSON (:mod:`revise.train.state`);
``resume=True`` continues from it (with as many processes) and gives the same losses as an uninterrupted
run. Metrics go to ``OUT/metrics.csv`` and TensorBoard (``OUT/tensorboard``). The result is a :class:`~revise.model.unified.ReviseModel` folder in ``OUT``.

``max_minutes`` fits the run to a wall-clock budget and always ends with a usable checkpoint: each stage
gets its share (``vlm_share``); after its first ``calibration_steps`` steps the stage's step count becomes
what fits (never more than asked), is revised up or down at every logging step from the measured speed
(:meth:`~revise.train.engine.StageTrainer.plan`; a machine that slows down gets a shorter schedule that still completes), and a
stage still running at the deadline ends there.
The plan is stored with the state, so a resumed run keeps it; exact resume is only promised without a
budget (a budget makes the plan depend on wall time).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import ConfigError
# the public names that lived here before the split stay importable from revise.train.sft
from .engine import SFTResult, StageTrainer, ensure_train_data, lr_scale, replay_plan, run_in_folder  # noqa: F401
from .sft_generator import GeneratorStage, check_generator_shape, configured_generator_shape, sample_weights
from .sft_vlm import VLMStage

STAGES = ("vlm", "generator")


@dataclass
class SFTConfig:
    """Every setting of an SFT run (stored in ``OUT/sft_config.json``; ``resume`` refuses a changed one)."""

    seed: int = 0
    per_dimension: int = 150            # train samples per dimension when the data must be generated
    stages: tuple[str, ...] = STAGES
    bf16_stages: tuple[str, ...] = ()   # stages whose forward passes run under bf16 autocast (fp32 weights)
    # stage 1: the VLM
    vlm_steps: int = 3000
    vlm_batch_size: int = 32
    vlm_lr: float = 1e-3
    vlm_warmup: int = 100
    judge_pairs: int = 2
    vlm_facts: bool = False             # also teach the VLM what the simulator knows is in each clip (facts task)
    vlm_config: dict = field(default_factory=dict)
    # stage 2: the generator
    gen_steps: int = 1500
    gen_batch_size: int = 8
    gen_lr: float = 5e-4
    gen_warmup: int = 100
    loss_space: str = "x0"
    change_weight: float = 0.0
    dimension_weights: dict = field(default_factory=dict)  # "subset/dimension" -> sampling weight (others 1)
    generator_config: dict = field(default_factory=dict)
    ema_decay: float = 0.0              # > 0: keep an EMA of the generator's weights; it becomes generator/
    init_vlm: str = ""                  # with stages=("generator",): the VLM to condition on (a checkpoint or VLM folder)
    gen_vae: str = ""                   # a `revise train vae` VAE folder: the generator works in its latent space
    # bookkeeping
    max_minutes: float | None = None
    vlm_share: float = 0.4
    calibration_steps: int = 10
    checkpoint_every: int = 250
    log_every: int = 50

    def __post_init__(self):
        self.stages = tuple(self.stages)
        bad = [s for s in self.stages if s not in STAGES]
        if bad or not self.stages:
            raise ConfigError(f"sft stages must be a non-empty subset of {STAGES}, got {list(self.stages)}")
        self.bf16_stages = tuple(self.bf16_stages)
        if any(s not in STAGES for s in self.bf16_stages) or len(set(self.bf16_stages)) != len(self.bf16_stages):
            raise ConfigError(f"sft config: bf16_stages must name stages of {STAGES} at most once each, got "
                              f"{list(self.bf16_stages)}")
        for name in ("vlm_steps", "gen_steps", "vlm_batch_size", "gen_batch_size", "checkpoint_every", "log_every",
                     "per_dimension"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"sft config: {name} must be >= 1, got {getattr(self, name)}")
        if self.loss_space not in ("x0", "velocity"):
            raise ConfigError(f"sft config: loss_space must be 'x0' or 'velocity', got {self.loss_space!r}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"sft config: max_minutes must be > 0, got {self.max_minutes}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"sft config: ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if self.init_vlm and "vlm" in self.stages:
            raise ConfigError("sft config: init_vlm (--init-vlm) names the VLM of a generator-only run; it cannot be "
                              "combined with the vlm stage (use --stages generator)")
        if not 0 < self.vlm_share < 1:
            raise ConfigError(f"sft config: vlm_share must be in (0, 1), got {self.vlm_share}")
        if not isinstance(self.dimension_weights, dict):
            raise ConfigError(f"sft config: dimension_weights must be a JSON object, got {self.dimension_weights!r}")
        for key, value in self.dimension_weights.items():
            if not isinstance(key, str) or key.count("/") != 1:
                raise ConfigError(f"sft config: dimension_weights keys are 'subset/dimension' (e.g. "
                                  f"'rave/commonsense'), got {key!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ConfigError(f"sft config: dimension_weights[{key!r}] must be a number > 0, got {value!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stages"] = list(self.stages)
        d["bf16_stages"] = list(self.bf16_stages)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> SFTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown sft config keys {unknown}")
        return cls(**data)


VLM_FROM = "vlm-from.json"  # written by install_vlm: the --init-vlm source and its training record


def vlm_folder(spec: str) -> Path:
    """The VLM folder named by ``spec``: a shipped name or unified checkpoint (its ``vlm/``) or a VLM folder
    itself (``config.json``, ``model.safetensors``, ``tokenizer.json``); a one-line error otherwise."""
    from ..model.unified import resolve_checkpoint

    path = resolve_checkpoint(spec)
    for folder in (path / "vlm", path):
        if all((folder / name).is_file() for name in ("config.json", "model.safetensors", "tokenizer.json")):
            return folder
    raise ConfigError(f"{path}: --init-vlm needs a unified checkpoint (with vlm/) or a VLM folder (config.json, "
                      f"model.safetensors, tokenizer.json)")


def train_sft(data: str | os.PathLike, out_dir: str | os.PathLike, config: SFTConfig | None = None, *,
              resume: bool = False, threads: int | None = 1, progress: bool = True) -> SFTResult:
    """Run (or resume) SFT into ``out_dir``; see the module docstring. Returns what was done."""
    config = config or SFTConfig()
    out = Path(out_dir)
    if config.init_vlm:
        vlm_folder(config.init_vlm)  # a VLM that is not there fails before OUT is written
    if config.gen_vae:
        from ..model.latent import load_vae

        load_vae(config.gen_vae)  # so does a VAE folder that is not one
    return run_in_folder(out, "sft_config.json", config.to_dict(), resume, threads,
                         lambda: _Trainer(Path(data), out, config, resume, progress).run(),
                         defaults=SFTConfig().to_dict())


class _Trainer(VLMStage, GeneratorStage, StageTrainer):
    """The two-stage SFT run: the VLM (:mod:`revise.train.sft_vlm`), then the generator
    (:mod:`revise.train.sft_generator`), on the shared machinery of :class:`~revise.train.engine.StageTrainer`."""

    def install_vlm(self, spec: str) -> None:
        """Copy the VLM named by ``spec`` (a shipped name, a unified checkpoint or a VLM folder) into
        ``OUT/vlm`` (rank 0, once: a resumed run keeps the copy it began with)."""
        if (self.out / "vlm" / "config.json").is_file():
            return
        source = vlm_folder(spec)
        if self.accelerator.is_main_process:
            # where the VLM came from, with that checkpoint's own training record, for OUT/revise.json
            record = {"spec": str(spec), "folder": str(source)}
            manifest = source.parent / "revise.json"
            if source.name == "vlm" and manifest.is_file():
                record["training"] = json.loads(manifest.read_text()).get("training")
            (self.out / VLM_FROM).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            tmp = self.out / "vlm.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
            os.replace(tmp, self.out / "vlm")
        self.accelerator.wait_for_everyone()

    def run(self) -> SFTResult:
        from ..provenance import base_provenance

        provenance = base_provenance()  # the code this run starts with, not what the tree holds when it ends
        if "generator" in self.cfg.stages:  # a size the trainers cannot feed fails before stage 1
            check_generator_shape(configured_generator_shape(self.cfg.generator_config))
        if self.cfg.init_vlm:
            self.install_vlm(self.cfg.init_vlm)
        self.bank = self.load_bank(self.begin(), 32)
        # the generator's draw weights; a key the data lacks fails here, before stage 1
        self.draw_weights = sample_weights(self.bank.samples, self.cfg.dimension_weights)
        finished = True
        for stage in self.cfg.stages:
            if stage in self.meta["done"]:
                continue
            finished = (self.train_vlm() if stage == "vlm" else self.train_generator()) and finished
            if not finished:
                break
        if finished and self.accelerator.is_main_process:
            self.write_model(provenance)
        return self.end(finished)

    def write_model(self, provenance: dict) -> None:
        """``revise.json``: the unified checkpoint's manifest with the training record."""
        from ..model.unified import FORMAT, MANIFEST_NAME

        if not (self.out / "generator" / "config.json").is_file():
            return  # a VLM-only run: the folder holds vlm/ but is not an editor checkpoint
        manifest = {"format": FORMAT, "vlm": "vlm", "generator": "generator",
                    "text": "the generator's instruction ids come from vlm/tokenizer.json",
                    "training": {"recipe": "sft", "config": self.cfg.to_dict(), "steps": self.meta["stage_steps"],
                                 "seconds": round(self.elapsed(), 1), "train_samples": len(self.bank),
                                 "final_loss": self.meta["loss"]},
                    "provenance": provenance}
        if (self.out / VLM_FROM).is_file():  # a generator-only run: the VLM it was given, and how that was made
            manifest["training"]["vlm_from"] = json.loads((self.out / VLM_FROM).read_text())
        (self.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
