"""Frame-array utilities: uniform sampling, resizing, length matching, float conversion.

All take and return ``(T, H, W, C)`` arrays (``C`` is 3 for RGB); none of them reads a file.
"""

from __future__ import annotations

import numpy as np


def sample_indices(num_frames: int, k: int) -> list[int]:
    """``k`` frame indices spread uniformly over ``num_frames``, first and last included, in order.

    ``k == 1`` gives the first frame. With ``k >= num_frames`` every index is returned once (no
    repeats), so the result may be shorter than ``k``; use :func:`match_length` for an exact count.
    """
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if k >= num_frames:
        return list(range(num_frames))
    if k == 1:
        return [0]
    return [round(i * (num_frames - 1) / (k - 1)) for i in range(k)]


def sample_frames(frames: np.ndarray, k: int) -> np.ndarray:
    """The frames at :func:`sample_indices` (a copy)."""
    frames = np.asarray(frames)
    return frames[sample_indices(len(frames), k)]


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize every frame to ``(height, width)``: area averaging when shrinking, bilinear when growing.

    Takes ``(T, H, W, C)`` frames or ``(T, H, W)`` single-channel ones (masks, depth); keeps the dtype
    (uint8, uint16 or float). Returns ``frames`` itself (no copy) when it already has that size.
    """
    import cv2

    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(f"frames must be shaped (T, H, W, C) or (T, H, W), got {frames.shape}")
    if height <= 0 or width <= 0:
        raise ValueError(f"target size must be positive, got {height}x{width}")
    if frames.shape[1] == height and frames.shape[2] == width:
        return frames
    out = np.empty((len(frames), height, width, *frames.shape[3:]), frames.dtype)
    shrinking = height * width < frames.shape[1] * frames.shape[2]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(frame, (width, height), interpolation=interp).reshape(out.shape[1:])
    return out


def time_indices(num_frames: int, k: int) -> np.ndarray:
    """The frames :func:`match_length` keeps to give ``k`` frames from a clip of ``num_frames`` (nearest)."""
    if num_frames == k:
        return np.arange(k)
    return np.round(np.linspace(0, num_frames - 1, k)).astype(int)


def match_length(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """Resample a clip in time to exactly ``num_frames`` by nearest-frame indexing (uniform).

    Shorter clips repeat frames, longer ones drop frames; first and last frames are kept. Returns
    ``frames`` itself when the length already matches.
    """
    frames = np.asarray(frames)
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if len(frames) == 0:
        raise ValueError("cannot match the length of a clip with zero frames")
    if len(frames) == num_frames:
        return frames
    idx = np.round(np.linspace(0, len(frames) - 1, num_frames)).astype(int)
    return frames[idx]


def to_float(frames: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]. Float input is refused, so nothing is scaled twice."""
    frames = np.asarray(frames)
    if not np.issubdtype(frames.dtype, np.integer):
        raise ValueError(f"to_float expects uint8 frames, got {frames.dtype}")
    return frames.astype(np.float32) / np.float32(255.0)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 [0, 255], clipped and rounded (NaN becomes 0)."""
    scaled = np.asarray(frames, dtype=np.float32) * np.float32(255.0)
    return np.clip(np.nan_to_num(np.rint(scaled), nan=0.0), 0, 255).astype(np.uint8)
