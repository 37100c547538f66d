"""The ``gt`` judge: exact scoring of RVE-Sim samples against their ground-truth states.

The edited video is *perceived* (:func:`revise.sim.perceive.perceive`: every part's centre and area per
frame, by its known colour) and compared with the true target states, then mapped onto the
``rve-judge-v1`` rubric. Every sub-score is a number ``s`` in [0, 1] turned into 1-5 by fixed
thresholds (``THRESHOLDS``): 5 if s >= 0.95, 4 if >= 0.85, 3 if >= 0.7, 2 if >= 0.5, else 1.

- **Reasoning** (the implied change happened, correctly): half the share of the scenario's checks that
  the edit passes against the perceived source (only checks about involved parts, or global ones such as
  brightness: see :mod:`revise.sim.checks`), half the *track match* of the involved parts: the share of frames where
  the part's presence agrees with the truth and, where both show it, its centre is within
  ``POSITION_TOL`` pixels (at 128 px; scaled with the frame size).
- **Consistency**: RAVE: half the track match of the preserved parts (1 if none), half the
  *background agreement* (the share of pixels away from every part where the edit matches the true
  target within ``PIXEL_TOL`` grey levels). ICVG: half *identity* (every part seen in the true target is
  seen, with its own colour, in the edit, frame by frame), half background agreement (scene continuity).
- **Quality**: the mean of four checks of the edit alone: motion (no part jumps more than twice the
  largest true step plus ``POSITION_TOL``), flicker (frame-to-frame brightness changes no larger than
  the truth's plus 0.03), colour (strongly coloured pixels are explained by the palette, no stray
  colours) and sharpness (Laplacian variance at least 70% of the truth's).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import JudgeError, ReviseError
from ..provenance import text_hash
from ..video import match_length, resize_frames
from .base import Judge, JudgeInput, JudgeResult, register_judge

VERSION = "gt-1"  # bump whenever a threshold or a sub-score changes
THRESHOLDS = ((0.95, 5), (0.85, 4), (0.7, 3), (0.5, 2))
POSITION_TOL = 3.0
PIXEL_TOL = 12.0


def to_rubric(score: float) -> int:
    """Map a [0, 1] share onto the 1-5 rubric with :data:`THRESHOLDS`."""
    for bound, value in THRESHOLDS:
        if score >= bound:
            return value
    return 1


@lru_cache(maxsize=256)
def _state(path: str):
    from ..sim.state import load_state

    return load_state(path)


def track_match(perceived, truth, parts: list[str], tol: float) -> float:
    """Share of (part, frame) pairs whose presence agrees and, where both present, centres are within ``tol``."""
    if not parts:
        return 1.0
    hits, total = 0, 0
    for part in parts:
        if part not in truth.present:
            continue
        tp, pp = truth.present[part], perceived.present[part]
        err = np.hypot(perceived.x[part] - truth.x[part], perceived.y[part] - truth.y[part])
        ok = (tp == pp) & (~tp | (err <= tol))
        hits += int(ok.sum())
        total += len(ok)
    return hits / total if total else 1.0


def _part_mask(shape: tuple[int, int], tracks_list, frame: int, margin: float) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    mask = np.zeros((h, w), bool)
    for tracks in tracks_list:
        for part in tracks.ids:
            if tracks.present[part][frame]:
                r = np.sqrt(tracks.area[part][frame] / np.pi) + margin
                mask |= (xx + 0.5 - tracks.x[part][frame]) ** 2 + (yy + 0.5 - tracks.y[part][frame]) ** 2 <= r * r
    return mask


def background_agreement(edited: np.ndarray, reference: np.ndarray, tracks_list, margin: float) -> float:
    """Share of pixels away from every part where edit and reference agree within PIXEL_TOL (mean over RGB)."""
    agree, total = 0, 0
    for i in range(len(edited)):
        keep = ~_part_mask(edited.shape[1:3], tracks_list, i, margin)
        diff = np.abs(edited[i].astype(np.int16) - reference[i].astype(np.int16)).mean(-1)
        agree += int((diff[keep] <= PIXEL_TOL).sum())
        total += int(keep.sum())
    return agree / total if total else 1.0


def _laplacian_var(frames: np.ndarray) -> float:
    import cv2

    return float(np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var() for f in frames]))


def colour_purity(frames: np.ndarray, palette: dict) -> float:
    """Share of strongly coloured pixels whose chroma direction matches a palette colour."""
    colours = np.asarray(list(palette.values()), dtype=np.float32)
    units = colours - colours.mean(1, keepdims=True)
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    f = frames.reshape(-1, 3).astype(np.float32)
    dev = f - f.mean(1, keepdims=True)
    length = np.linalg.norm(dev, axis=1)
    strong = length > 60.0
    if not strong.any():
        return 1.0
    cos = (dev[strong] @ units.T) / length[strong, None]
    return float((cos.max(1) > 0.9).mean())


@register_judge("gt")
class GroundTruthJudge(Judge):
    """Exact judge for samples with an RVE-Sim state file (see the module docstring for the rubric)."""

    name = "gt"

    def info(self) -> dict:
        return {"judge": self.name, "version": VERSION, "protocol": "rve-judge-v1", "thresholds": THRESHOLDS,
                "position_tol_px_at_128": POSITION_TOL, "pixel_tol": PIXEL_TOL,
                "prompt_hash": text_hash(__doc__ or VERSION), "frames": "all"}

    def score(self, item: JudgeInput) -> JudgeResult:
        from ..sim.checks import evaluate
        from ..sim.perceive import perceive

        sample = item.sample
        if sample.state is None:
            raise JudgeError(f"sample {sample.id}: no state file; the gt judge needs RVE-Sim ground truth")
        try:
            state = _state(str(sample.state))
        except ReviseError as exc:
            raise JudgeError(f"sample {sample.id}: {exc}") from None
        h, w = state.size
        scale = min(h, w) / 128.0
        tol = POSITION_TOL * scale
        notes = []
        edited = item.edited.frames
        if len(edited) != state.num_frames:
            notes.append(f"edit has {len(edited)} frames, truth {state.num_frames}: resampled in time")
            edited = match_length(edited, state.num_frames)
        edited = resize_frames(edited, h, w)
        perceived = perceive(edited, state.palette)
        truth = state.target
        # Checks compare the edit with the source as *perceived*, so perception's small biases (thin parts
        # read a little smaller from compressed video) cancel out.
        source = perceive(item.source.frames, state.palette, size=(h, w))
        if source.num_frames != state.num_frames:
            source = state.source

        # Reasoning
        involved = set(state.involved)
        reasoning_checks = [c for c in state.checks if c.get("part") is None or c.get("part") in involved]
        results = [evaluate(c, perceived, source) for c in reasoning_checks]
        check_share = sum(ok for ok, _ in results) / len(results) if results else 1.0
        involved_match = track_match(perceived, truth, state.involved, tol)
        reasoning_s = 0.5 * check_share + 0.5 * involved_match
        failed = [why for ok, why in results if not ok]

        # Consistency
        reference = item.target.frames if item.target is not None else None
        if reference is None and sample.subset == "rave":
            reference = item.source.frames
        if reference is not None:
            reference = resize_frames(match_length(reference, state.num_frames), h, w)
            background = background_agreement(edited, reference, [truth, perceived], margin=3 * scale)
        else:
            background = 1.0
            notes.append("no reference frames: background not compared")
        if sample.subset == "rave":
            preserved = track_match(perceived, truth, state.preserved, tol)
            consistency_s = 0.5 * preserved + 0.5 * background
        else:
            preserved = track_match(perceived, truth, [p for p in truth.ids if truth.present[p].any()], 4 * tol)
            identity = _identity(perceived, truth)
            consistency_s = 0.5 * identity + 0.5 * background

        # Quality
        motion = _motion_ok(perceived, truth, tol)
        flicker_edit = float(np.abs(np.diff(perceived.brightness)).mean()) if state.num_frames > 1 else 0.0
        flicker_true = float(np.abs(np.diff(truth.brightness)).mean()) if state.num_frames > 1 else 0.0
        flicker_ok = float(np.clip(1.0 - max(0.0, flicker_edit - flicker_true - 0.03) / 0.05, 0.0, 1.0))
        purity = colour_purity(edited, state.palette)
        colour_ok = float(np.clip((purity - 0.6) / 0.3, 0.0, 1.0))
        sharp_true = _laplacian_var(reference) if reference is not None else None
        sharp_ok = 1.0 if not sharp_true else float(np.clip(_laplacian_var(edited) / sharp_true / 0.7, 0.0, 1.0))
        quality_s = float(np.mean([motion, flicker_ok, colour_ok, sharp_ok]))

        scores = (to_rubric(reasoning_s), to_rubric(consistency_s), to_rubric(quality_s))
        rationale = (f"reasoning {reasoning_s:.2f}: {sum(ok for ok, _ in results)}/{len(results)} checks, involved track match "
                     f"{involved_match:.2f}" + (f"; failed: {'; '.join(failed)}" if failed else "")
                     + f" | consistency {consistency_s:.2f}: background {background:.2f}, preserved {preserved:.2f}"
                     + f" | quality {quality_s:.2f}: motion {motion:.2f}, flicker {flicker_ok:.2f}, colour {colour_ok:.2f}, "
                     f"sharpness {sharp_ok:.2f}" + (f" | {'; '.join(notes)}" if notes else ""))
        metrics = {"gt_checks": check_share, "gt_involved_match": involved_match, "gt_reasoning_s": reasoning_s,
                   "gt_background": background, "gt_preserved_match": preserved, "gt_consistency_s": consistency_s,
                   "gt_motion": motion, "gt_flicker": flicker_ok, "gt_colour": colour_ok, "gt_sharpness": sharp_ok,
                   "gt_quality_s": quality_s}
        return JudgeResult(self.name, float(scores[0]), float(scores[1]), float(scores[2]), rationale, metrics)


def _identity(perceived, truth) -> float:
    parts = [p for p in truth.ids if truth.present[p].any()]
    if not parts:
        return 1.0
    return float(np.mean([(perceived.present[p] == truth.present[p]).mean() for p in parts]))


def _motion_ok(perceived, truth, tol: float) -> float:
    ok, total = 0, 0
    for part in truth.ids:
        t_pts = np.stack([truth.x[part], truth.y[part]], 1)
        t_steps = np.linalg.norm(np.diff(t_pts, axis=0), axis=1)
        limit = 2.0 * (np.nanmax(t_steps) if np.isfinite(t_steps).any() else 0.0) + tol
        p_pts = np.stack([perceived.x[part], perceived.y[part]], 1)
        steps = np.linalg.norm(np.diff(p_pts, axis=0), axis=1)
        steps = steps[np.isfinite(steps)]
        ok += int((steps <= limit).sum())
        total += len(steps)
    return ok / total if total else 1.0
