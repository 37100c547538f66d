"""Simulate a :class:`~revise.sim.scene.Scene` with pymunk and sample world frames at given times.

The physics runs at a fixed internal step (1/240 s) whatever the video frame rate, so the same scene
gives the same trajectory at 8 fps, at 16 fps (slow motion) or sampled later (the same scene two
seconds on). Bodies are added in scene order and events fire on exact step indices: deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pymunk

from ..errors import SceneError
from .scene import Body, Scene, interpolate

DT = 1.0 / 240.0
SCRIPTED_KEYS = ("x", "y", "angle", "w", "h", "visible")


@dataclass
class ObjectFrame:
    """One object at one instant, in world units: everything the renderer needs to draw it."""

    id: str
    shape: str
    colour: str
    x: float
    y: float
    angle: float
    vx: float
    vy: float
    w: float
    h: float
    visible: bool
    perceivable: bool
    attrs: dict = field(default_factory=dict)


@dataclass
class WorldFrame:
    """The world at time ``t``: objects (in draw order), the light and the camera."""

    t: float
    objects: list[ObjectFrame]
    ambient: float
    lamps: list[tuple[float, float, float, float]]  # (x, y, radius, intensity)
    camera: tuple[float, float, float, bool]  # (cx, cy, zoom, mirror)


def _shape_for(body: Body, pm_body: pymunk.Body) -> pymunk.Shape:
    w, h = body.size
    if body.shape in ("ball",):
        shape = pymunk.Circle(pm_body, w)
    elif body.shape == "triangle":
        shape = pymunk.Poly(pm_body, [(-w / 2, h / 2), (w / 2, h / 2), (0.0, -h / 2)])
    else:
        shape = pymunk.Poly.create_box(pm_body, (w, h), radius=0.5)
    shape.friction = body.material.friction
    shape.elasticity = body.material.elasticity
    return shape


class _World:
    def __init__(self, scene: Scene):
        scene.validate()
        self.scene = scene
        self.space = pymunk.Space()
        self.space.gravity = tuple(scene.gravity)
        self.space.damping = scene.damping
        self.space.iterations = 20
        for s in scene.statics:
            seg = pymunk.Segment(self.space.static_body, tuple(s.a), tuple(s.b), s.thickness / 2)
            seg.friction, seg.elasticity = s.friction, s.elasticity
            self.space.add(seg)
        appearing = {e.target for e in scene.events if e.kind == "appear"}
        self.pm: dict[str, tuple[pymunk.Body, pymunk.Shape]] = {}
        self.present: dict[str, bool] = {}
        for b in scene.bodies:
            if b.dynamic:
                pm_body = pymunk.Body()
                shape = _shape_for(b, pm_body)
                shape.density = b.material.density
            elif b.attrs.get("solid", False):
                pm_body = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
                shape = _shape_for(b, pm_body)
            else:
                pm_body, shape = None, None
            if pm_body is not None:
                pm_body.position = tuple(b.position)
                pm_body.angle = b.angle
                pm_body.velocity = tuple(b.velocity)
                pm_body.angular_velocity = b.angular_velocity
                self.pm[b.id] = (pm_body, shape)
            self.present[b.id] = b.id not in appearing
            if pm_body is not None and self.present[b.id]:
                self.space.add(pm_body, shape)
        self.events = sorted(scene.events, key=lambda e: e.t)
        self.step_index = 0
        self.next_event = 0

    def _fire_events(self) -> None:
        while self.next_event < len(self.events) and round(self.events[self.next_event].t / DT) <= self.step_index:
            e = self.events[self.next_event]
            self.next_event += 1
            if e.kind == "set_gravity":
                self.space.gravity = tuple(e.value)
                continue
            pm = self.pm.get(e.target)
            if e.kind == "remove":
                if pm and self.present[e.target]:
                    self.space.remove(*pm)
                self.present[e.target] = False
            elif e.kind == "appear":
                if pm and not self.present[e.target]:
                    self.space.add(*pm)
                self.present[e.target] = True
            elif pm is None:
                raise SceneError(f"event {e.kind!r} at t={e.t} targets {e.target!r}, which has no physics body")
            elif e.kind == "impulse":
                pm[0].apply_impulse_at_local_point(tuple(e.value))
            elif e.kind == "set_velocity":
                pm[0].velocity = tuple(e.value)

    def advance_to(self, t: float) -> None:
        target = round(t / DT)
        if target < self.step_index:
            raise SceneError("frame times must be non-decreasing")
        while self.step_index < target:
            self._fire_events()
            self.space.step(DT)
            self.step_index += 1
        self._fire_events()

    def snapshot(self, t: float) -> WorldFrame:
        scene = self.scene
        objects = []
        for b in scene.bodies:
            pm = self.pm.get(b.id)
            if pm is not None:
                pos, vel, ang = pm[0].position, pm[0].velocity, pm[0].angle
                x, y, vx, vy = pos.x, pos.y, vel.x, vel.y
            else:
                (x, y), (vx, vy), ang = b.position, (0.0, 0.0), b.angle
            w, h = b.size
            attrs = dict(b.attrs)
            for name, keys in b.keys.items():
                value = interpolate(keys, t, None)
                if name == "x":
                    x = value
                elif name == "y":
                    y = value
                elif name == "angle":
                    ang = value
                elif name == "w":
                    w = value
                elif name == "h":
                    h = value
                else:
                    attrs[name] = value
            visible = b.visible and self.present[b.id] and interpolate(b.keys.get("visible", []), t, 1.0) >= 0.5
            objects.append(ObjectFrame(b.id, b.shape, b.colour, float(x), float(y), float(ang), float(vx), float(vy),
                                       float(w), float(h), bool(visible), b.perceivable, attrs))
        light = scene.light
        ambient = float(interpolate(light.keys, t, light.ambient))
        lamps = [(lp.x, lp.y, lp.radius, float(interpolate(lp.keys, t, lp.intensity))) for lp in light.lamps]
        cam = scene.camera
        cx = float(interpolate(cam.keys.get("cx", []), t, cam.cx))
        cy = float(interpolate(cam.keys.get("cy", []), t, cam.cy))
        zoom = float(interpolate(cam.keys.get("zoom", []), t, cam.zoom))
        if cam.follow:
            followed = next((o for o in objects if o.id == cam.follow), None)
            if followed is None:
                raise SceneError(f"camera follows unknown body {cam.follow!r}")
            cx = followed.x
        return WorldFrame(t, objects, ambient, lamps, (cx, cy, zoom, cam.mirror))


def simulate(scene: Scene, times: list[float]) -> list[WorldFrame]:
    """World frames of ``scene`` at the given non-decreasing ``times`` (seconds from the scene's start)."""
    if any(not math.isfinite(t) or t < 0 for t in times):
        raise SceneError("frame times must be finite and non-negative")
    world = _World(scene)
    frames = []
    for t in times:
        world.advance_to(t)
        frames.append(world.snapshot(t))
    return frames


def frame_times(num_frames: int, fps: float, start: float = 0.0, speed: float = 1.0) -> list[float]:
    """Times of ``num_frames`` frames at ``fps`` from ``start``; ``speed`` < 1 is slow motion."""
    return [start + i * speed / fps for i in range(num_frames)]
