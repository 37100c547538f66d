"""RAVE / temporal: the same simulation seen at another time, backwards or slowed down.

- ``temporal_later``: the target continues the source's trajectory (sampled from start + duration): only
  then does the gliding ball reach the resting one, or the rolling ball drop off the end of its ledge.
- ``temporal_earlier``: the source is the later part of a simulation, the target the part before it, in
  which the collision that set a ball gliding (or the drop off a ledge) happens.
- ``temporal_reverse``: the same clip played backwards (a collision on ice, or a ball bouncing across).
- ``temporal_slow``: the same clip at half speed (frames sampled twice as densely in time).

The physics runs at a fixed step whatever the sampling, so every target is the very same trajectory as
its source, only sampled at other times. Speeds are set from the clip duration (``BuildContext``) so the
stated effect happens inside the right window for any clip length.
"""

from __future__ import annotations

import math

import numpy as np

from ..scene import Scene, Static
from .base import a_colour, BuildContext, Clip, Episode, Scenario, ball, box, pick_colours, q, register_scenario, room, \
    shelf_with_prop

FLOOR = 104.0
_NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


def _say(rng: np.random.Generator, templates: tuple[str, ...], **fields) -> tuple[str, int]:
    """One paraphrase template, filled in; returns (text, template index)."""
    index = int(rng.integers(len(templates)))
    return templates[index].format(**fields), index


def _seconds(duration: float) -> str:
    """A clip duration in words: 'two seconds', 'one second', '2.5 seconds'."""
    if abs(duration - round(duration)) < 1e-9 and int(round(duration)) in _NUMBERS:
        n = int(round(duration))
        return f"{_NUMBERS[n]} second{'s' if n != 1 else ''}"
    return f"{duration:g} seconds"


def _speed_for(distance: float, damping: float, t: float) -> float:
    """The start speed at which a free body covers ``distance`` in exactly ``t`` seconds under pymunk's velocity
    damping (the speed decays as ``damping ** t``, so the distance is ``v (1 - damping ** t) / -ln(damping)``)."""
    return distance * -math.log(damping) / (1.0 - damping ** t)


def _damping(rng: np.random.Generator, bounds: tuple[float, float], duration: float) -> float:
    """A velocity damping drawn for a 2-second clip, rescaled so the speed decays as much over ``duration``."""
    return float(rng.uniform(*bounds)) ** (2.0 / duration)


def _rolling(body_id: str, colour: str, x: float, r: float, vx: float, material: str = "rubber"):
    """A ball on the floor already rolling (spin matching its speed), so friction does not slow it down first."""
    b = ball(body_id, colour, x, FLOOR - r, r, vx=vx, material=material)
    b.angular_velocity = vx / r
    return b


def _strike(rng: np.random.Generator, hit_time: float, damping: float,
            gaps: tuple[float, float] = (36.0, 50.0)) -> tuple[Scene, dict]:
    """On an icy floor a ball glides towards a resting ball of the same size and reaches it ``hit_time`` seconds
    in; a prop rests on a shelf. On frictionless ice nothing rolls, and the balls are perfectly elastic, so the
    striker stops dead and the struck ball glides off with its speed (a clear hand-over: rolling balls would
    end up moving along together).

    Returns the scene and the words/params: colours ``ca`` (striker), ``cb`` (struck), ``cp`` (prop),
    ``sign`` (+1: glides right), ``shape`` (the prop's), ``side`` (the shelf's) and the numbers.
    """
    ca, cb, cp = pick_colours(rng, 3)
    ra = rb = float(rng.uniform(4.5, 6.5))
    xa = float(rng.uniform(10.0, 20.0))
    gap = float(rng.uniform(*gaps))  # between the two surfaces
    sign = 1.0 if rng.random() < 0.5 else -1.0
    speed = _speed_for(gap, damping, hit_time)
    xb = xa + ra + gap + rb
    if sign < 0:
        xa, xb = 128.0 - xa, 128.0 - xb
    shelf, prop, side = shelf_with_prop(rng, cp)
    striker, struck = ball("ball_a", ca, xa, FLOOR - ra, ra, vx=sign * speed), ball("ball_b", cb, xb, FLOOR - rb, rb)
    for body in (striker, struck):  # like billiard balls: the striker stops dead and the struck ball takes its speed
        body.material.elasticity = 1.0
    scene = Scene(bodies=[striker, struck, prop], statics=room(floor_colour="ice_floor", friction=0.0) + [shelf],
                  damping=damping)
    words = {"ca": ca, "cb": cb, "cp": cp, "sign": sign, "shape": prop.shape, "side": side, "xa": xa, "xb": xb,
             "gap": gap, "speed": speed, "hit_time": hit_time, "ra": ra, "rb": rb}
    return scene, words


def _ledge(rng: np.random.Generator, edge_time: float, damping: float, lengths: tuple[float, float],
           runs: tuple[float, float]) -> tuple[Scene, dict]:
    """A ball rolls along a ledge that juts out from the wall and reaches its open end ``edge_time`` seconds in
    (after a run of ``runs`` units), then drops to the floor; a prop rests on a shelf in the opposite top corner.
    Words as for :func:`_strike` (``ca``: the ball)."""
    ca, cp = pick_colours(rng, 2)
    r = float(rng.uniform(4.5, 6.0))
    length = float(rng.uniform(*lengths))  # where the ledge ends, from the wall
    y = float(rng.uniform(62.0, 74.0))
    x0 = max(length - float(rng.uniform(*runs)), 2.0 + r)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    speed = _speed_for(length - x0, damping, edge_time)
    a, b, x = (-4.0, y), (length, y), x0
    if sign < 0:
        a, b, x = (132.0, y), (128.0 - length, y), 128.0 - x0
    ledge = Static("ledge", "shelf", a, b, thickness=4.0, friction=0.8, elasticity=0.3, colour="ramp")
    shelf, prop, side = shelf_with_prop(rng, cp, "right" if sign > 0 else "left")
    body = ball("ball_a", ca, x, y - 2.0 - r, r, vx=sign * speed, material="wood")
    body.angular_velocity = sign * speed / r
    scene = Scene(bodies=[body, prop], statics=room() + [ledge, shelf], damping=damping)
    words = {"ca": ca, "cp": cp, "sign": sign, "shape": prop.shape, "side": side, "xa": x0, "length": length,
             "height": y, "speed": speed, "edge_time": edge_time}
    return scene, words


def _way(sign: float) -> str:
    return "right" if sign > 0 else "left"


@register_scenario
class Later(Scenario):
    """A ball glides slowly over ice towards a resting ball, or rolls along a ledge towards its end. Target: the
    same scene one clip-length later, when it strikes the ball or drops off the ledge."""

    name = "temporal_later"
    subset, dimension = "rave", "temporal"
    templates = (
        "Show the scene {dt} later.",
        "What will it look like a moment from now?",
        "Keep the clip running: what happens over the next {dt}?",
        "Fast-forward {dt}. What do we see then?",
        "What happens next?",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        d = ctx.duration
        mode = "strike" if rng.random() < 0.5 else "fall"
        damping = _damping(rng, (0.94, 0.98) if mode == "strike" else (0.88, 0.95), d)
        when = float(rng.uniform(1.06, 1.2) if mode == "strike" else rng.uniform(1.08, 1.25)) * d
        instruction, template = _say(rng, self.templates, dt=_seconds(d))
        if mode == "strike":
            scene, w = _strike(rng, when, damping, (36.0, 46.0))
            ca, cb, cp, sign = w["ca"], w["cb"], w["cp"], w["sign"]
            answer = (f"Time goes on from where the clip ends: the {ca} ball keeps gliding {_way(sign)} over the "
                      f"ice, reaches the {cb} ball and knocks it gliding away {_way(sign)}, stopping dead "
                      f"itself; the {cp} {w['shape']} stays on the shelf.")
            caption = (f"On an icy floor {a_colour(ca)} ball glides {_way(sign)} into {a_colour(cb)} ball, which glides away "
                       f"{_way(sign)} while the {ca} ball stops dead; {a_colour(cp)} {w['shape']} rests on a shelf.")
            checks = [{"kind": "follows", "part": "ball_a"},
                      {"kind": "compare", "stat": "path_length", "part": "ball_b", "op": ">", "against": "value",
                       "value": 8.0}]
            involved = ["ball_a", "ball_b"]
            signature = f"{mode}|{ca}|{cb}|{cp}|{sign}|{q(w['xa'], 6)}|{q(w['gap'], 6)}|{q(when / d, 0.1)}|{w['side']}"
        else:
            scene, w = _ledge(rng, when, damping, (56.0, 72.0), (42.0, 60.0))
            ca, cp, sign = w["ca"], w["cp"], w["sign"]
            answer = (f"Time goes on from where the clip ends: the {ca} ball keeps rolling {_way(sign)} along the "
                      f"ledge, rolls off its end and drops down to the floor; the {cp} {w['shape']} stays on the "
                      f"shelf.")
            caption = (f"{a_colour(ca, True)} ball rolls {_way(sign)} off the end of a ledge and falls to the floor; "
                       f"{a_colour(cp)} {w['shape']} rests on a shelf.")
            checks = [{"kind": "follows", "part": "ball_a"},
                      {"kind": "compare", "stat": "max_y", "part": "ball_a", "op": ">", "offset": 12.0}]
            involved = ["ball_a"]
            signature = (f"{mode}|{ca}|{cp}|{sign}|{q(w['xa'], 6)}|{q(w['length'], 6)}|{q(w['height'], 6)}|"
                         f"{q(when / d, 0.1)}")
        checks.append({"kind": "same", "part": "prop", "tol": 1.5})
        return Episode(Clip(scene, ctx.times()), Clip(scene, ctx.times(start=d)), instruction, answer, caption,
                       involved=involved, preserved=["prop"], checks=checks, signature=signature,
                       params={"mode": mode, "shift": d, "event_time": when, "speed": w["speed"],
                               "damping": damping}, template=template)


@register_scenario
class Earlier(Scenario):
    """The source shows a ball gliding away after being struck, or rolling on the floor after dropping off a
    ledge; the target is the clip-length just before, in which that happened (the drop needs clips of at least
    1.8 s; shorter ones always get the strike)."""

    name = "temporal_earlier"
    subset, dimension = "rave", "temporal"
    templates = (
        "What was happening in the {dt} before this?",
        "Rewind {dt}: what did the scene look like just before?",
        "Show what happened right before this clip starts.",
        "What led up to this? Show the moments just before.",
        "How did it come to this? Show the scene {dt} earlier.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        d = ctx.duration
        mode = "strike" if rng.random() < 0.5 or d < 1.8 else "fall"
        instruction, template = _say(rng, self.templates, dt=_seconds(d))
        if mode == "strike":
            damping = _damping(rng, (0.6, 0.7), d)
            when = float(rng.uniform(0.45, 0.65)) * d
            scene, w = _strike(rng, when, damping, (22.0, 32.0))
            ca, cb, cp, sign = w["ca"], w["cb"], w["cp"], w["sign"]
            answer = (f"Just before, the {cb} ball was still at rest: the {ca} ball came gliding in over the ice "
                      f"from the {_way(-sign)}, struck it and sent it gliding {_way(sign)}, which is where the clip "
                      f"picks up; the {cp} {w['shape']} stays on the shelf.")
            caption = (f"On an icy floor {a_colour(ca)} ball glides {_way(sign)} into {a_colour(cb)} ball resting there and "
                       f"sends it gliding {_way(sign)}; {a_colour(cp)} {w['shape']} rests on a shelf.")
            checks = [{"kind": "precedes", "part": "ball_a"},
                      {"kind": "precedes", "part": "ball_b"},
                      {"kind": "compare", "stat": "path_length", "part": "ball_a", "op": ">", "factor": 1.5},
                      {"kind": "compare", "stat": "mean_x", "part": "ball_b", "op": "<" if sign > 0 else ">",
                       "offset": -4.0 * sign}]
            involved = ["ball_a", "ball_b"]
            signature = f"{mode}|{ca}|{cb}|{cp}|{sign}|{q(w['xa'], 6)}|{q(w['gap'], 6)}|{q(when / d, 0.1)}|{w['side']}"
        else:
            # It must have landed before the clip starts: the drop itself takes about 0.8 s.
            damping = _damping(rng, (0.8, 0.9), d)
            when = min(float(rng.uniform(0.3, 0.42)) * d, d - 1.1)
            scene, w = _ledge(rng, when, damping, (36.0, 46.0), (14.0, min(26.0, 27.0 * when)))
            ca, cp, sign = w["ca"], w["cp"], w["sign"]
            answer = (f"Just before, the {ca} ball was up on the ledge: it rolled {_way(sign)} along it, dropped "
                      f"off its end onto the floor and rolled on, which is where the clip picks up; the {cp} "
                      f"{w['shape']} stays on the shelf.")
            caption = (f"{a_colour(ca, True)} ball rolls {_way(sign)} along a ledge, drops off its end to the floor and "
                       f"rolls on; {a_colour(cp)} {w['shape']} rests on a shelf.")
            checks = [{"kind": "precedes", "part": "ball_a"},
                      {"kind": "compare", "stat": "min_y", "part": "ball_a", "op": "<", "offset": -12.0}]
            involved = ["ball_a"]
            signature = (f"{mode}|{ca}|{cp}|{sign}|{q(w['xa'], 6)}|{q(w['length'], 6)}|{q(w['height'], 6)}|"
                         f"{q(when / d, 0.1)}")
        checks.append({"kind": "same", "part": "prop", "tol": 1.5})
        return Episode(Clip(scene, ctx.times(start=d)), Clip(scene, ctx.times()), instruction, answer, caption,
                       involved=involved, preserved=["prop"], checks=checks, signature=signature,
                       params={"mode": mode, "shift": -d, "event_time": when, "speed": w["speed"],
                               "damping": damping}, template=template)


@register_scenario
class Reverse(Scenario):
    """A ball strikes another, or a thrown ball bounces across the floor. Target: the clip played backwards."""

    name = "temporal_reverse"
    subset, dimension = "rave", "temporal"
    templates = (
        "Play it as if time ran backwards.",
        "What would this look like if time flowed the other way?",
        "Show the clip rewinding, with everything moving backwards.",
        "Imagine the film were run in reverse.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        d = ctx.duration
        mode = "strike" if rng.random() < 0.5 else "bounce"
        instruction, template = _say(rng, self.templates)
        if mode == "strike":
            damping = _damping(rng, (0.6, 0.7), d)
            hit = float(rng.uniform(0.3, 0.5)) * d
            scene, w = _strike(rng, hit, damping, (26.0, 38.0))
            ca, cb, cp, sign = w["ca"], w["cb"], w["cp"], w["sign"]
            answer = (f"Backwards, the {cb} ball glides back {_way(-sign)} over the ice to where it first lay and "
                      f"stops dead as it touches the {ca} ball, which at that moment starts gliding {_way(-sign)} "
                      f"back to where it came from; the {cp} {w['shape']} stays on the shelf.")
            caption = (f"On an icy floor {a_colour(cb)} ball glides {_way(-sign)} up to {a_colour(ca)} ball and stops, and the "
                       f"{ca} ball glides away {_way(-sign)}; {a_colour(cp)} {w['shape']} rests on a shelf.")
            involved = ["ball_a", "ball_b"]
            signature = f"{mode}|{ca}|{cb}|{cp}|{sign}|{q(w['xa'], 6)}|{q(w['gap'], 6)}|{w['side']}"
            params = {"mode": mode, "hit_time": hit, "speed": w["speed"], "damping": damping}
        else:
            ca, cp = pick_colours(rng, 2)
            r = float(rng.uniform(4.5, 6.5))
            sign = 1.0 if rng.random() < 0.5 else -1.0
            x0 = float(rng.uniform(12.0, 28.0))
            y0 = float(rng.uniform(20.0, 45.0))
            vx = float(rng.uniform(30.0, 50.0)) * 2.0 / d
            vy = float(rng.uniform(-30.0, 0.0))
            if sign < 0:
                x0, vx = 128.0 - x0, -vx
            # The shelf stands on the far side, where the hops are already low.
            shelf, prop, side = shelf_with_prop(rng, cp, "right" if sign > 0 else "left")
            scene = Scene(bodies=[ball("ball_a", ca, x0, y0, r, vx=vx, vy=vy), prop], statics=room() + [shelf],
                          damping=0.9)
            answer = (f"Backwards, the {ca} ball bounces {_way(-sign)} across the floor with ever higher hops and "
                      f"ends up in the air where it was first thrown from; the {cp} {prop.shape} stays on the shelf.")
            caption = (f"{a_colour(ca, True)} ball bounces {_way(-sign)} across the floor in growing hops and rises into "
                       f"the air; {a_colour(cp)} {prop.shape} rests on a shelf.")
            involved = ["ball_a"]
            signature = f"{mode}|{ca}|{cp}|{sign}|{q(x0, 8)}|{q(y0, 8)}|{q(vx * d / 2, 8)}|{q(vy, 10)}|{side}"
            params = {"mode": mode, "vx": vx, "vy": vy}
        checks = [{"kind": "reversed", "part": p, "tol": 1.5} for p in involved]
        checks.append({"kind": "same", "part": "prop", "tol": 1.5})
        times = ctx.times()
        return Episode(Clip(scene, times), Clip(scene, times, reverse=True), instruction, answer, caption,
                       involved=involved, preserved=["prop"], checks=checks, signature=signature, params=params,
                       template=template)


@register_scenario
class Slow(Scenario):
    """A ball rolls one way while an ice block slides the other way. Target: the same at half speed."""

    name = "temporal_slow"
    subset, dimension = "rave", "temporal"
    templates = (
        "Show it in slow motion at half speed.",
        "Play this back at half speed, like a slow-motion replay.",
        "What would this look like filmed in slow motion, twice as slow?",
        "Slow everything down to half speed.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        d = ctx.duration
        ca, cb, cp = pick_colours(rng, 3)
        damping = _damping(rng, (0.85, 0.95), d)
        r = float(rng.uniform(4.5, 6.5))
        size = float(rng.uniform(9.0, 13.0))
        sign = 1.0 if rng.random() < 0.5 else -1.0  # the ball rolls this way, the block slides the other way
        xa = float(rng.uniform(12.0, 22.0))
        xb = 128.0 - float(rng.uniform(12.0, 22.0))
        va = _speed_for(float(rng.uniform(30.0, 40.0)), damping, d)
        vb = _speed_for(float(rng.uniform(30.0, 40.0)), damping, d)
        if sign < 0:
            xa, xb = 128.0 - xa, 128.0 - xb
        block = box("block", cb, xb, FLOOR - size / 2, size, size * 0.8, vx=-sign * vb, material="ice")
        block.material.friction = 0.0  # a perfectly slick block: only damping slows it, like the rolling ball
        shelf, prop, side = shelf_with_prop(rng, cp)
        scene = Scene(bodies=[_rolling("ball", ca, xa, r, sign * va), block, prop], statics=room() + [shelf],
                      damping=damping)
        instruction, template = _say(rng, self.templates)
        answer = (f"Everything happens at half the speed: over the same length of clip the {ca} ball rolls only "
                  f"half as far {_way(sign)} and the {cb} ice block slides only half as far {_way(-sign)}; the "
                  f"{cp} {prop.shape} stays on the shelf.")
        caption = (f"{a_colour(ca, True)} ball rolls slowly {_way(sign)} while {a_colour(cb)} block slides slowly "
                   f"{_way(-sign)}; {a_colour(cp)} {prop.shape} rests on a shelf.")
        checks = []
        for part in ("ball", "block"):
            checks += [{"kind": "compare", "stat": "path_length", "part": part, "op": "<", "factor": 0.7},
                       {"kind": "compare", "stat": "path_length", "part": part, "op": ">", "factor": 0.3},
                       {"kind": "compare", "stat": "first_x", "part": part, "op": "<", "offset": 2.0},
                       {"kind": "compare", "stat": "first_x", "part": part, "op": ">", "offset": -2.0}]
        checks.append({"kind": "same", "part": "prop", "tol": 1.5})
        signature = f"{ca}|{cb}|{cp}|{sign}|{q(xa, 6)}|{q(xb, 6)}|{q(va * d, 10)}|{q(vb * d, 10)}|{side}"
        return Episode(Clip(scene, ctx.times()), Clip(scene, ctx.times(speed=0.5)), instruction, answer, caption,
                       involved=["ball", "block"], preserved=["prop"], checks=checks, signature=signature,
                       params={"speed": 0.5, "ball_speed": va, "block_speed": vb, "damping": damping},
                       template=template)
