"""Pixel fidelity: PSNR and SSIM of a video against a reference, optionally over a mask.

The prediction is aligned to the reference first (:func:`~revise.metrics.base.align_to`: the
reference's frame count by nearest-frame resampling, its size by area/bilinear resizing); the
reference is never resampled. Frames are uint8 ``(T, H, W, 3)`` RGB (or float in [0, 1]); every
number is computed on [0, 1] values (data range 1) over the three RGB channels.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Metric, align_to, as_float, check_frames, check_mask

PSNR_CAP = 100.0
"""PSNR ceiling in dB: identical videos (MSE 0) score this instead of inf, so results stay valid JSON."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_RADIUS = SSIM_WINDOW // 2


def _prepare(preds, target, mask):
    target = check_frames(target, "target")
    preds = align_to(check_frames(preds, "preds"), target)
    mask = None if mask is None else check_mask(mask, target.shape[:3])
    return preds, target, mask


def psnr_statistics(preds, target, mask=None) -> tuple[float, float]:
    """``(sum of squared errors, number of values)`` over the masked pixels and the 3 channels, in [0, 1] units."""
    preds, target, mask = _prepare(preds, target, mask)
    if preds.dtype == np.uint8 and target.dtype == np.uint8:
        diff, scale = preds.astype(np.int32) - target, 255.0**2  # exact integer arithmetic
    else:
        diff, scale = as_float(preds).astype(np.float64) - as_float(target), 1.0
    diff *= diff
    squared = diff[..., 0] + diff[..., 1] + diff[..., 2]  # per pixel; faster than sum(axis=-1)
    if mask is not None:
        squared = squared[mask]
    return float(squared.sum()) / scale, float(squared.size * 3)


def _psnr_from_sse(sse: float, count: float) -> float:
    if count <= 0:
        return math.nan
    mse = sse / count
    return PSNR_CAP if mse <= 0 else min(PSNR_CAP, -10.0 * math.log10(mse))


def psnr(preds, target, mask=None) -> float:
    """Peak signal-to-noise ratio in dB: ``10 * log10(1 / MSE)`` with values in [0, 1].

    MSE is pooled over every frame, pixel (inside ``mask`` if given: ``(H, W)`` or ``(T, H, W)``
    booleans, True = counted) and RGB channel. Range [0, ``PSNR_CAP`` = 100]; identical inputs give
    the cap, not inf. Higher is better. ``nan`` if the mask is empty.
    """
    return _psnr_from_sse(*psnr_statistics(preds, target, mask))


def blur_into(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
    """SSIM's Gaussian window (11 taps, sigma 1.5, reflected border) on each float32 frame, into ``out``."""
    import cv2

    for t in range(len(frames)):
        cv2.GaussianBlur(frames[t], (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, dst=out[t], borderType=cv2.BORDER_REFLECT)
    return out


def float_into(frames: np.ndarray, out: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] (or float [0, 1]) frames as float32 [0, 1], into ``out``."""
    if frames.dtype == np.uint8:
        np.multiply(frames, np.float32(1.0 / 255.0), out=out)
    else:
        out[...] = frames
    return out


def add_per_channel(frames: np.ndarray, values, out: np.ndarray) -> np.ndarray:
    """``frames + values`` (one value per channel) into ``out``, which may be ``frames``. Adding along
    rows of ``W * 3`` is about 15x faster than numpy broadcasting over a last axis of 3."""
    n, h, w, c = frames.shape
    np.add(frames.reshape(n, h, w * c), np.tile(np.asarray(values, dtype=np.float32), w), out=out.reshape(n, h, w * c))
    return out


def channel_mean(*stacks: np.ndarray) -> np.ndarray:
    """The per-channel mean of float32 ``(N, H, W, 3)`` stacks: the centring ``shift`` of :func:`ssim_from_moments`."""
    import cv2

    return np.mean([cv2.mean(frame)[:3] for stack in stacks for frame in stack], axis=0).astype(np.float32)


def ssim_from_moments(mx, my, bxx, byy, bxy, shift, scratch, out) -> np.ndarray:
    """SSIM maps from Gaussian-weighted moments ``E[x], E[y], E[x^2], E[y^2], E[xy]`` of ``(N, H, W, 3)``
    stacks, averaged over channels into ``out`` ``(N, H, W)``.

    The moments are of ``x - shift`` and ``y - shift`` (one value per channel): variances do not change,
    and centring keeps float32's cancellation in ``E[x^2] - E[x]^2`` near 1e-6 instead of up to 3e-4 on
    bright flat regions. ``scratch`` is four arrays shaped like ``mx``; they and ``bxy`` are overwritten.
    """
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    spread, ux, uy, ratio = scratch
    np.add(bxx, byy, out=spread)
    spread -= np.multiply(mx, mx, out=ux)
    spread -= np.multiply(my, my, out=ux)
    spread += c2  # s_x^2 + s_y^2 + C2
    bxy -= np.multiply(mx, my, out=ux)
    bxy *= 2.0
    bxy += c2  # 2 s_xy + C2
    add_per_channel(mx, shift, ux)  # the actual local means
    add_per_channel(my, shift, uy)
    np.multiply(ux, uy, out=ratio)
    ratio *= 2.0
    ratio += c1
    ratio *= bxy  # (2 mu_x mu_y + C1)(2 s_xy + C2)
    ux *= ux
    uy *= uy
    ux += uy
    ux += c1
    ux *= spread  # (mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)
    ratio /= ux
    np.add(ratio[..., 0], ratio[..., 1], out=out)
    out += ratio[..., 2]
    out /= 3.0
    return out


def chunk_frames(shape: tuple[int, ...], limit: int) -> int:
    """Frames per chunk so each float32 work buffer stays near 1 MiB (at most ``limit``).

    SSIM works chunk by chunk in buffers allocated once per call: whole-video temporaries, or fresh
    ones per chunk, were several times slower (a page fault per 4 KiB of each new allocation).
    """
    return max(1, min(limit, (1 << 20) // (int(np.prod(shape[1:])) * 4)))


def ssim_maps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM maps of two ``(N, H, W, 3)`` stacks (uint8, or float in [0, 1]), averaged over channels -> ``(N, H, W)``.

    Gaussian window (11 taps, sigma 1.5), ``C1 = (0.01)^2``, ``C2 = (0.03)^2``, population
    (co)variances: the reference SSIM of Wang et al. 2004, as in scikit-image (``gaussian_weights=True,
    use_sample_covariance=False``). Only the interior ``[5:-5, 5:-5]`` is free of border padding;
    callers average that part (:func:`ssim_map_statistics`).
    """
    n = len(x)
    maps = np.empty(x.shape[:3], dtype=np.float32)
    step = chunk_frames(x.shape, n)
    work = np.empty((12, step, *x.shape[1:]), dtype=np.float32)
    for i in range(0, n, step):
        k = min(step, n - i)
        xs, ys, product, mx, my, bxx, byy, bxy, *scratch = work[:, :k]
        float_into(x[i:i + k], xs)
        float_into(y[i:i + k], ys)
        shift = channel_mean(xs, ys)
        add_per_channel(xs, -shift, xs)
        add_per_channel(ys, -shift, ys)
        blur_into(xs, mx)
        blur_into(ys, my)
        blur_into(np.multiply(xs, xs, out=product), bxx)
        blur_into(np.multiply(ys, ys, out=product), byy)
        blur_into(np.multiply(xs, ys, out=product), bxy)
        ssim_from_moments(mx, my, bxx, byy, bxy, shift, scratch, maps[i:i + k])
    return maps


def check_ssim_size(height: int, width: int) -> None:
    """SSIM needs frames larger than its 11x11 window."""
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {width}x{height}")


def window_mask(mask: np.ndarray) -> np.ndarray:
    """Pixels whose whole SSIM window lies inside ``mask`` and inside the frame (``(T, H, W)`` bool)."""
    import cv2

    kernel = np.ones((SSIM_WINDOW, SSIM_WINDOW), dtype=np.uint8)
    valid = np.zeros(mask.shape, dtype=bool)
    r = SSIM_RADIUS
    for t in range(len(mask)):
        valid[t, r:-r, r:-r] = cv2.erode(mask[t].astype(np.uint8), kernel)[r:-r, r:-r]  # interior windows stay in frame
    return valid


def ssim_map_statistics(maps: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """``(sum, count)`` of ``(N, H, W)`` SSIM maps over the interior, or over :func:`window_mask` of ``mask``."""
    if mask is None:
        r = SSIM_RADIUS
        interior = maps[:, r:-r, r:-r]
        return float(interior.sum(dtype=np.float64)), float(interior.size)
    valid = window_mask(mask)
    return float(maps[valid].sum(dtype=np.float64)), float(np.count_nonzero(valid))


def ssim_statistics(preds, target, mask=None) -> tuple[float, float]:
    """``(sum of SSIM-map values, number of map pixels)`` over the frames (see :func:`ssim`)."""
    preds, target, mask = _prepare(preds, target, mask)
    check_ssim_size(*target.shape[1:3])
    return ssim_map_statistics(ssim_maps(preds, target), mask)


def ssim(preds, target, mask=None) -> float:
    """Structural similarity, mean over frames of the mean SSIM map (RGB channels averaged).

    ``SSIM(x, y) = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))``
    with Gaussian local statistics (see :func:`ssim_maps`); the 5-pixel frame border is left out, as
    scikit-image does (torchmetrics' SSIM map agrees there; its reduction covers a slightly different
    region). Computed in float32: within about 1e-5 of scikit-image's float64 value. With ``mask`` (True = counted), only pixels whose whole 11x11
    window lies inside the mask count, so changes outside the mask never leak in. Range [-1, 1],
    1 for identical inputs; higher is better. ``nan`` if no pixel is counted.
    """
    total, count = ssim_statistics(preds, target, mask)
    return total / count if count > 0 else math.nan


class PSNR(Metric):
    """Pooled PSNR over every sample updated: ``update(preds, target, mask=None)``; see :func:`psnr`."""

    name = "psnr"
    higher_is_better = True
    statistics = staticmethod(psnr_statistics)
    reduce = staticmethod(_psnr_from_sse)


class SSIM(Metric):
    """Mean SSIM over every frame of every sample updated: ``update(preds, target, mask=None)``; see :func:`ssim`."""

    name = "ssim"
    higher_is_better = True
    statistics = staticmethod(ssim_statistics)
