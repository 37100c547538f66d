"""Local Hugging Face models: resolve a folder or a cached repo id without touching the network, hash
configs and weights for provenance, and prefetch models (with a file manifest) on machines with internet.

Shared by the diffusers editors (``wan-vace``, ``wan-v2v``), the ``hf-vlm`` judge and ``revise prefetch``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import ConfigError


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception as one line: its type and its message, whitespace collapsed, at most ``limit`` chars."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

# --------------------------------------------------------------------------------------------------
# Local Hugging Face models (shared with revise.judges.hf_vlm and `revise prefetch`)
# --------------------------------------------------------------------------------------------------

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
MANIFEST_FORMAT = "revise-prefetch/1"
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class LocalModel:
    """Where a model reference resolved to: ``ref`` as given, the local ``path``, and for a repo id from
    the Hugging Face cache its ``repo_id`` and snapshot ``commit``."""

    ref: str
    path: Path
    repo_id: str | None = None
    commit: str | None = None


def hf_offline() -> bool:
    """``HF_HUB_OFFLINE`` as the environment says now (or as huggingface_hub read it at import)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a dependency of transformers and diffusers
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def hub_cache_dir(hub_cache: str | os.PathLike | None = None) -> Path:
    """The Hugging Face hub cache folder in use: ``hub_cache``, else ``HF_HUB_CACHE`` (or ``HF_HOME/hub``)."""
    if hub_cache:
        return Path(hub_cache).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def _fetch_hint(repo_id: str, revision: str | None) -> str:
    return f"revise prefetch {repo_id}" + (f" --revision {revision}" if revision else "")


def resolve_local_model(model: str, *, what: str, revision: str | None = None,
                        hub_cache: str | os.PathLike | None = None) -> LocalModel:
    """A local folder, or a repo id ``org/name`` found in the local Hugging Face cache -> :class:`LocalModel`.

    Never touches the network (``local_files_only=True``). Raises a one-line :class:`ConfigError`
    starting with ``what`` when the folder does not exist, or the repo (or one of its files) is not
    in the cache; the message names the repo and the ``revise prefetch`` command that fetches it.
    """
    model = str(model).strip()
    if not model:
        raise ConfigError(f"{what}: no model given")
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{what}: model {model}: not a folder")
        return LocalModel(ref=model, path=path.resolve())
    if not REPO_ID.match(model):
        raise ConfigError(f"{what}: model {model}: no such folder, and not a Hugging Face repo id (org/name)")
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir(hub_cache)
    try:
        folder = snapshot_download(model, revision=revision, cache_dir=str(cache), local_files_only=True)
    except Exception as exc:  # LocalEntryNotFoundError, IncompleteSnapshotError, HFValidationError, OSError
        kind = "incomplete in" if type(exc).__name__ == "IncompleteSnapshotError" else "not in"
        rev = f" (revision {revision})" if revision else ""
        raise ConfigError(f"{what}: model {model}{rev} is {kind} the local Hugging Face cache {cache}; "
                          f"fetch it on a machine with internet: {_fetch_hint(model, revision)}") from None
    folder = Path(folder)
    commit = folder.name if folder.parent.name == "snapshots" else None
    return LocalModel(ref=model, path=folder, repo_id=model, commit=commit)


def config_files_sha256(path: str | os.PathLike) -> str:
    """sha256 over every ``*.json`` and ``*.jinja`` file under ``path`` (relative path and bytes, sorted):
    a fingerprint of a checkpoint's configs (model, scheduler, tokenizer, processor, chat template)."""
    root = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.suffix in (".json", ".jinja") and p.is_file())
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def weights_fingerprint(path: str | os.PathLike) -> str:
    """sha256 over the relative path and byte size of every ``*.safetensors`` file under ``path``.

    Cheap (no weight bytes are read), so it is a fingerprint, not a content hash: it tells checkpoints
    apart when configs are equal but weights were re-saved with other sizes; for content hashes use the
    ``revise prefetch`` manifest."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*.safetensors") if p.is_file()):
        digest.update(f"{file.relative_to(root).as_posix()}\0{file.stat().st_size}\n".encode())
    return digest.hexdigest()


def file_manifest(folder: str | os.PathLike) -> list[dict]:
    """Every file under ``folder`` (symlinks followed, as in a Hugging Face snapshot), sorted by relative
    path: ``{"path", "size", "sha256"}``."""
    from .provenance import file_hash

    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder")
    rows = []
    for file in sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()):
        rows.append({"path": file.relative_to(root).as_posix(), "size": file.stat().st_size, "sha256": file_hash(file)})
    return rows


def model_manifest_entry(folder: str | os.PathLike, *, repo_id: str | None = None, revision: str | None = None,
                         commit: str | None = None) -> dict:
    """One model's manifest entry: repo id, requested revision, commit, folder and :func:`file_manifest`."""
    files = file_manifest(folder)
    return {"repo_id": repo_id, "revision": revision, "commit": commit, "path": str(Path(folder)),
            "n_files": len(files), "total_bytes": sum(f["size"] for f in files), "files": files}


def write_prefetch_manifest(entries: list[dict], path: str | os.PathLike, *, hub_cache: str | None = None) -> Path:
    """Write the prefetch manifest JSON (written to a temporary file, then renamed into place)."""
    path = Path(path)
    doc = {"format": MANIFEST_FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "hub_cache": hub_cache, "models": entries}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the prefetch manifest: {exc}") from None
    return path


def prefetch_models(repo_ids: list[str], *, hub_cache: str | os.PathLike | None = None, revision: str | None = None,
                    manifest: str | os.PathLike = "prefetch-manifest.json") -> Path:
    """Download each repo into the Hugging Face cache (``snapshot_download``) and write a manifest of
    every file with its size and sha256. Needs the network: with ``HF_HUB_OFFLINE`` set it refuses with
    one line. Returns the manifest path."""
    if not repo_ids:
        raise ConfigError("revise prefetch: give at least one repo id (org/name)")
    bad = [r for r in repo_ids if not REPO_ID.match(r)]
    if bad:
        raise ConfigError(f"revise prefetch: {bad[0]}: not a Hugging Face repo id (org/name)")
    if hf_offline():
        raise ConfigError(f"revise prefetch: HF_HUB_OFFLINE is set, so {', '.join(repo_ids)} cannot be downloaded; "
                          "run it with HF_HUB_OFFLINE unset on a machine with internet")
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir(hub_cache)
    entries = []
    for repo_id in repo_ids:
        try:
            folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=str(cache)))
        except Exception as exc:  # network, auth, missing repo or revision: one line naming the repo
            rev = f" (revision {revision})" if revision else ""
            raise ConfigError(f"revise prefetch: cannot download {repo_id}{rev}: {_one_line(exc)}") from None
        commit = folder.name if folder.parent.name == "snapshots" else None
        entries.append(model_manifest_entry(folder, repo_id=repo_id, revision=revision or "main", commit=commit))
    return write_prefetch_manifest(entries, manifest, hub_cache=str(cache))


def as_bool(value, what: str) -> bool:
    """An option value as a bool (``true``/``false``, ``1``/``0``, ``yes``/``no``); one-line ConfigError else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"{what} must be true or false, got {value!r}")


def resolve_torch_device(device: str, what: str, *, need_cuda: str | bool = False) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` as given.
    ``need_cuda`` (the name of the option that needs it) refuses a machine without a GPU."""
    import torch

    cuda = torch.cuda.is_available()
    if need_cuda and not cuda:
        raise ConfigError(f"{what}: {need_cuda} needs a CUDA GPU and none is visible; drop {need_cuda} to run on the CPU")
    if device == "auto":
        return "cuda" if cuda else "cpu"
    if device == "cpu" or re.fullmatch(r"cuda(:\d+)?", device):
        if device.startswith("cuda") and not cuda:
            raise ConfigError(f"{what}: device {device} asked for but no CUDA GPU is visible")
        return device
    raise ConfigError(f"{what}: device must be auto, cpu, cuda or cuda:N, got {device!r}")


# --------------------------------------------------------------------------------------------------
# The editors
# --------------------------------------------------------------------------------------------------

