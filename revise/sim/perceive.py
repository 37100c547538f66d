"""Recover per-frame part positions from any video of an RVE-Sim scene.

Perceivable parts are drawn in saturated palette colours on neutral (grey) surroundings under white
light. A pixel's deviation from its own grey level, ``d = p - mean(p)``, is then ``a * b * (C - mean(C))``
for a part of colour ``C`` covering a fraction ``a`` of the pixel under brightness ``b``: its *direction*
names the part and its *length* measures coverage, whatever the lighting. Each pixel is given to the
palette colour whose direction fits best (if it fits well enough), weighted by its length relative to the
part's fully covered pixels; small stray pieces are dropped and the weighted centroid and area follow. This is what lets a *predicted*
video be scored against the true states.
"""

from __future__ import annotations

import numpy as np

from ..video import resize_frames
from .state import Tracks

MIN_STRENGTH = 0.15  # coverage x brightness below which a pixel is ignored
MAX_RESIDUAL = 0.3   # allowed off-direction share of a pixel's colour deviation
MIN_BLOB_SHARE = 0.2  # connected pieces lighter than this share of the heaviest one are stray pixels


def _main_blobs(weight: np.ndarray) -> np.ndarray:
    """Drop small connected pieces (colour bleeding at other objects' edges, compression noise)."""
    import cv2

    count, labels = cv2.connectedComponents((weight > 0).astype(np.uint8), connectivity=8)
    if count <= 2:
        return weight
    sums = np.bincount(labels.ravel(), weights=weight.ravel(), minlength=count)
    sums[0] = 0.0
    keep = sums >= MIN_BLOB_SHARE * sums.max()
    keep[0] = False
    return np.where(keep[labels], weight, 0.0)


def perceive(frames: np.ndarray, palette: dict[str, tuple[int, int, int]], size: tuple[int, int] | None = None,
             min_area: float | None = None) -> Tracks:
    """Per-part visible centroids and areas (pixels of ``size``, default the frames' own) for a clip.

    ``frames``: uint8 ``(T, H, W, 3)``; ``palette``: part id -> RGB as in a state file. Frames of another
    size are resized to ``size`` first. A part is ``present`` in a frame when its area reaches
    ``min_area`` (default 2 px² at 128x128, scaled with the frame area).
    """
    frames = np.asarray(frames)
    if size is not None and tuple(frames.shape[1:3]) != tuple(size):
        frames = resize_frames(frames, int(size[0]), int(size[1]))
    t, h, w, _ = frames.shape
    if min_area is None:
        min_area = 2.0 * (h * w) / (128 * 128)
    parts = sorted(palette)
    colours = np.asarray([palette[p] for p in parts], dtype=np.float32)
    directions = colours - colours.mean(1, keepdims=True)  # (P, 3)
    norms = np.linalg.norm(directions, axis=1)
    units = directions / norms[:, None]
    xs_grid = np.arange(w, dtype=np.float64) + 0.5
    ys_grid = np.arange(h, dtype=np.float64) + 0.5
    out_x = {p: np.full(t, np.nan) for p in parts}
    out_y = {p: np.full(t, np.nan) for p in parts}
    out_area = {p: np.zeros(t) for p in parts}
    out_present = {p: np.zeros(t, bool) for p in parts}
    brightness = np.zeros(t)
    for i in range(t):
        f = frames[i].astype(np.float32)
        grey = f.mean(-1, keepdims=True)
        brightness[i] = float(grey.mean() / 255.0)
        dev = (f - grey).reshape(-1, 3)
        length = np.linalg.norm(dev, axis=1)
        proj = dev @ units.T  # (N, P) component along each palette direction
        residual = np.sqrt(np.maximum(length[:, None] ** 2 - proj ** 2, 0.0))
        rel = residual / np.maximum(proj, 1e-6)
        rel[proj <= 0] = np.inf
        best = np.argmin(rel, axis=1)
        best_rel = rel[np.arange(len(best)), best]
        strength = proj[np.arange(len(best)), best] / norms[best]  # ~ coverage x brightness
        valid = (best_rel < MAX_RESIDUAL) & (strength > MIN_STRENGTH)
        for k, part in enumerate(parts):
            sel = valid & (best == k)
            if not sel.any():
                continue
            s = strength[sel]
            ref = np.percentile(s, 90)
            weight = np.zeros(h * w)
            weight[sel] = np.clip(s / max(ref, 1e-6), 0.0, 1.0)
            weight = _main_blobs(weight.reshape(h, w))
            area = float(weight.sum())
            out_area[part][i] = area
            if area >= min_area:
                out_present[part][i] = True
                out_x[part][i] = float((weight.sum(0) * xs_grid).sum() / area)
                out_y[part][i] = float((weight.sum(1) * ys_grid).sum() / area)
    return Tracks(out_present, out_x, out_y, out_area, brightness)
