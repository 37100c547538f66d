"""Training state in safetensors + JSON: model weights, AdamW moments, the data RNG; nothing pickled.

A state folder holds ``state.safetensors`` (tensors: ``model/<name>``, ``optim/<index>/<key>``,
``rng/<name>``) and ``state.json`` (step counters, the optimizer's param groups, anything the trainer
wants back). Writes go to a temporary folder that is then renamed, so a kill never leaves half a state.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

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
               generators: dict[str, torch.Generator], meta: dict) -> Path:
    """Write one training state into ``directory`` (replacing it atomically)."""
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
        tensors[f"rng/{name}"] = gen.get_state().contiguous()
    save_file(tensors, str(tmp / TENSORS))
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt["param_groups"]]
    (tmp / META).write_text(json.dumps({"meta": meta, "param_groups": groups}, indent=1) + "\n")
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


def load_state(directory: str | os.PathLike, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
               generators: dict[str, torch.Generator]) -> dict:
    """Restore what :func:`save_state` wrote; returns its ``meta``. Mismatches raise one-line errors."""
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
    for name, gen in generators.items():
        if f"rng/{name}" not in tensors:
            raise ConfigError(f"{directory}: the saved state has no random generator {name!r}")
        gen.set_state(tensors[f"rng/{name}"])
    return data["meta"]
