"""RAVE / commonsense: the same clip under everyday physical knowledge the instruction only implies.

Each family changes one thing the instruction names indirectly (what a ball is made of, what covers
the floor, which world we are on, where the ice was left, what time of day it is) and re-simulates or
re-scripts the clip; everything the change does not involve (the prop on the shelf, a bystander
block, a ball rolling past) stays exactly as it was, frame for frame.
"""

from __future__ import annotations

import copy

import numpy as np

from ..scene import Body, Lamp, Light, Scene
from .base import a_colour, MATERIALS, BuildContext, Clip, Episode, Scenario, ball, box, pick_colours, q, register_scenario, room, \
    shelf_with_prop, variant

FLOOR = 104.0


def _prop_words(colour: str, prop: Body) -> str:
    return f"the {colour} {'block' if prop.shape == 'box' else 'wedge'} stays on the shelf"


@register_scenario
class MaterialBounce(Scenario):
    """A ball is dropped or tossed. Counterfactual: it is made of clay instead of rubber (or the reverse)."""

    name = "commonsense_material"
    subset, dimension = "rave", "commonsense"
    templates_to_clay = (
        "What if the {c} ball were made of clay instead of rubber?",
        "Imagine the {c} ball is a lump of soft modelling clay rather than a rubber ball.",
        "Suppose someone had swapped the rubber {c} ball for one made of wet clay. What would we see?",
        "How would this look if the {c} ball were clay and not rubber?",
    )
    templates_to_rubber = (
        "What if the {c} ball were made of rubber instead of clay?",
        "Imagine the {c} lump of clay were a bouncy rubber ball instead.",
        "Suppose the {c} ball had been a rubber ball rather than a ball of clay. What changes?",
        "How would this look if the {c} ball were rubber and not clay?",
    )
    templates = templates_to_clay + templates_to_rubber

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        cb, cp = pick_colours(rng, 2)
        mode = "to_clay" if rng.random() < 0.6 else "to_rubber"
        throw = "dropped" if rng.random() < 0.5 else "tossed"
        r = float(rng.uniform(5.0, 7.0))
        drop = float(rng.uniform(32.0, 46.0))  # height of the ball's bottom above the floor
        shelf, prop, side = shelf_with_prop(rng, cp)
        # Keep clear of the shelf: the ball falls in the half of the room away from it.
        lo, hi = (56.0, 96.0) if side == "left" else (32.0, 72.0)
        x0 = float(rng.uniform(lo, hi))
        vx = 0.0 if throw == "dropped" else float(rng.uniform(6.0, 12.0)) * (1.0 if side == "left" else -1.0)
        src_material, tgt_material = ("rubber", "clay") if mode == "to_clay" else ("clay", "rubber")
        statics = room() + [shelf]
        statics[0].elasticity = 1.0  # the floor gives back what the ball's material allows
        scene = Scene(bodies=[ball("ball", cb, x0, FLOOR - r - drop, r, vx=vx, material=src_material), prop],
                      statics=statics, gravity=(0.0, 200.0), damping=0.85)
        target = variant(scene)
        target.body("ball").material = copy.deepcopy(MATERIALS[tgt_material])
        offset, count = (0, len(self.templates_to_clay)) if mode == "to_clay" else \
            (len(self.templates_to_clay), len(self.templates_to_rubber))
        template = offset + int(rng.integers(count))  # the index into ``templates``
        instruction = self.templates[template].format(c=cb)
        verb = "falls" if throw == "dropped" else "is tossed and falls"
        if mode == "to_clay":
            answer = (f"A clay ball does not bounce: the {cb} ball {verb} to the floor, lands with a dull thud and stays "
                      f"down, where the rubber ball bounced back up again and again.")
            caption = f"A {cb} ball {verb} to the floor and stays there without bouncing; {_prop_words(cp, prop)}."
            checks = [{"kind": "compare", "stat": "path_length", "part": "ball", "op": "<", "factor": 0.75}]
        else:
            answer = (f"A rubber ball bounces: the {cb} ball {verb} to the floor and bounces back up several times, "
                      f"each bounce a little lower, where the clay ball just landed with a thud and stayed down.")
            caption = f"A {cb} ball {verb} to the floor and bounces high several times; {_prop_words(cp, prop)}."
            checks = [{"kind": "compare", "stat": "path_length", "part": "ball", "op": ">", "factor": 1.3}]
        checks += [{"kind": "present", "part": "ball"},
                   # it still falls all the way down to the floor
                   {"kind": "compare", "stat": "max_y", "part": "ball", "op": ">", "offset": -10.0},
                   {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{cb}|{cp}|{mode}|{throw}|{q(x0, 16)}|{q(drop, 8)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ball"], preserved=["prop"], checks=checks, signature=signature,
                       params={"mode": mode, "throw": throw, "drop": drop, "vx": vx, "radius": r}, template=template)


@register_scenario
class IcyFloor(Scenario):
    """A crate is shoved and grinds to a halt. Counterfactual: the floor is iced over, so it slides on."""

    name = "commonsense_icy_floor"
    subset, dimension = "rave", "commonsense"
    templates = (
        "What if the floor were covered in ice?",
        "Imagine the same shove, but on a frozen floor.",
        "Suppose the floor had iced over during the night. What happens to the {c} crate now?",
        "What would we see if the {c} crate were pushed across a sheet of ice instead?",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        cc, cp = pick_colours(rng, 2)
        w = float(rng.uniform(12.0, 18.0))
        h = w * float(rng.uniform(0.6, 0.95))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        x0 = float(rng.uniform(12.0, 22.0)) + w / 2
        speed = float(rng.uniform(38.0, 48.0))
        if sign < 0:
            x0 = 128.0 - x0
        shelf, prop, side = shelf_with_prop(rng, cp)
        crate = box("crate", cc, x0, FLOOR - h / 2, w, h, vx=sign * speed, material="wood")
        scene = Scene(bodies=[crate, prop], statics=room() + [shelf], damping=0.9)
        target = variant(scene)
        floor = target.statics[0]
        floor.colour, floor.friction, floor.elasticity = "ice_floor", 0.02, 0.1
        instruction, template = self.phrase(rng, c=cc)
        answer = (f"Ice is very slippery, so the {cc} crate barely slows down: instead of scraping to a stop after a "
                  f"short distance it glides on across the pale, icy floor, much farther than before.")
        caption = (f"A {cc} crate slides a long way across a pale, icy floor, hardly slowing down; "
                   f"{_prop_words(cp, prop)}.")
        checks = [{"kind": "present", "part": "crate"},
                  {"kind": "compare", "stat": "path_length", "part": "crate", "op": ">", "factor": 2.0},
                  {"kind": "compare", "stat": "abs_net_dx", "part": "crate", "op": ">", "factor": 2.0},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{cc}|{cp}|{sign}|{q(w, 4)}|{q(speed, 8)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["crate"], preserved=["prop"], checks=checks, signature=signature,
                       params={"speed": speed, "width": w, "height": h}, template=template)


@register_scenario
class MoonGravity(Scenario):
    """A ball is tossed upward and across. Counterfactual: on the Moon (a sixth of the gravity)."""

    name = "commonsense_moon_gravity"
    subset, dimension = "rave", "commonsense"
    templates = (
        "What if this happened on the Moon?",
        "Imagine the same throw made by an astronaut on the lunar surface.",
        "Suppose we were standing on the Moon when the {c} ball was tossed. How would it fly?",
        "What would the toss of the {c} ball look like in the Moon's gravity?",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        cb, cp = pick_colours(rng, 2)
        r = float(rng.uniform(4.5, 6.0))
        g = float(rng.uniform(300.0, 360.0))
        t_peak = float(rng.uniform(1.0, 1.2))  # time to the top of the arc on the Moon
        vy = -g / 6.0 * t_peak
        vx = float(rng.uniform(20.0, 28.0))
        release = float(rng.uniform(18.0, 28.0))  # release height of the ball's bottom above the floor
        sign = 1.0 if rng.random() < 0.5 else -1.0
        x0 = float(rng.uniform(12.0, 20.0))
        if sign < 0:
            x0 = 128.0 - x0
        # The shelf hangs where the ball never goes: above the far end of the room.
        shelf, prop, side = shelf_with_prop(rng, cp, side="right" if sign > 0 else "left")
        scene = Scene(bodies=[ball("ball", cb, x0, FLOOR - r - release, r, vx=sign * vx, vy=vy, material="wood"), prop],
                      statics=room() + [shelf], gravity=(0.0, g), damping=0.95)
        target = variant(scene)
        target.gravity = (0.0, g / 6.0)
        instruction, template = self.phrase(rng, c=cb)
        answer = (f"The Moon's gravity is about a sixth of the Earth's, so the {cb} ball rises much higher and floats "
                  f"along a slow, wide arc before it comes down, instead of a quick low hop to the floor.")
        caption = (f"A {cb} ball is tossed up and drifts slowly along a high arc across the room; "
                   f"{_prop_words(cp, prop)}.")
        checks = [{"kind": "present", "part": "ball"},
                  {"kind": "compare", "stat": "min_y", "part": "ball", "op": "<", "offset": -10.0},
                  # the slow, floating arc has not come back down to the floor by the end of the clip
                  {"kind": "compare", "stat": "max_y", "part": "ball", "op": "<", "offset": -6.0},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{cb}|{cp}|{sign}|{q(g, 40)}|{q(t_peak, 0.1)}|{q(release, 8)}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ball"], preserved=["prop"], checks=checks, signature=signature,
                       params={"gravity": g, "moon_gravity": g / 6.0, "vx": vx, "vy": vy, "release": release},
                       template=template)


@register_scenario
class MeltingIce(Scenario):
    """An ice cube sits in the shade, unchanged. Counterfactual: in bright sunshine it melts into a puddle."""

    name = "commonsense_melting_ice"
    subset, dimension = "rave", "commonsense"
    templates = (
        "What if the ice cube had been left in the sunshine?",
        "Imagine the sun had been blazing down on the ice cube the whole time.",
        "Suppose someone had put the ice cube out in the bright midday sun. What would we see?",
        "What if the ice cube had been sitting in a hot, sunny spot instead of in the shade?",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        cube_colour, puddle_colour = "cyan", "blue"
        cb, cp = pick_colours(rng, 2, exclude=(cube_colour, puddle_colour))
        w0 = float(rng.uniform(12.0, 18.0))
        h0 = w0 * float(rng.uniform(0.85, 1.05))
        shelf, prop, side = shelf_with_prop(rng, cp)
        xi = float(rng.uniform(44.0, 84.0))
        # A wooden block stands beside the ice: sunshine does not melt wood.
        bw = float(rng.uniform(9.0, 13.0))
        bh = bw * float(rng.uniform(0.8, 1.4))
        gap = float(rng.uniform(26.0, 34.0))
        xb = xi - gap if xi > 64 else xi + gap
        shade = float(rng.uniform(0.82, 0.9))
        sun = float(rng.uniform(1.1, 1.15))
        melt = float(rng.uniform(0.3, 0.45))  # height left at the end of the clip, as a share
        end = ctx.duration - 1.0 / ctx.fps
        cube = box("ice", cube_colour, xi, FLOOR - h0 / 2, w0, h0, material="ice", dynamic=False)
        block = box("block", cb, xb, FLOOR - bh / 2, bw, bh, material="wood", dynamic=False)
        scene = Scene(bodies=[cube, block, prop], statics=room() + [shelf], light=Light(ambient=shade))
        target = variant(scene)
        target.light = Light(ambient=sun)
        h1, w1 = h0 * melt, w0 * float(rng.uniform(0.55, 0.65))
        ice = target.body("ice")
        ice.keys = {"h": [[0.0, h0], [end, h1]], "w": [[0.0, w0], [end, w1]],
                    "y": [[0.0, FLOOR - h0 / 2], [end, FLOOR - h1 / 2]]}
        pw0, pw1 = w0 * 0.7, w0 * float(rng.uniform(2.4, 2.8))
        ph0, ph1 = 1.6, 3.0
        puddle = Body("puddle", "puddle", puddle_colour, (pw0, ph0), (xi, FLOOR + 0.5 + ph0 / 2), dynamic=False,
                      material=ice.material, keys={"w": [[0.0, pw0], [end, pw1]], "h": [[0.0, ph0], [end, ph1]],
                                                   "y": [[0.0, FLOOR + 0.5 + ph0 / 2], [end, FLOOR + 0.5 + ph1 / 2]]})
        target.bodies.insert(0, puddle)  # drawn first: the ice sits in its own meltwater
        instruction, template = self.phrase(rng)
        answer = (f"In the hot sun the ice cube melts as we watch: it shrinks and slumps, and a spreading {puddle_colour} "
                  f"puddle of meltwater forms around it; the scene is brighter, and the {cb} wooden block beside it "
                  f"does not change, since wood does not melt.")
        caption = (f"In bright sunlight {a_colour(cube_colour)} ice cube shrinks steadily while {a_colour(puddle_colour)} puddle spreads "
                   f"out beneath it; {a_colour(cb)} block stands unchanged beside it and {_prop_words(cp, prop)}.")
        checks = [{"kind": "present", "part": "ice"},
                  {"kind": "compare", "stat": "last_area", "part": "ice", "op": "<", "factor": 0.6},
                  {"kind": "compare", "stat": "area_change", "part": "ice", "op": "<", "offset": -0.25 * w0 * h0},
                  {"kind": "present", "part": "puddle"},
                  {"kind": "compare", "stat": "area_change", "part": "puddle", "op": ">", "offset": 0.5 * w0 * ph0},
                  {"kind": "compare", "stat": "brightness", "op": ">", "factor": 1.12},
                  {"kind": "same", "part": "block", "tol": 1.5},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{cb}|{cp}|{q(xi, 16)}|{xb > xi}|{q(w0, 4)}|{q(melt, 0.1)}|{side}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["ice", "puddle"], preserved=["block", "prop"], checks=checks, signature=signature,
                       params={"shade": shade, "sun": sun, "melt": melt, "size": w0}, template=template)


@register_scenario
class Nightfall(Scenario):
    """A ball rolls across a room by day. Counterfactual: dusk falls during the clip and the lamp comes on."""

    name = "commonsense_nightfall"
    subset, dimension = "rave", "commonsense"
    templates = (
        "What if night fell while we watched?",
        "Imagine the sun setting during this clip.",
        "Suppose this had been filmed at dusk, just as it got dark. What would we see?",
        "What if evening came on while the {c} ball was rolling?",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        lamp_colour = "yellow" if rng.random() < 0.6 else "orange"
        cb, cp = pick_colours(rng, 2, exclude=("yellow", "orange"))
        lamp_side = "left" if rng.random() < 0.5 else "right"
        shelf, prop, side = shelf_with_prop(rng, cp, side="right" if lamp_side == "left" else "left")
        pole = float(rng.uniform(40.0, 52.0))
        head = float(rng.uniform(10.0, 13.0))
        xl = float(rng.uniform(12.0, 20.0))
        r = float(rng.uniform(5.0, 6.5))
        speed = float(rng.uniform(30.0, 40.0))
        xs = xl + float(rng.uniform(16.0, 24.0))
        sign = 1.0
        if lamp_side == "right":
            xl, xs, sign = 128.0 - xl, 128.0 - xs, -1.0
        lamp = Body("lamp", "lamp", lamp_colour, (head, pole), (xl, FLOOR), dynamic=False, attrs={"lit": 0})
        rolling = ball("ball", cb, xs, FLOOR - r, r, vx=sign * speed, material="rubber")
        glow_r = float(rng.uniform(26.0, 34.0))
        scene = Scene(bodies=[lamp, rolling, prop], statics=room() + [shelf], damping=0.85,
                      light=Light(ambient=1.0, lamps=[Lamp(xl, FLOOR - pole, glow_r, 0.0)]))
        dark = float(rng.uniform(0.35, 0.45))
        t_dark = float(rng.uniform(0.55, 0.75)) * ctx.duration
        t_on = float(rng.uniform(0.3, 0.45)) * ctx.duration
        intensity = float(rng.uniform(0.55, 0.75))
        target = variant(scene)
        target.light.keys = [[0.0, 1.0], [t_dark, dark]]
        target.light.lamps[0].keys = [[0.0, 0.0], [t_on, 0.0], [t_on + 0.25, intensity]]
        target.body("lamp").keys = {"lit": [[0.0, 0], [t_on, 0], [t_on, 1]]}
        instruction, template = self.phrase(rng, c=cb)
        answer = (f"The room darkens steadily as night falls, and partway through the {lamp_colour} lamp is switched "
                  f"on and casts a warm pool of light; the {cb} ball rolls exactly as before and the prop on the "
                  f"shelf stays put, because nightfall changes the light, not the motion.")
        caption = (f"A {cb} ball rolls across a room that grows dark; partway through a standing lamp lights up with a "
                   f"{lamp_colour} glow; {_prop_words(cp, prop)}.")
        checks = [{"kind": "compare", "stat": "last_brightness", "op": "<", "factor": 0.75},
                  {"kind": "compare", "stat": "presence", "part": "lamp", "op": ">", "offset": 0.3},
                  {"kind": "same", "part": "ball", "tol": 1.5},
                  {"kind": "same", "part": "prop", "tol": 1.5}]
        times = ctx.times()
        signature = f"{cb}|{cp}|{lamp_colour}|{lamp_side}|{q(speed, 8)}|{q(dark, 0.1)}|{q(t_on, 0.5)}"
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["lamp"], preserved=["ball", "prop"], checks=checks, signature=signature,
                       params={"dark": dark, "t_dark": t_dark, "t_on": t_on, "lamp_intensity": intensity,
                               "glow_radius": glow_r}, template=template)
