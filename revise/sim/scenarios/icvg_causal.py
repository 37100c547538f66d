"""ICVG / causal: the next shot shows the consequence the source only sets up.

- ``icvg_tower_topple``: a heavy ball rolls towards a tower of upright blocks; the next shot shows it
  arrive and the tower come down.
- ``icvg_dominoes``: a ball rolls into the first of a row of dominoes just before the source ends; the
  next shot shows the chain reaction reach the last domino.

The target samples the same simulation from where the source ended (``start = duration``). Timing is
set from the clip duration, and every scene is simulated once while it is built to make sure the
consequence happens in the next shot and not before (rejected draws are re-drawn from the same rng).
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from ...errors import SceneError
from ..physics import _World
from ..scene import Body, Material, Scene
from .base import a_colour, BuildContext, Clip, Episode, Scenario, ball, box, q, register_scenario, room, shelf_with_prop
from .icvg_camera import pick_cast

FLOOR = 104.0
DAMPING = 0.9
MAX_TRIES = 20
DOMINO_GRAVITY = 240.0  # stronger than the default: a brisk chain reaction that fits in one shot


def _travel(v: float, t: float, damping: float = DAMPING) -> float:
    """Distance a body starting at speed ``v`` covers in ``t`` seconds under pymunk's velocity damping."""
    return v * (1.0 - damping ** t) / -math.log(damping)


def _time_to(distance: float, v: float, damping: float = DAMPING) -> float:
    """Seconds a body starting at speed ``v`` needs to cover ``distance`` (inf if it never gets there)."""
    k = -math.log(damping)
    u = 1.0 - distance * k / v
    return math.inf if u <= 0 else -math.log(u) / k


def _rolling(body_id: str, colour: str, x: float, r: float, vx: float, material: str = "rubber") -> Body:
    """A ball on the floor already rolling (spin matching its speed), so no speed is lost to slipping."""
    b = ball(body_id, colour, x, FLOOR - r, r, vx=vx, material=material)
    b.angular_velocity = vx / r
    return b


def _bodies_at(scene: Scene, times: list[float], ids: tuple[str, ...]):
    """The physics bodies ``ids`` at each of ``times`` in turn (advanced in place), so a check on a build can
    stop as soon as it knows."""
    world = _World(scene)
    bodies = [world.pm[i][0] for i in ids]
    for t in times:
        world.advance_to(t)
        yield bodies


def _mirror(scene: Scene) -> None:
    """Flip a scene left-right in place (bodies, velocities, spins and statics)."""
    for b in scene.bodies:
        b.position = (128.0 - b.position[0], b.position[1])
        b.velocity = (-b.velocity[0], b.velocity[1])
        b.angular_velocity = -b.angular_velocity
        b.angle = -b.angle
    for s in scene.statics:
        s.a, s.b = (128.0 - s.a[0], s.a[1]), (128.0 - s.b[0], s.b[1])


@register_scenario
class TowerTopple(Scenario):
    """A heavy ball rolls towards a tower of upright blocks. Next shot: it arrives and the tower falls."""

    name = "icvg_tower_topple"
    subset, dimension = "icvg", "causal"
    templates = (
        "What happens after the {s} ball reaches the tower?",
        "Show the next moment, when the {s} ball gets to the stack of blocks.",
        "And then? Show what the {s} ball does to the tower.",
        "Continue the shot: what becomes of the tower once the ball arrives?",
        "The {s} ball is almost there. What follows?",
    )

    def _scene(self, rng: np.random.Generator, ctx: BuildContext, n: int, colours: list[str]):
        d = ctx.duration
        w = float(rng.uniform(5.5, 7.0))
        h = float(rng.uniform(11.0, 14.0))
        r = float(rng.uniform(8.0, 10.0))
        v = float(rng.uniform(30.0, 40.0)) * 2.0 / max(d, 0.5)
        contact = d + float(rng.uniform(0.05, 0.3)) * min(d, 2.0) / 2.0
        x0 = 4.0 + r + float(rng.uniform(0.0, 6.0))
        xt = x0 + _travel(v, contact) + r + w / 2 + 0.5
        if xt > 128.0 - w / 2 - 14.0:  # keep room for the tower to fall: a shorter run-up instead
            xt = 128.0 - w / 2 - 14.0
            v = (xt - x0 - r - w / 2 - 0.5) * -math.log(DAMPING) / (1.0 - DAMPING ** contact)
        friction = float(rng.uniform(0.3, 0.7))
        bodies = [_rolling("ball", colours[0], x0, r, v, material="steel")]
        for i in range(n):
            block = box(f"block{i}", colours[1 + i], xt, FLOOR - 0.5 - h / 2 - i * (h + 1.0), w, h, material="wood")
            block.material.friction = friction
            bodies.append(block)
        shelf, prop, side = shelf_with_prop(rng, colours[n + 1], side="left")
        prop.dynamic = False  # a bystander nothing reaches: no need to simulate it
        scene = Scene(bodies=bodies + [prop], statics=room() + [shelf], damping=DAMPING)
        return scene, dict(n=n, w=w, h=h, r=r, v=v, contact=contact, x0=x0, xt=xt, friction=friction)

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        d = ctx.duration
        # The ball and the blocks all touch each other as the tower falls: no two of them may mix into the far
        # prop's colour, and the ball is no hue neighbour of any block.
        n = int(rng.integers(3, 5))
        colours = pick_cast(rng, n + 2, touching=list(combinations(range(n + 1), 2)),
                            apart=[(0, i) for i in range(1, n + 1)], guard=[n + 1])
        sign = 1.0 if rng.random() < 0.5 else -1.0
        src_times, tgt_times = ctx.times(), ctx.times(start=d)
        for _ in range(MAX_TRIES):
            scene, p = self._scene(rng, ctx, n, colours)
            if sign < 0:
                _mirror(scene)
            top = f"block{p['n'] - 1}"
            # The tower must stand through the source and its top block come down in the next shot.
            ok, x_top, y_top = False, None, None
            for i, (o,) in enumerate(_bodies_at(scene, src_times + tgt_times, (top,))):
                x, y = o.position
                if i == 0:
                    x_top, y_top = x, y
                if i < len(src_times):
                    if abs(x - x_top) + abs(y - y_top) > 0.3:
                        break
                elif y > y_top + max(p["h"], 0.2 * y_top):
                    ok = True
                    break
            if ok:
                break
        else:
            raise SceneError(f"{self.name}: found no tower that falls in the next shot for a {d:g} s clip")
        n = p["n"]
        cs = colours[0]
        blocks = [f"block{i}" for i in range(n)]
        tower = ", ".join(colours[1:1 + n][::-1])
        instruction, template = self.phrase(rng, s=cs)
        answer = (f"The heavy {cs} ball rolls into the foot of the tower and knocks the bottom blocks out; the tower "
                  f"topples and the upper blocks fall down to the floor.")
        caption = (f"{a_colour(cs).capitalize()} ball hits a tower of {n} upright blocks ({tower} from the top) and the "
                   f"tower collapses; the blocks tumble to the floor.")
        checks = [{"kind": "follows", "part": "ball"},
                  {"kind": "compare", "stat": "max_y", "part": top, "op": ">", "factor": 1.1},
                  {"kind": "compare", "stat": "path_length", "part": top, "op": ">", "factor": 1.0, "offset": 10.0},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        signature = (f"{'|'.join(colours)}|{sign}|{n}|{q(p['h'], 2)}|{q(p['r'], 2)}|"
                     f"{q(p['xt'], 8)}")
        return Episode(Clip(scene, src_times), Clip(scene, tgt_times), instruction, answer, caption,
                       involved=["ball"] + blocks, preserved=["prop"], checks=checks, signature=signature,
                       params={k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items()},
                       template=template)


@register_scenario
class Dominoes(Scenario):
    """A ball rolls into the first of a row of dominoes. Next shot: the chain falls to the last one."""

    name = "icvg_dominoes"
    subset, dimension = "icvg", "causal"
    templates = (
        "Show what the push sets off.",
        "What happens next, now that the {f} domino has been knocked?",
        "Continue: how does the rest of the row respond to that nudge?",
        "And then? Follow the consequences of the {s} ball's hit all the way down the line.",
        "Keep going from here - what does the {l} domino at the end of the row do?",
    )

    def _scene(self, rng: np.random.Generator, ctx: BuildContext, colours: list[str]):
        d = ctx.duration
        n = int(rng.integers(5, 8))
        h = float(rng.uniform(16.0, 22.0))
        w = float(rng.uniform(3.0, 4.0))
        s = h * float(rng.uniform(0.5, 0.62))
        r = float(rng.uniform(5.5, 7.0))
        v = float(rng.uniform(26.0, 36.0))
        x_last = 128.0 - h - 6.0 - float(rng.uniform(0.0, 6.0))
        # The ball reaches the first domino near the end of the source clip; the row is shortened (down to
        # four dominoes) so the ball can start inside the frame, else the ball starts closer.
        contact = d - float(rng.uniform(0.36, 0.76)) * min(d, 2.0) / 2.0
        gap = _travel(v, contact)
        room_for_row = x_last - (r + 1.0 + r + 0.5 + w / 2 + gap)
        n = max(4, min(n, int(room_for_row // s) + 1))
        x1 = x_last - (n - 1) * s
        x0 = x1 - w / 2 - r - 0.5 - gap
        if x0 < r + 1.0:
            x0 = r + 1.0
            contact = _time_to(x1 - w / 2 - r - 0.5 - x0, v)
        c_ball, c_first, c_last, c_prop = colours
        bodies = [_rolling("ball", c_ball, x0, r, v, material="steel")]
        for i in range(n):
            first, last = i == 0, i == n - 1
            bid = "first" if first else ("last" if last else f"domino{i}")
            colour = c_first if first else (c_last if last else "dark")
            bodies.append(Body(bid, "box", colour, (w, h), (x1 + i * s, FLOOR - 0.5 - h / 2),
                               material=Material("wood", density=0.8, friction=0.6, elasticity=0.1),
                               perceivable=first or last))
        shelf, prop, side = shelf_with_prop(rng, c_prop, side="left")
        prop.dynamic = False  # a bystander nothing reaches: no need to simulate it
        scene = Scene(bodies=bodies + [prop], statics=room(walls=False) + [shelf], damping=DAMPING,
                      gravity=(0.0, DOMINO_GRAVITY))
        return scene, dict(n=n, h=h, w=w, spacing=s, r=r, v=v, contact=contact, x0=x0, x1=x1)

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        d = ctx.duration
        colours = pick_cast(rng, 4, touching=[(0, 1)], apart=[(0, 1)])  # the ball touches the first domino
        sign = 1.0 if rng.random() < 0.5 else -1.0
        src_times, tgt_times = ctx.times(), ctx.times(start=d)
        for _ in range(MAX_TRIES):
            scene, p = self._scene(rng, ctx, colours)
            if sign < 0:
                _mirror(scene)
            # The source shows the first domino tipping while the last stands; it falls in the next shot.
            ok, pushed = False, 0.0
            for i, (first, last) in enumerate(_bodies_at(scene, src_times + tgt_times[:-2], ("first", "last"))):
                if i < len(src_times):
                    pushed = max(pushed, abs(first.angle))
                    if abs(last.angle) > 0.01:
                        break
                elif pushed <= 0.15:
                    break
                elif abs(last.angle) > 1.2:
                    ok = True
                    break
            if ok:
                break
        else:
            raise SceneError(f"{self.name}: found no row that falls in the next shot for a {d:g} s clip")
        c_ball, c_first, c_last, _ = colours
        instruction, template = self.phrase(rng, s=c_ball, f=c_first, l=c_last)
        answer = (f"The {c_first} domino topples into the next one and the fall runs down the whole row of "
                  f"{p['n']} dominoes until the {c_last} domino at the end falls over too.")
        caption = (f"A row of {p['n']} dominoes falls one after another, from the {c_first} one hit by {a_colour(c_ball)} "
                   f"ball to the {c_last} one at the far end, which topples onto the floor.")
        checks = [{"kind": "follows", "part": "first"},
                  {"kind": "compare", "stat": "path_length", "part": "last", "op": ">", "factor": 1.0, "offset": 8.0},
                  {"kind": "compare", "stat": "max_y", "part": "last", "op": ">", "factor": 1.04},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        signature = (f"{'|'.join(colours)}|{sign}|{p['n']}|{q(p['h'], 2)}|{q(p['spacing'] / p['h'], 0.05)}|"
                     f"{q(p['contact'], 0.25)}")
        involved = ["ball", "first", "last"]
        return Episode(Clip(scene, src_times), Clip(scene, tgt_times), instruction, answer, caption,
                       involved=involved, preserved=["prop"], checks=checks, signature=signature,
                       params={k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items()},
                       template=template)
