"""VMAF of a video against a reference, through the ffmpeg bundled with imageio-ffmpeg (libvmaf).

Slow next to the other metrics (an ffmpeg process per sample), so it is computed on request only.
Both clips go to ffmpeg losslessly as raw RGB (no re-encoding), the prediction aligned to the
reference's length and size first (:func:`~revise.metrics.base.align_to`); ffmpeg converts them to
YUV for libvmaf's default model (``vmaf_v0.6.1``).
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .base import Metric, MetricError, align_to, check_frames

DEFAULT_TIMEOUT = 120.0


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def vmaf_available() -> bool:
    """Whether the bundled ffmpeg lists the ``libvmaf`` filter."""
    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-filters"], capture_output=True, text=True, timeout=30)
    except (OSError, RuntimeError, subprocess.TimeoutExpired):
        return False
    return any(line.split()[1:2] == ["libvmaf"] for line in out.stdout.splitlines())


def _as_uint8(frames: np.ndarray) -> np.ndarray:
    if frames.dtype == np.uint8:
        return np.ascontiguousarray(frames)
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)


def _raw_input(path: str, frames: np.ndarray, fps: float) -> list[str]:
    _, h, w, _ = frames.shape
    return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", path]


def vmaf_frames(preds, target, *, fps: float = 8.0, timeout: float = DEFAULT_TIMEOUT, threads: int = 1) -> np.ndarray:
    """Per-frame VMAF scores (one per reference frame) of ``preds`` against ``target``.

    Raises :class:`~revise.metrics.base.MetricError` if ffmpeg has no libvmaf, fails, or runs past
    ``timeout`` seconds (it is killed).
    """
    if not vmaf_available():
        raise MetricError(f"VMAF needs ffmpeg with libvmaf; {ffmpeg_exe()} does not list the libvmaf filter")
    target = _as_uint8(check_frames(target, "target"))
    preds = _as_uint8(align_to(check_frames(preds, "preds"), target))
    with tempfile.TemporaryDirectory(prefix="revise-vmaf-") as tmp:
        for name, frames in (("dist.rgb", preds), ("ref.rgb", target)):
            Path(tmp, name).write_bytes(frames.tobytes())
        cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error",
               *_raw_input("dist.rgb", preds, fps), *_raw_input("ref.rgb", target, fps),
               "-lavfi", f"[0:v][1:v]libvmaf=log_fmt=json:log_path=vmaf.json:n_threads={int(threads)}",
               "-f", "null", "-"]
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "AV_LOG_FORCE_NOCOLOR": "1"})
        except subprocess.TimeoutExpired:
            raise MetricError(f"VMAF: ffmpeg ran past the {timeout:g} s timeout and was stopped") from None
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no message"]
            raise MetricError(f"VMAF: ffmpeg exited with code {proc.returncode}: {tail[0]}")
        try:
            log = json.loads(Path(tmp, "vmaf.json").read_text(encoding="utf-8"))
            scores = np.array([float(f["metrics"]["vmaf"]) for f in log["frames"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MetricError(f"VMAF: could not read the libvmaf log ({exc!r})") from None
    if len(scores) != len(target):
        raise MetricError(f"VMAF: libvmaf scored {len(scores)} frames, expected {len(target)}")
    return scores


def vmaf_statistics(preds, target, **kwargs) -> tuple[float, float]:
    """``(sum of per-frame VMAF, number of frames)``."""
    scores = vmaf_frames(preds, target, **kwargs)
    return float(scores.sum()), float(len(scores))


def vmaf(preds, target, *, fps: float = 8.0, timeout: float = DEFAULT_TIMEOUT, threads: int = 1) -> float:
    """VMAF (Netflix, model ``vmaf_v0.6.1``) of ``preds`` against ``target``: the mean of per-frame scores.

    The per-frame score is libvmaf's SVM fusion of VIF, DLM (detail loss) and motion features; the mean
    is libvmaf's pooled ``mean``. Range [0, 100] (about 100 for identical clips); higher is better.
    Needs at least one frame; raises :class:`MetricError` on any ffmpeg failure or timeout.
    """
    total, count = vmaf_statistics(preds, target, fps=fps, timeout=timeout, threads=threads)
    return total / count if count > 0 else math.nan


class VMAF(Metric):
    """Mean per-frame VMAF over every frame of every sample updated: ``update(preds, target, fps=...)``."""

    name = "vmaf"
    higher_is_better = True
    statistics = staticmethod(vmaf_statistics)
