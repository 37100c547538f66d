"""Frame-array utilities: uniform sampling, resizing, length matching, float conversion."""

from __future__ import annotations

import numpy as np


def sample_indices(num_frames: int, k: int) -> list[int]:
    """``k`` frame indices spread uniformly over ``num_frames``, first and last included, in order.

    With ``k >= num_frames`` every index is returned once (no repeats).
    """
    if num_frames <= 0:
        raise ValueError("num_frames must be positive")
    if k <= 0:
        raise ValueError("k must be positive")
    if k >= num_frames:
        return list(range(num_frames))
    if k == 1:
        return [0]
    return [round(i * (num_frames - 1) / (k - 1)) for i in range(k)]


def sample_frames(frames: np.ndarray, k: int) -> np.ndarray:
    """The frames at :func:`sample_indices` (a copy)."""
    return frames[sample_indices(len(frames), k)]


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize every frame to ``(height, width)``: area averaging when shrinking, bilinear when growing."""
    import cv2

    if frames.shape[1] == height and frames.shape[2] == width:
        return frames
    shrinking = height * width < frames.shape[1] * frames.shape[2]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=interp) for f in frames])


def match_length(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """Resample a clip in time to ``num_frames`` by nearest-frame indexing (uniform)."""
    if len(frames) == num_frames:
        return frames
    idx = np.round(np.linspace(0, len(frames) - 1, num_frames)).astype(int)
    return frames[idx]


def to_float(frames: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return frames.astype(np.float32) / 255.0


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 [0, 255], clipped and rounded."""
    return np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
