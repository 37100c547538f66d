"""Scenario expectations ("checks") evaluated on tracks: does a clip differ from the source the way
the instruction says?

A check is plain data stored in the state file, e.g. ``{"kind": "absent", "part": "ball_a"}`` or
``{"kind": "compare", "stat": "path_length", "part": "ball_b", "op": ">", "factor": 1.3}``. The same
checks are evaluated on the ground-truth target (tests: the generator is right) and on the tracks
perceived from an edited video (the ``gt`` judge: the edit is right).

Kinds (``a`` is the clip under test, ``b`` the source):
- ``absent`` / ``present``: the part is seen in no frame / in at least ``share`` (default 0.8) of frames.
- ``compare``: ``stat(a) op factor * stat(b) + offset`` with ``op`` in ``<``, ``>``; with ``"against":
  "value"`` the right side is ``value`` alone. With ``"relative_to": other`` each side is the ratio of
  the part's statistic to the other part's (scale-free: a mouth's area as a share of the body's).
- ``follows``: the clip starts where the source ended (the first position is within a couple of the
  source's own frame-to-frame steps of its last one).
- ``precedes``: the clip ends where the source starts (the mirror image of ``follows``: what came before).
- ``reversed``: the part's positions are the source's in reverse order (mean error below ``tol`` px).
- ``same``: the part's positions match the source's frame by frame (mean error below ``tol`` px).

Stats: ``path_length``, ``net_dx``, ``net_dy``, ``abs_net_dx``, ``x_range``, ``y_range``, ``min_y``,
``max_y``, ``mean_x``, ``first_x``, ``last_x``, ``mean_area``, ``first_area``, ``last_area``,
``area_change`` (last - first), ``brightness`` (mean over frames), ``last_brightness``, ``speed`` (mean
step per frame), ``presence`` (share of frames present).
"""

from __future__ import annotations

import numpy as np

from ..errors import SceneError
from .state import Tracks


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def stat(tracks: Tracks, name: str, part: str | None) -> float:
    if name == "brightness":
        return float(np.mean(tracks.brightness))
    if name == "last_brightness":
        return float(tracks.brightness[-1])
    if part not in tracks.present:
        raise SceneError(f"check names unknown part {part!r}")
    x, y, area, present = tracks.x[part], tracks.y[part], tracks.area[part], tracks.present[part]
    if name == "presence":
        return float(present.mean())
    if name in ("mean_area", "first_area", "last_area", "area_change"):
        values = {"mean_area": area.mean(), "first_area": area[0], "last_area": area[-1],
                  "area_change": area[-1] - area[0]}
        return float(values[name])
    fx, fy = _finite(x), _finite(y)
    if len(fx) == 0:
        return float("nan")
    if name == "path_length" or name == "speed":
        pts = np.stack([x, y], 1)[present]
        steps = np.linalg.norm(np.diff(pts, axis=0), axis=1) if len(pts) > 1 else np.zeros(1)
        return float(steps.sum() if name == "path_length" else steps.mean())
    table = {
        "net_dx": lambda: fx[-1] - fx[0], "net_dy": lambda: fy[-1] - fy[0], "abs_net_dx": lambda: abs(fx[-1] - fx[0]),
        "x_range": lambda: fx.max() - fx.min(), "y_range": lambda: fy.max() - fy.min(),
        "min_y": lambda: fy.min(), "max_y": lambda: fy.max(), "mean_x": lambda: fx.mean(),
        "first_x": lambda: fx[0], "last_x": lambda: fx[-1],
    }
    if name not in table:
        raise SceneError(f"unknown check statistic {name!r}")
    return float(table[name]())


def _positions(tracks: Tracks, part: str) -> np.ndarray:
    return np.stack([tracks.x[part], tracks.y[part]], 1)


def evaluate(check: dict, clip: Tracks, source: Tracks) -> tuple[bool, str]:
    """``(passed, explanation)`` for one check of ``clip`` against ``source``."""
    kind = check.get("kind")
    part = check.get("part")
    if kind == "absent":
        seen = int(clip.present[part].sum()) if part in clip.present else 0
        return seen == 0, f"{part} seen in {seen} frame(s)"
    if kind == "present":
        share = float(clip.present[part].mean()) if part in clip.present else 0.0
        return share >= check.get("share", 0.8), f"{part} present in {share:.0%} of frames"
    if kind == "compare":
        def measure(tracks: Tracks) -> float:
            value = stat(tracks, check["stat"], part)
            if check.get("relative_to"):
                denominator = stat(tracks, check["stat"], check["relative_to"])
                value = value / denominator if denominator else float("nan")
            return value

        a = measure(clip)
        if check.get("against") == "value":
            rhs = float(check["value"])
        else:
            rhs = check.get("factor", 1.0) * measure(source) + check.get("offset", 0.0)
        if not (np.isfinite(a) and np.isfinite(rhs)):
            return False, f"{check['stat']}({part}) undefined"
        ok = a > rhs if check["op"] == ">" else a < rhs
        return bool(ok), f"{check['stat']}({part}) = {a:.2f} {check['op']} {rhs:.2f}"
    if kind in ("reversed", "same"):
        ref = _positions(source, part)
        if kind == "reversed":
            ref = ref[::-1]
        got = _positions(clip, part)
        n = min(len(ref), len(got))
        err = np.linalg.norm(got[:n] - ref[:n], axis=1)
        err = err[np.isfinite(err)]
        if len(err) < max(2, n // 2):
            return False, f"{part} not tracked"
        mean = float(err.mean())
        return mean <= check.get("tol", 3.0), f"{part} mean error {mean:.2f}px"
    if kind in ("follows", "precedes"):
        src, got = _positions(source, part), _positions(clip, part)
        src_ok = src[np.isfinite(src).all(1)]
        got_ok = got[np.isfinite(got).all(1)]
        if len(src_ok) < 2 or len(got_ok) < 1:
            return False, f"{part} not tracked"
        if kind == "precedes":  # mirror image of follows: the clip ends where the source starts
            src_ok, got_ok = src_ok[::-1], got_ok[::-1]
        step = float(np.linalg.norm(np.diff(src_ok[-4:], axis=0), axis=1).max())
        gap = float(np.linalg.norm(got_ok[0] - src_ok[-1]))
        limit = 2.5 * step + check.get("tol", 3.0)
        where = "starts {:.1f}px from where it was" if kind == "follows" else "ends {:.1f}px from where it is next"
        return gap <= limit, f"{part} {where.format(gap)} (limit {limit:.1f}px)"
    raise SceneError(f"unknown check kind {kind!r}")


def evaluate_all(checks: list[dict], clip: Tracks, source: Tracks) -> list[tuple[bool, str]]:
    return [evaluate(c, clip, source) for c in checks]
