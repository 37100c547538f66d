"""RAVE / spatial: move or mirror an element of the scene and re-simulate what follows from it.

- ``spatial_mirror_ramp``: a ball rolls down a ramp; the ramp turned around sends it the other way.
- ``spatial_move_object``: a heavy crate moved to the other side of the room is now in (or out of) the
  path of a rolling ball, so a collision now does (or no longer does) happen.
- ``spatial_move_support``: a crate moved under (or away from under) a falling ball, which now lands on
  top of it (or falls all the way to the floor).
"""

from __future__ import annotations

import math

import numpy as np

from ..scene import Scene, Static
from .base import a_colour, BuildContext, Clip, Episode, Scenario, ball, box, pick_colours, q, register_scenario, room, \
    shelf_with_prop, variant

FLOOR = 104.0


def _say(rng: np.random.Generator, templates: tuple[str, ...], family: tuple[str, ...] | None = None,
         **fields) -> tuple[str, int]:
    """One of ``templates``, filled in; returns (text, index of the template among all the ``family``'s)."""
    text = templates[int(rng.integers(len(templates)))]
    return text.format(**fields), (family or templates).index(text)


def _side(sign: float) -> str:
    return "right" if sign > 0 else "left"


@register_scenario
class MirrorRamp(Scenario):
    """A ball rests at the top of a ramp and rolls down it. Counterfactual: the ramp faces the other way."""

    name = "spatial_mirror_ramp"
    subset, dimension = "rave", "spatial"
    templates = (
        "What if the ramp faced the other way?",
        "Imagine the ramp had been built sloping the opposite way round.",
        "Suppose someone turned the ramp around before the {a} ball was let go. What would happen?",
        "What if the ramp had been installed back to front, with the {a} ball still at its top?",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        ca, cp = pick_colours(rng, 2)
        r = float(rng.uniform(4.5, 6.0))
        cx = float(rng.uniform(54.0, 74.0))
        length = float(rng.uniform(34.0, 44.0))
        height = float(rng.uniform(16.0, 26.0))
        sign = 1.0 if rng.random() < 0.5 else -1.0  # direction the ball rolls in the source
        material = "wood" if rng.random() < 0.5 else "clay"
        shelf, prop, side = shelf_with_prop(rng, cp)
        scene = Scene(bodies=[self._ball(ca, r, cx, length, height, sign, material), prop],
                      statics=room() + [self._ramp(cx, length, height, sign), shelf], damping=0.8)
        target = variant(scene)
        target.statics = room() + [self._ramp(cx, length, height, -sign), shelf]
        target.bodies[0] = self._ball(ca, r, cx, length, height, -sign, material)
        instruction, template = _say(rng, self.templates, a=ca)
        to, was = _side(-sign), _side(sign)
        answer = (f"Turned around, the ramp rises on the {was} side and slopes down to the {to}, so the {ca} ball "
                  f"rolls down it and on across the floor to the {to} instead of the {was}; the {cp} {prop.shape} "
                  f"stays on the shelf.")
        caption = (f"{a_colour(ca, True)} ball rolls down a grey ramp that slopes down to the {to} and keeps rolling "
                   f"{to}wards across the floor; {a_colour(cp)} {prop.shape} rests on a shelf.")
        checks = [{"kind": "compare", "stat": "net_dx", "part": "ball", "op": "<" if sign > 0 else ">",
                   "against": "value", "value": -12.0 * sign},
                  {"kind": "compare", "stat": "abs_net_dx", "part": "ball", "op": ">", "factor": 0.6},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{ca}|{cp}|{sign}|{material}|{q(cx, 8)}|{q(length, 6)}|{q(height, 5)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ball"], preserved=["prop"], checks=checks, signature=signature,
                       params={"cx": cx, "length": length, "height": height, "sign": sign, "material": material},
                       template=template)

    @staticmethod
    def _ends(cx: float, length: float, height: float, sign: float):
        """(high end, low end) of a ramp that slopes down towards ``sign``."""
        high = (cx - sign * length / 2, FLOOR - 2.0 - height)
        low = (cx + sign * length / 2, FLOOR - 2.0)
        return high, low

    def _ramp(self, cx: float, length: float, height: float, sign: float) -> Static:
        high, low = self._ends(cx, length, height, sign)
        return Static("ramp", "ramp", high, low, thickness=4.0, friction=0.9, elasticity=0.1, colour="ramp")

    def _ball(self, colour: str, r: float, cx: float, length: float, height: float, sign: float, material: str):
        (hx, hy), (lx, ly) = self._ends(cx, length, height, sign)
        n = math.hypot(lx - hx, ly - hy)
        ux, uy = (lx - hx) / n, (ly - hy) / n
        nx, ny = (uy, -ux) if -ux < 0 else (-uy, ux)  # the surface normal pointing up (y is down)
        s = r + 2.0
        return ball("ball", colour, hx + ux * s + nx * (r + 2.3), hy + uy * s + ny * (r + 2.3), r, material=material)


@register_scenario
class MoveObject(Scenario):
    """A ball rolls from the middle of the room; a heavy crate stands on one side. Counterfactual: the crate
    stands on the other side of the room, so it is now in (or out of) the ball's way."""

    name = "spatial_move_object"
    subset, dimension = "rave", "spatial"
    templates = (
        "What if the {c} crate had been placed on the other side of the room?",
        "Imagine the {c} crate had been standing at the opposite end of the room.",
        "Suppose someone had moved the {c} crate over to the other side before the {a} ball was rolled.",
        "What would happen if the {c} crate swapped sides of the room?",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        ca, cc, cp = pick_colours(rng, 3)
        r = float(rng.uniform(5.0, 6.5))
        sign = 1.0 if rng.random() < 0.5 else -1.0  # the ball rolls this way
        mode = "out" if rng.random() < 0.5 else "into"  # the crate moves out of / into the ball's path
        back = float(rng.uniform(2.0, 10.0))
        xa = 64.0 - sign * back
        size = float(rng.uniform(12.0, 16.0))
        # The crate's two places mirror each other about the room's middle; behind the ball it stays clear of it
        # (and ahead of it, the gap is small enough for the collision to come early in the clip).
        offset = float(rng.uniform(max(26.0, back + r + size / 2 + 5.0), min(40.0, 26.0 + size / 2 + r - back)))
        ahead, behind = 64.0 + sign * offset, 64.0 - sign * offset
        speed = float(rng.uniform(62.0, 72.0))
        x_src, x_tgt = (ahead, behind) if mode == "out" else (behind, ahead)
        shelf, prop, side = shelf_with_prop(rng, cp)
        scene = Scene(bodies=[ball("ball", ca, xa, FLOOR - r, r, vx=sign * speed),
                              box("crate", cc, x_src, FLOOR - size / 2, size, size, material="steel"), prop],
                      statics=room() + [shelf], damping=0.5)
        target = variant(scene)
        target.body("crate").position = (x_tgt, FLOOR - size / 2)
        instruction, template = _say(rng, self.templates, a=ca, c=cc)
        way, crate_side = _side(sign), _side(np.sign(x_tgt - 64.0))
        if mode == "out":
            answer = (f"On the other side the {cc} crate is behind the {ca} ball instead of in its way, so the ball "
                      f"rolls on to the {way} unhindered instead of being stopped by the crate, and the crate is "
                      f"never touched; the {cp} {prop.shape} stays on the shelf.")
            caption = (f"{a_colour(ca, True)} ball rolls freely across the floor to the {way}, away from {a_colour(cc)} crate "
                       f"standing on the {crate_side}; {a_colour(cp)} {prop.shape} rests on a shelf.")
            checks = [{"kind": "compare", "stat": "abs_net_dx", "part": "ball", "op": ">", "factor": 1.5},
                      {"kind": "compare", "stat": "path_length", "part": "crate", "op": "<", "against": "value",
                       "value": 3.0}]
        else:
            answer = (f"On the other side the {cc} crate stands in the {ca} ball's way: the ball rolls into it and "
                      f"is stopped there instead of rolling on to the {way}, and the heavy crate barely moves; the "
                      f"{cp} {prop.shape} stays on the shelf.")
            caption = (f"{a_colour(ca, True)} ball rolls to the {way} into {a_colour(cc)} crate standing on the {crate_side} "
                       f"and comes to a stop against it; {a_colour(cp)} {prop.shape} rests on a shelf.")
            checks = [{"kind": "compare", "stat": "abs_net_dx", "part": "ball", "op": "<", "factor": 0.6}]
        shift = 0.35 * abs(x_tgt - x_src)  # world units; loose enough for renders down to 64 px
        checks += [{"kind": "compare", "stat": "mean_x", "part": "crate", "op": ">" if x_tgt > x_src else "<",
                    "offset": shift if x_tgt > x_src else -shift},
                   {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{ca}|{cc}|{cp}|{mode}|{sign}|{q(back, 4)}|{q(offset, 6)}|{q(size, 4)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ball", "crate"], preserved=["prop"], checks=checks, signature=signature,
                       params={"mode": mode, "speed": speed, "crate": size, "from_x": x_src, "to_x": x_tgt},
                       template=template)


@register_scenario
class MoveSupport(Scenario):
    """A ball is dropped from above; a crate stands below it or beside it. Counterfactual: the crate is moved
    under the ball (it lands on the crate) or away from under it (it falls to the floor)."""

    name = "spatial_move_support"
    subset, dimension = "rave", "spatial"
    templates_away = (
        "What if the {c} crate had been standing a little further to the {d}?",
        "Imagine someone had slid the {c} crate over to the {d} before the {a} ball was dropped.",
        "Suppose the {c} crate had been pushed aside, to the {d}, out from under the {a} ball.",
    )
    templates_under = (
        "What if the {c} crate had been standing right under the {a} ball?",
        "Imagine someone had slid the {c} crate underneath the {a} ball before it was dropped.",
        "Suppose the {c} crate had been placed directly below where the {a} ball falls.",
    )
    templates = templates_away + templates_under

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        ca, cc, cp = pick_colours(rng, 3)
        r = float(rng.uniform(4.5, 6.0))
        w = float(rng.uniform(16.0, 22.0))
        h = float(rng.uniform(18.0, 26.0))
        xb = float(rng.uniform(44.0, 84.0))
        yb = float(rng.uniform(14.0, 28.0))
        sign = 1.0 if rng.random() < 0.5 else -1.0  # where the crate is when it is not under the ball
        gap = float(rng.uniform(w / 2 + r + 8.0, w / 2 + r + 18.0))
        aside = xb + sign * gap
        mode = "away" if rng.random() < 0.5 else "under"
        under = xb + float(rng.uniform(-1.5, 1.5))
        x_src, x_tgt = (under, aside) if mode == "away" else (aside, under)
        shelf, prop, side = shelf_with_prop(rng, cp, "right" if xb < 64.0 else "left")
        scene = Scene(bodies=[ball("ball", ca, xb, yb, r, material="clay"),
                              box("crate", cc, x_src, FLOOR - h / 2, w, h, material="wood"), prop],
                      statics=room() + [shelf], damping=0.8)
        target = variant(scene)
        target.body("crate").position = (x_tgt, FLOOR - h / 2)
        d = _side(sign)
        if mode == "away":
            instruction, template = _say(rng, self.templates_away, self.templates, a=ca, c=cc, d=d)
            answer = (f"With the {cc} crate moved aside nothing is under the {ca} ball any more, so it falls past "
                      f"the crate all the way to the floor instead of landing on top of it; the {cp} {prop.shape} "
                      f"stays on the shelf.")
            caption = (f"{a_colour(ca, True)} ball drops straight down to the floor next to {a_colour(cc)} crate standing to "
                       f"its {d}; {a_colour(cp)} {prop.shape} rests on a shelf.")
            checks = [{"kind": "compare", "stat": "max_y", "part": "ball", "op": ">", "offset": 0.4 * h}]
        else:
            instruction, template = _say(rng, self.templates_under, self.templates, a=ca, c=cc)
            answer = (f"With the {cc} crate right under it, the {ca} ball lands on top of the crate and stays up "
                      f"there instead of falling to the floor; the {cp} {prop.shape} stays on the shelf.")
            caption = (f"{a_colour(ca, True)} ball drops onto the top of {a_colour(cc)} crate standing below it and comes to rest "
                       f"there; {a_colour(cp)} {prop.shape} rests on a shelf.")
            checks = [{"kind": "compare", "stat": "max_y", "part": "ball", "op": "<", "offset": -0.4 * h}]
        shift = 0.35 * abs(x_tgt - x_src)  # world units; loose enough for renders down to 64 px
        checks += [{"kind": "compare", "stat": "mean_x", "part": "crate", "op": ">" if x_tgt > x_src else "<",
                    "offset": shift if x_tgt > x_src else -shift},
                   {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{ca}|{cc}|{cp}|{mode}|{sign}|{q(xb, 8)}|{q(yb, 8)}|{q(w, 4)}|{q(h, 4)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ball", "crate"], preserved=["prop"], checks=checks, signature=signature,
                       params={"mode": mode, "drop_x": xb, "drop_y": yb, "from_x": x_src, "to_x": x_tgt},
                       template=template)
