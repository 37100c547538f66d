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

**Low-frequency restore** (``restore`` > 0; off in the shipped revise-tiny: its measured trade-off is in
docs/seams.md).
Detail transfer keeps the edit's own low frequencies, and the generator's are not clean: its output layer
maps each token to a 2x8x8 patch, so even where the edit leaves the picture alone every patch carries a
faint fixed pattern (about 1 grey level on RVE-Sim, 9 on real footage: horizontal bands at the patch
rows). With ``restore`` the candidate's own low frequencies replace the edit's too, with the weight
``clip((restore_to - err) / (restore_to - restore), 0, 1)`` (1 up to ``restore``, 0 from ``restore_to`` =
2 x ``restore``; eroded 3x3 like the detail weight), and the detail weight becomes at least that much. Where
the edit is within ``restore`` of a candidate the output is that candidate itself, seams gone; where it
changed the picture, nothing changes. ``restore = 0`` gives the bytes of detail transfer alone.

Every step works on one output frame at a time (with the first and last frames' parts computed once), so
:class:`DetailTransfer` renders a clip of any length chunk by chunk in bounded memory
(:mod:`revise.model.stream`); :func:`transfer_detail` is the same computation over a whole clip in memory,
and the two give identical bytes.
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


def _agreement(edit: np.ndarray, small: np.ndarray, threshold: float) -> np.ndarray:
    """``max(0, 1 - err / threshold)`` per model pixel, eroded; ``err`` is the largest channel difference."""
    return _erode(np.clip(1.0 - np.abs(edit - small).max(axis=-1) / threshold, 0.0, 1.0).astype(np.float32))


def _resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """One frame as :func:`~revise.video.resize_frames` resizes it (area when shrinking, bilinear when growing),
    without its copy into a clip-shaped array; a new array unless the size is already right."""
    import cv2

    if frame.shape[:2] == (height, width):
        return frame
    shrinking = height * width < frame.shape[0] * frame.shape[1]
    out = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return out.reshape(height, width, *frame.shape[2:])


def _to_uint8_frame(frame: np.ndarray) -> np.ndarray:
    """:func:`~revise.video.to_uint8` of one float32 ``(H, W, 3)`` frame, with OpenCV's rounding conversion:
    ``saturate_cast`` rounds half to even like ``np.rint`` and clips to 0..255 (the negative part is cut
    first, in place, since the conversion takes absolute values), about 4x faster on a 720p frame. The inputs
    are finite (the edit is clamped, the detail is a difference of frames)."""
    import cv2

    return cv2.convertScaleAbs(np.maximum(frame, 0.0, out=frame), alpha=255.0)


class DetailTransfer:
    """:func:`transfer_detail` one chunk of output frames at a time.

    ``first`` and ``last``: the source's first and last frames, uint8 ``(H, W, 3)`` at full size;
    ``model_size``: ``(h, w)`` of the edit; ``threshold`` as in the module docstring (``<= 0``: plain
    upsampling). :meth:`render` takes the edit's frames for some output times and the source's frames at
    the same times.
    """

    def __init__(self, first: np.ndarray, last: np.ndarray, model_size: tuple[int, int], threshold: float,
                 restore: float = 0.0, restore_to: float | None = None):
        self.height, self.width = first.shape[:2]
        self.h, self.w = (int(s) for s in model_size)
        self.threshold = float(threshold)
        self.restore = float(restore)
        self.restore_to = 2.0 * self.restore if restore_to is None else float(restore_to)
        if self.restore > 0 and not self.restore_to > self.restore:
            raise ValueError(f"restore_to ({self.restore_to}) must be above restore ({self.restore})")
        self.enabled = self.threshold > 0 and (self.h, self.w) != (self.height, self.width)
        self._held = []  # (small, detail, grown small) of the first and the last frame, full size in float32
        if self.enabled:
            for frame in (first, last):
                full = to_float(frame[None])
                small = resize_frames(full, self.h, self.w)
                grown = resize_frames(small, self.height, self.width)
                self._held.append((small, full - grown, grown))

    def _restore_weight(self, edit: np.ndarray, small: np.ndarray) -> np.ndarray:
        """1 where the edit is within ``restore`` of the candidate, falling linearly to 0 at ``restore_to``,
        eroded 3x3 like the detail weight."""
        err = np.abs(edit - small).max(axis=-1)
        ramp = (self.restore_to - err) / np.float32(self.restore_to - self.restore)
        return _erode(np.clip(ramp, 0.0, 1.0).astype(np.float32)[None])[0]

    def render(self, edit: np.ndarray, source: np.ndarray) -> np.ndarray:
        """``edit``: float ``(k, h, w, 3)`` in [0, 1]; ``source``: uint8 ``(k, H, W, 3)`` at the same times.
        Returns uint8 ``(k, H, W, 3)``."""
        import cv2

        edit = np.asarray(edit, dtype=np.float32)
        if edit.ndim != 4 or source.ndim != 4 or edit.shape[0] != source.shape[0] or edit.shape[3] != source.shape[3] \
                or edit.shape[1:3] != (self.h, self.w) or source.shape[1:3] != (self.height, self.width):
            raise ValueError(f"edit {edit.shape} and source {source.shape} must be (k, {self.h}, {self.w}, 3) and "
                             f"(k, {self.height}, {self.width}, 3)")
        out = np.empty(source.shape, np.uint8)
        H, W = self.height, self.width
        for i in range(len(edit)):
            grown = _resize(edit[i], H, W)
            if grown is edit[i] or not grown.flags.writeable:
                grown = np.array(grown)  # detail and the uint8 conversion work in place
            if self.enabled:
                plain = np.array(grown) if self.restore > 0 else None  # the upsampled edit, before any detail
                full = to_float(source[i])
                small = _resize(full, self.h, self.w)
                candidates = [(small, None, full, None)] + [(s[0], d[0], None, g[0]) for s, d, g in self._held]
                weights = np.stack([_agreement(edit[i:i + 1], c[None], self.threshold)[0]
                                    for c, _, _, _ in candidates])
                best = weights.argmax(axis=0)
                for k, (small_k, detail, full_k, grown_k) in enumerate(candidates):
                    w_k = np.where(best == k, weights[k], 0.0).astype(np.float32)
                    w_low = None
                    if self.restore > 0:
                        w_low = np.where(best == k, self._restore_weight(edit[i], small_k), 0.0).astype(np.float32)
                        w_k = np.maximum(w_k, w_low)  # where the low frequencies return, so does the detail
                    if not w_k.any():
                        continue  # adding zeros would leave every value as it is
                    if detail is None:
                        grown_k = _resize(small_k, H, W)
                        detail = full_k - grown_k
                    # the weight grown on three equal channels: the same bilinear coefficients per channel
                    spread = _resize(np.repeat(w_k[:, :, None], 3, axis=2), H, W)
                    cv2.add(grown, cv2.multiply(spread, detail, dst=spread), dst=grown)
                    if w_low is not None and w_low.any():  # the candidate's own low frequencies replace the edit's
                        spread = _resize(np.repeat(w_low[:, :, None], 3, axis=2), H, W)
                        cv2.add(grown, cv2.multiply(spread, grown_k - plain, dst=spread), dst=grown)
            out[i] = _to_uint8_frame(grown)
        return out


def transfer_detail(edit: np.ndarray, source: np.ndarray, threshold: float, restore: float = 0.0) -> np.ndarray:
    """``edit``: float ``(T, h, w, 3)`` in [0, 1] at the model's resolution and the source's length;
    ``source``: uint8 ``(T, H, W, 3)``. Returns uint8 ``(T, H, W, 3)``: the edit upsampled (bilinear) plus
    the closest candidate's detail where the edit agrees with it (module docstring)."""
    edit = np.asarray(edit, dtype=np.float32)
    if edit.ndim != 4 or source.ndim != 4 or edit.shape[0] != source.shape[0] or edit.shape[3] != source.shape[3]:
        raise ValueError(f"edit {edit.shape} and source {source.shape} must be (T, h, w, 3) and (T, H, W, 3) "
                         "with the same T")
    return DetailTransfer(source[0], source[-1], edit.shape[1:3], threshold, restore).render(edit, source)


def transfer_detail_reference(edit: np.ndarray, source: np.ndarray, threshold: float) -> np.ndarray:
    """The whole-clip formulation of :func:`transfer_detail` (numpy over every frame at once), kept as the
    reference the chunked renderer is tested against."""
    edit = np.asarray(edit, dtype=np.float32)
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
        weights.append(_agreement(edit, small, threshold))
    weights = np.stack(np.broadcast_arrays(*weights))  # (3, T, h, w)
    best = weights.argmax(axis=0)
    for k, detail in enumerate(details):
        w_k = np.where(best == k, weights[k], 0.0).astype(np.float32)
        if w_k.any():
            out += resize_frames(w_k, height, width)[..., None] * detail
    return to_uint8(out)
