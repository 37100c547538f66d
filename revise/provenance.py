"""Provenance stamped into every result file: what produced it, from which code, on what."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from . import __version__


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the checkout the package runs from, with ``+dirty`` if modified; ``unknown`` outside git."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
            text=True, timeout=5,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def text_hash(text: str) -> str:
    """A short, stable hash of a prompt or config text (sha256, first 16 hex digits)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_hash(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (full hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def base_provenance() -> dict:
    """Package version, git commit and platform; callers add editor, judges, seeds, frame sampling."""
    import numpy

    info = {
        "package": "revise",
        "version": __version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
    }
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("torch", "av", "pymunk"):
        try:  # the installed version, without importing the (slow to import) package
            info[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return info
