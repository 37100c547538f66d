"""The stage machinery every trainer of the tiny model shares (``train sft``'s stages, ``train critic``,
``train srf``, the pretrained-parts trainer): the run folder and its settings, the train split, accelerate
and its strategies (one process, DDP, FSDP, DeepSpeed), full weights from shards, exact checkpoints and
resume, the step loop with its time-budget plan, ``metrics.csv`` and TensorBoard.

:class:`StageTrainer` holds it; each job lives in its own module on top of it: :mod:`revise.train.sft_vlm`
(stage 1), :mod:`revise.train.sft_generator` (stage 2), :mod:`revise.train.sft` (the two-stage run),
:mod:`revise.train.critic`, :mod:`revise.train.srf`, :mod:`revise.train.scaled`.

``max_minutes`` fits a run to a wall-clock budget and always ends with a usable checkpoint: each stage
gets its share; after its first ``calibration_steps`` steps the stage's step count becomes what fits
(never more than asked), is revised up or down at every logging step from the measured speed
(:meth:`StageTrainer.plan`; a machine that slows down gets a shorter schedule that still completes), and a
stage still running at the deadline ends there. The plan is stored with the state, so a resumed run keeps
it; exact resume is only promised without a budget (a budget makes the plan depend on wall time).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

STATE_DIR = "state"
CSV_FIELDS = ("stage", "step", "global_step", "seconds", "lr", "loss", "detail")
PLAN_WINDOW = 5  # the time-budget plan's recent speed: over the last 5 logging intervals (250 steps at log_every 50)
PLAN_RESERVE = 0.03  # and the share of a stage's budget it leaves unplanned, for the final saves

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


def replay_plan(cost, budget: float, *, log_every: int, asked: int = 10**9, calibration_steps: int = 10) -> dict:
    """Run the time-budget plan (:meth:`StageTrainer.plan`) of one stage on a simulated clock: step ``i`` takes
    ``cost(i)`` seconds, the stage has ``budget`` seconds, and it ends as the training loop ends it (its plan
    done, or the deadline passed). Returns ``steps``, ``seconds``, the plan after every step (``totals``) and
    ``cut_by_deadline``. For judging the planner on real step times (benchmarks/replay_budget_plan.py)."""
    from types import SimpleNamespace

    now = [0.0]
    trainer = SimpleNamespace(cfg=SimpleNamespace(log_every=log_every, calibration_steps=calibration_steps),
                              meta={"planned": {}}, agree=lambda value: value, clock=lambda: now[0],
                              stage_budget=lambda stage: budget - now[0], _plan_marks=[])
    step, total, totals = 0, StageTrainer.plan(trainer, "stage", asked, 0, 0.0, 0), []
    while step < total and now[0] < budget:
        now[0] += float(cost(step))
        step += 1
        total = StageTrainer.plan(trainer, "stage", asked, step, 0.0, 0)
        totals.append(total)
    return {"steps": step, "seconds": now[0], "totals": totals, "cut_by_deadline": step < total}


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


def run_in_folder(out: Path, config_name: str, record: dict, resume: bool, threads: int | None, run, *,
                  defaults: dict | None = None):
    """The shared start of every trainer: check ``out`` (empty for a new run; for ``resume``, a state to
    resume and exactly the settings ``record`` saved in ``out/config_name``; a setting the saved record
    lacks, because it was added in a later version, counts as its value in ``defaults``), write ``record``
    there (rank 0), then ``run()`` with ``threads`` torch threads. Every rank checks before rank 0 writes."""
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
        before = {**{k: v for k, v in (defaults or {}).items() if k in record}, **before}
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


def asked_strategy() -> str | None:
    """What the ``accelerate launch`` config asks for: ``"fsdp"``, ``"deepspeed"`` or None (DDP, one process)."""
    for name, var in (("fsdp", "ACCELERATE_USE_FSDP"), ("deepspeed", "ACCELERATE_USE_DEEPSPEED")):
        if os.environ.get(var, "false").lower() == "true":
            return name
    return None


def distributed_state():
    """accelerate's process state (initialises the process group under ``accelerate launch``/``torchrun``).

    Under a DeepSpeed launch config on a machine without a GPU, accelerate 1.15 needs two things it does not
    work out itself: ``cpu=False`` (its CPU branch never selects DeepSpeed) and the backend named (without it
    DeepSpeed starts the gloo process group but accelerate records one process of rank 0 on every rank)."""
    import torch
    from accelerate import PartialState

    cuda = torch.cuda.is_available()
    if asked_strategy() == "deepspeed":
        from accelerate.utils import is_deepspeed_available

        if not is_deepspeed_available():
            raise ConfigError("the launch config asks for DeepSpeed, which is not installed (pip install deepspeed)")
        if not cuda and int(os.environ.get("LOCAL_RANK", -1)) != -1:
            return PartialState(cpu=False, backend="gloo")
        return PartialState(cpu=False)
    return PartialState(cpu=not cuda)


def prepared_data(trainer, data: Path, per_dimension: int, seed: int) -> Path:
    """``DATA/manifest.jsonl``: rank 0 generates a missing train split while the other ranks wait."""
    data = Path(data)
    if not (data / "manifest.jsonl").is_file() and data.exists() and any(data.iterdir()):
        ensure_train_data(data, per_dimension=per_dimension, seed=seed)  # the one-line error, on every rank
    with trainer.accelerator.main_process_first():
        return ensure_train_data(data, per_dimension=per_dimension, seed=seed,
                                 progress=trainer.progress and trainer.accelerator.is_main_process)


SHARDED = ("fsdp", "deepspeed")


def check_strategy(accelerator) -> str:
    """The strategy the trainers run: ``"single"`` (one process), ``"ddp"``, ``"fsdp"`` (FSDP2) or
    ``"deepspeed"`` (ZeRO stage 1 or 2), or a one-line :class:`ConfigError` for a setting they do not support.

    FSDP on CPUs: accelerate 1.15 selects ``DistributedType.FSDP`` only on GPU-like devices and runs an FSDP
    launch config as DDP (MULTI_CPU) on CPUs, although FSDP2 (``fully_shard``) works there with gloo. The
    trainers then switch the accelerator to FSDP with the launch config's own plugin, so that
    ``accelerator.prepare`` shards the model with accelerate's FSDP2 code: the same path as on GPUs."""
    from accelerate.utils import DistributedType

    kind, asked = accelerator.distributed_type, asked_strategy()
    if asked == "fsdp" and kind == DistributedType.MULTI_CPU:
        from accelerate import FullyShardedDataParallelPlugin, PartialState

        plugin = FullyShardedDataParallelPlugin()  # from the launcher's FSDP_* variables, as on GPUs
        if accelerator.mixed_precision != "no":
            plugin.set_mixed_precision(accelerator.mixed_precision)
        accelerator.state.fsdp_plugin = plugin
        accelerator.state.distributed_type = kind = DistributedType.FSDP
        PartialState._shared_state["distributed_type"] = kind
    if kind == DistributedType.FSDP:
        if int(accelerator.state.fsdp_plugin.fsdp_version) != 2:
            raise ConfigError("accelerate runs FSDP1: the trainers support FSDP2 only (set fsdp_version: 2, as in "
                              "configs/accelerate/fsdp.yaml)")
        return "fsdp"
    if kind == DistributedType.DEEPSPEED:
        _check_deepspeed(accelerator.state.deepspeed_plugin)
        return "deepspeed"
    if asked:
        raise ConfigError(f"the launch config asks for {asked}, but accelerate runs {kind.value}; launch the trainers "
                          "with `accelerate launch --config_file ...` and nothing else starting accelerate first")
    return "single" if kind == DistributedType.NO else "ddp"


def _check_deepspeed(plugin) -> None:
    """Refuse the DeepSpeed settings the trainers cannot honour; clip gradients at 1.0 like every strategy."""
    config = plugin.deepspeed_config
    zero = config.get("zero_optimization", {})
    stage = int(zero.get("stage", 0))
    if stage not in (1, 2):
        raise ConfigError(f"DeepSpeed ZeRO stage {stage}: the trainers support stages 1 and 2 (stage 3 partitions the "
                          "weights, which the trainers also use outside the engine); use "
                          "configs/accelerate/deepspeed_zero2.yaml or fsdp.yaml")
    for key in ("offload_optimizer", "offload_param"):
        if str((zero.get(key) or {}).get("device", "none")).lower() != "none":
            raise ConfigError(f"DeepSpeed {key}: not supported (the trainers read and write the optimizer's "
                              "partitions in place); set offload_optimizer_device and offload_param_device to none")
    if str((config.get("bf16") or {}).get("enabled", False)).lower() == "true":
        # DeepSpeed's bf16 mode casts the weights to bf16 and wants bf16 inputs; the trainers feed fp32 tensors
        # and use frozen fp32 critics beside the engine. Its torch_autocast mode (fp32 weights, bf16 compute)
        # is what accelerate's bf16 does under DDP and FSDP.
        config["bf16"] = {"enabled": False}
        config["torch_autocast"] = {"enabled": True, "dtype": "bfloat16"}
    if str((config.get("fp16") or {}).get("enabled", False)).lower() == "true":
        raise ConfigError("DeepSpeed fp16: not supported (its dynamic loss scale is not part of the exact-resume "
                          "state); use bf16 or no mixed precision")
    if config.get("gradient_accumulation_steps", 1) not in (1, "auto"):
        raise ConfigError(f"DeepSpeed gradient_accumulation_steps {config['gradient_accumulation_steps']}: the "
                          "trainers step the optimizer once per batch; set it to 1")
    clip = config.get("gradient_clipping", "auto")
    if clip == "auto":
        config["gradient_clipping"] = 1.0
    elif float(clip) != 1.0:
        raise ConfigError(f"DeepSpeed gradient_clipping {clip}: the trainers clip gradients at norm 1.0 (DeepSpeed "
                          "clips inside its engine); set gradient_clipping: 1.0")


def _tie_unused(model, touch: list):
    """Give every parameter in ``touch`` a gradient on every rank, under DeepSpeed, when some sit out a step
    on some rank (the VLM's judge-only parts). DeepSpeed has no ``find_unused_parameters``: its ZeRO gradient
    buckets are filled by per-parameter hooks, and a parameter one rank leaves unused makes the ranks'
    reductions differ (gloo: "Is there a distributed collective mismatch"). A forward hook adds ``0 *`` one
    element of each to the model's first floating output that requires grad, so each gets a gradient (zero
    where unused), as under DDP's ``find_unused_parameters``; the output's values do not change. Returns the
    hook's handle."""
    import torch

    def add(out, zero):
        if torch.is_tensor(out):
            return (out + zero, True) if out.is_floating_point() and out.requires_grad else (out, False)
        if isinstance(out, (tuple, list)):
            items = list(out)
            for i, item in enumerate(items):
                items[i], done = add(item, zero)
                if done:
                    return (type(out)(items) if type(out) in (tuple, list) else type(out)(*items)), True
        return out, False

    def hook(module, args, out):
        out, done = add(out, 0.0 * sum(p.reshape(-1)[0] for p in touch if p.numel()))
        if not done:
            raise ConfigError(f"DeepSpeed: {type(model).__name__} returned no floating tensor that requires grad, "
                              "to which the parameters some ranks leave unused could be tied; use DDP or FSDP")
        return out

    return model.register_forward_hook(hook)


def _with_extras(model, extras: list):
    """``model`` in a module that also holds ``extras``, parameters its optimizer trains outside it (the SRF
    critic head): DeepSpeed's engine steps only parameters of the module it wraps. Calls go to ``model``."""
    import torch

    class WithExtras(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.extras = torch.nn.ParameterList(extras)

        def forward(self, *args, **kwargs):
            return self.model(*args, **kwargs)

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                if name == "model":
                    raise
                return getattr(self._modules["model"], name)

    return WithExtras()


def _link_moments(zero) -> None:
    """Point every parameter of DeepSpeed's ZeRO-1/2 optimizer ``zero`` at its slice of the moments, which
    ``deepspeed.utils.safe_get/set_full_optimizer_state`` read and write. DeepSpeed 0.19 links them once,
    after stepping the first param group, when the other groups have no moments yet."""
    from deepspeed.utils import lazy_init_hp_params_optimizer_state

    for params, flat in zip(zero.bit16_groups, zero.single_partition_of_fp32_groups):
        lazy_init_hp_params_optimizer_state(params, flat, zero.optimizer.state)


def _skeleton(model):
    """A copy of ``model`` whose parameters are on the meta device (no memory), ties kept; the buffers are
    copied. Made before sharding, it later receives the gathered full weights (:meth:`_Trainer.full_module`)."""
    import copy

    import torch

    memo = {}
    for p in model.parameters():
        memo[id(p)] = torch.nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = b.detach().clone()
    return copy.deepcopy(model, memo)


class StageTrainer:
    """What every trainer's run shares; a job adds its stages (``train_<stage>`` methods) and ``run``."""

    clock = staticmethod(time.perf_counter)  # the time-budget plan's clock (replay_plan substitutes its own)

    def __init__(self, data: Path, out: Path, config, resume: bool, progress: bool):
        import torch
        from accelerate import Accelerator

        self.data, self.out, self.cfg, self.progress = data, out, config, progress
        distributed_state()  # first: under DeepSpeed on CPUs it must be made with the right arguments
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available() and asked_strategy() != "deepspeed",
                                       log_with="tensorboard", project_dir=str(out))
        self.world = self.accelerator.num_processes
        #: "single", "ddp", "fsdp" or "deepspeed" (see :func:`check_strategy`)
        self.strategy = check_strategy(self.accelerator)
        self._skeletons: dict = {}   # id(model) -> (model, meta copy), for full_module under FSDP / DeepSpeed
        self._replaced: dict = {}    # id(parameter FSDP replaced) -> (weak ref to it, its sharded successor)
        self._groups: dict = {}      # id(prepared DeepSpeed optimizer) -> (it, the parameters of each group)
        self._pending = None         # (optimizer, saved moments, saved weights) restore() leaves to prepare()
        self._hooks: list = []       # DeepSpeed: forward hooks of _tie_unused, removed with their engine
        self.meta = {"stage_steps": {}, "planned": {}, "done": [], "seconds": 0.0, "loss": {}}
        self.state_dir = out / STATE_DIR
        if resume and (self.state_dir / "state.json").is_file():
            from .state import check_state_strategy, check_world_size, read_meta

            check_world_size(self.state_dir, self.world)
            check_state_strategy(self.state_dir, self.strategy)
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
        """``accelerator.prepare(model, optimizer)`` for the run's strategy.

        ``unused_parameters``: some parameters sit out a step on some rank (the VLM's judge-only parts on a
        batch without judge rows): DDP gets ``find_unused_parameters``, FSDP2 reduce-scatters zero gradients
        for them, under DeepSpeed a forward hook ties them to the output with zero weight (:func:`_tie_unused`).
        The optimizer may also train parameters outside ``model`` (the SRF critic head): DDP and FSDP leave
        them alone (the trainer averages their gradients), DeepSpeed gets them inside its engine.
        A state :meth:`restore` read is loaded into the sharded optimizer here."""
        if self.strategy == "fsdp":
            return self._prepare_fsdp(model, optimizer, unused_parameters)
        if self.strategy == "deepspeed":
            return self._prepare_deepspeed(model, optimizer, unused_parameters)
        acc = self.accelerator
        before = acc.ddp_handler
        if unused_parameters and self.world > 1:
            from accelerate.utils import DistributedDataParallelKwargs

            acc.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)
        try:
            return acc.prepare(model, optimizer)
        finally:
            acc.ddp_handler = before

    def _prepare_fsdp(self, model, optimizer, unused_parameters: bool):
        acc = self.accelerator
        inside = {id(p) for p in model.parameters()}
        before = dict(model.named_parameters())
        groups = [list(g["params"]) for g in optimizer.param_groups]
        self._skeletons[id(model)] = (model, _skeleton(model))
        # accelerate maps the optimizer's parameters to the model's sharded ones and fails on any other: the
        # parameters outside the model (the critic head) leave the optimizer meanwhile, then go back in place
        for g in optimizer.param_groups:
            g["params"] = [p for p in g["params"] if id(p) in inside]
        prepared = optimizer
        try:
            wrapped, prepared = acc.prepare(model, optimizer)
        finally:
            for g, params in zip(prepared.param_groups, groups):
                sharded = iter(g["params"])
                g["params"] = [next(sharded) if id(p) in inside else p for p in params]
        after = dict(wrapped.named_parameters())
        for name, p in before.items():  # weakly: FSDP frees the unsharded originals nobody else holds
            if after.get(name) is not p:
                self._replaced[id(p)] = (weakref.ref(p), after[name])
        if unused_parameters and self.world > 1:
            wrapped.set_reduce_scatter_unused_params(True)
        if self._pending is not None and self._pending[0] is optimizer:
            self._load_fsdp_optimizer(prepared, self._pending[1])
            self._pending = None
        return wrapped, prepared

    def _prepare_deepspeed(self, model, optimizer, unused_parameters: bool):
        acc = self.accelerator
        if acc.deepspeed_engine_wrapped is not None:  # one engine at a time: the previous stage's is done
            acc.free_memory()
            self._groups.clear()
            for handle in self._hooks:
                handle.remove()
            self._hooks.clear()
        plugin = acc.state.deepspeed_plugin
        if plugin.is_auto("train_micro_batch_size_per_gpu"):
            # only DeepSpeed's own data loader and throughput log read it; the trainers draw their batches
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
        groups = [list(g["params"]) for g in optimizer.param_groups]
        inside = {id(p) for p in model.parameters()}
        extras = [p for params in groups for p in params if id(p) not in inside]
        self._skeletons[id(model)] = (model, _skeleton(model))
        if unused_parameters and self.world > 1:
            touch = [p for params in groups for p in params if id(p) in inside and p.requires_grad]
            self._hooks.append(_tie_unused(model, touch))
        wrapped, prepared = acc.prepare(_with_extras(model, extras) if extras else model, optimizer)
        self._groups[id(prepared)] = (prepared, groups)
        if self._pending is not None and self._pending[0] is optimizer:
            self._load_deepspeed_optimizer(prepared, self._pending[1], self._pending[2])
            self._pending = None
        return wrapped, prepared

    # ---- full weights and moments from the shards (every rank calls these: they are collectives) -------------
    def full_weights(self, module) -> dict:
        """``module``'s state as full tensors without aliases (``{key: tensor}``). Under FSDP the shards are
        all-gathered; under DeepSpeed with bf16/fp16 weights the engine's fp32 masters are gathered."""
        import torch

        from .state import unique_entries

        out = {}
        for name, tensor in unique_entries(module).items():
            replaced = self._replaced.get(id(tensor))
            if replaced is not None and replaced[0]() is tensor:  # FSDP replaced it (a holder kept the old one)
                tensor = replaced[1]
            if self.strategy == "fsdp":
                from torch.distributed.tensor import DTensor

                if isinstance(tensor, DTensor):
                    tensor = tensor.full_tensor()
            elif (self.strategy == "deepspeed" and tensor.is_floating_point() and tensor.dtype != torch.float32
                  and hasattr(tensor, "_hp_mapping")):
                from deepspeed.utils import safe_get_full_fp32_param

                tensor = safe_get_full_fp32_param(tensor)
            out[name] = tensor.detach()
        return out

    def full_optimizer_state(self, optimizer) -> dict:
        """The optimizer's state dict with full moments, in one process's layout (``optim/<index>``)."""
        if self.strategy == "deepspeed":
            return self._deepspeed_optimizer_state(optimizer)
        state = optimizer.state_dict()
        if self.strategy == "fsdp":
            from torch.distributed.tensor import DTensor

            state["state"] = {index: {k: (v.full_tensor() if isinstance(v, DTensor) else v) for k, v in s.items()}
                              for index, s in sorted(state["state"].items())}
        return state

    def full_module(self, module):
        """``module`` as a plain module with its full weights, to write a checkpoint folder from: ``module``
        itself for one process and DDP, else a copy made before sharding, filled with the gathered weights."""
        entry = self._skeletons.get(id(module))
        if entry is None:
            return module
        import torch

        from .state import unique_entries

        weights = self.full_weights(module)
        plain = entry[1]
        made = {}
        for sub in plain.modules():
            for name, p in list(sub._parameters.items()):
                if p is not None and p.is_meta:
                    if id(p) not in made:
                        made[id(p)] = torch.nn.Parameter(torch.empty_like(p, device="cpu"), requires_grad=p.requires_grad)
                    sub._parameters[name] = made[id(p)]
        missing, unexpected = plain.load_state_dict({k: v.cpu() for k, v in weights.items()}, strict=False)
        aliases = set(plain.state_dict(keep_vars=True)) - set(unique_entries(plain))
        if unexpected or set(missing) - aliases:
            raise RuntimeError(f"full_module: gathered weights do not fit the model (missing {sorted(missing)[:3]}, "
                               f"unexpected {sorted(unexpected)[:3]})")
        return plain

    def _load_fsdp_optimizer(self, optimizer, saved: dict) -> None:
        """Load a full saved state into an optimizer over FSDP2's sharded parameters (each rank keeps its shard)."""
        from torch.distributed.tensor import DTensor, distribute_tensor

        params = [p for g in optimizer.param_groups for p in g["params"]]
        state = {}
        for index, values in saved["state"].items():
            p = params[int(index)]
            if isinstance(p, DTensor):
                values = {k: (distribute_tensor(v.to(p.device), p.device_mesh, p.placements, src_data_rank=None)
                              if k != "step" and tuple(v.shape) == tuple(p.shape) else v) for k, v in values.items()}
            state[int(index)] = values
        optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})

    def _deepspeed_optimizer_state(self, optimizer) -> dict:
        import torch
        from deepspeed.utils import safe_get_full_optimizer_state

        groups = self._groups[id(optimizer)][1]
        zero = optimizer.optimizer  # DeepSpeed's ZeRO optimizer; its inner optimizer steps one flat partition per group
        inner = zero.optimizer
        flats = [g["params"][0] for g in inner.param_groups]
        if all(f in inner.state for f in flats):
            _link_moments(zero)
        state, meta, index = {}, [], 0
        for params, flat, group in zip(groups, flats, inner.param_groups):
            own = inner.state.get(flat, {})
            keys = [k for k, v in own.items() if torch.is_tensor(v) and v.shape == flat.shape]
            meta.append({**{k: v for k, v in group.items() if k != "params"},
                         "params": list(range(index, index + len(params)))})
            for p in params:
                values = {k: safe_get_full_optimizer_state(p, k) for k in keys} if own else {}
                if values and all(v is not None for v in values.values()):
                    state[index] = {"step": own["step"].detach().clone(), **{k: v.float() for k, v in values.items()}}
                index += 1
        return {"state": state, "param_groups": meta}

    def _load_deepspeed_optimizer(self, optimizer, saved: dict, masters: dict) -> None:
        """Load a full saved state into DeepSpeed's partitioned fp32 masters (``masters``: id(parameter) ->
        (parameter, saved weight); they differ from the parameters when these are not fp32) and moments."""
        import torch
        from deepspeed.utils import safe_set_full_fp32_param, safe_set_full_optimizer_state

        groups = self._groups[id(optimizer)][1]
        zero = optimizer.optimizer
        inner = zero.optimizer
        flats = [g["params"][0] for g in inner.param_groups]
        for p, value in masters.values():
            if hasattr(p, "_hp_mapping"):
                safe_set_full_fp32_param(p, value.to(p.device))
        starts = [sum(len(g) for g in groups[:i]) for i in range(len(groups))]
        # each group's first parameter with a saved state (DeepSpeed steps a whole group at once)
        firsts = [next(((p, saved["state"][start + j]) for j, p in enumerate(params) if start + j in saved["state"]),
                       None) for params, start in zip(groups, starts)]
        if not all(firsts):
            return  # the saved run never stepped: nothing to load
        fresh = {}
        for i, (flat, (p, first)) in enumerate(zip(flats, firsts)):
            fresh[i] = {"step": first["step"].clone(),
                        **{k: torch.zeros_like(flat) for k, v in first.items()
                           if k != "step" and tuple(v.shape) == tuple(p.shape)}}
        inner.load_state_dict({"state": fresh, "param_groups": inner.state_dict()["param_groups"]})
        _link_moments(zero)
        for params, start in zip(groups, starts):
            for offset, p in enumerate(params):
                for key, value in saved["state"].get(start + offset, {}).items():
                    if key != "step" and hasattr(p, "_hp_mapping"):
                        safe_set_full_optimizer_state(p, value.to(p.device, torch.float32), key)

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

    def bank_at(self, size: int):
        """The train split's frames at ``size`` pixels: ``self.bank`` when it has that size, else decoded from
        the full-size clips (or read from the cache)."""
        return self.bank if self.bank.size == size else self.load_bank(self.manifest, size)

    def begin(self) -> Path:
        """The start every recipe's run shares: the train split's manifest (generated by rank 0 if missing;
        also ``self.manifest``), TensorBoard and ``metrics.csv`` (rows after the resumed state dropped)."""
        self.manifest = prepared_data(self, self.data, self.cfg.per_dimension, self.cfg.seed)
        self.accelerator.init_trackers("tensorboard")
        self.logger = _Logger(self.out, self.accelerator, sum(int(v) for v in self.meta["stage_steps"].values()))
        return self.manifest

    def end(self, finished: bool) -> SFTResult:
        """The end every recipe's run shares (every rank): release the process group, report what was done."""
        self.accelerator.free_memory()  # drop the wrappers: they hold the process group that ends below
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()  # also ends the process group of a launched run
        return SFTResult(self.out, dict(self.meta["stage_steps"]), round(self.elapsed(), 1),
                         dict(self.meta["loss"]), finished)

    def plan(self, stage: str, asked: int, step: int, stage_started: float, step_at_start: int) -> int:
        """The stage's step count: ``asked``, or what fits the time budget.

        With a budget the first estimate comes after ``calibration_steps`` timed steps; it is then revised at
        every logging step, up or down (never above ``asked``, leaving :data:`PLAN_RESERVE` of the stage's
        budget), from the slower of two speeds: the mean since the stage began and the mean over the last
        :data:`PLAN_WINDOW` revisions, so a machine that slows down still ends the stage, with its
        learning-rate schedule completed, inside the budget, while one slow interval (a checkpoint write, a
        busy moment) costs little. (A plan revised only downwards from each interval's speed keeps the
        slowest interval seen; a 55-minute run once lost 7 minutes that way: benchmarks/replay_budget_plan.py.)
        """
        budget = self.stage_budget(stage)
        timed = step - step_at_start
        if stage in self.meta["planned"]:
            if budget is None or step % self.cfg.log_every or timed < self.cfg.calibration_steps:
                return int(self.meta["planned"][stage])
        elif budget is None:
            self.meta["planned"][stage] = asked
            return asked
        elif timed < self.cfg.calibration_steps:
            return asked
        now = self.clock()
        marks = self._plan_marks  # (time, step) of this stage's revisions; loop() starts it empty
        recent = marks[-PLAN_WINDOW] if len(marks) >= PLAN_WINDOW else (stage_started, step_at_start)
        marks.append((now, step))
        per_step = max((now - stage_started) / timed, (now - recent[0]) / (step - recent[1]))
        spare = max(0.0, budget) - PLAN_RESERVE * (now - stage_started + max(0.0, budget))
        fit = int(self.agree(int(step + max(0.0, spare) / per_step)))
        self.meta["planned"][stage] = min(asked, max(step + 1, fit))  # at least the step under way, at most asked
        return int(self.meta["planned"][stage])

    def checkpoint(self, stage: str, modules: dict, optimizer, generators: dict, step: int) -> None:
        """Write the training state (rank 0); every rank calls it (the sharded strategies gather first)."""
        from .state import save_state

        self.meta["stage_steps"][stage] = step
        self.meta["seconds"] = round(self.elapsed(), 1)
        states = self.rank_states(generators)
        if self.strategy in SHARDED:
            modules = {name: self.full_weights(module) for name, module in modules.items()}
            optimizer = self.full_optimizer_state(optimizer)
        if self.accelerator.is_main_process:
            save_state(self.state_dir, modules, optimizer, states, self.meta, world_size=self.world,
                       strategy=self.strategy)
        self.accelerator.wait_for_everyone()

    def restore(self, stage: str, modules: dict, optimizer, generators: dict) -> int:
        """The step to continue ``stage`` from (0 for a fresh stage). Call it before :meth:`prepare`: the
        weights go into ``modules``; under FSDP / DeepSpeed the moments wait for ``prepare`` to shard them."""
        from .state import load_state, read_optimizer_state

        if stage not in self.meta["stage_steps"] or not (self.state_dir / "state.json").is_file():
            return 0
        sharded = self.strategy in SHARDED
        load_state(self.state_dir, modules, None if sharded else optimizer, generators,
                   rank=self.accelerator.process_index, world_size=self.world)
        if sharded:
            masters = {}
            if self.strategy == "deepspeed":  # the saved fp32 weights, for the engine's masters
                from safetensors import safe_open

                from .state import TENSORS, unique_entries

                with safe_open(str(self.state_dir / TENSORS), "pt") as f:
                    masters = {id(t): (t, f.get_tensor(f"model/{prefix}/{name}")) for prefix, module in modules.items()
                               for name, t in unique_entries(module).items()}
            self._pending = (optimizer, read_optimizer_state(self.state_dir), masters)
        return int(self.meta["stage_steps"][stage])

    def deadline_passed(self) -> bool:
        return self.cfg.max_minutes is not None and bool(self.agree(self.elapsed() > 60.0 * self.cfg.max_minutes))

    def autocast(self, stage: str):
        """The context a stage's forward passes run in: bf16 autocast for a stage in ``bf16_stages`` (the
        weights, gradients, AdamW moments and checkpoints stay fp32; the backward pass runs outside it), else
        nothing. Whether it is faster depends on the CPU: on this 2-core Xeon (AVX512-BF16) the 64 px generator's
        steps were 1.12-1.16x faster one day and 0.66-0.80x (slower) another (``benchmarks/bench_generator_step.py``,
        docs/training.md)."""
        import contextlib

        import torch

        if stage not in self.cfg.bf16_stages:
            return contextlib.nullcontext()
        return torch.autocast(self.accelerator.device.type, dtype=torch.bfloat16)

    def loop(self, stage: str, asked: int, step: int, step_fn, save) -> bool:
        """Run ``step_fn(step, total) -> (loss, lr, detail)`` until the plan is done; True when it is."""
        import numpy as np

        window: list[float] = []
        details: dict[str, list[float]] = {}
        stage_started, step_at_start = self.clock(), step
        self._plan_marks = []
        total = self.plan(stage, asked, step, stage_started, step_at_start)
        with self.progress_bar() as bar:
            task = bar.add_task(f"train {stage}", total=total, completed=step, info="")
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
