"""ICVG / emotional: a character's face and body react to what happens to them in the next shot.

- ``emotional_surprised_when_hit``: a ball is lobbed at a character; the next shot shows the hit, the
  face turning surprised (a round open mouth, wide eyes) and the character hopping back or up.
- ``emotional_happy_arrival``: a ball rolls slowly towards a waiting character; when it arrives the face
  breaks into a wide grin and the character jumps for joy, twice.

Characters (shape ``character``) are dynamic boxes with high friction, so they stand and can jump; the
mouth is drawn in a palette colour (``attrs['mouth_colour']``), so it is the perceivable part
``char:mouth`` whose visible area measures the expression (see ``render._draw_character``: neutral is a
line, surprised an "O" about 3x its area, happy a grin about 6x). The reaction is scripted at the
moment of contact, which is found by simulating the scene while it is built: ``Body.keys['expression']``
switches there and ``set_velocity`` events make the character jump. The target samples the same
simulation from where the source ended (``start = duration``).
"""

from __future__ import annotations

import numpy as np

from ...errors import SceneError
from ..physics import DT, _World
from ..scene import Body, Event, Material, Scene
from .base import a_colour, BuildContext, Clip, Episode, Scenario, q, register_scenario, room, shelf_with_prop, variant
from .icvg_camera import pick_cast

FLOOR = 104.0
GRAVITY = 100.0
MAX_TRIES = 20
MAX_FLIGHT = 2.1  # seconds a lobbed ball is in the air at most
PRONOUNS = {"she": ("she", "her", "her"), "he": ("he", "him", "his")}


def _cast(rng: np.random.Generator, n_others: int) -> list[str]:
    """Colours of the character, its mouth, the ball and ``n_others - 1`` more: no mix of face, mouth and ball
    (which touches the character) resembles another colour, and the ball is no hue neighbour of face or mouth."""
    return pick_cast(rng, 2 + n_others, touching=[(0, 1), (0, 2), (1, 2)], apart=[(0, 2), (1, 2)])


def _character(colour: str, mouth: str, x: float, h: float, expression: str) -> Body:
    w = 0.5 * h
    return Body("char", "character", colour, (w, h), (x, FLOOR - 0.5 - h / 2),
                material=Material("body", density=3.0, friction=1.2, elasticity=0.0),
                attrs={"expression": expression, "mouth_colour": mouth})


def _contact_time(scene: Scene, ctx: BuildContext, vx: float) -> float | None:
    """When the ball first touches something that changes its horizontal speed (None if not in time)."""
    d = ctx.duration
    world = _World(scene)
    t0 = max(0.0, d - 1.0 / ctx.fps)
    world.advance_to(t0)
    ball = world.pm["ball"][0]
    for i in range(1, int(round(0.6 * d / DT))):
        if abs(ball.velocity.x - vx) > 1.0:
            return t0 + (i - 2) * DT
        world.advance_to(t0 + i * DT)
    return None


# The mouth's area as a share of the whole figure's, measured from video (perception reads thin mouths a
# little small): neutral <= 0.036, sad 0.027-0.047, surprised 0.044-0.060, happy 0.100-0.138.
SURPRISED_SHARE = 0.040
HAPPY_SHARE = 0.080


def _mouth_share(op: str, value: float) -> list[dict]:
    """A check on the mouth's size relative to the figure: scale-free, so it holds at any zoom or size."""
    return [{"kind": "compare", "stat": "mean_area", "part": "char:mouth", "relative_to": "char", "op": op,
             "against": "value", "value": value}]


@register_scenario
class SurprisedWhenHit(Scenario):
    """A ball is lobbed at a character. Next shot: it hits; the face turns surprised and they hop away."""

    name = "emotional_surprised_when_hit"
    subset, dimension = "icvg", "emotional"
    templates = (
        "How does {she} react when the ball hits {her}?",
        "Show the next moment: the {b} ball reaches {her}. What does {she} do?",
        "What happens to {his} face when the ball lands on {her}?",
        "Next shot: the {b} ball arrives. How does the {c} figure take it?",
        "{She_} never saw it coming. Show {his} reaction.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        d = ctx.duration
        cc, cm, cb = _cast(rng, 1)
        sign = 1.0 if rng.random() < 0.5 else -1.0  # +1: the ball comes from the left
        mode = "recoil" if rng.random() < 0.6 else "jump"
        for _ in range(MAX_TRIES):
            h = float(rng.uniform(38.0, 44.0))
            w = 0.5 * h
            xc = float(rng.uniform(78.0, 94.0))
            r = float(rng.uniform(4.0, 5.5))
            y0 = float(rng.uniform(84.0, 96.0))
            t_aim = d + float(rng.uniform(0.02, 0.15)) * min(d, 2.0) / 2.0
            # A lob of at most ~2 s: in longer clips the ball is thrown in from beyond the frame's edge later on.
            flight = min(t_aim, MAX_FLIGHT)
            launch = t_aim - flight
            x0 = float(rng.uniform(8.0, 20.0)) if launch <= 0 else -2.0 * r
            top = FLOOR - 1.0 - h
            y_hit = top + float(rng.uniform(0.12, 0.45)) * h
            x_hit = xc - (w / 2 + 0.5 + r)
            vx = (x_hit - x0) / flight
            vy = (y_hit - y0 - 0.5 * GRAVITY * flight * flight) / flight
            if y0 - vy * vy / (2 * GRAVITY) < r + 2.0:
                continue  # the lob would leave the top of the frame
            ball = Body("ball", "ball", cb, (r, r), (x0, y0), (vx, vy),
                        material=Material("rubber", density=0.4, friction=0.7, elasticity=0.7))
            char = _character(cc, cm, xc, h, "neutral")
            scene = Scene(bodies=[ball, char], statics=room(walls=False), gravity=(0.0, GRAVITY), damping=1.0,
                          events=[Event(launch, "appear", "ball")] if launch > 0 else [])
            if sign < 0:
                _mirror(scene)
            t_hit = _contact_time(scene, ctx, sign * vx)
            if t_hit is not None and t_hit > d - 1.0 / ctx.fps + 2 * DT:
                break
        else:
            raise SceneError(f"{self.name}: found no throw that hits in the next shot for a {d:g} s clip")
        away = 1.0 if sign > 0 else -1.0
        hop_x = away * float(rng.uniform(10.0, 16.0)) if mode == "recoil" else 0.0
        hop_y = float(rng.uniform(45.0, 60.0))
        target = variant(scene)
        target.body("char").keys = {"expression": [[0.0, "neutral"], [t_hit, "surprised"]]}
        target.events.append(Event(t_hit + 4 * DT, "set_velocity", "char", [hop_x, -hop_y]))
        pron = PRONOUNS["she" if rng.random() < 0.5 else "he"]
        instruction, template = self.phrase(rng, she=pron[0], her=pron[1], his=pron[2], She_=pron[0].capitalize(),
                                            b=cb, c=cc)
        move = "hops back, away from the ball" if mode == "recoil" else "jumps up on the spot"
        answer = (f"The {cb} ball hits the {cc} figure; {pron[0]} is startled: {pron[2]} eyes go wide, {pron[2]} "
                  f"mouth drops open in a round 'O' and {pron[0]} {move}, then lands; the ball bounces off.")
        caption = (f"{a_colour(cb).capitalize()} ball strikes a {cc} figure, whose face changes to a surprised open "
                   f"{cm} mouth and who {move}.")
        checks = [{"kind": "follows", "part": "ball"},
                  *_mouth_share(">", SURPRISED_SHARE), *_mouth_share("<", HAPPY_SHARE),
                  {"kind": "compare", "stat": "min_y", "part": "char", "op": "<", "factor": 0.92}]
        if mode == "recoil":
            checks.append({"kind": "compare", "stat": "net_dx", "part": "char", "op": ">" if away > 0 else "<",
                           "against": "value", "value": 4.0 * away})
        signature = f"{cc}|{cm}|{cb}|{sign}|{mode}|{q(xc, 8)}|{q(h, 3)}|{q(y_hit - top, 6)}"
        return Episode(Clip(scene, ctx.times()), Clip(target, ctx.times(start=d)), instruction, answer, caption,
                       involved=["char", "char:mouth", "ball"], preserved=[], checks=checks, signature=signature,
                       params={"mode": mode, "t_hit": round(t_hit, 4), "hop": [hop_x, hop_y], "height": h},
                       template=template)


@register_scenario
class HappyArrival(Scenario):
    """A ball rolls slowly to a waiting character. Next shot: it arrives; a big grin and jumps for joy."""

    name = "emotional_happy_arrival"
    subset, dimension = "icvg", "emotional"
    templates = (
        "How does {she} feel once the ball finally reaches {her}?",
        "Show {his} reaction when the {b} ball arrives at last.",
        "{She_} has been waiting for that ball. What happens when it gets to {her}?",
        "Continue: the {b} ball rolls up to the {c} figure. How does {she} respond?",
        "Next shot: the long wait is over. Show the {c} figure's mood.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        d = ctx.duration
        cc, cm, cb, cp = _cast(rng, 2)
        sign = 1.0 if rng.random() < 0.5 else -1.0  # +1: the ball comes from the left
        waiting = "neutral" if rng.random() < 0.6 else "sad"
        for _ in range(MAX_TRIES):
            h = float(rng.uniform(38.0, 44.0))
            w = 0.5 * h
            xc = float(rng.uniform(72.0, 98.0))
            r = float(rng.uniform(4.5, 6.5))
            x0 = float(rng.uniform(10.0, 24.0))
            t_aim = d + float(rng.uniform(0.02, 0.15)) * min(d, 2.0) / 2.0
            vx = (xc - (w / 2 + 0.5 + r) - x0) / t_aim
            # A frictionless ball slides exactly like one rolling (it is one colour), stops dead against the
            # character and cannot creep under their feet while they are in the air.
            ball = Body("ball", "ball", cb, (r, r), (x0, FLOOR - r), (vx, 0.0),
                        material=Material("clay", density=1.0, friction=0.0, elasticity=0.05))
            shelf, prop, side = shelf_with_prop(rng, cp, side="left")
            char = _character(cc, cm, xc, h, waiting)
            scene = Scene(bodies=[prop, ball, char], statics=room() + [shelf], gravity=(0.0, GRAVITY), damping=1.0)
            if sign < 0:
                _mirror(scene)
            t_hit = _contact_time(scene, ctx, sign * vx)
            if t_hit is not None and t_hit > d - 1.0 / ctx.fps + 2 * DT:
                break
        else:
            raise SceneError(f"{self.name}: found no roll that arrives in the next shot for a {d:g} s clip")
        hop = float(rng.uniform(42.0, 55.0))
        drift = 4.0 * sign  # each jump lands a little away from the ball, clear of it
        first = t_hit + 0.1
        second = first + 2 * hop / GRAVITY + 0.15
        target = variant(scene)
        target.body("char").keys = {"expression": [[0.0, waiting], [t_hit, "happy"]]}
        target.events += [Event(first, "set_velocity", "char", [drift, -hop]),
                          Event(second, "set_velocity", "char", [drift, -hop])]
        pron = PRONOUNS["she" if rng.random() < 0.5 else "he"]
        instruction, template = self.phrase(rng, she=pron[0], her=pron[1], his=pron[2], She_=pron[0].capitalize(),
                                            b=cb, c=cc)
        answer = (f"When the {cb} ball reaches the {cc} figure, {pron[2]} {waiting} face lights up into a wide open "
                  f"grin and {pron[0]} jumps for joy, twice, next to the ball.")
        caption = (f"{a_colour(cb).capitalize()} ball rolls up to a {cc} figure and stops at {pron[2]} feet; the figure "
                   f"grins widely with a big {cm} mouth and jumps up and down.")
        checks = [{"kind": "follows", "part": "ball"},
                  *_mouth_share(">", HAPPY_SHARE),
                  {"kind": "compare", "stat": "min_y", "part": "char", "op": "<", "factor": 0.92},
                  {"kind": "compare", "stat": "path_length", "part": "char", "op": ">", "factor": 1.0, "offset": 20.0},
                  {"kind": "compare", "stat": "path_length", "part": "ball", "op": "<", "factor": 0.35},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        signature = f"{cc}|{cm}|{cb}|{cp}|{sign}|{waiting}|{q(xc, 8)}|{q(h, 3)}|{side}"
        return Episode(Clip(scene, ctx.times()), Clip(target, ctx.times(start=d)), instruction, answer, caption,
                       involved=["char", "char:mouth", "ball"], preserved=["prop"], checks=checks,
                       signature=signature,
                       params={"waiting": waiting, "t_hit": round(t_hit, 4), "hop": hop, "height": h},
                       template=template)


def _mirror(scene: Scene) -> None:
    """Flip a scene left-right in place (bodies, velocities, spins and statics)."""
    for b in scene.bodies:
        b.position = (128.0 - b.position[0], b.position[1])
        b.velocity = (-b.velocity[0], b.velocity[1])
        b.angular_velocity = -b.angular_velocity
        b.angle = -b.angle
    for s in scene.statics:
        s.a, s.b = (128.0 - s.a[0], s.a[1]), (128.0 - s.b[0], s.b[1])
