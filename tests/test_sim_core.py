"""RVE-Sim core: scene serialisation (property tests), physics determinism, rendering, annotations, perception."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revise.errors import SceneError
from revise.sim import Body, Camera, Event, Lamp, Light, Material, Scene, Static, perceive
from revise.sim.physics import simulate
from revise.sim.render import render_frame
from revise.sim.scene import PALETTE, SHAPES, interpolate
from revise.sim.state import load_state

finite = st.floats(-500, 500, allow_nan=False, allow_infinity=False)
positive = st.floats(0.5, 60, allow_nan=False, allow_infinity=False)
pair = st.tuples(finite, finite)


@st.composite
def scenes(draw):
    n = draw(st.integers(0, 5))
    colours = draw(st.permutations(list(PALETTE)))
    bodies = []
    for i in range(n):
        r = draw(positive)
        bodies.append(Body(
            id=f"b{i}", shape=draw(st.sampled_from(SHAPES)), colour=colours[i], size=(r, draw(positive)),
            position=draw(pair), velocity=draw(pair), angle=draw(st.floats(-6, 6)),
            material=Material(draw(st.sampled_from(["rubber", "clay"])), draw(positive), draw(st.floats(0, 2)),
                              draw(st.floats(0, 1))),
            dynamic=draw(st.booleans()), attrs=draw(st.dictionaries(st.sampled_from(["expression", "fill", "lit"]),
                                                                     st.one_of(st.text(max_size=5), st.floats(0, 1)))),
            keys={"x": [[0.0, 1.0], [1.0, draw(finite)]]} if draw(st.booleans()) else {},
        ))
    statics = [Static(f"s{i}", draw(st.sampled_from(["floor", "wall", "ramp", "shelf"])), draw(pair), draw(pair),
                      draw(positive)) for i in range(draw(st.integers(0, 3)))]
    light = Light(draw(st.floats(0, 1.2)), [Lamp(draw(finite), draw(finite), draw(positive), draw(st.floats(0, 2)),
                                                 [[0.0, 0.0], [1.0, 1.0]])], keys=[[0.0, 1.0], [2.0, 0.3]])
    camera = Camera(draw(finite), draw(finite), draw(st.floats(0.5, 4)), draw(st.booleans()))
    events = [Event(draw(st.floats(0, 3)), "impulse", bodies[0].id, [1.0, 2.0])] if bodies and draw(st.booleans()) else []
    return Scene(bodies=bodies, statics=statics, light=light, camera=camera, events=events,
                 gravity=(0.0, draw(st.floats(0, 300))))


@settings(max_examples=60, deadline=None)
@given(scenes())
def test_scene_round_trips_through_json(scene):
    text = json.dumps(scene.to_dict(), sort_keys=True)
    again = Scene.from_dict(json.loads(text))
    assert again == scene
    assert json.dumps(again.to_dict(), sort_keys=True) == text


@settings(max_examples=25, deadline=None)
@given(scenes())
def test_serialised_scene_simulates_identically(scene):
    scene.events = []
    again = Scene.from_dict(json.loads(json.dumps(scene.to_dict())))
    times = [0.0, 0.125, 0.25]
    a, b = simulate(scene, times), simulate(again, times)
    assert [[(o.x, o.y, o.angle) for o in f.objects] for f in a] == [[(o.x, o.y, o.angle) for o in f.objects] for f in b]


@pytest.mark.parametrize("bad, message", [
    ({"bodies": [{"id": "a", "shape": "blob", "colour": "red", "size": [1, 1], "position": [0, 0]}]}, "unknown shape"),
    ({"bodies": [{"id": "a", "shape": "ball", "colour": "red", "size": [-1, 1], "position": [0, 0]}]}, "size"),
    ({"bodies": [{"id": "a", "shape": "ball", "colour": "red", "size": [1, 1], "position": [0, 0]},
                 {"id": "a", "shape": "ball", "colour": "blue", "size": [1, 1], "position": [0, 0]}]}, "duplicate"),
    ({"bodies": [{"id": "a", "shape": "ball", "colour": "red", "size": [1, 1], "position": [0, 0]},
                 {"id": "b", "shape": "ball", "colour": "red", "size": [1, 1], "position": [9, 0]}]}, "share a colour"),
    ({"bodies": [{"id": "a", "shape": "ball", "colour": "red", "size": [1, 1], "position": [0, 0], "mass": 3}]}, "unknown field"),
    ({"events": [{"t": 0.1, "kind": "impulse", "target": "ghost", "value": [1, 0]}]}, "unknown target"),
    ({"statics": [{"id": "s", "kind": "volcano", "a": [0, 0], "b": [1, 1]}]}, "unknown kind"),
])
def test_invalid_scene_is_refused_with_a_reason(bad, message):
    with pytest.raises(SceneError, match=message):
        Scene.from_dict(bad)


def test_interpolate_numbers_and_held_strings():
    keys = [[0.0, 0.0], [1.0, 10.0]]
    assert interpolate(keys, -1, None) == 0.0 and interpolate(keys, 0.5, None) == 5.0 and interpolate(keys, 9, None) == 10.0
    words = [[0.0, "neutral"], [1.0, "happy"]]
    assert interpolate(words, 0.99, None) == "neutral" and interpolate(words, 1.0, None) == "happy"
    assert interpolate([], 1.0, "default") == "default"


def _ball_scene(**camera) -> Scene:
    floor = Static("floor", "floor", (-50, 108), (180, 108), 8.0)
    return Scene(bodies=[Body("a", "ball", "red", (8.0, 8.0), (40.0, 60.0), dynamic=False),
                         Body("b", "box", "blue", (20.0, 12.0), (90.0, 70.0), dynamic=False)],
                 statics=[floor], camera=Camera(**camera))


def _draw(scene: Scene, size=(128, 128)):
    frame = simulate(scene, [0.0])[0]
    return render_frame(frame, scene.statics, size=size, world=scene.world, background=scene.background)


def test_render_is_antialiased_and_annotations_match_geometry():
    scene = _ball_scene()
    scene.bodies[0].position = (40.3, 60.4)  # edges between pixel centres
    image, notes, scale = _draw(scene)
    assert scale == 1.0
    row = image[60, 25:55, 1].astype(int)  # across the red ball's edges (green channel: 205 wall, 40 ball)
    between = [v for v in row.tolist() if 45 < v < 200]
    assert len(between) >= 2, "edges should hold intermediate (anti-aliased) values"
    assert notes["a"].x == pytest.approx(40.3, abs=0.05) and notes["a"].y == pytest.approx(60.4, abs=0.05)
    assert notes["a"].area == pytest.approx(math.pi * 64, rel=0.02)
    assert notes["b"].area == pytest.approx(240.0, rel=0.05)


@pytest.mark.parametrize("size", [(64, 64), (120, 200), (256, 256)])
def test_render_any_size_scales_the_world(size):
    image, notes, scale = _draw(_ball_scene(), size)
    assert image.shape == (*size, 3) and image.dtype == np.uint8
    assert scale == pytest.approx(min(size) / 128)
    assert notes["a"].area == pytest.approx(math.pi * (8 * scale) ** 2, rel=0.05)


def test_camera_zoom_mirror_and_lighting():
    _, base, _ = _draw(_ball_scene())
    _, zoomed, _ = _draw(_ball_scene(cx=40.0, cy=60.0, zoom=2.0))
    assert zoomed["a"].area == pytest.approx(4 * base["a"].area, rel=0.03)
    assert zoomed["a"].x == pytest.approx(64.0, abs=0.1)
    _, mirrored, _ = _draw(_ball_scene(mirror=True))
    assert mirrored["a"].x == pytest.approx(128 - base["a"].x, abs=0.05)
    day, _, _ = _draw(_ball_scene())
    night_scene = _ball_scene()
    night_scene.light = Light(ambient=0.4)
    night, _, _ = _draw(night_scene)
    assert night.mean() == pytest.approx(0.4 * day.mean(), rel=0.05)
    lamp_scene = _ball_scene()
    lamp_scene.light = Light(ambient=0.4, lamps=[Lamp(40.0, 60.0, 20.0, 0.8)])
    lit, _, _ = _draw(lamp_scene)
    assert lit[60, 40].mean() > night[60, 40].mean() * 1.5 and lit[5, 120].mean() == pytest.approx(night[5, 120].mean(), abs=2)


def test_occlusion_reduces_visible_area_of_the_part_behind():
    scene = _ball_scene()
    scene.bodies[1].position = (44.0, 60.0)  # box drawn after the ball, on top of it
    _, notes, _ = _draw(scene)
    assert notes["a"].area < math.pi * 64 * 0.7
    assert notes["a"].x < 40.0  # what is left of the ball is its left part


def test_events_remove_and_appear_and_impulse():
    scene = Scene(bodies=[Body("a", "ball", "red", (5.0, 5.0), (30.0, 50.0)), Body("b", "ball", "blue", (5.0, 5.0), (80.0, 50.0))],
                  statics=[Static("floor", "floor", (-50, 60), (180, 60), 8.0)], gravity=(0.0, 100.0),
                  events=[Event(0.5, "remove", "a"), Event(0.25, "appear", "b"), Event(0.5, "impulse", "b", [8000.0, 0.0])])
    frames = simulate(scene, [0.0, 0.3, 0.6, 1.0])
    vis = [{o.id: o.visible for o in f.objects} for f in frames]
    assert vis[0] == {"a": True, "b": False} and vis[1] == {"a": True, "b": True} and vis[2]["a"] is False
    bx = [next(o.x for o in f.objects if o.id == "b") for f in frames]
    assert bx[3] > bx[1] + 10


def test_perception_recovers_centres_under_light_and_compression(tmp_path):
    from revise.video import read_video, write_video

    scene = _ball_scene()
    scene.bodies[0].dynamic = True
    scene.bodies[0].velocity = (30.0, 0.0)
    scene.light = Light(ambient=1.0, keys=[[0.0, 1.0], [1.0, 0.35]])
    frames, truths = [], []
    for wf in simulate(scene, [i / 8 for i in range(9)]):
        image, notes, _ = render_frame(wf, scene.statics, size=(128, 128), world=scene.world)
        frames.append(image)
        truths.append(notes)
    path = write_video(tmp_path / "clip.mp4", np.stack(frames), 8)
    tracks = perceive(read_video(path).frames, {"a": PALETTE["red"], "b": PALETTE["blue"]})
    for i, notes in enumerate(truths):
        for part in ("a", "b"):
            err = math.hypot(tracks.x[part][i] - notes[part].x, tracks.y[part][i] - notes[part].y)
            assert err < 1.5, (i, part, err)
            assert tracks.area[part][i] == pytest.approx(notes[part].area, rel=0.2)
    assert tracks.brightness[-1] < 0.5 * tracks.brightness[0]


def test_perception_of_a_resized_video_reports_in_state_pixels():
    image, notes, _ = _draw(_ball_scene(), (256, 256))
    tracks = perceive(image[None], {"a": PALETTE["red"]}, size=(128, 128))
    assert tracks.x["a"][0] == pytest.approx(40.0, abs=0.5) and tracks.y["a"][0] == pytest.approx(60.0, abs=0.5)


def test_load_state_errors_name_the_file(tmp_path):
    missing = tmp_path / "none.json"
    with pytest.raises(SceneError, match="none.json"):
        load_state(missing)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SceneError, match="bad.json"):
        load_state(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SceneError, match="not a rve-sim-state/1"):
        load_state(other)
