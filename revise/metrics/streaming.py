"""Every classical metric of one edit in a single pass over its frames, chunk by chunk, in bounded memory.

:func:`clip_metrics` computes what the ``metrics`` judge reports (PSNR and SSIM against the target,
preservation PSNR and SSIM against the source inside a must-not-change mask, frame-to-frame SSIM and the
flow warp error) while reading the edit, the source and the target once, a chunk of frames at a time
(``chunks(size)`` of :class:`~revise.video.Video` or :class:`~revise.video.VideoFile`): memory is a few
chunks, whatever the clip's length, and no full-clip float array is ever made.

**Working resolution.** PSNR is computed at full resolution. SSIM, frame-to-frame SSIM and the warp error
first shrink frames by the integer factor ``f = max(1, round(min(H, W) / 256))`` (area averaging of
``f x f`` blocks), the automatic downsampling of Wang et al.'s reference SSIM code (``ssim.m``, 2004): SSIM's
11-pixel window is meant for images viewed at about 256 pixels, and at 720p (``f = 3``) it costs a ninth.
Frames up to 383 pixels on their short side (RVE-Sim's 128) keep ``f = 1``, so there every value is the one
of :func:`~revise.metrics.ssim`, :func:`~revise.metrics.temporal_ssim` and :func:`~revise.metrics.warp_error`
on the whole clip (to float rounding: the sums are pooled chunk by chunk). A masked SSIM shrinks the mask
too (a block counts when all of its pixels do).

Alignment is the judge's: when the edit's length differs from the reference's, it is resampled to the
reference's (nearest frame), and resized to its size.
"""

from __future__ import annotations

import math

import numpy as np

from ..video import resize_frames
from .fidelity import _psnr_from_sse, check_ssim_size, ssim_map_statistics, ssim_maps
from .temporal import temporal_ssim_statistics, warp_error_statistics

SSIM_VIEW = 256  # Wang et al.: shrink so that the short side is about this many pixels
CHUNK_BYTES = 24 << 20


def working_factor(height: int, width: int) -> int:
    """The integer shrink factor for SSIM and flow (module docstring)."""
    return max(1, int(round(min(height, width) / SSIM_VIEW)))


def shrink(frames: np.ndarray, factor: int) -> np.ndarray:
    """Area-average ``factor x factor`` blocks (the last rows/columns that do not fill a block are dropped)."""
    if factor == 1:
        return frames
    import cv2

    h, w = frames.shape[1] // factor, frames.shape[2] // factor
    return np.stack([cv2.resize(f[:h * factor, :w * factor], (w, h), interpolation=cv2.INTER_AREA) for f in frames])


def shrink_mask(mask: np.ndarray, factor: int) -> np.ndarray:
    """A block is kept when every pixel in it is (``(k, H, W)`` bool -> ``(k, H/f, W/f)``)."""
    if factor == 1:
        return mask
    k, height, width = mask.shape
    h, w = height // factor, width // factor
    blocks = mask[:, :h * factor, :w * factor].reshape(k, h, factor, w, factor)
    return blocks.all(axis=(2, 4))


def _sse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> tuple[float, float]:
    """Sum of squared uint8 differences over the 3 channels (exact: integers) and the number of values."""
    import cv2

    total, count = 0.0, 0.0
    for i in range(len(a)):
        if mask is None:
            total += cv2.norm(a[i], b[i], cv2.NORM_L2SQR)
            count += a[i].size
        else:
            m = mask[i].astype(np.uint8)
            n = int(np.count_nonzero(m))
            if n:
                total += cv2.norm(a[i], b[i], cv2.NORM_L2SQR, mask=m)
                count += 3 * n
    return total / 255.0**2, count


class _Pooled:
    """A running ``(total, count)``."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0.0

    def add(self, stats: tuple[float, float]) -> None:
        self.total += float(stats[0])
        self.count += float(stats[1])

    def mean(self) -> float:
        return self.total / self.count if self.count > 0 else math.nan


def _aligned_chunks(video, num_frames: int, height: int, width: int, chunk: int):
    """``video``'s frames resampled to ``num_frames`` (nearest) and ``(height, width)``, chunk by chunk."""
    if video.num_frames == num_frames:
        for start, frames in video.chunks(chunk):
            yield start, resize_frames(frames, height, width)
        return
    # another length: the nearest frame of every output time, read in one pass (the times only increase)
    index = np.round(np.linspace(0, video.num_frames - 1, num_frames)).astype(int)
    out, start, produced = [], 0, 0
    for first, frames in video.chunks(chunk):
        while produced < num_frames and index[produced] < first + len(frames):
            out.append(frames[index[produced] - first])
            produced += 1
            if len(out) == chunk:
                yield start, resize_frames(np.stack(out), height, width)
                start, out = produced, []
    if out:
        yield start, resize_frames(np.stack(out), height, width)


def clip_metrics(edited, *, target=None, source=None, mask_chunk=None, temporal: bool = True,
                 flow: bool = True) -> dict[str, float]:
    """The ``metrics`` judge's values of one edit (keys as in :mod:`revise.judges.metrics_judge`).

    ``edited`` / ``target`` / ``source``: videos with ``num_frames``, ``height``, ``width`` and ``chunks(size)``
    (uint8). ``mask_chunk(start, source_frames, target_frames)``: the must-not-change mask of the source's
    frames from ``start`` on (``(k, H, W)`` bool at the source's size; ``target_frames`` are the target's at
    the same times and size, or None without a target), or None when there is none; the preservation keys
    are left out without a source, a mask or any masked pixel.

    When the three videos have one length (the usual case) every value comes from a single pass that reads
    each video once; otherwise each comparison makes its own pass with the edit resampled in time.
    """
    for video in (target, source, edited):
        if video is not None:
            check_ssim_size(video.height, video.width)
    size = max(edited.height * edited.width, *(v.height * v.width for v in (target, source) if v is not None))
    chunk = max(2, min(64, CHUNK_BYTES // (size * 3)))
    preserve = source is not None and mask_chunk is not None
    lengths = {v.num_frames for v in (edited, target, source) if v is not None}
    sums = {key: _Pooled() for key in ("psnr_target", "ssim_target", "preservation_psnr", "preservation_ssim",
                                       "temporal_ssim", "warp_error")}
    state = {"previous": None, "masked": preserve}

    def compare_target(e, t):
        factor = working_factor(t.shape[1], t.shape[2])
        e = resize_frames(e, t.shape[1], t.shape[2])
        sums["psnr_target"].add(_sse(e, t, None))
        sums["ssim_target"].add(ssim_map_statistics(ssim_maps(shrink(e, factor), shrink(t, factor))))

    def compare_source(start, e, s, t):
        if not state["masked"]:
            return
        factor = working_factor(s.shape[1], s.shape[2])
        e = resize_frames(e, s.shape[1], s.shape[2])
        t = None if t is None else resize_frames(t, s.shape[1], s.shape[2])
        mask = mask_chunk(start, s, t)
        if mask is None:
            state["masked"] = False
            return
        sums["preservation_psnr"].add(_sse(e, s, mask))
        small = shrink_mask(mask, factor)
        if small.any():
            sums["preservation_ssim"].add(ssim_map_statistics(ssim_maps(shrink(e, factor), shrink(s, factor)), small))

    def over_time(e):
        small = shrink(e, working_factor(e.shape[1], e.shape[2]))
        run = small if state["previous"] is None else np.concatenate([state["previous"], small])
        if temporal:
            sums["temporal_ssim"].add(temporal_ssim_statistics(run))
        if flow:
            sums["warp_error"].add(warp_error_statistics(run))
        state["previous"] = run[-1:]

    if len(lengths) == 1:  # one pass over the three videos
        streams = [edited.chunks(chunk)] + [v.chunks(chunk) for v in (target, source) if v is not None]
        for parts in zip(*streams):
            start, e = parts[0]
            t = parts[1][1] if target is not None else None
            s = parts[-1][1] if source is not None else None
            if t is not None:
                compare_target(e, t)
            if s is not None and preserve:
                compare_source(start, e, s, t)
            if temporal or flow:
                over_time(e)
    else:
        if target is not None:
            for (_, e), (_, t) in zip(_aligned_chunks(edited, target.num_frames, target.height, target.width, chunk),
                                      target.chunks(chunk)):
                compare_target(e, t)
        if preserve:
            streams = [_aligned_chunks(edited, source.num_frames, source.height, source.width, chunk),
                       source.chunks(chunk)]
            if target is not None:
                streams.append(_aligned_chunks(target, source.num_frames, source.height, source.width, chunk))
            for (start, e), (_, s), *rest in zip(*streams):
                compare_source(start, e, s, rest[0][1] if rest else None)
        if temporal or flow:
            for _, e in edited.chunks(chunk):
                over_time(e)
    values: dict[str, float] = {}
    if target is not None:
        values["psnr_target"] = _psnr_from_sse(sums["psnr_target"].total, sums["psnr_target"].count)
        values["ssim_target"] = sums["ssim_target"].mean()
    if state["masked"] and sums["preservation_psnr"].count > 0:
        values["preservation_psnr"] = _psnr_from_sse(sums["preservation_psnr"].total, sums["preservation_psnr"].count)
        values["preservation_ssim"] = sums["preservation_ssim"].mean()
    if temporal:
        values["temporal_ssim"] = sums["temporal_ssim"].mean()
    if flow:
        values["warp_error"] = sums["warp_error"].mean()
    return values


__all__ = ["clip_metrics", "shrink", "shrink_mask", "working_factor"]
