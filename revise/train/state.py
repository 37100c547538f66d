"""Training state in safetensors + JSON: model weights, AdamW moments, the data RNG; nothing pickled.

A state folder holds ``state.safetensors`` (tensors: ``model/<name>``, ``optim/<index>/<key>``,
``rng/<name>``) and ``state.json`` (step counters, the optimizer's param groups, the number of processes
that wrote it, anything the trainer wants back). Writes go to a temporary folder that is then renamed, so
a kill never leaves half a state.

A run of one process stores each random generator as ``rng/<name>``. A run of ``n`` processes (``accelerate
launch``: each rank draws its own batches) stores every rank's as ``rng/<name>/rank<r>`` and
``"world_size": n``; such a state resumes only with ``n`` processes, each taking back its own generator.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import torch

from ..errors import ConfigError

TENSORS, META = "state.safetensors", "state.json"


def _unique_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict without aliases (tied weights would make safetensors refuse)."""
    seen: dict[int, str] = {}
    out = {}
    for name, tensor in module.state_dict().items():
        key = tensor.untyped_storage().data_ptr() if tensor.numel() else id(tensor)
        if key in seen and tensor.numel():
            continue
        seen[key] = name
        out[name] = tensor.detach().contiguous().cpu()
    return out


def save_state(directory: str | os.PathLike, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
               generators: dict[str, torch.Generator | Sequence[torch.Tensor]], meta: dict, *,
               world_size: int = 1) -> Path:
    """Write one training state into ``directory`` (replacing it atomically).

    ``generators`` maps a name to a generator (one process: ``rng/<name>``) or, with ``world_size`` > 1,
    to the ``world_size`` states (``get_state()`` tensors) of every rank's generator, in rank order
    (``rng/<name>/rank<r>``).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        for name, tensor in _unique_state(module).items():
            tensors[f"model/{prefix}/{name}"] = tensor
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optim/{index}/{key}"] = torch.as_tensor(value).detach().contiguous().cpu()
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
    (tmp / META).write_text(json.dumps({"meta": meta, "param_groups": groups, "world_size": int(world_size)},
                                       indent=1) + "\n")
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


def check_world_size(directory: str | os.PathLike, world_size: int) -> None:
    """A one-line :class:`ConfigError` unless the state was written by ``world_size`` processes."""
    saved = saved_world_size(directory)
    if saved != world_size:
        raise ConfigError(f"{directory}: the training state was written by {saved} process(es), this run has "
                          f"{world_size}; resume with {saved} (accelerate launch --num_processes {saved}) "
                          "or start a new folder")


def load_state(directory: str | os.PathLike, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
               generators: dict[str, torch.Generator], *, rank: int = 0, world_size: int = 1) -> dict:
    """Restore what :func:`save_state` wrote; returns its ``meta``. Mismatches raise one-line errors.

    With ``world_size`` > 1 each generator gets rank ``rank``'s saved state; the state must have been
    written by as many processes.
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
        own = _unique_state(module)
        saved = {k[len(f"model/{prefix}/"):]: v for k, v in tensors.items() if k.startswith(f"model/{prefix}/")}
        if set(saved) != set(own) or any(saved[k].shape != own[k].shape for k in own):
            raise ConfigError(f"{directory}: the saved {prefix} weights do not match the model being resumed")
        module.load_state_dict(saved, strict=False)
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": data["param_groups"]})
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
