"""Scenario families: each builds an :class:`Episode` (a source clip, the counterfactual target clip and
the words around them) from a seeded random generator.

A scenario is one small class: ``name``, ``subset``, ``dimension``, paraphrase ``templates`` and a
``build(rng, ctx)`` that returns an Episode. Register it with ``@register_scenario``; the generator
picks families round-robin within each dimension.

Rules every family follows:
- instructions are implicit ("What if the red ball had never been rolled?"), never a literal pixel
  description; ``reference_answer`` says what should happen; ``target_caption`` describes the target
  literally;
- ``involved`` names the parts the instruction is about, ``preserved`` those that must not change;
- ``checks`` (see :mod:`revise.sim.checks`) state how the target differs from the source;
- ``signature`` is a coarse, discrete description of the scene; the split (train/val/test) is a hash of
  it, so the splits are disjoint by construction.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

import numpy as np

from ...registry import Registry
from ..scene import PALETTE, Body, Material, Scene, Static

SPLITS = ("train", "val", "test")

MATERIALS = {
    "rubber": Material("rubber", density=1.0, friction=0.7, elasticity=0.85),
    "clay": Material("clay", density=1.4, friction=0.9, elasticity=0.02),
    "wood": Material("wood", density=0.8, friction=0.6, elasticity=0.3),
    "steel": Material("steel", density=3.0, friction=0.4, elasticity=0.5),
    "ice": Material("ice", density=0.9, friction=0.02, elasticity=0.2),
}


@dataclass
class Clip:
    """A scene and the times its frames are sampled at; ``reverse`` plays them backwards."""

    scene: Scene
    times: list[float]
    reverse: bool = False


@dataclass
class Episode:
    source: Clip
    target: Clip
    instruction: str
    reference_answer: str
    target_caption: str
    involved: list[str]
    preserved: list[str]
    checks: list[dict]
    signature: str
    params: dict = field(default_factory=dict)
    template: int = 0


@dataclass(frozen=True)
class BuildContext:
    """Clip length and frame rate asked of the generator (scenarios adapt their timing to them)."""

    frames: int = 16
    fps: float = 8.0

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    def times(self, start: float = 0.0, speed: float = 1.0, frames: int | None = None) -> list[float]:
        n = self.frames if frames is None else frames
        return [start + i * speed / self.fps for i in range(n)]


class Scenario:
    """Base class of a scenario family."""

    name = "scenario"
    subset = "rave"
    dimension = "causal"
    templates: tuple[str, ...] = ()

    def build(self, rng: np.random.Generator, ctx: BuildContext) -> Episode:  # pragma: no cover - interface
        raise NotImplementedError

    def phrase(self, rng: np.random.Generator, templates: tuple[str, ...] | None = None, **fields) -> tuple[str, int]:
        """One of the paraphrase templates (``templates``, default all of the family's), filled in;
        returns (text, index of the template in ``self.templates``)."""
        choices = self.templates if templates is None else templates
        text = choices[int(rng.integers(len(choices)))]
        return text.format(**fields), self.templates.index(text)


SCENARIOS: Registry[Scenario] = Registry("scenario")


def register_scenario(cls):
    """Class decorator: register a scenario family under its ``name``."""
    SCENARIOS.register(cls.name)(cls)
    return cls


def families(subset: str, dimension: str) -> list[Scenario]:
    """The registered families of one dimension, in name order."""
    found = [SCENARIOS.create(n) for n in SCENARIOS.available()]
    return [s for s in found if s.subset == subset and s.dimension == dimension]


def split_of(signature: str) -> str:
    """The split a scene signature belongs to: 70% train, 10% val, 20% test, by hash."""
    bucket = int(hashlib.sha256(signature.encode("utf-8")).hexdigest()[:8], 16) % 10
    return "train" if bucket < 7 else ("val" if bucket == 7 else "test")


# ---- helpers shared by the families --------------------------------------------------------------

FLOOR_Y = 104.0


def room(floor_y: float = FLOOR_Y, walls: bool = True, floor_colour: str = "floor", friction: float = 0.8) -> list[Static]:
    """A floor (and side walls) spanning the 128x128 world."""
    statics = [Static("floor", "floor", (-200.0, floor_y + 4), (328.0, floor_y + 4), thickness=8.0, friction=friction,
                      colour=floor_colour)]
    if walls:
        statics += [Static("wall_left", "wall", (-2.0, -60.0), (-2.0, floor_y + 8), thickness=4.0, visible=False),
                    Static("wall_right", "wall", (130.0, -60.0), (130.0, floor_y + 8), thickness=4.0, visible=False)]
    return statics


def pick_colours(rng: np.random.Generator, n: int, exclude: tuple[str, ...] = ()) -> list[str]:
    """``n`` distinct palette colour names."""
    names = [c for c in PALETTE if c not in exclude]
    idx = rng.choice(len(names), size=n, replace=False)
    return [names[int(i)] for i in idx]


def ball(body_id: str, colour: str, x: float, y: float, r: float = 6.0, vx: float = 0.0, vy: float = 0.0,
         material: str = "rubber") -> Body:
    return Body(body_id, "ball", colour, (r, r), (x, y), (vx, vy), material=copy.deepcopy(MATERIALS[material]))


def box(body_id: str, colour: str, x: float, y: float, w: float = 10.0, h: float = 10.0, vx: float = 0.0,
        material: str = "wood", dynamic: bool = True) -> Body:
    return Body(body_id, "box", colour, (w, h), (x, y), (vx, 0.0), material=copy.deepcopy(MATERIALS[material]),
                dynamic=dynamic)


def a_colour(colour: str, capital: bool = False) -> str:
    """The colour word with its indefinite article: 'a red', 'an orange' ('An orange' with ``capital``)."""
    article = "an" if colour[0] in "aeiou" else "a"
    return f"{article.capitalize() if capital else article} {colour}"


def q(value: float, step: float) -> int:
    """Quantise a parameter for a scene signature."""
    return int(round(value / step))


def variant(scene: Scene) -> Scene:
    """A deep copy to edit into the counterfactual (the source scene stays untouched)."""
    return copy.deepcopy(scene)


def shelf_with_prop(rng: np.random.Generator, colour: str, side: str | None = None) -> tuple[Static, Body, str]:
    """A high shelf in a top corner holding a resting prop (a preserved bystander nothing touches).

    Returns ``(shelf, prop, side)`` with ``side`` ``"left"`` or ``"right"``.
    """
    side = side or ("left" if rng.random() < 0.5 else "right")
    x0, x1 = (6.0, 38.0) if side == "left" else (90.0, 122.0)
    y = float(rng.uniform(40.0, 52.0))
    shelf = Static("shelf", "shelf", (x0, y), (x1, y), thickness=3.0, colour="ramp")
    shape = "triangle" if rng.random() < 0.5 else "box"
    w = float(rng.uniform(8.0, 11.0))
    h = w if shape == "box" else w * 0.9
    prop = Body("prop", shape, colour, (w, h), ((x0 + x1) / 2, y - 1.5 - h / 2), material=copy.deepcopy(MATERIALS["wood"]))
    return shelf, prop, side
