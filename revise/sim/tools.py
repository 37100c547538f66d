"""Small user-facing operations on RVE-Sim data: perception reports and dataset contact sheets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..data import load_manifest
from ..video import contact_sheet, read_video
from .perceive import perceive
from .scene import PALETTE
from .state import Tracks, load_state


def tracks_to_json(tracks: Tracks) -> dict:
    """Per-frame ``{part: {x, y, area, present}}`` (NaN -> null), plus brightness."""
    frames = []
    for i in range(tracks.num_frames):
        objects = {}
        for part in tracks.ids:
            present = bool(tracks.present[part][i])
            objects[part] = {"present": present, "area": round(float(tracks.area[part][i]), 2),
                             "x": round(float(tracks.x[part][i]), 3) if present else None,
                             "y": round(float(tracks.y[part][i]), 3) if present else None}
        frames.append({"objects": objects, "brightness": round(float(tracks.brightness[i]), 4)})
    return {"frames": frames}


def centre_errors(perceived: Tracks, truth: Tracks, min_area: float = 20.0) -> dict[str, float]:
    """Largest centre error (pixels) per part over frames where the truth shows at least ``min_area``."""
    out = {}
    for part in truth.ids:
        mask = truth.present[part] & (truth.area[part] >= min_area)
        if not mask.any():
            continue
        dx = perceived.x[part][mask] - truth.x[part][mask]
        dy = perceived.y[part][mask] - truth.y[part][mask]
        err = np.hypot(dx, dy)
        out[part] = float(np.nanmax(np.where(np.isfinite(err), err, np.inf)))
    return out


def perceive_video(video: str | os.PathLike, state: str | os.PathLike | None = None, clip: str = "target") -> dict:
    """Perceive a video; with a state file, use its palette and size and report the error against ``clip``."""
    frames = read_video(video).frames
    if state is None:
        palette = {name: rgb for name, rgb in PALETTE.items()}
        tracks = perceive(frames, palette)
        return {"video": str(video), "palette": "default colour names", **tracks_to_json(tracks)}
    sim_state = load_state(state)
    tracks = perceive(frames, sim_state.palette, size=sim_state.size)
    truth = sim_state.target if clip == "target" else sim_state.source
    report = {"video": str(video), "state": str(state), "compared_with": clip, **tracks_to_json(tracks)}
    if truth.num_frames == tracks.num_frames:
        report["max_centre_error_px"] = {k: round(v, 3) for k, v in centre_errors(tracks, truth).items()}
    else:
        report["note"] = f"the video has {tracks.num_frames} frames, the state {truth.num_frames}: no comparison"
    return report


def dataset_sheet(manifest: str | os.PathLike, out: str | os.PathLike, *, per_dimension: int = 1, k: int = 8) -> Path:
    """A PNG contact sheet: source and target rows of the first samples of every dimension."""
    loaded = load_manifest(manifest)
    rows, seen = [], {}
    for s in loaded:
        if seen.get(s.group, 0) >= per_dimension:
            continue
        seen[s.group] = seen.get(s.group, 0) + 1
        rows.append((f"{s.group}: {s.instruction} [source]", read_video(s.source).frames))
        if s.target is not None:
            rows.append((f"target: {s.metadata.get('target_caption', '')}", read_video(s.target).frames))
    contact_sheet(rows, out, k=k, label_width=300)
    return Path(out)


def write_json(data: dict, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path
