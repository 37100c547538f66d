"""Temporal consistency of one video: frame-to-frame SSIM and optical-flow warp error.

Both look at consecutive pairs ``(t, t + 1)`` of a single clip (no reference), so they measure flicker
and incoherent motion, not correctness. A clip with fewer than two frames has no pair: ``nan``.
"""

from __future__ import annotations

import math

import numpy as np

from ..video import to_uint8
from .base import Metric, as_float, check_frames
from .fidelity import (
    add_per_channel, blur_into, channel_mean, check_ssim_size, chunk_frames, float_into, ssim_from_moments,
    ssim_map_statistics,
)

FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 2, "poly_n": 5, "poly_sigma": 1.2, "flags": 0}
"""OpenCV Farneback parameters: those of OpenCV's optical-flow tutorial but 2 iterations, not 3 (a quarter
faster; warp errors agree to 1e-4 on translating textures and moving shapes)."""


def temporal_ssim_statistics(frames) -> tuple[float, float]:
    """``(sum of SSIM-map values, number of map pixels)`` over consecutive frame pairs."""
    frames = check_frames(frames)
    check_ssim_size(*frames.shape[1:3])
    pairs = len(frames) - 1
    if pairs < 1:
        return 0.0, 0.0
    maps = np.empty((pairs, *frames.shape[1:3]), dtype=np.float32)
    step = chunk_frames(frames.shape, pairs)
    per_frame = np.empty((4, step + 1, *frames.shape[1:]), dtype=np.float32)
    per_pair = np.empty((5, step, *frames.shape[1:]), dtype=np.float32)
    for i in range(0, pairs, step):
        k = min(step, pairs - i)  # pairs (i, i+1) .. (i+k-1, i+k) share the moments of frames i .. i+k
        f, mean, square, product = per_frame[:, :k + 1]
        cross, *scratch = per_pair[:, :k]
        float_into(frames[i:i + k + 1], f)
        shift = channel_mean(f)
        add_per_channel(f, -shift, f)
        blur_into(f, mean)
        blur_into(np.multiply(f, f, out=product), square)
        blur_into(np.multiply(f[:-1], f[1:], out=product[:k]), cross)
        ssim_from_moments(mean[:-1], mean[1:], square[:-1], square[1:], cross, shift, scratch, maps[i:i + k])
    return ssim_map_statistics(maps)


def temporal_ssim(frames) -> float:
    """Mean SSIM between consecutive frames: ``mean_t SSIM(f_t, f_{t+1})`` (SSIM as in :func:`~revise.metrics.ssim`).

    Range [-1, 1]; 1 for a static clip. Higher is smoother, but a frozen clip also scores 1, so read it
    next to the edit's fidelity. ``nan`` for a single frame.
    """
    total, count = temporal_ssim_statistics(frames)
    return total / count if count > 0 else math.nan


def warp_error_statistics(frames) -> tuple[float, float]:
    """``(sum of per-pixel absolute errors, number of valid pixels)`` over consecutive pairs (see :func:`warp_error`)."""
    import cv2

    frames = check_frames(frames)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (frames if frames.dtype == np.uint8 else to_uint8(frames))]
    h, w = gray[0].shape
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), axis=-1)
    total, count = 0.0, 0
    current = as_float(frames[0])
    for t in range(len(frames) - 1):
        following = as_float(frames[t + 1])
        where = cv2.calcOpticalFlowFarneback(gray[t], gray[t + 1], None, **FARNEBACK)
        where += grid  # x + F(x), the sampling position in frame t + 1
        warped = cv2.remap(following, where, None, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        valid = cv2.inRange(where, (0.0, 0.0), (w - 1.0, h - 1.0))
        n = cv2.countNonZero(valid)
        if n:
            total += sum(cv2.mean(cv2.absdiff(warped, current), mask=valid)[:3]) / 3.0 * n
            count += n
        current = following
    return total, float(count)


def warp_error(frames) -> float:
    """Optical-flow warp error: how well frame ``t + 1``, warped back along the flow, predicts frame ``t``.

    For each pair, Farneback flow ``F`` from grey frame ``t`` to ``t + 1`` (:data:`FARNEBACK`);
    ``W(x) = f_{t+1}(x + F(x))`` by bilinear ``cv2.remap``; error ``|W(x) - f_t(x)|`` averaged over RGB,
    then over every valid pixel of every pair (valid: ``x + F(x)`` lands inside the frame; occlusions
    are not removed). Values in [0, 1] units, range [0, 1]; 0 for a static clip. Lower is better.
    ``nan`` for a single frame.
    """
    total, count = warp_error_statistics(frames)
    return total / count if count > 0 else math.nan


class TemporalSSIM(Metric):
    """Mean consecutive-frame SSIM over every pair of every clip updated: ``update(frames)``."""

    name = "temporal_ssim"
    higher_is_better = True
    statistics = staticmethod(temporal_ssim_statistics)


class WarpError(Metric):
    """Mean flow warp error over every valid pixel of every pair of every clip updated: ``update(frames)``."""

    name = "warp_error"
    higher_is_better = False
    statistics = staticmethod(warp_error_statistics)
