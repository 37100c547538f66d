"""ICVG / commonsense: the *next shot* of a slow everyday process, much later in time.

The source clip shows a process that has just started or is going on slowly (a candle burning, a
seedling growing, a glass filling under a tap); the target is the next, related shot: the same objects
much later (an hour, a few weeks, a while), possibly framed a little differently. It is not
pixel-aligned: what must carry over is identity (the same candle colour, the same pot, the same water,
the prop on the shelf), and how far the process has gone is what the instruction leaves to commonsense.

Checks on areas account for the target's camera zoom (areas scale with its square).
"""

from __future__ import annotations

import numpy as np

from ..scene import Body, Camera, Scene, Static
from .base import a_colour, BuildContext, Clip, Episode, Scenario, pick_colours, q, register_scenario, room, shelf_with_prop, \
    variant

FLOOR = 104.0
HALF = 64.0  # half the world's width / height: at zoom z the camera shows HALF / z either side of its centre


def next_shot_camera(rng: np.random.Generator, keep: list[tuple[float, float, float, float]], focus: tuple[float, float],
                     margin: float = 4.0) -> tuple[Camera, str, str]:
    """A camera for the next shot that keeps every ``(x0, x1, y0, y1)`` box of ``keep`` in view.

    Returns ``(camera, mode, words)``: mode ``same`` (the source framing), ``closer`` (a slight zoom in
    on ``focus``) or ``pan_left`` / ``pan_right`` (the camera moved sideways), and a caption phrase.
    """
    x0 = min(k[0] for k in keep) - margin
    x1 = max(k[1] for k in keep) + margin
    y0 = min(k[2] for k in keep) - margin
    y1 = max(k[3] for k in keep) + margin
    u = rng.random()
    mode = "same" if u < 0.3 else ("closer" if u < 0.65 else "pan")
    if mode == "closer":
        for zoom in (float(rng.uniform(1.1, 1.2)), 1.08, 1.05):
            half = HALF / zoom
            cx_lo, cx_hi = x1 - half, x0 + half
            cy_lo, cy_hi = y1 - half, y0 + half
            if cx_lo <= cx_hi and cy_lo <= cy_hi:
                cx = float(np.clip(focus[0], cx_lo, cx_hi))
                cy = float(np.clip(focus[1], cy_lo, cy_hi))
                return Camera(cx=cx, cy=cy, zoom=zoom), "closer", "seen from a little closer"
        mode = "pan"
    if mode == "pan":
        shift = float(rng.uniform(6.0, 10.0)) * (1.0 if rng.random() < 0.5 else -1.0)
        cx = float(np.clip(HALF + shift, x1 - HALF, x0 + HALF))
        if abs(cx - HALF) >= 3.0:
            side = "right" if cx > HALF else "left"
            return Camera(cx=cx), f"pan_{side}", f"with the camera moved a little to the {side}"
    return Camera(), "same", "from the same viewpoint"


def _prop_words(colour: str, prop: Body) -> str:
    return f"the {colour} {'block' if prop.shape == 'box' else 'wedge'} still sits on its shelf"


def _zoom2(camera: Camera) -> float:
    return camera.zoom * camera.zoom


def _prop_box(prop: Body) -> tuple[float, float, float, float]:
    w, h = prop.size
    return (prop.position[0] - w / 2, prop.position[0] + w / 2, prop.position[1] - h / 2, prop.position[1] + h / 2)


@register_scenario
class CandleLater(Scenario):
    """A lit candle burning slowly. Next shot: an hour later, burned well down (or burned out, if short)."""

    name = "icvg_candle"
    subset, dimension = "icvg", "commonsense"
    templates = (
        "Show the same candle an hour later.",
        "What does this candle look like after another hour?",
        "Cut to the same {c} candle an hour from now.",
        "Imagine we come back to this candle an hour later. Show that shot.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        flame = "yellow" if rng.random() < 0.5 else "orange"
        cc, cp = pick_colours(rng, 2, exclude=("yellow", "orange"))
        mode = "burning" if rng.random() < 0.65 else "burnt_out"
        w = float(rng.uniform(7.0, 10.0))
        h0 = float(rng.uniform(36.0, 46.0)) if mode == "burning" else float(rng.uniform(12.0, 18.0))
        burn = float(rng.uniform(1.0, 2.0))  # wax lost during one clip: slow, but not nothing
        xc = float(rng.uniform(44.0, 84.0))
        end = ctx.duration - 1.0 / ctx.fps
        shelf, prop, side = shelf_with_prop(rng, cp)
        candle = Body("candle", "candle", cc, (w, h0), (xc, FLOOR), dynamic=False, attrs={"flame_colour": flame},
                      keys={"h": [[0.0, h0], [end, h0 - burn]]})
        scene = Scene(bodies=[candle, prop], statics=room() + [shelf])
        target = variant(scene)
        c = target.body("candle")
        if mode == "burning":
            h1 = h0 * float(rng.uniform(0.35, 0.55))
            c.keys = {"h": [[0.0, h1], [end, h1 - burn]]}
            wax = w * 2.2
        else:
            h1 = float(rng.uniform(2.5, 3.5))
            c.size = (w, h1)
            c.keys = {}
            c.attrs["lit"] = 0
            wax = w * 2.8
        # The melted wax has pooled around the base (plain white: not a perceivable part).
        target.bodies.insert(0, Body("wax", "puddle", "white", (wax, 2.4), (xc, FLOOR + 1.2), dynamic=False,
                                     perceivable=False))
        camera, cam_mode, cam_words = next_shot_camera(
            rng, [_prop_box(prop), (xc - wax / 2, xc + wax / 2, FLOOR - h1 - w * 2.2, FLOOR + 2)], (xc, FLOOR - h1 - 10))
        target.camera = camera
        z2 = _zoom2(camera)
        instruction, template = self.phrase(rng, c=cc)
        if mode == "burning":
            share = "less than half" if h1 < 0.45 * h0 else "about half"
            answer = (f"An hour on, the {cc} candle has burned a long way down: it is {share} as tall as before, melted "
                      f"wax has pooled at its base, and it is still burning with the same {flame} flame.")
            caption = (f"A short {cc} candle, burned down to {share} its former height with wax pooled at its foot, "
                       f"still burning with {a_colour(flame)} flame; {_prop_words(cp, prop)}; {cam_words}.")
            checks = [{"kind": "present", "part": "candle:flame"},
                      {"kind": "compare", "stat": "last_area", "part": "candle", "op": "<", "factor": 0.65 * z2}]
        else:
            answer = (f"The {cc} candle was only a short stub, so an hour is longer than it could last: it has burned "
                      f"right down to a flat stub in a pool of wax and the flame has gone out.")
            caption = (f"A tiny stub of {cc} candle in a pool of wax, no longer burning; {_prop_words(cp, prop)}; "
                       f"{cam_words}.")
            checks = [{"kind": "absent", "part": "candle:flame"},
                      {"kind": "compare", "stat": "last_area", "part": "candle", "op": "<", "factor": 0.4 * z2}]
        checks = [{"kind": "present", "part": "candle"}] + checks + [{"kind": "present", "part": "prop"}]
        signature = f"{cc}|{flame}|{cp}|{mode}|{q(h0, 8)}|{q(xc, 16)}|{side}|{cam_mode}"
        times = ctx.times()
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["candle", "candle:flame"], preserved=["prop"], checks=checks, signature=signature,
                       params={"mode": mode, "height": h0, "later_height": h1, "camera": cam_mode,
                               "zoom": camera.zoom, "cx": camera.cx, "cy": camera.cy}, template=template)


@register_scenario
class PlantLater(Scenario):
    """A seedling in a pot. Next shot: a few weeks later, a tall leafy plant in the same pot."""

    name = "icvg_plant"
    subset, dimension = "icvg", "commonsense"
    templates = (
        "Show this plant a few weeks later.",
        "What will the seedling in the {p} pot look like in a month?",
        "Cut to the same pot a few weeks on.",
        "Imagine we come back to this plant after three weeks of watering. Show it.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        pot, cp = pick_colours(rng, 2, exclude=("green",))
        w = float(rng.uniform(12.0, 16.0))
        pot_h = w * 0.8
        h0 = float(rng.uniform(4.0, 7.0))
        leaves0 = 2
        h1 = float(rng.uniform(28.0, 38.0))
        leaves1 = int(rng.integers(5, 9))
        xp = float(rng.uniform(44.0, 84.0))
        end = ctx.duration - 1.0 / ctx.fps
        shelf, prop, side = shelf_with_prop(rng, cp)
        plant = Body("plant", "plant", "green", (w, h0), (xp, FLOOR), dynamic=False,
                     attrs={"pot_colour": pot, "leaves": leaves0}, keys={"h": [[0.0, h0], [end, h0 + 0.5]]})
        scene = Scene(bodies=[plant, prop], statics=room() + [shelf])
        target = variant(scene)
        p = target.body("plant")
        p.size = (w, h1)
        p.attrs["leaves"] = leaves1
        p.keys = {"h": [[0.0, h1], [end, h1 + 0.8]]}
        camera, cam_mode, cam_words = next_shot_camera(
            rng, [_prop_box(prop), (xp - w, xp + w, FLOOR - pot_h - h1 - 3, FLOOR + 2)], (xp, FLOOR - pot_h - h1 / 2))
        target.camera = camera
        z2 = _zoom2(camera)
        instruction, template = self.phrase(rng, p=pot)
        answer = (f"Weeks of growth: the tiny seedling has become a tall green plant with {leaves1} leaves along its "
                  f"stem, still growing in the same {pot} pot.")
        caption = (f"A tall green plant with {leaves1} leaves stands in {a_colour(pot)} pot on the floor; "
                   f"{_prop_words(cp, prop)}; {cam_words}.")
        checks = [{"kind": "present", "part": "plant"},
                  {"kind": "compare", "stat": "last_area", "part": "plant", "op": ">", "factor": 2.0 * z2},
                  {"kind": "present", "part": "plant:pot"},
                  # the same pot: its size is unchanged (up to the new framing)
                  {"kind": "compare", "stat": "mean_area", "part": "plant:pot", "op": ">", "factor": 0.75 * z2},
                  {"kind": "compare", "stat": "mean_area", "part": "plant:pot", "op": "<", "factor": 1.33 * z2},
                  {"kind": "present", "part": "prop"}]
        signature = f"{pot}|{cp}|{q(w, 4)}|{q(h1, 8)}|{leaves1}|{q(xp, 16)}|{side}|{cam_mode}"
        times = ctx.times()
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["plant"], preserved=["plant:pot", "prop"], checks=checks, signature=signature,
                       params={"height": h0, "later_height": h1, "leaves": leaves1, "camera": cam_mode,
                               "zoom": camera.zoom, "cx": camera.cx, "cy": camera.cy}, template=template)


@register_scenario
class GlassLater(Scenario):
    """A tap has just started filling a glass. Next shot: a while later, the glass is nearly full."""

    name = "icvg_glass"
    subset, dimension = "icvg", "commonsense"
    templates = (
        "What will the glass look like once the tap has run for a while?",
        "Show the glass after the tap has been left running for a bit.",
        "Cut to the same glass a little while later, with the water still on.",
        "Imagine nobody turns the tap off for a while. Show the glass then.",
    )

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:
        water = "blue" if rng.random() < 0.6 else "cyan"
        cp, = pick_colours(rng, 1, exclude=("blue", "cyan"))
        w = float(rng.uniform(13.0, 18.0))
        h = float(rng.uniform(20.0, 28.0))
        xg = float(rng.uniform(48.0, 80.0))
        gap = float(rng.uniform(6.0, 10.0))
        f0 = float(rng.uniform(0.02, 0.05))
        rate = float(rng.uniform(0.06, 0.1))  # fill gained during one clip
        f1 = float(rng.uniform(0.72, 0.86))
        end = ctx.duration - 1.0 / ctx.fps
        shelf, prop, side = shelf_with_prop(rng, cp)
        # The tap comes down from above on the side away from the shelf.
        sign = 1.0 if side == "left" else -1.0
        spout_y = FLOOR - h - gap
        pipe_x = xg + sign * 24.0
        tap = [Static("tap_riser", "wall", (pipe_x, 0.0), (pipe_x, spout_y - 3.0), thickness=3.0, colour="ramp"),
               Static("tap_pipe", "wall", (pipe_x, spout_y - 3.0), (xg, spout_y - 3.0), thickness=3.0, colour="ramp"),
               Static("tap_spout", "wall", (xg, spout_y - 3.0), (xg, spout_y), thickness=3.0, colour="ramp")]
        glass = Body("glass", "glass", water, (w, h), (xg, FLOOR), dynamic=False,
                     attrs={"stream_top": spout_y + 1.0}, keys={"fill": [[0.0, f0], [end, f0 + rate]]})
        scene = Scene(bodies=[glass, prop], statics=room() + [shelf] + tap)
        target = variant(scene)
        target.body("glass").keys = {"fill": [[0.0, f1], [end, f1 + rate]]}
        camera, cam_mode, cam_words = next_shot_camera(
            rng, [_prop_box(prop), (xg - w / 2 - 2, xg + w / 2 + 2, spout_y - 4, FLOOR + 2)], (xg, FLOOR - h / 2 - gap / 2))
        target.camera = camera
        z2 = _zoom2(camera)
        instruction, template = self.phrase(rng)
        level = "almost full" if f1 >= 0.8 else "about three-quarters full"
        answer = (f"With the tap left running the glass keeps filling: a while later the {water} water stands near the "
                  f"top of the glass and is still rising under the stream.")
        caption = (f"A glass {level} of {water} water, still filling under a running tap; {_prop_words(cp, prop)}; "
                   f"{cam_words}.")
        checks = [{"kind": "present", "part": "glass"},
                  {"kind": "compare", "stat": "mean_area", "part": "glass", "op": ">", "factor": 1.5 * z2},
                  {"kind": "compare", "stat": "last_area", "part": "glass", "op": ">", "factor": 1.5 * z2},
                  {"kind": "present", "part": "prop"}]
        signature = f"{water}|{cp}|{q(w, 4)}|{q(h, 4)}|{q(f1, 0.1)}|{q(xg, 16)}|{side}|{cam_mode}"
        times = ctx.times()
        return Episode(Clip(scene, times), Clip(target, times), instruction, answer, caption,
                       involved=["glass"], preserved=["prop"], checks=checks, signature=signature,
                       params={"fill": f0, "later_fill": f1, "rate": rate, "camera": cam_mode, "zoom": camera.zoom,
                               "cx": camera.cx, "cy": camera.cy}, template=template)
