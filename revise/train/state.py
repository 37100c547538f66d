"""Training state in safetensors + JSON: model weights, AdamW moments, the data RNG; nothing pickled.

A state folder holds ``state.safetensors`` (tensors: ``model/<name>``, ``optim/<index>/<key>``,
``rng/<name>``) and ``state.json`` (step counters, the optimizer's param groups, the number of processes
that wrote it, anything the trainer wants back). Writes go to a temporary folder that is then renamed, so
a kill never leaves half a state.

A run of one process stores each random generator as ``rng/<name>``. A run of ``n`` processes (``accelerate
launch``: each rank draws its own batches) stores every rank's as ``rng/<name>/rank<r>`` and
``"world_size": n``; such a state resumes only with ``n`` processes, each taking back its own generator.

The weights and moments are always the *full* tensors in the layout of one process (``optim/<index>`` counts
the optimizer's parameters in param-group order, as ``torch.optim.Optimizer.state_dict`` does). Under FSDP
or DeepSpeed, where each rank holds a shard, the trainer gathers them first (:mod:`revise.train.sft`) and
passes plain tensors: ``modules`` may map a name to a ``{key: tensor}`` dict and ``optimizer`` may be a
state dict. ``"strategy"`` in ``state.json`` records how the run was sharded (``single``, ``ddp``, ``fsdp``
or ``deepspeed``; absent in older states, which were all unsharded).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Mapping, Sequence

import torch

from ..errors import ConfigError

TENSORS, META = "state.safetensors", "state.json"
SHARDED = ("fsdp", "deepspeed")


def unique_entries(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state-dict entries (the parameter and buffer objects themselves) without aliases: a
    tensor registered under two names (tied weights) keeps its first name only."""
    seen: set[int] = set()
    out = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        out[name] = tensor
    return out


def _copy(tensor: torch.Tensor) -> torch.Tensor:
    """A detached, contiguous CPU copy sharing no memory with ``tensor`` (safetensors refuses shared memory,
    and DeepSpeed keeps a model's parameters as views of one flat buffer)."""
    return tensor.detach().to("cpu", copy=True).contiguous()


def save_state(directory: str | os.PathLike, modules: dict[str, torch.nn.Module | Mapping[str, torch.Tensor]],
               optimizer: torch.optim.Optimizer | dict, generators: dict[str, torch.Generator | Sequence[torch.Tensor]],
               meta: dict, *, world_size: int = 1, strategy: str | None = None) -> Path:
    """Write one training state into ``directory`` (replacing it atomically).

    ``modules`` maps a name to a module or to its full, alias-free ``{key: tensor}`` state; ``optimizer`` is
    an optimizer or its (full) state dict. ``generators`` maps a name to a generator (one process:
    ``rng/<name>``) or, with ``world_size`` > 1, to the ``world_size`` states (``get_state()`` tensors) of
    every rank's generator, in rank order (``rng/<name>/rank<r>``). ``strategy`` is recorded when given.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        state = unique_entries(module) if isinstance(module, torch.nn.Module) else module
        for name, tensor in state.items():
            tensors[f"model/{prefix}/{name}"] = _copy(tensor)
    opt = optimizer if isinstance(optimizer, dict) else optimizer.state_dict()
    for index, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optim/{index}/{key}"] = _copy(torch.as_tensor(value))
    for name, gen in generators.items():
        if isinstance(gen, torch.Generator):
            if world_size != 1:
                raise ValueError(f"save_state: generator {name!r} is one process's, the state is for {world_size}")
            tensors[f"rng/{name}"] = gen.get_state().contiguous()
            continue
        states = list(gen)
        if len(states) != world_size:
            raise ValueError(f"save_state: {len(states)} states of generator {name!r} for {world_size} processes")
        for rank, state in enumerate(states):
            tensors[f"rng/{name}/rank{rank}"] = state.detach().to("cpu", torch.uint8).contiguous()
    save_file(tensors, str(tmp / TENSORS))
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt["param_groups"]]
    record = {"meta": meta, "param_groups": groups, "world_size": int(world_size)}
    if strategy is not None:
        record["strategy"] = strategy
    (tmp / META).write_text(json.dumps(record, indent=1) + "\n")
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def read_meta(directory: str | os.PathLike) -> dict:
    path = Path(directory) / META
    try:
        return json.loads(path.read_text())["meta"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable training state ({exc})") from None


def saved_world_size(directory: str | os.PathLike) -> int:
    """How many processes wrote the state in ``directory`` (1 for states written before it was recorded)."""
    path = Path(directory) / META
    try:
        return int(json.loads(path.read_text()).get("world_size", 1))
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable training state ({exc})") from None


def saved_strategy(directory: str | os.PathLike) -> str:
    """How the run that wrote the state in ``directory`` was distributed (``ddp`` for states written before
    it was recorded: those were one process or DDP)."""
    path = Path(directory) / META
    try:
        return str(json.loads(path.read_text()).get("strategy", "ddp"))
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable training state ({exc})") from None


def check_state_strategy(directory: str | os.PathLike, strategy: str) -> None:
    """A one-line :class:`ConfigError` unless the state was written with the same kind of sharding (FSDP,
    DeepSpeed, or none: one process and DDP share a layout and are told apart by the number of processes)."""
    saved = saved_strategy(directory)
    if (saved if saved in SHARDED else "unsharded") != (strategy if strategy in SHARDED else "unsharded"):
        raise ConfigError(f"{directory}: the training state was written by a {saved} run, this run is {strategy}; "
                          "resume with the launch config that wrote it or start a new folder")


def check_world_size(directory: str | os.PathLike, world_size: int) -> None:
    """A one-line :class:`ConfigError` unless the state was written by ``world_size`` processes."""
    saved = saved_world_size(directory)
    if saved != world_size:
        raise ConfigError(f"{directory}: the training state was written by {saved} process(es), this run has "
                          f"{world_size}; resume with {saved} (accelerate launch --num_processes {saved}) "
                          "or start a new folder")


def load_state(directory: str | os.PathLike, modules: dict[str, torch.nn.Module],
               optimizer: torch.optim.Optimizer | None, generators: dict[str, torch.Generator], *, rank: int = 0,
               world_size: int = 1) -> dict:
    """Restore what :func:`save_state` wrote; returns its ``meta``. Mismatches raise one-line errors.

    With ``world_size`` > 1 each generator gets rank ``rank``'s saved state; the state must have been
    written by as many processes. ``optimizer`` None leaves the moments out (see :func:`read_optimizer_state`).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    try:
        tensors = load_file(str(directory / TENSORS))
        data = json.loads((directory / META).read_text())
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{directory}: unreadable training state ({exc})") from None
    for prefix, module in modules.items():
        own = unique_entries(module)
        saved = {k[len(f"model/{prefix}/"):]: v for k, v in tensors.items() if k.startswith(f"model/{prefix}/")}
        if set(saved) != set(own) or any(saved[k].shape != own[k].shape for k in own):
            raise ConfigError(f"{directory}: the saved {prefix} weights do not match the model being resumed")
        module.load_state_dict(saved, strict=False)
    if optimizer is not None:
        optimizer.load_state_dict(_optimizer_state(tensors, data))
    saved = int(data.get("world_size", 1))
    if saved != world_size:
        check_world_size(directory, world_size)
    for name, gen in generators.items():
        key = f"rng/{name}" if world_size == 1 else f"rng/{name}/rank{rank}"
        if key not in tensors:
            raise ConfigError(f"{directory}: the saved state has no random generator {name!r}"
                              + ("" if world_size == 1 else f" for rank {rank}"))
        gen.set_state(tensors[key])
    return data["meta"]


def _optimizer_state(tensors: dict[str, torch.Tensor], data: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": data["param_groups"]}


def read_optimizer_state(directory: str | os.PathLike) -> dict:
    """The saved optimizer state as a (full, one-process) ``state_dict``: ``{"state": {index: {key: tensor}},
    "param_groups": [...]}``, for a trainer that loads it into a sharded optimizer itself."""
    from safetensors import SafetensorError, safe_open

    directory = Path(directory)
    try:
        data = json.loads((directory / META).read_text())
        with safe_open(str(directory / TENSORS), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith("optim/")}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{directory}: unreadable training state ({exc})") from None
    return _optimizer_state(tensors, data)
