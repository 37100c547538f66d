"""Domain detector: does a clip look like RVE-Sim's world?

``revise-tiny`` was trained only on RVE-Sim, a synthetic 2D world drawn by an anti-aliased renderer:
flat grey walls and floors, a handful of flat-coloured shapes from an 8-colour palette, smooth lighting
gradients (night falling, a lamp's glow) and camera zoom/pan. On real footage the model returns damage;
:func:`assess_domain` lets a caller warn first. It is cheap (about 25 ms for 16 frames at 720p on a busy 2-core CPU)
and deterministic (no randomness, no model): two hand-made features of what RVE-Sim frames *are*.

At most 16 frames (uniformly sampled) are analysed, each first resized to 128x128 (halved by 2x2 means
while large, then area averaging; bilinear when growing), so an RVE-Sim clip upscaled to 720p reads
about as the clip it was, and a real clip shrunk to RVE-Sim's size about as at full size. The aspect
ratio is deliberately ignored (users resize).

Features, per frame at 128x128, then the median over the frames:

``texture``
    The share of pixels whose local gradient (the largest absolute difference to the right or lower
    neighbour, over R, G and B) lies in ``(4, 24]`` grey levels. RVE-Sim is piecewise flat: a pixel is
    either inside a flat region (gradient within H.264's noise and within the slow slope of a lighting
    gradient) or on an anti-aliased edge between two palette colours (mostly a large step). Soft,
    mid-sized gradients everywhere are what real footage is made of: texture, sensor noise, shading,
    blur. Resizing softens RVE-Sim's edges, so its value roughly doubles on an RVE-Sim clip blown up to
    720p or rendered at 64 px (at most 0.10 over the calibration set below, 0.03 natively); real footage: 0.1 to 0.65.
``colours``
    How many colours (RGB quantised to 4 bits a channel: 4096 bins) it takes to cover 90% of the pixels.
    RVE-Sim: 1 to 9 (9 only under night fall's lamp glow), and resizing barely changes it; real footage:
    16 (a plain white wall) to ~230 (Big Buck Bunny). Greyscale footage has at most 16.

Neither feature alone is enough: blur and resizing raise RVE-Sim's texture, lighting raises its colour
count, a plain real wall or greyscale footage has few colours. Real footage raises both, so the score
combines them::

    mix   = sqrt(texture * colours)
    score = max(mix / MIX_LIMIT, texture / TEXTURE_LIMIT)      in-domain when score < 1.0 (THRESHOLD)

Each limit is 1.5x the largest value of its quantity over the calibration set: every source and target
clip of RVE-Sim's **val** split (``revise sim generate --split val --per-dimension 30 --seed 0``, 480
clips) plus its 240 sources upscaled to 1280x720, shrunk to 64 px and grown back, and re-encoded at
crf 35. ``benchmarks/bench_domain_detector.py --calibrate`` re-derives them; the same script measures
the false-positive rate on the **test** split and the hit rate on real clips (docs/domain.md). So the
most un-RVE-like calibration clip scores 0.67, and a real clip's score says how many times past the
limit it is.

It judges the *look*, not the content: flat-coloured real-world content (2D cartoons, slides, screen
recordings, a blank frame) reads as in-domain, and an RVE-Sim clip with added noise or film grain reads
as out of it. See docs/domain.md for the known limits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ANALYSIS_SIZE = 128          # every frame is resized to ANALYSIS_SIZE x ANALYSIS_SIZE first
MAX_FRAMES = 16              # at most this many frames (uniformly sampled) are analysed
GRADIENT_LOW = 4             # gradients up to this many levels are flat (H.264 noise, lighting slopes)
GRADIENT_HIGH = 24           # gradients above this are edges
COLOUR_BITS = 4              # bits per channel when counting colours
COLOUR_COVERAGE = 0.90       # colours = bins needed to cover this share of the pixels
# The calibration set's largest values (module docstring; bench_domain_detector.py --calibrate) ...
TEXTURE_SIM_MAX = 0.1
COLOURS_SIM_MAX = 9.0
MIX_SIM_MAX = 0.5328
# ... and the limits, 1.5x those.
LIMIT_FACTOR = 1.5
TEXTURE_LIMIT = LIMIT_FACTOR * TEXTURE_SIM_MAX
MIX_LIMIT = LIMIT_FACTOR * MIX_SIM_MAX
THRESHOLD = 1.0              # in_domain when score < THRESHOLD


@dataclass(frozen=True)
class DomainReport:
    """What :func:`assess_domain` found.

    ``in_domain``: the clip looks like RVE-Sim (``score < THRESHOLD``, i.e. < 1.0). ``score``: how
    un-RVE-Sim-like it looks, ``max(sqrt(texture * colours) / MIX_LIMIT, texture / TEXTURE_LIMIT)``:
    0 for a blank frame, at most 0.67 on the calibration clips (RVE-Sim val), 1.0 the threshold, 1.6 to
    17 on the real development clips. ``reason``: a short human phrase. ``texture`` and ``colours``:
    the two features (module docstring). ``frames``: how many frames were analysed.
    """

    in_domain: bool
    score: float
    reason: str
    texture: float
    colours: float
    frames: int

    def to_dict(self) -> dict:
        return asdict(self)


def _check(frames) -> np.ndarray:
    frames = getattr(frames, "frames", frames)  # a revise.video.Video too
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"assess_domain needs a numpy uint8 (T, H, W, 3) array, got {type(frames).__name__}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"assess_domain needs frames shaped (T, H, W, 3), got {tuple(frames.shape)}")
    if frames.dtype != np.uint8:
        raise ValueError(f"assess_domain needs uint8 frames, got {frames.dtype} (convert with revise.video.to_uint8)")
    t, h, w, _ = frames.shape
    if t == 0 or h < 8 or w < 8:
        raise ValueError(f"assess_domain needs at least 1 frame of at least 8x8 pixels, got {tuple(frames.shape)}")
    return frames


def _shrink(frame: np.ndarray, size: int) -> np.ndarray:
    """One frame to ``size x size``: halved (2x2 means) while both sides are at least twice ``size``,
    then area-averaged (bilinear when growing). Close to one area resize, and several times faster at
    720p (OpenCV's area resize is slow for non-integer ratios)."""
    import cv2

    h, w = frame.shape[:2]
    while h >= 2 * size and w >= 2 * size:
        frame = cv2.resize(frame[:h - h % 2, :w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        h, w = frame.shape[:2]
    if (h, w) == (size, size):
        return frame
    interp = cv2.INTER_AREA if h * w > size * size else cv2.INTER_LINEAR
    return cv2.resize(frame, (size, size), interpolation=interp)


def _prepare(frames: np.ndarray) -> np.ndarray:
    """At most MAX_FRAMES uniformly sampled frames, each resized to ANALYSIS_SIZE x ANALYSIS_SIZE."""
    from ..video import sample_indices

    picked = frames[sample_indices(len(frames), MAX_FRAMES)] if len(frames) > MAX_FRAMES else frames
    return np.stack([_shrink(np.ascontiguousarray(f), ANALYSIS_SIZE) for f in picked])


def frame_features(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(texture, colours)`` of uint8 frames already at the analysis size ``(T, S, S, 3)``."""
    a = frames
    here, right, below = a[:, :-1, :-1], a[:, :-1, 1:], a[:, 1:, :-1]
    dx = np.maximum(here, right) - np.minimum(here, right)      # |difference|, in uint8 without overflow
    dy = np.maximum(here, below) - np.minimum(here, below)
    g = np.maximum(dx, dy)
    g = np.maximum(np.maximum(g[..., 0], g[..., 1]), g[..., 2])  # (T, S-1, S-1): the largest over R, G, B
    soft = np.subtract(g, GRADIENT_LOW + 1, dtype=np.uint8) < GRADIENT_HIGH - GRADIENT_LOW  # LOW < g <= HIGH
    texture = soft.mean(axis=(1, 2))

    t = len(frames)
    bits = COLOUR_BITS
    q = (frames >> (8 - bits)).astype(np.int32)
    codes = (q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]
    bins = 1 << (3 * bits)
    codes += (np.arange(t, dtype=np.int32) * bins)[:, None, None]   # one bincount for all frames
    counts = np.bincount(codes.ravel(), minlength=t * bins).reshape(t, bins)
    covered = np.cumsum(-np.sort(-counts, axis=1), axis=1) >= COLOUR_COVERAGE * codes[0].size
    colours = (np.argmax(covered, axis=1) + 1).astype(np.float64)
    return texture, colours


def _reason(in_domain: bool, texture: float, colours: float) -> str:
    if in_domain:
        return "flat-coloured, few colours: looks like RVE-Sim"
    textured, many = texture > TEXTURE_SIM_MAX, colours > COLOURS_SIM_MAX
    detail = (f"{texture:.0%} of pixels in soft gradients, RVE-Sim <= {TEXTURE_SIM_MAX:.0%}; "
              f"{colours:g} colours cover 90%, RVE-Sim <= {COLOURS_SIM_MAX:g}")
    if textured and many:
        what = "textured, many colours"
    elif textured:
        what = "textured"
    elif many:
        what = "many colours"
    else:
        what = "soft gradients and colours together"
    return f"{what}: not RVE-Sim's flat-coloured world ({detail})"


def score_features(texture: float, colours: float) -> float:
    """The score of a clip's two features (module docstring); the clip is in-domain below 1.0."""
    return max(float(np.sqrt(texture * colours)) / MIX_LIMIT, texture / TEXTURE_LIMIT)


def clip_features(frames) -> tuple[float, float, int]:
    """``(texture, colours, frames analysed)`` of a checked clip: the medians over its analysed frames."""
    prepared = _prepare(_check(frames))
    texture_f, colours_f = frame_features(prepared)
    return float(np.median(texture_f)), float(np.median(colours_f)), len(prepared)


def assess_domain(frames) -> DomainReport:
    """Whether uint8 ``(T, H, W, 3)`` frames (any size and length; a ``revise.video.Video`` too) look like
    RVE-Sim's world; see the module docstring for the features and the threshold. At most
    :data:`MAX_FRAMES` uniformly sampled frames are analysed. Raises ``ValueError`` on anything else."""
    texture, colours, used = clip_features(frames)
    score = score_features(texture, colours)
    in_domain = bool(score < THRESHOLD)
    return DomainReport(in_domain=in_domain, score=score, reason=_reason(in_domain, texture, colours),
                        texture=texture, colours=colours, frames=used)
