"""``revise train sft``: supervised training of the unified model on RVE-Sim, in two stages of one run.

1. **vlm**: the internal VLM from scratch on describe / reason / judge (teacher-forced cross-entropy on
   the answer tokens, as :mod:`revise.train.vlm`).
2. **generator**: the flow-matching generator, conditioned on the *frozen* stage-1 VLM's hidden states
   of the ``reason`` prompt (computed once per training sample), the source video and the instruction's
   tokens (the VLM's tokenizer); ``L_x0`` or the paper's ``L_FM`` (:func:`revise.model.flow.flow_matching_loss`).

The loop runs through ``accelerate`` (one CPU process by default; ``accelerate launch`` for several, each
rank drawing its own batches, gradients averaged by DDP; see "Distributed training" in docs/training.md).
Only rank 0 writes files; the others wait at barriers. Every ``checkpoint_every`` steps, at the end of
each stage, the whole training state (weights, AdamW moments, every
rank's data RNG, counters) is written to ``OUT/state`` in safetensors + JSON (:mod:`revise.train.state`);
``resume=True`` continues from it (with as many processes) and gives the same losses as an uninterrupted
run. Metrics go to ``OUT/metrics.csv`` and TensorBoard (``OUT/tensorboard``). The result is a :class:`~revise.model.unified.ReviseModel` folder in ``OUT``.

``max_minutes`` fits the run to a wall-clock budget and always ends with a usable checkpoint: each stage
gets its share (``vlm_share``); after its first ``calibration_steps`` steps the stage's step count becomes
what fits (never more than asked), is revised downwards at every logging step if the machine slows down
(the learning-rate schedule then completes sooner), and a stage still running at the deadline ends there.
The plan is stored with the state, so a resumed run keeps it; exact resume is only promised without a
budget (a budget makes the plan depend on wall time).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ..errors import ConfigError

STAGES = ("vlm", "generator")
STATE_DIR = "state"
CSV_FIELDS = ("stage", "step", "global_step", "seconds", "lr", "loss", "detail")


@dataclass
class SFTConfig:
    """Every setting of an SFT run (stored in ``OUT/sft_config.json``; ``resume`` refuses a changed one)."""

    seed: int = 0
    per_dimension: int = 150            # train samples per dimension when the data must be generated
    stages: tuple[str, ...] = STAGES
    # stage 1: the VLM
    vlm_steps: int = 3000
    vlm_batch_size: int = 32
    vlm_lr: float = 1e-3
    vlm_warmup: int = 100
    judge_pairs: int = 2
    vlm_config: dict = field(default_factory=dict)
    # stage 2: the generator
    gen_steps: int = 1500
    gen_batch_size: int = 8
    gen_lr: float = 5e-4
    gen_warmup: int = 100
    loss_space: str = "x0"
    change_weight: float = 0.0
    generator_config: dict = field(default_factory=dict)
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
        for name in ("vlm_steps", "gen_steps", "vlm_batch_size", "gen_batch_size", "checkpoint_every", "log_every",
                     "per_dimension"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"sft config: {name} must be >= 1, got {getattr(self, name)}")
        if self.loss_space not in ("x0", "velocity"):
            raise ConfigError(f"sft config: loss_space must be 'x0' or 'velocity', got {self.loss_space!r}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"sft config: max_minutes must be > 0, got {self.max_minutes}")
        if not 0 < self.vlm_share < 1:
            raise ConfigError(f"sft config: vlm_share must be in (0, 1), got {self.vlm_share}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stages"] = list(self.stages)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> SFTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown sft config keys {unknown}")
        return cls(**data)


@dataclass
class SFTResult:
    out_dir: Path
    steps: dict[str, int]
    seconds: float
    last_loss: dict[str, float]
    finished: bool


def ensure_train_data(data: str | os.PathLike, *, per_dimension: int, seed: int, progress: bool = True) -> Path:
    """``DATA/manifest.jsonl``, generating an RVE-Sim train split there first if it has none."""
    from ..sim import generate_dataset

    data = Path(data)
    manifest = data / "manifest.jsonl"
    if manifest.is_file():
        return manifest
    if data.exists() and any(data.iterdir()):
        raise ConfigError(f"{data}: has no manifest.jsonl and is not empty; give an RVE-Sim folder or an empty one")
    generate_dataset(data, per_dimension=per_dimension, seed=seed, split="train", workers=min(2, os.cpu_count() or 1),
                     progress=progress)
    return manifest


def lr_scale(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 5% at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


class _Logger:
    """``metrics.csv`` (appended, resumable) and TensorBoard through the accelerator's tracker."""

    def __init__(self, out: Path, accelerator, resume_from: int):
        self.accelerator = accelerator
        self.path = out / "metrics.csv"
        self.main = accelerator.is_main_process
        if self.main:
            rows = []
            if self.path.is_file() and resume_from > 0:  # drop rows logged after the state being resumed
                with self.path.open(newline="") as f:
                    rows = [r for r in csv.DictReader(f) if int(r["global_step"]) <= resume_from]
            with self.path.open("w", newline="") as f:
                writer = csv.DictWriter(f, CSV_FIELDS)
                writer.writeheader()
                writer.writerows(rows)

    def log(self, row: dict, scalars: dict) -> None:
        if not self.main:
            return
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, CSV_FIELDS).writerow({k: row.get(k, "") for k in CSV_FIELDS})
        self.accelerator.log(scalars, step=row["global_step"])


def train_sft(data: str | os.PathLike, out_dir: str | os.PathLike, config: SFTConfig | None = None, *,
              resume: bool = False, threads: int | None = 1, progress: bool = True) -> SFTResult:
    """Run (or resume) SFT into ``out_dir``; see the module docstring. Returns what was done."""
    config = config or SFTConfig()
    out = Path(out_dir)
    return run_in_folder(out, "sft_config.json", config.to_dict(), resume, threads,
                         lambda: _Trainer(Path(data), out, config, resume, progress).run())


def run_in_folder(out: Path, config_name: str, record: dict, resume: bool, threads: int | None, run):
    """The shared start of every trainer: check ``out`` (empty for a new run; for ``resume``, a state to
    resume and exactly the settings ``record`` saved in ``out/config_name``), write ``record`` there
    (rank 0), then ``run()`` with ``threads`` torch threads. Every rank checks before rank 0 writes."""
    import torch

    saved = out / config_name
    procs = distributed_state()
    if resume:
        if not (out / STATE_DIR / "state.json").is_file() and not (out / "revise.json").is_file():
            raise ConfigError(f"{out}: nothing to resume (no {STATE_DIR}/state.json)")
        try:
            before = json.loads(saved.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{saved}: unreadable ({exc})") from None
        if before != record:
            changed = sorted(k for k in set(before) | set(record) if before.get(k) != record.get(k))
            raise ConfigError(f"{out}: --resume with changed settings {changed}; use the original ones or a new folder")
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: not empty; pass --resume to continue the run there, or choose a new folder")
    procs.wait_for_everyone()
    if procs.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(record, indent=2) + "\n")
    procs.wait_for_everyone()
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return run()
    finally:
        torch.set_num_threads(previous)


def distributed_state():
    """accelerate's process state (initialises the process group under ``accelerate launch``/``torchrun``)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def prepared_data(trainer, data: Path, per_dimension: int, seed: int) -> Path:
    """``DATA/manifest.jsonl``: rank 0 generates a missing train split while the other ranks wait."""
    data = Path(data)
    if not (data / "manifest.jsonl").is_file() and data.exists() and any(data.iterdir()):
        ensure_train_data(data, per_dimension=per_dimension, seed=seed)  # the one-line error, on every rank
    with trainer.accelerator.main_process_first():
        return ensure_train_data(data, per_dimension=per_dimension, seed=seed,
                                 progress=trainer.progress and trainer.accelerator.is_main_process)


def check_strategy(accelerator) -> None:
    """Refuse the sharded strategies (FSDP, DeepSpeed): the training state and the checkpoints are written
    from rank 0's full weights and AdamW moments (the DDP layout). Say so when accelerate ran a sharded
    config as DDP (on CPUs it only does DDP)."""
    import sys

    from accelerate.utils import DistributedType

    kind = accelerator.distributed_type
    if kind in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        raise ConfigError(f"accelerate runs {kind.value}: the trainers support one process or DDP only (their "
                          "exact-resume state holds full weights and AdamW moments from rank 0); launch with "
                          "configs/accelerate/ddp.yaml")
    asked = [name for name, var in (("FSDP", "ACCELERATE_USE_FSDP"), ("DeepSpeed", "ACCELERATE_USE_DEEPSPEED"))
             if os.environ.get(var, "false").lower() == "true"]
    if asked and accelerator.is_main_process:
        print(f"warning: the launch config asks for {asked[0]}, accelerate runs {kind.value} "
              f"({accelerator.num_processes} process(es)); training goes on as that", file=sys.stderr)


class _Trainer:
    def __init__(self, data: Path, out: Path, config: SFTConfig, resume: bool, progress: bool):
        import torch
        from accelerate import Accelerator

        self.data, self.out, self.cfg, self.progress = data, out, config, progress
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(), log_with="tensorboard",
                                       project_dir=str(out))
        self.world = self.accelerator.num_processes
        check_strategy(self.accelerator)
        self.meta = {"stage_steps": {}, "planned": {}, "done": [], "seconds": 0.0, "loss": {}}
        self.state_dir = out / STATE_DIR
        if resume and (self.state_dir / "state.json").is_file():
            from .state import check_world_size, read_meta

            check_world_size(self.state_dir, self.world)
            self.meta = read_meta(self.state_dir)
        self.started = time.perf_counter()
        self.seconds_before = float(self.meta.get("seconds", 0.0))
        self.logger = None

    # ---- helpers -----------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    # ---- several processes: what every rank must agree on comes from rank 0 ---------------------------
    def agree(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (timing-based decisions differ between ranks otherwise)."""
        if self.world == 1:
            return value
        import torch
        from accelerate.utils import broadcast

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.accelerator.device)
        return float(broadcast(t, from_process=0).item())

    def mean_over_ranks(self, value: float) -> float:
        """The mean of a per-rank number (each rank's loss is on its own batch)."""
        if self.world == 1:
            return value
        import torch
        from accelerate.utils import reduce

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.accelerator.device)
        return float(reduce(t, reduction="mean").item())

    def rank_states(self, generators: dict) -> dict:
        """What :func:`~revise.train.state.save_state` stores of ``generators``: the generators themselves for
        one process, else every rank's state gathered (tensor collectives: nothing is pickled)."""
        if self.world == 1:
            return generators
        from accelerate.utils import gather

        out = {}
        for name in sorted(generators):
            state = generators[name].get_state().to(self.accelerator.device)
            out[name] = [s.cpu() for s in gather(state.unsqueeze(0))]
        return out

    def prepare(self, model, optimizer, *, unused_parameters: bool = False):
        """``accelerator.prepare`` with DDP's ``find_unused_parameters`` set when some parameters sit out a
        step on some rank (the VLM's judge-only parts on a batch without judge rows)."""
        acc = self.accelerator
        before = acc.ddp_handler
        if unused_parameters and self.world > 1:
            from accelerate.utils import DistributedDataParallelKwargs

            acc.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)
        try:
            return acc.prepare(model, optimizer)
        finally:
            acc.ddp_handler = before

    def global_offset(self, stage: str) -> int:
        offset = 0
        for s in self.cfg.stages:
            if s == stage:
                return offset
            offset += int(self.meta["stage_steps"].get(s, 0))
        return offset

    def stage_budget(self, stage: str) -> float | None:
        if self.cfg.max_minutes is None:
            return None
        total = 60.0 * self.cfg.max_minutes
        if len(self.cfg.stages) == 1:
            return total - self.elapsed()
        if stage == "vlm":
            return total * self.cfg.vlm_share - self.elapsed()
        return total - self.elapsed()

    def progress_bar(self):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                        disable=not (self.progress and self.accelerator.is_main_process), transient=False)

    # ---- the run -------------------------------------------------------------------------------------
    def load_bank(self, manifest: Path, size: int):
        """The frame bank at ``size`` pixels; rank 0 decodes and caches it first, the others read the cache."""
        from ..model.vlm_data import load_frames

        with self.accelerator.main_process_first():
            return load_frames(manifest, size=size, frames=16, cache_dir=self.out / "cache",
                               progress=self.progress and self.accelerator.is_main_process)

    def run(self) -> SFTResult:
        from ..provenance import base_provenance

        manifest = prepared_data(self, self.data, self.cfg.per_dimension, self.cfg.seed)
        self.manifest = manifest
        self.bank = self.load_bank(manifest, 32)
        self.accelerator.init_trackers("tensorboard")
        resume_from = sum(int(v) for v in self.meta["stage_steps"].values())
        self.logger = _Logger(self.out, self.accelerator, resume_from)
        finished = True
        for stage in self.cfg.stages:
            if stage in self.meta["done"]:
                continue
            finished = (self.train_vlm() if stage == "vlm" else self.train_generator()) and finished
            if not finished:
                break
        if finished and self.accelerator.is_main_process:
            self.write_model(base_provenance())
        self.accelerator.free_memory()  # drop the DDP wrappers: they hold the process group that ends below
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()  # also ends the process group of a launched run
        return SFTResult(self.out, dict(self.meta["stage_steps"]), round(self.elapsed(), 1),
                         dict(self.meta["loss"]), finished)

    def plan(self, stage: str, asked: int, step: int, stage_started: float, step_at_start: int) -> int:
        """The stage's step count: ``asked``, or what fits the time budget.

        With a budget the first estimate comes after ``calibration_steps`` timed steps; it is then revised
        (only ever downwards) at every logging step from the speed since the previous revision, so a machine
        that slows down still ends the stage, with its learning-rate schedule completed, inside the budget.
        """
        budget = self.stage_budget(stage)
        if stage in self.meta["planned"]:
            planned = int(self.meta["planned"][stage])
            mark = getattr(self, "_speed_mark", None)
            if budget is None or mark is None or mark[0] != stage or step % self.cfg.log_every or step <= mark[2]:
                return planned
            per_step = (time.perf_counter() - mark[1]) / (step - mark[2])
            self._speed_mark = (stage, time.perf_counter(), step)
            fit = int(self.agree(int(step + max(0.0, budget) / per_step * 0.97)))
            self.meta["planned"][stage] = max(step + 1, min(planned, fit))
            return int(self.meta["planned"][stage])
        if budget is None:
            self.meta["planned"][stage] = asked
            return asked
        if step - step_at_start < self.cfg.calibration_steps:
            return asked
        per_step = (time.perf_counter() - stage_started) / (step - step_at_start)
        fit = int(self.agree(int(step + max(0.0, budget) / per_step * 0.97)))
        self.meta["planned"][stage] = max(step + 1, min(asked, fit))
        self._speed_mark = (stage, time.perf_counter(), step)
        return int(self.meta["planned"][stage])

    def checkpoint(self, stage: str, modules: dict, optimizer, generators: dict, step: int) -> None:
        from .state import save_state

        self.meta["stage_steps"][stage] = step
        self.meta["seconds"] = round(self.elapsed(), 1)
        states = self.rank_states(generators)
        if self.accelerator.is_main_process:
            save_state(self.state_dir, modules, optimizer, states, self.meta, world_size=self.world)
        self.accelerator.wait_for_everyone()

    def restore(self, stage: str, modules: dict, optimizer, generators: dict) -> int:
        """The step to continue ``stage`` from (0 for a fresh stage)."""
        from .state import load_state

        if stage not in self.meta["stage_steps"] or not (self.state_dir / "state.json").is_file():
            return 0
        load_state(self.state_dir, modules, optimizer, generators, rank=self.accelerator.process_index,
                   world_size=self.world)
        return int(self.meta["stage_steps"][stage])

    def deadline_passed(self) -> bool:
        return self.cfg.max_minutes is not None and bool(self.agree(self.elapsed() > 60.0 * self.cfg.max_minutes))

    def loop(self, stage: str, asked: int, step: int, step_fn, save) -> bool:
        """Run ``step_fn(step, total) -> (loss, lr, detail)`` until the plan is done; True when it is."""
        import numpy as np

        window: list[float] = []
        details: dict[str, list[float]] = {}
        stage_started, step_at_start = time.perf_counter(), step
        total = self.plan(stage, asked, step, stage_started, step_at_start)
        with self.progress_bar() as bar:
            task = bar.add_task(f"sft {stage}", total=total, completed=step, info="")
            while step < total:
                loss, lr, detail = step_fn(step, total)
                loss = self.mean_over_ranks(loss)  # the details stay rank 0's
                step += 1
                window.append(loss)
                for k, v in detail.items():
                    details.setdefault(k, []).append(v)
                total = self.plan(stage, asked, step, stage_started, step_at_start)
                bar.update(task, completed=step, total=total, info=f"loss {np.mean(window[-20:]):.4f}")
                if step % self.cfg.log_every == 0 or step == total:
                    mean = float(np.mean(window))
                    detail_means = {k: round(float(np.mean(v)), 5) for k, v in details.items()}
                    self.meta["loss"][stage] = mean
                    g = self.global_offset(stage) + step
                    self.logger.log({"stage": stage, "step": step, "global_step": g, "seconds": round(self.elapsed(), 1),
                                     "lr": f"{lr:.3e}", "loss": f"{mean:.6f}", "detail": json.dumps(detail_means)},
                                    {f"{stage}/loss": mean, f"{stage}/lr": lr,
                                     **{f"{stage}/{k}": v for k, v in detail_means.items()}})
                    window, details = [], {}
                if self.deadline_passed() and step < total:  # out of time: end the stage here, a usable model
                    total = self.meta["planned"][stage] = step
                    bar.update(task, total=total)
                if step % self.cfg.checkpoint_every == 0 or step == total:
                    save(step)
        return True

    # ---- stage 1 ---------------------------------------------------------------------------------------
    def train_vlm(self) -> bool:
        import torch

        from ..model.tokenizer import TextTokenizer
        from ..model.vlm import ReviseVLM
        from ..model.vlm_data import TaskBuilder, collate, corpus

        cfg, acc = self.cfg, self.accelerator
        tokenizer = TextTokenizer.build(corpus(self.bank.samples))
        torch.manual_seed(cfg.seed)
        model = ReviseVLM.create(tokenizer, **cfg.vlm_config)
        k = model.config.frames
        bank = self.bank  # the VLM trains on frames at its own size (the generator's are 32 pixels)
        if model.config.image_size != bank.size:
            bank = self.load_bank(self.manifest, model.config.image_size)
        builder = TaskBuilder(bank, k, seed=cfg.seed + 1000 * acc.process_index)
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=cfg.vlm_lr, betas=(0.9, 0.98))
        step = self.restore("vlm", {"vlm": model}, optimizer, {})
        wrapped, optimizer = self.prepare(model, optimizer, unused_parameters=True)
        core = acc.unwrap_model(wrapped)
        wrapped.train()

        def batches():
            epoch, queue = 0, []
            while True:
                while len(queue) < cfg.vlm_batch_size:
                    queue += builder.epoch(epoch, judge_pairs=cfg.judge_pairs)
                    epoch += 1
                yield queue[:cfg.vlm_batch_size]
                queue = queue[cfg.vlm_batch_size:]

        stream = batches()
        for _ in range(step):  # replay the data order up to the resumed step (cheap: no frames are touched)
            next(stream)

        def step_fn(i: int, total: int):
            batch = next(stream)
            tasks, instructions, answers, video1, video2 = collate(bank, batch, k)
            inputs = core.build_inputs(tasks, instructions, answers)
            lr = cfg.vlm_lr * lr_scale(i, total, cfg.vlm_warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, _, _, first_ok = wrapped(inputs, video1, video2)
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.clip_grad_norm_(wrapped.parameters(), 1.0)
            optimizer.step()
            judge = [bool(ok) for e, ok in zip(batch, first_ok.tolist()) if e.task == "judge"]
            return float(loss.item()), lr, ({"judge_train_acc": float(np.mean(judge))} if judge else {})

        def save(i: int):
            self.checkpoint("vlm", {"vlm": core}, optimizer, {}, i)

        done = self.loop("vlm", cfg.vlm_steps, step, step_fn, save)
        core.eval()
        if acc.is_main_process:
            core.save_pretrained(self.out / "vlm")
        if done:
            self.meta["done"].append("vlm")
            self.checkpoint("vlm", {"vlm": core}, optimizer, {}, int(self.meta["stage_steps"]["vlm"]))
        return done

    # ---- stage 2 ---------------------------------------------------------------------------------------
    def vlm_features(self, vlm) -> tuple:
        """The frozen VLM's ``reason`` hidden states for every training sample (left-padded) and masks."""
        import torch

        hidden, masks = [], []
        with torch.no_grad():
            for start in range(0, len(self.bank), 64):
                src = self.bank.source[start:start + 64]
                instructions = [s.instruction for s in self.bank.samples[start:start + 64]]
                h, m = vlm.encode(src, instructions)
                hidden.append(h)
                masks.append(m.bool())
        length = max(h.shape[1] for h in hidden)
        pad_h = [torch.cat([h.new_zeros(h.shape[0], length - h.shape[1], h.shape[2]), h], 1) for h in hidden]
        pad_m = [torch.cat([m.new_zeros(m.shape[0], length - m.shape[1]), m], 1) for m in masks]
        return torch.cat(pad_h), torch.cat(pad_m)

    def train_generator(self) -> bool:
        import torch

        from ..model.flow import flow_matching_loss
        from ..model.generator import ReviseGenerator
        from ..model.unified import encode_instruction
        from ..model.vlm import ReviseVLM

        cfg, acc = self.cfg, self.accelerator
        vlm_dir = self.out / "vlm"
        if not (vlm_dir / "config.json").is_file():
            raise ConfigError(f"{self.out}: the generator stage needs the VLM of stage 1 ({vlm_dir} is missing)")
        vlm = ReviseVLM.from_pretrained(vlm_dir)
        tok = vlm.tokenizer
        options = {"vocab_size": tok.vocab_size, "pad_token_id": tok.pad_id, "vlm_dim": vlm.config.hidden_size,
                   **cfg.generator_config}
        torch.manual_seed(cfg.seed)
        model = ReviseGenerator(**options)
        if tuple(model.video_shape) != (16, 32, 32):
            raise ConfigError(f"sft trains the generator at 16x32x32 frames, the config asks for {model.video_shape}")
        hidden, masks = self.vlm_features(vlm)
        del vlm
        max_len = int(model.config.max_text_len)
        ids = torch.stack([model.pad_ids(encode_instruction(tok, s.instruction, max_len))[0]
                           for s in self.bank.samples])
        source = torch.from_numpy(self.bank.source).permute(0, 4, 1, 2, 3)  # (N, 3, T, H, W) uint8
        target = torch.from_numpy(self.bank.target).permute(0, 4, 1, 2, 3)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.gen_lr, weight_decay=0.01, betas=(0.9, 0.99))
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + 17 + acc.process_index)
        step = self.restore("generator", {"generator": model}, optimizer, {"data": gen})
        wrapped, optimizer = self.prepare(model, optimizer)
        core = acc.unwrap_model(wrapped)
        wrapped.train()

        dev = acc.device  # the bank stays on the CPU; each batch goes to the model's device

        def unit(x):
            return x.to(dev).float() / 127.5 - 1.0

        def step_fn(i: int, total: int):
            lr = cfg.gen_lr * lr_scale(i, total, cfg.gen_warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = torch.randint(0, len(source), (cfg.gen_batch_size,), generator=gen)
            batch = {"source": unit(source[idx]), "target": unit(target[idx]), "text_ids": ids[idx].to(dev),
                     "vlm_hidden": hidden[idx].to(dev), "vlm_mask": masks[idx].to(dev)}
            loss, _ = flow_matching_loss(wrapped, batch, gen, change_weight=cfg.change_weight,
                                         loss_space=cfg.loss_space)
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.clip_grad_norm_(wrapped.parameters(), 1.0)
            optimizer.step()
            return float(loss.item()), lr, {}

        def save(i: int):
            self.checkpoint("generator", {"generator": core}, optimizer, {"data": gen}, i)

        done = self.loop("generator", cfg.gen_steps, step, step_fn, save)
        core.eval()
        if acc.is_main_process:
            core.save_pretrained(self.out / "generator", safe_serialization=True)
        if done:
            self.meta["done"].append("generator")
            self.checkpoint("generator", {"generator": core}, optimizer, {"data": gen},
                            int(self.meta["stage_steps"]["generator"]))
        return done

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
        (self.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
