"""Full-resolution detail transfer for a generator that works below the source's resolution.

The tiny generator edits at its model resolution (64x64 for ``revise-tiny``); bilinear upsampling back to
the source's size (128x128 for RVE-Sim) blurs every edge, including those of everything the edit left
alone. :func:`transfer_detail` puts the source's own fine detail back where the edit agrees with it.

For every output pixel it compares the edit, at model resolution, with three *candidates* shrunk the same
way: the source at that time, the source's first frame and its last frame (continuations hold the last
frame's scene, "what came before" edits the first's). Where the closest candidate differs from the edit by
``err`` (the largest channel difference, on [0, 1]), that candidate's high frequencies (the candidate at
full size minus the candidate shrunk and grown back) are added with the weight
``max(0, 1 - err / threshold)``, eroded to the smallest weight in each 3x3 neighbourhood (at model
resolution) so that restored edges never bleed into a changed region. Where the edit is the source, the
result is the source at full resolution; where the edit changed the picture (a moved ball, a darkened room
beyond ``threshold``) it is the plain upsampled edit; in between the detail fades out. ``threshold <= 0``
turns it off.
"""

from __future__ import annotations

import numpy as np

from ..video import resize_frames, to_float, to_uint8


def _erode(weights: np.ndarray) -> np.ndarray:
    """Each pixel's weight becomes the smallest in its 3x3 neighbourhood (frame by frame): detail comes back
    only where the whole neighbourhood agrees, so the bilinear upsampling of the weights cannot bleed the
    source's sharp edges into a region the edit changed (a removed ball would reappear as a crisp rim)."""
    import cv2

    kernel = np.ones((3, 3), np.uint8)
    return np.stack([cv2.erode(w, kernel, borderType=cv2.BORDER_REPLICATE) for w in weights])


def transfer_detail(edit: np.ndarray, source: np.ndarray, threshold: float) -> np.ndarray:
    """``edit``: float ``(T, h, w, 3)`` in [0, 1] at the model's resolution and the source's length;
    ``source``: uint8 ``(T, H, W, 3)``. Returns uint8 ``(T, H, W, 3)``: the edit upsampled (bilinear) plus
    the closest candidate's detail where the edit agrees with it (module docstring)."""
    edit = np.asarray(edit, dtype=np.float32)
    if edit.ndim != 4 or source.ndim != 4 or edit.shape[0] != source.shape[0] or edit.shape[3] != source.shape[3]:
        raise ValueError(f"edit {edit.shape} and source {source.shape} must be (T, h, w, 3) and (T, H, W, 3) "
                         "with the same T")
    height, width = source.shape[1:3]
    h, w = edit.shape[1:3]
    out = resize_frames(edit, height, width)
    if threshold <= 0 or (h, w) == (height, width):
        return to_uint8(out)
    full = to_float(source)
    weights, details = [], []
    for frames in (full, full[:1], full[-1:]):  # the source, its first and its last frame (broadcast over time)
        small = resize_frames(frames, h, w)
        details.append(frames - resize_frames(small, height, width))
        agree = np.clip(1.0 - np.abs(edit - small).max(axis=-1) / threshold, 0.0, 1.0).astype(np.float32)
        weights.append(_erode(agree))
    weights = np.stack(np.broadcast_arrays(*weights))  # (3, T, h, w)
    best = weights.argmax(axis=0)
    for k, detail in enumerate(details):
        w_k = np.where(best == k, weights[k], 0.0).astype(np.float32)
        if w_k.any():
            out += resize_frames(w_k, height, width)[..., None] * detail
    return to_uint8(out)
