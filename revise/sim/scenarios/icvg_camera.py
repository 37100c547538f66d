"""ICVG / camera: the next shot of the same scene, continuing in time, taken with another camera.

- ``camera_zoom``: a close-up on the rolling ball (zoom 2-3x, centred on it, as a cut or a push-in).
- ``camera_pan_follow``: the ball rolls out of the frame; the next shot pans with it and keeps it centred.
- ``camera_reverse_angle``: the same scene seen from the other side (a left-right mirror), so the ball
  now rolls the other way and everything in the room swaps sides.

The target clip samples the *same* simulation from where the source ended (``start = duration``); only
the camera differs, so identity and scene continuity carry over by construction.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import SceneError
from ..scene import PALETTE, Body, Camera, Scene, Static
from .base import a_colour, BuildContext, Clip, Episode, Scenario, ball, box, pick_colours, q, register_scenario, room, \
    shelf_with_prop, variant

FLOOR = 104.0
DAMPING = 0.9


def _travel(v: float, t: float, damping: float = DAMPING) -> float:
    """Distance a body starting at speed ``v`` covers in ``t`` seconds under pymunk's velocity damping."""
    return v * (1.0 - damping ** t) / -math.log(damping)


def _rolling(body_id: str, colour: str, x: float, r: float, vx: float, material: str = "rubber") -> Body:
    """A ball on the floor already rolling (spin matching its speed), so no speed is lost to slipping."""
    b = ball(body_id, colour, x, FLOOR - r, r, vx=vx, material=material)
    b.angular_velocity = vx / r
    return b


HUES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta")  # the palette around the hue circle


def hue_neighbours(colour: str) -> tuple[str, str]:
    """The two palette colours next to ``colour`` on the hue circle."""
    i = HUES.index(colour)
    return HUES[i - 1], HUES[(i + 1) % len(HUES)]


def mixes_into(a: str, b: str, others) -> bool:
    """Whether pixels mixing colours ``a`` and ``b`` (anti-aliased or chroma-subsampled edges where two parts
    touch) would be read by perception as one of the ``others`` colours."""
    ca, cb = np.asarray(PALETTE[a], float), np.asarray(PALETTE[b], float)
    for share in (0.3, 0.5, 0.7):
        mix = share * ca + (1 - share) * cb
        dev = mix - mix.mean()
        for c in others:
            u = np.asarray(PALETTE[c], float)
            u = u - u.mean()
            u /= np.linalg.norm(u)
            proj = float(dev @ u)
            if proj > 0 and math.sqrt(max(float(dev @ dev) - proj * proj, 0.0)) < 0.45 * proj:
                return True
    return False


def pick_cast(rng: np.random.Generator, n: int, touching=(), apart=(), guard=None) -> list[str]:
    """``n`` distinct palette colours for parts that touch in pairs (indices into the cast) without fooling
    perception: no ``touching`` pair mixes into a ``guard`` colour (default: every other colour of the cast),
    and no ``apart`` pair are hue neighbours (their shared edge pixels would pass for either)."""
    for _ in range(2000):
        cast = pick_colours(rng, n)
        if any(cast[j] in hue_neighbours(cast[i]) for i, j in apart):
            continue
        guarded = range(n) if guard is None else guard
        if any(mixes_into(cast[i], cast[j], [cast[k] for k in guarded if k not in (i, j)]) for i, j in touching):
            continue
        return cast
    raise SceneError(f"no {n} palette colours meet the touching constraints {list(touching)}")


@register_scenario
class CameraZoom(Scenario):
    """A ball rolls towards a resting block. Next shot: a close-up that stays on the ball."""

    name = "camera_zoom"
    subset, dimension = "icvg", "camera"
    templates = (
        "Move in closer on the {s} ball.",
        "Give me a close-up of what the {s} ball does next.",
        "Cut to a tighter shot that stays on the {s} ball as it carries on.",
        "Next shot: get right up near the {s} ball and keep watching it.",
        "I want to see the {s} ball up close from here on.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        cs, cb, cp = pick_cast(rng, 3, touching=[(0, 1)], apart=[(0, 1)])  # the ball bumps into the block
        d = ctx.duration
        r = float(rng.uniform(5.0, 6.5))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        x0 = float(rng.uniform(12.0, 22.0))
        v = float(rng.uniform(22.0, 32.0)) * 2.0 / max(d, 0.5)
        size = float(rng.uniform(10.0, 14.0))
        meet = d * float(rng.uniform(1.2, 1.55))  # the ball reaches the block during the next shot
        xb = min(x0 + _travel(v, meet) + r + size / 2 + 0.5, 128.0 - size / 2 - 6.0)
        if sign < 0:
            x0, xb = 128.0 - x0, 128.0 - xb
        shelf, prop, side = shelf_with_prop(rng, cp)
        subject = _rolling("ball", cs, x0, r, sign * v)
        block = box("box", cb, xb, FLOOR - 0.5 - size / 2, size, size, material="wood")
        scene = Scene(bodies=[block, subject, prop], statics=room() + [shelf], damping=DAMPING)

        zoom = float(rng.uniform(2.0, 3.0))
        mode = "cut" if rng.random() < 0.5 else "push"
        times = ctx.times(start=d)
        floor_cy = FLOOR - 36.0 / zoom  # the floor line sits at about 78% of the frame height
        target = variant(scene)
        if mode == "cut":
            target.camera = Camera(cy=floor_cy, zoom=zoom, follow="ball")
        else:  # the next shot opens on the ball at the old framing and pushes in
            ramp = 0.3 * d
            keys = {"zoom": [[d, 1.0], [d + ramp, zoom]], "cy": [[d, 64.0], [d + ramp, floor_cy]]}
            target.camera = Camera(follow="ball", keys=keys)

        instruction, template = self.phrase(rng, s=cs)
        answer = (f"The next shot is a close-up, about {zoom:.1f} times closer, centred on the {cs} ball as it keeps "
                  f"rolling and reaches the {cb} block; the ball fills much more of the frame.")
        caption = (f"Close-up{' (the camera pushes in)' if mode == 'push' else ''}: {a_colour(cs)} ball rolls across the "
                   f"floor in the middle of the frame and bumps into {a_colour(cb)} block.")
        checks = [{"kind": "present", "part": "ball", "share": 0.9},
                  {"kind": "compare", "stat": "mean_area", "part": "ball", "op": ">", "factor": 2.0}]
        signature = f"{cs}|{cb}|{cp}|{mode}|{sign}|{q(zoom, 0.5)}|{q(x0, 8)}|{q(xb, 8)}|{side}"
        return Episode(Clip(scene, ctx.times()), Clip(target, times), instruction, answer, caption,
                       involved=["ball"], preserved=[], checks=checks, signature=signature,
                       params={"mode": mode, "zoom": zoom, "speed": v, "radius": r}, template=template)


@register_scenario
class CameraPanFollow(Scenario):
    """A ball rolls fast out of the frame. Next shot: the camera travels with it, keeping it centred."""

    name = "camera_pan_follow"
    subset, dimension = "icvg", "camera"
    templates = (
        "Follow the {s} ball as it rolls away.",
        "Where does the {s} ball go? Keep it in the shot.",
        "Stay with the {s} ball after it leaves the frame.",
        "Next shot: track the {s} ball on its way.",
        "Don't lose the {s} ball - go after it.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        cs, cm = pick_colours(rng, 2)
        d = ctx.duration
        r = float(rng.uniform(5.0, 7.0))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        x0 = float(rng.uniform(30.0, 50.0))
        # Out of the frame at 45-70% of the source clip.
        leave = d * float(rng.uniform(0.45, 0.7))
        v = (128.0 + r + 2.0 - x0) * -math.log(DAMPING) / (1.0 - DAMPING ** leave)
        xm = float(rng.uniform(10.0, x0 - 14.0))  # a block the ball starts next to (left behind)
        msize = float(rng.uniform(9.0, 13.0))
        spacing = float(rng.uniform(26.0, 40.0))
        post_h = float(rng.uniform(18.0, 30.0))
        end = x0 + _travel(v, 2.0 * d) + 200.0
        if sign < 0:
            x0, xm = 128.0 - x0, 128.0 - xm
        # Grey fence posts every few units along the way: scenery that scrolls past the moving camera.
        posts = []
        offset = float(rng.uniform(0.0, spacing))
        k = 0
        while offset + k * spacing < end:
            px = -40.0 + offset + k * spacing
            px = px if sign > 0 else 128.0 - px
            posts.append(Body(f"post{k}", "box", "ramp", (3.0, post_h), (px, FLOOR - post_h / 2), dynamic=False,
                              perceivable=False))
            k += 1
        floor = Static("floor", "floor", (-1200.0, FLOOR + 4), (1400.0, FLOOR + 4), thickness=8.0, friction=0.8)
        subject = _rolling("ball", cs, x0, r, sign * v)
        marker = box("marker", cm, xm, FLOOR - 0.5 - msize / 2, msize, msize, material="wood")
        scene = Scene(bodies=posts + [marker, subject], statics=[floor], damping=DAMPING)
        target = variant(scene)
        target.camera = Camera(follow="ball")
        instruction, template = self.phrase(rng, s=cs)
        answer = (f"The next shot travels with the {cs} ball: the camera pans along as the ball keeps rolling "
                  f"{'right' if sign > 0 else 'left'}, so the ball stays in the middle of the frame while the fence "
                  f"posts slide past; the {cm} block it started next to is left behind.")
        caption = (f"A tracking shot: {a_colour(cs)} ball rolls along the floor in the centre of the frame while grey "
                   f"posts slide past {'right to left' if sign > 0 else 'left to right'}.")
        checks = [{"kind": "present", "part": "ball", "share": 0.9},
                  {"kind": "compare", "stat": "x_range", "part": "ball", "op": "<", "factor": 0.25}]
        signature = f"{cs}|{cm}|{sign}|{q(x0, 8)}|{q(leave, 0.25)}|{q(spacing, 8)}"
        return Episode(Clip(scene, ctx.times()), Clip(target, ctx.times(start=d)), instruction, answer, caption,
                       involved=["ball"], preserved=[], checks=checks, signature=signature,
                       params={"speed": v, "radius": r, "leave": leave}, template=template)


@register_scenario
class CameraReverseAngle(Scenario):
    """A ball rolls slowly across a room. Next shot: the same room from the opposite side (mirrored)."""

    name = "camera_reverse_angle"
    subset, dimension = "icvg", "camera"
    templates = (
        "Show it from the other side.",
        "Cut to the reverse angle.",
        "Now let's watch the {s} ball from the opposite side of the room.",
        "Turn the camera around: what does the rest of this look like from behind?",
        "Next shot: same moment, seen from the far side.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        cs, cb, cp = pick_colours(rng, 3)
        d = ctx.duration
        r = float(rng.uniform(5.0, 6.5))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        x0 = float(rng.uniform(14.0, 28.0))
        v = float(rng.uniform(15.0, 21.0)) * 2.0 / max(d, 0.5)
        size = float(rng.uniform(10.0, 14.0))
        x_end = x0 + _travel(v, 2.0 * d)
        xb = float(rng.uniform(max(x_end + r + size / 2 + 4.0, 100.0), max(x_end + r + size / 2 + 5.0, 114.0)))
        xb = min(xb, 128.0 - size / 2 - 2.0)
        if sign < 0:
            x0, xb = 128.0 - x0, 128.0 - xb
        shelf, prop, side = shelf_with_prop(rng, cp)
        scene = Scene(bodies=[box("box", cb, xb, FLOOR - 0.5 - size / 2, size, size, material="wood"),
                              _rolling("ball", cs, x0, r, sign * v), prop],
                      statics=room() + [shelf], damping=DAMPING)
        target = variant(scene)
        target.camera = Camera(mirror=True)
        instruction, template = self.phrase(rng, s=cs)
        back = "left" if sign > 0 else "right"
        answer = (f"Seen from the other side, the picture is mirrored: the {cs} ball keeps rolling slowly, but now "
                  f"towards the {back}; the {cb} block it heads for and the shelf with the {cp} {prop.shape} swap "
                  f"sides.")
        caption = (f"{a_colour(cs).capitalize()} ball rolls slowly to the {back} towards {a_colour(cb)} block on the {back}; a "
                   f"shelf with {a_colour(cp)} {prop.shape} hangs on the {'right' if side == 'left' else 'left'} wall.")
        src_dx = "<" if sign > 0 else ">"
        checks = [{"kind": "present", "part": "ball", "share": 0.9},
                  {"kind": "compare", "stat": "net_dx", "part": "ball", "op": src_dx, "factor": -0.5}]
        for part, x in (("box", xb), ("prop", prop.position[0])):
            checks.append({"kind": "compare", "stat": "mean_x", "part": part, "op": "<" if x > 64 else ">",
                           "factor": 0.6 if x > 64 else 1.6})
        signature = f"{cs}|{cb}|{cp}|{sign}|{q(x0, 8)}|{q(v, 4)}|{q(xb, 8)}|{side}"
        return Episode(Clip(scene, ctx.times()), Clip(target, ctx.times(start=d)), instruction, answer, caption,
                       involved=["ball"], preserved=["box", "prop"], checks=checks, signature=signature,
                       params={"speed": v, "radius": r}, template=template)
