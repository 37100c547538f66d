"""A scene is plain, serialisable data: bodies, static geometry, lights, a camera and timed events.

Nothing here simulates or draws; :mod:`revise.sim.physics` turns a scene into world frames and
:mod:`revise.sim.render` turns world frames into pixels (Kubric-style separation). Because a scene is
data, the same scene can be re-simulated under an intervention: the counterfactual.

World units: the world is ``Scene.world = (128, 128)`` units, x right and y *down*; at zoom 1 the
camera shows exactly the world, so one unit is one pixel of a 128x128 render.

Keyframes: any ``Body.keys[attr]`` / ``Light.keys`` / ``Camera.keys`` entry is a list of
``[time_s, value]`` pairs, interpolated linearly (numbers) or held (strings) between keys; this is how
non-physical processes (a candle burning down, a face turning happy, night falling) are scripted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..errors import SceneError

# Saturated, hue-separated colours: what perception keys on. Names are used in instructions.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (235, 135, 30),
    "yellow": (230, 210, 40),
    "green": (50, 180, 60),
    "cyan": (40, 200, 210),
    "blue": (45, 80, 225),
    "purple": (140, 60, 210),
    "magenta": (215, 50, 170),
}
# Neutral (grey) colours for everything perception must ignore.
NEUTRALS: dict[str, tuple[int, int, int]] = {
    "wall": (205, 205, 205),
    "floor": (150, 150, 150),
    "ramp": (110, 110, 110),
    "dark": (35, 35, 35),
    "white": (245, 245, 245),
    "ice_floor": (225, 225, 225),
    "glass": (120, 120, 120),
}
SHAPES = ("ball", "box", "triangle", "character", "candle", "plant", "glass", "puddle", "lamp")
STATIC_KINDS = ("floor", "wall", "ramp", "shelf")
EVENT_KINDS = ("impulse", "set_velocity", "remove", "appear", "set_gravity")


@dataclass
class Material:
    """Physical material. ``name`` is what instructions call it (rubber, clay, wood, ice, ...)."""

    name: str = "rubber"
    density: float = 1.0
    friction: float = 0.6
    elasticity: float = 0.5


@dataclass
class Body:
    """A movable or scripted object. ``size`` is (radius, radius) for balls, (width, height) otherwise."""

    id: str
    shape: str
    colour: str
    size: tuple[float, float]
    position: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    angle: float = 0.0
    angular_velocity: float = 0.0
    material: Material = field(default_factory=Material)
    dynamic: bool = True
    visible: bool = True
    perceivable: bool = True
    attrs: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)


@dataclass
class Static:
    """Fixed geometry: a thick segment from ``a`` to ``b`` (floors, walls, ramps, shelves)."""

    id: str
    kind: str
    a: tuple[float, float]
    b: tuple[float, float]
    thickness: float = 4.0
    friction: float = 0.8
    elasticity: float = 0.4
    colour: str = "floor"
    visible: bool = True


@dataclass
class Lamp:
    """A point light that brightens a radial neighbourhood (white light, so hues are kept)."""

    x: float
    y: float
    radius: float = 30.0
    intensity: float = 0.0
    keys: list = field(default_factory=list)  # [[t, intensity], ...]


@dataclass
class Light:
    """Global ambient brightness (1 = daylight) and lamps; ``keys`` animates the ambient level."""

    ambient: float = 1.0
    lamps: list[Lamp] = field(default_factory=list)
    keys: list = field(default_factory=list)


@dataclass
class Camera:
    """The world point at the image centre, a zoom factor and a left-right mirror (the reverse angle).

    ``follow`` names a body the camera centre tracks horizontally; ``keys`` animates cx/cy/zoom:
    ``{"zoom": [[t, v], ...], "cx": [...], "cy": [...]}``.
    """

    cx: float = 64.0
    cy: float = 64.0
    zoom: float = 1.0
    mirror: bool = False
    follow: str | None = None
    keys: dict = field(default_factory=dict)


@dataclass
class Event:
    """A timed intervention: ``impulse`` / ``set_velocity`` (value = [vx, vy]), ``remove`` / ``appear``
    (the body leaves or joins the simulation), ``set_gravity`` (value = [gx, gy])."""

    t: float
    kind: str
    target: str = ""
    value: list = field(default_factory=list)


@dataclass
class Scene:
    """Everything needed to simulate and render one clip, deterministically."""

    bodies: list[Body] = field(default_factory=list)
    statics: list[Static] = field(default_factory=list)
    light: Light = field(default_factory=Light)
    camera: Camera = field(default_factory=Camera)
    events: list[Event] = field(default_factory=list)
    gravity: tuple[float, float] = (0.0, 120.0)
    damping: float = 0.9
    background: str = "wall"
    world: tuple[float, float] = (128.0, 128.0)

    def body(self, body_id: str) -> Body:
        for b in self.bodies:
            if b.id == body_id:
                return b
        raise SceneError(f"scene has no body {body_id!r}")

    def to_dict(self) -> dict:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "Scene":
        try:
            scene = cls(
                bodies=[_body(b) for b in data.get("bodies", [])],
                statics=[_make(Static, s) for s in data.get("statics", [])],
                light=_light(data.get("light", {})),
                camera=_make(Camera, data.get("camera", {})),
                events=[_make(Event, e) for e in data.get("events", [])],
                gravity=tuple(data.get("gravity", (0.0, 120.0))),
                damping=float(data.get("damping", 0.9)),
                background=data.get("background", "wall"),
                world=tuple(data.get("world", (128.0, 128.0))),
            )
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise SceneError(f"invalid scene description: {exc}") from None
        scene.validate()
        return scene

    def validate(self) -> None:
        """Raise :class:`SceneError` naming the first inconsistency."""
        seen: set[str] = set()
        for b in self.bodies:
            if b.id in seen:
                raise SceneError(f"duplicate body id {b.id!r}")
            seen.add(b.id)
            if b.shape not in SHAPES:
                raise SceneError(f"body {b.id!r}: unknown shape {b.shape!r}")
            if b.colour not in PALETTE and b.colour not in NEUTRALS:
                raise SceneError(f"body {b.id!r}: unknown colour {b.colour!r}")
            if b.perceivable and b.colour not in PALETTE:
                raise SceneError(f"body {b.id!r}: perceivable bodies need a palette colour, not {b.colour!r}")
            if not all(math.isfinite(v) and v > 0 for v in b.size):
                raise SceneError(f"body {b.id!r}: size must be positive, got {b.size}")
            if not all(math.isfinite(v) for v in (*b.position, *b.velocity, b.angle, b.angular_velocity)):
                raise SceneError(f"body {b.id!r}: non-finite position or velocity")
            if b.material.density <= 0:
                raise SceneError(f"body {b.id!r}: density must be positive")
        colours = [b.colour for b in self.bodies if b.perceivable]
        if len(colours) != len(set(colours)):
            raise SceneError("two perceivable bodies share a colour; perception could not tell them apart")
        for s in self.statics:
            if s.kind not in STATIC_KINDS:
                raise SceneError(f"static {s.id!r}: unknown kind {s.kind!r}")
        for e in self.events:
            if e.kind not in EVENT_KINDS:
                raise SceneError(f"event at t={e.t}: unknown kind {e.kind!r}")
            if e.kind != "set_gravity" and e.target not in seen:
                raise SceneError(f"event at t={e.t}: unknown target {e.target!r}")


def _make(cls, data: dict):
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} must be an object")
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    values = {k: (tuple(v) if isinstance(v, list) and k in _TUPLE_FIELDS else v) for k, v in data.items()}
    return cls(**values)


_TUPLE_FIELDS = {"size", "position", "velocity", "a", "b", "gravity", "world"}


def _body(data: dict) -> Body:
    data = dict(data)
    data["material"] = _make(Material, data.get("material", {}))
    return _make(Body, data)


def _light(data: dict) -> Light:
    data = dict(data)
    data["lamps"] = [_make(Lamp, lamp) for lamp in data.get("lamps", [])]
    return _make(Light, data)


def _plain(value):
    """Tuples to lists, recursively: JSON-ready and equal after a round trip."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def interpolate(keys: list, t: float, default):
    """Value of piecewise-linear keyframes ``[[t, v], ...]`` at time ``t`` (strings are held)."""
    if not keys:
        return default
    if t <= keys[0][0]:
        return keys[0][1]
    for (t0, v0), (t1, v1) in zip(keys, keys[1:]):
        if t0 <= t <= t1:
            if isinstance(v0, str) or isinstance(v1, str) or t1 == t0:
                return v0 if t < t1 else v1
            a = (t - t0) / (t1 - t0)
            return v0 + a * (v1 - v0)
    return keys[-1][1]
