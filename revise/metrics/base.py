"""What every metric shares: frame checks, alignment to a reference, and the accumulating :class:`Metric`.

Each metric is defined once as a *statistics* function that maps one sample to ``(total, count)``
(a sum and the number of things summed: pixels, frames, frame pairs). The pure function reduces
one sample's statistics; the stateful class adds statistics over many samples and reduces the sums.
So ``Metric.compute()`` after ``update(a); update(b)`` equals the pure function over the
concatenation of ``a`` and ``b`` (torchmetrics' convention: pooled over every pixel/frame, not a
mean of per-sample values), and two shards combine exactly with :meth:`Metric.merge`.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ReviseError
from ..video import match_length, resize_frames, to_float


class MetricError(ReviseError):
    """A metric could not be computed (external tool missing, failed or timed out)."""


def check_frames(frames, name: str = "frames") -> np.ndarray:
    """``frames`` as an array shaped ``(T, H, W, 3)``, uint8 or float in [0, 1]; ValueError otherwise."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or 0 in arr.shape:
        raise ValueError(f"{name} must be shaped (T, H, W, 3) with T, H, W > 0, got {arr.shape}")
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 or float in [0, 1], got dtype {arr.dtype}")
    return arr


def as_float(frames) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]; float input is taken as already in [0, 1] (cast to float32)."""
    arr = np.asarray(frames)
    return to_float(arr) if arr.dtype == np.uint8 else arr.astype(np.float32, copy=False)


def align_to(frames, reference) -> np.ndarray:
    """Resample ``frames`` to the reference's length (nearest frame, uniform) and size (area/bilinear).

    The reference is never changed: metrics against a target or source are computed at the
    reference's resolution and frame count (``revise.video.match_length`` then ``resize_frames``).
    """
    frames = check_frames(frames, "frames")
    t, h, w, _ = check_frames(reference, "reference").shape
    return resize_frames(match_length(frames, t), h, w)


def check_mask(mask, shape: tuple[int, int, int]) -> np.ndarray:
    """A boolean mask broadcast to ``(T, H, W)``; accepts ``(H, W)`` (every frame) or ``(T, H, W)``."""
    arr = np.asarray(mask, dtype=bool)
    if arr.shape not in (shape, shape[1:]):
        raise ValueError(f"mask must be shaped {shape} or {shape[1:]} like the reference, got {arr.shape}")
    return np.broadcast_to(arr, shape)


class Metric:
    """Accumulates ``(total, count)`` statistics over samples; ``compute()`` reduces the sums.

    Subclasses set ``name``, ``higher_is_better`` and ``statistics`` (a function of one sample
    returning ``(total, count)``), and override :meth:`reduce` when the value is not ``total / count``.
    ``compute()`` is ``nan`` before any counted update (e.g. every mask was empty).
    """

    name: str = "metric"
    higher_is_better: bool = True

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        self.total = 0.0
        self.count = 0.0

    def statistics(self, *args, **kwargs) -> tuple[float, float]:  # pragma: no cover - interface
        raise NotImplementedError

    def update(self, *args, **kwargs) -> None:
        """Add one sample (same arguments as the pure function)."""
        total, count = self.statistics(*args, **kwargs)
        self.total += float(total)
        self.count += float(count)

    @staticmethod
    def reduce(total: float, count: float) -> float:
        """The metric value of pooled statistics (``nan`` when nothing was counted)."""
        return total / count if count > 0 else math.nan

    def compute(self) -> float:
        """The metric over everything updated (or merged) so far."""
        return float(self.reduce(self.total, self.count))

    def merge(self, other: "Metric") -> "Metric":
        """Add another accumulator's statistics (a shard of the same metric); returns ``self``."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        self.total += other.total
        self.count += other.count
        return self

    def state_dict(self) -> dict:
        """JSON-ready statistics, so shards from other processes can be merged."""
        return {"metric": self.name, "total": self.total, "count": self.count}

    def load_state_dict(self, state: dict) -> "Metric":
        """Replace the statistics with those of :meth:`state_dict` (same metric); returns ``self``."""
        if state.get("metric") != self.name:
            raise ValueError(f"state is for metric {state.get('metric')!r}, not {self.name!r}")
        self.total, self.count = float(state["total"]), float(state["count"])
        return self
