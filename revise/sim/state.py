"""Per-frame ground-truth states of a sample (``rve-sim-state/1`` JSON) and the :class:`Tracks` view.

A state file holds, for the source and the target clip, every perceivable part's visible centroid and
area in pixels of the rendered frame (exactly what :func:`revise.sim.perceive.perceive` recovers from a
video), its image-space velocity, world position and attributes, plus the global brightness. It also
names the parts the instruction is about (``involved``: Reasoning is judged on them) and those that must
not change (``preserved``: Consistency), and scenario-specific ``checks``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SceneError

FORMAT = "rve-sim-state/1"


@dataclass
class Tracks:
    """Per-part arrays over frames: ``present`` (bool), ``x``, ``y`` (pixels), ``area`` (pixels²),
    and ``brightness`` per frame (the frame's mean grey level / 255, as perception measures it).
    Missing parts are absent (x, y = NaN, area 0)."""

    present: dict[str, np.ndarray]
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    area: dict[str, np.ndarray]
    brightness: np.ndarray
    attrs: list[dict] = field(default_factory=list)  # per frame: {part: {attr: value}} (ground truth only)

    @property
    def num_frames(self) -> int:
        return int(len(self.brightness))

    @property
    def ids(self) -> list[str]:
        return sorted(self.present)

    def centre(self, part: str) -> np.ndarray:
        """``(T, 2)`` array of (x, y), NaN where absent."""
        return np.stack([self.x[part], self.y[part]], axis=1)


@dataclass
class SimState:
    sample_id: str
    scenario: str
    subset: str
    dimension: str
    size: tuple[int, int]
    fps: float
    num_frames: int
    palette: dict[str, tuple[int, int, int]]
    source: Tracks
    target: Tracks
    involved: list[str]
    preserved: list[str]
    checks: list[dict]
    raw: dict


def tracks_from_json(frames: list[dict], parts: list[str]) -> Tracks:
    t = len(frames)
    present = {p: np.zeros(t, bool) for p in parts}
    xs = {p: np.full(t, np.nan) for p in parts}
    ys = {p: np.full(t, np.nan) for p in parts}
    areas = {p: np.zeros(t) for p in parts}
    brightness = np.zeros(t)
    attrs = []
    for i, frame in enumerate(frames):
        brightness[i] = frame.get("globals", {}).get("brightness", 1.0)
        frame_attrs = {}
        for part, obj in frame.get("objects", {}).items():
            if part not in present:
                continue
            present[part][i] = bool(obj.get("visible", False))
            if present[part][i]:
                xs[part][i], ys[part][i] = obj["x"], obj["y"]
            areas[part][i] = obj.get("area", 0.0)
            frame_attrs[part] = {k: v for k, v in obj.items() if k not in ("x", "y", "area", "visible")}
        attrs.append(frame_attrs)
    return Tracks(present, xs, ys, areas, brightness, attrs)


def read_state_json(path: str | os.PathLike) -> dict:
    """A state file as a plain dict; :class:`SceneError` naming the file if it is missing or not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SceneError(f"{path}: state file missing") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SceneError(f"{path}: not a state file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SceneError(f"{path}: not a {FORMAT} state file")
    return data


def load_state(path: str | os.PathLike) -> SimState:
    """Read and check a state file; raises :class:`SceneError` naming the file on any problem."""
    data = read_state_json(path)
    try:
        palette = {k: tuple(v) for k, v in data["palette"].items()}
        parts = sorted(palette)
        return SimState(
            sample_id=data["sample_id"], scenario=data["scenario"], subset=data["subset"], dimension=data["dimension"],
            size=tuple(data["size"]), fps=float(data["fps"]), num_frames=int(data["num_frames"]), palette=palette,
            source=tracks_from_json(data["source"]["frames"], parts),
            target=tracks_from_json(data["target"]["frames"], parts),
            involved=list(data["involved"]), preserved=list(data["preserved"]), checks=list(data.get("checks", [])),
            raw=data,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SceneError(f"{path}: malformed state file ({exc!r})") from None


def round_floats(value, digits: int = 3):
    """Round every float (recursively) so state files are compact and byte-stable; NaN becomes None."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, digits)
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [round_floats(v, digits) for v in value]
    return value


def dump_state(data: dict, path: Path) -> None:
    """Write a state dict as stable JSON (sorted keys, rounded floats)."""
    text = json.dumps(round_floats(data), sort_keys=True, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
