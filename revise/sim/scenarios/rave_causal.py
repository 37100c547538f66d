"""RAVE / causal: remove or add a cause and re-simulate; change how hard the cause acts."""

from __future__ import annotations

import numpy as np

from ..scene import Scene
from .base import a_colour, BuildContext, Clip, Episode, Scenario, ball, box, pick_colours, q, register_scenario, room, \
    shelf_with_prop, variant

FLOOR = 104.0


@register_scenario
class RemoveStriker(Scenario):
    """A ball rolls into a resting ball. Counterfactual: the striker was never there / never rolled."""

    name = "causal_remove_striker"
    subset, dimension = "rave", "causal"
    templates_absent = (
        "What if the {a} ball had never been there?",
        "Imagine the scene without the {a} ball at all.",
        "Suppose nobody had ever put the {a} ball in the room. What would we see?",
    )
    templates_still = (
        "What if the {a} ball had never been rolled?",
        "Imagine nobody had given the {a} ball a push.",
        "Show what happens if the {a} ball is left alone instead of being rolled.",
    )
    templates = templates_absent + templates_still

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        ca, cb, cp = pick_colours(rng, 3)
        r = float(rng.uniform(5.0, 7.0))
        from_left = rng.random() < 0.5
        xa = float(rng.uniform(14.0, 24.0))
        xb = float(rng.uniform(56.0, 70.0))
        speed = float(rng.uniform(55.0, 75.0))
        if not from_left:
            xa, xb, speed = 128.0 - xa, 128.0 - xb, -speed
        shelf, prop, side = shelf_with_prop(rng, cp)
        scene = Scene(bodies=[ball("ball_a", ca, xa, FLOOR - r, r, vx=speed), ball("ball_b", cb, xb, FLOOR - r, r), prop],
                      statics=room() + [shelf], damping=0.8)
        mode = "absent" if rng.random() < 0.5 else "still"
        target = variant(scene)
        instruction, template = self.phrase(rng, self.templates_absent if mode == "absent" else self.templates_still, a=ca)
        if mode == "absent":
            target.bodies = [b for b in target.bodies if b.id != "ball_a"]
            answer = f"Without the {ca} ball nothing hits the {cb} ball, so the {cb} ball stays where it is; the {ca} ball is gone."
            caption = f"{a_colour(cb, True)} ball rests on the floor the whole time; the {cp} {prop.shape} stays on the shelf."
            checks = [{"kind": "absent", "part": "ball_a"}]
        else:
            target.body("ball_a").velocity = (0.0, 0.0)
            answer = f"The {ca} ball stays where it was and never reaches the {cb} ball, which therefore stays at rest too."
            caption = f"{a_colour(ca, True)} ball and {a_colour(cb)} ball rest on the floor without moving; the {cp} {prop.shape} stays on the shelf."
            checks = [{"kind": "present", "part": "ball_a"},
                      {"kind": "compare", "stat": "path_length", "part": "ball_a", "op": "<", "against": "value", "value": 4.0}]
        checks.append({"kind": "compare", "stat": "path_length", "part": "ball_b", "op": "<", "against": "value", "value": 4.0})
        checks.append({"kind": "same", "part": "prop", "tol": 1.5})
        times = ctx.times()
        signature = f"{ca}|{cb}|{cp}|{mode}|{from_left}|{q(xa, 8)}|{q(xb, 8)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ball_a", "ball_b"], preserved=["prop"], checks=checks, signature=signature,
                       params={"mode": mode, "speed": speed}, template=template)


@register_scenario
class HarderPush(Scenario):
    """A ball is pushed gently and stops short of another. Counterfactual: a much harder push."""

    name = "causal_harder_push"
    subset, dimension = "rave", "causal"
    templates = (
        "What if the {a} ball had been pushed much harder?",
        "Imagine someone had shoved the {a} ball with far more force.",
        "Suppose the push on the {a} ball had been a lot stronger. What happens then?",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        ca, cb, cp = pick_colours(rng, 3)
        r = float(rng.uniform(5.0, 6.5))
        xa = float(rng.uniform(12.0, 20.0))
        gap = float(rng.uniform(42.0, 50.0))
        v0 = float(rng.uniform(26.0, 32.0))
        factor = float(rng.uniform(3.8, 4.4))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if sign < 0:
            xa = 128.0 - xa
        xb = xa + sign * gap
        shelf, prop, side = shelf_with_prop(rng, cp)
        scene = Scene(bodies=[ball("ball_a", ca, xa, FLOOR - r, r, vx=sign * v0, material="clay"),
                              ball("ball_b", cb, xb, FLOOR - r, r, material="clay"), prop],
                      statics=room() + [shelf], damping=0.5)
        target = variant(scene)
        target.body("ball_a").velocity = (sign * v0 * factor, 0.0)
        instruction, template = self.phrase(rng, a=ca)
        answer = (f"Pushed harder, the {ca} ball rolls much farther and faster; it reaches the {cb} ball and knocks it "
                  f"along, where before it stopped short of it.")
        caption = (f"{a_colour(ca, True)} ball rolls fast across the floor, hits {a_colour(cb)} ball and sends it rolling; "
                   f"the {cp} {prop.shape} stays on the shelf.")
        checks = [{"kind": "compare", "stat": "path_length", "part": "ball_a", "op": ">", "factor": 1.4},
                  {"kind": "compare", "stat": "path_length", "part": "ball_b", "op": ">", "offset": 5.0},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{ca}|{cb}|{cp}|{sign}|{q(xa, 8)}|{q(gap, 8)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ball_a", "ball_b"], preserved=["prop"], checks=checks, signature=signature,
                       params={"v0": v0, "factor": factor}, template=template)


@register_scenario
class AddObstacle(Scenario):
    """A ball rolls freely. Counterfactual: a heavy crate stands in its way from the start."""

    name = "causal_add_obstacle"
    subset, dimension = "rave", "causal"
    templates = (
        "What if {ac} crate had been standing in the {a} ball's way?",
        "Imagine someone had left a heavy {c} crate in the path of the {a} ball.",
        "Suppose the {a} ball's path had been blocked by {ac} crate.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        ca, cc, cp = pick_colours(rng, 3)
        r = float(rng.uniform(5.0, 6.5))
        xa = float(rng.uniform(12.0, 22.0))
        speed = float(rng.uniform(50.0, 65.0))
        xc = float(rng.uniform(58.0, 72.0))
        size = float(rng.uniform(14.0, 18.0))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if sign < 0:
            xa, xc = 128.0 - xa, 128.0 - xc
        shelf, prop, side = shelf_with_prop(rng, cp)
        scene = Scene(bodies=[ball("ball_a", ca, xa, FLOOR - r, r, vx=sign * speed), prop],
                      statics=room(walls=False) + [shelf], damping=0.85)
        target = variant(scene)
        crate = box("crate", cc, xc, FLOOR - size / 2, size, size, material="steel")
        target.bodies.insert(1, crate)
        instruction, template = self.phrase(rng, a=ca, c=cc, ac=a_colour(cc))
        answer = (f"The {ca} ball rolls into the {cc} crate, bounces back off it and ends up behind it instead of "
                  f"rolling on across the room; the heavy crate barely moves.")
        caption = f"{a_colour(ca, True)} ball rolls into {a_colour(cc)} crate standing on the floor and bounces back; the {cp} {prop.shape} stays on the shelf."
        checks = [{"kind": "present", "part": "crate"},
                  {"kind": "compare", "stat": "abs_net_dx", "part": "ball_a", "op": "<", "factor": 0.7},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{ca}|{cc}|{cp}|{sign}|{q(xa, 8)}|{q(xc, 8)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ball_a", "crate"], preserved=["prop"], checks=checks, signature=signature,
                       params={"speed": speed, "crate": size}, template=template)
