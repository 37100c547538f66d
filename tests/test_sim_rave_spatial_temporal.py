"""RVE-Sim RAVE spatial and temporal families: the ground truth does what the instruction implies.

For every family: the target satisfies its checks and the source does not (the edit is visible), over many
random draws; the generated videos are perceived where the state files say the parts are; generation is
deterministic; and the words around each episode are well formed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from revise.data import load_manifest
from revise.sim import evaluate, evaluate_all, generate_dataset, load_state, perceive
from revise.sim.generate import build_episode, palette_of, render_clip
from revise.sim.scenarios import SCENARIOS, BuildContext, families
from revise.sim.state import Tracks, round_floats, tracks_from_json
from revise.video import read_video

SPATIAL = ["spatial_mirror_ramp", "spatial_move_object", "spatial_move_support"]
TEMPORAL = ["temporal_earlier", "temporal_later", "temporal_reverse", "temporal_slow"]
FAMILIES = SPATIAL + TEMPORAL


def _tracks(episode, size=(128, 128)) -> tuple[Tracks, Tracks]:
    """Source and target ground-truth tracks of an episode, exactly as a state file would hold them."""
    parts = sorted(palette_of(episode.source.scene, episode.target.scene))
    _, src = render_clip(episode.source, size, parts)
    _, tgt = render_clip(episode.target, size, parts)
    return tracks_from_json(round_floats(src), parts), tracks_from_json(round_floats(tgt), parts)


def test_families_are_registered_under_their_dimensions():
    assert sorted(s.name for s in families("rave", "spatial")) == sorted(SPATIAL)
    assert sorted(s.name for s in families("rave", "temporal")) == sorted(TEMPORAL)


@pytest.mark.parametrize("name", FAMILIES)
def test_target_satisfies_its_checks_and_source_does_not(name):
    scenario = SCENARIOS.create(name)
    modes = set()
    for i in range(10):
        episode = scenario.build(np.random.default_rng([101, i]), BuildContext())
        modes.add(episode.params.get("mode"))
        source, target = _tracks(episode)
        on_target = evaluate_all(episode.checks, target, source)
        assert all(ok for ok, _ in on_target), (i, episode.params, on_target)
        on_source = evaluate_all(episode.checks, source, source)
        assert not all(ok for ok, _ in on_source), (i, episode.params, "the edit would not be visible", on_source)
        assert set(episode.involved) | set(episode.preserved) <= set(source.ids)
    assert len(modes) == (1 if None in modes else 2), modes  # every family with modes shows both in 10 draws


@pytest.mark.parametrize("ctx", [BuildContext(12, 8.0), BuildContext(24, 12.0)], ids=["1.5s", "2s@12fps"])
@pytest.mark.parametrize("name", TEMPORAL)
def test_temporal_families_adapt_to_the_clip_length(name, ctx):
    scenario = SCENARIOS.create(name)
    for i in range(3):
        episode = scenario.build(np.random.default_rng([202, i]), ctx)
        assert len(episode.source.times) == len(episode.target.times) == ctx.frames
        source, target = _tracks(episode)
        assert all(ok for ok, _ in evaluate_all(episode.checks, target, source)), (i, episode.params)
        assert not all(ok for ok, _ in evaluate_all(episode.checks, source, source))


@pytest.mark.parametrize("size", [(64, 64), (96, 160)])
def test_checks_hold_at_other_render_sizes(size):
    for name in FAMILIES:
        scenario = SCENARIOS.create(name)
        for i in range(2):
            episode = scenario.build(np.random.default_rng([404, i]), BuildContext())
            source, target = _tracks(episode, size)
            assert all(ok for ok, _ in evaluate_all(episode.checks, target, source)), (name, i, size)
            assert not all(ok for ok, _ in evaluate_all(episode.checks, source, source)), (name, i, size)


def test_temporal_targets_are_the_same_simulation_at_other_times():
    ctx = BuildContext()
    rng = np.random.default_rng(7)
    later = SCENARIOS.create("temporal_later").build(rng, ctx)
    assert later.target.scene is later.source.scene and later.target.times[0] == pytest.approx(ctx.duration)
    earlier = SCENARIOS.create("temporal_earlier").build(rng, ctx)
    assert earlier.source.times[0] == pytest.approx(ctx.duration) and earlier.target.times[0] == 0.0
    reverse = SCENARIOS.create("temporal_reverse").build(rng, ctx)
    assert reverse.target.reverse and reverse.target.times == reverse.source.times
    slow = SCENARIOS.create("temporal_slow").build(rng, ctx)
    assert slow.target.times[-1] == pytest.approx(slow.source.times[-1] / 2)


def test_spatial_edits_keep_everything_else_as_it_was():
    rng = np.random.default_rng(9)
    for name in SPATIAL:
        episode = SCENARIOS.create(name).build(rng, BuildContext())
        src, tgt = episode.source.scene, episode.target.scene
        assert [b.id for b in src.bodies] == [b.id for b in tgt.bodies]
        assert src.body("prop") == tgt.body("prop")
        assert [s for s in src.statics if s.id != "ramp"] == [s for s in tgt.statics if s.id != "ramp"]
        changed = [b.id for b in src.bodies if b != tgt.body(b.id)]
        assert changed and set(changed) <= set(episode.involved), (name, changed)


@pytest.mark.parametrize("split", ["train", "val"])
def test_every_family_finds_scenes_for_each_split(split):
    for name in FAMILIES:
        episode = build_episode(SCENARIOS.create(name), 0, split, 0, BuildContext())
        assert episode.signature


def test_words_are_implicit_and_well_formed():
    literal = ("pixel", " px", "coordinate", "x=", "y=")
    for name in FAMILIES:
        scenario = SCENARIOS.create(name)
        instructions, templates = set(), set()
        for i in range(24):
            episode = scenario.build(np.random.default_rng([303, i]), BuildContext())
            instructions.add(episode.instruction)
            templates.add(episode.template)
            for text in (episode.instruction, episode.reference_answer, episode.target_caption):
                assert text and "{" not in text and "}" not in text, (name, text)
                assert not any(word in text.lower() for word in literal), (name, text)
                assert not re.search(r"\b[Aa] [aeiou]", text), (name, "article", text)
        assert len(templates) >= 3, (name, templates)
        assert len(instructions) >= 3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> list:
    """Two seeds of both dimensions: every family appears at least twice per seed."""
    samples = []
    for seed in (0, 1):
        out = tmp_path_factory.mktemp(f"rave_st_{seed}")
        manifest = generate_dataset(out, per_dimension=8, seed=seed, dimensions=["rave/spatial", "rave/temporal"])
        samples += list(load_manifest(manifest))
    return samples


def test_generated_samples_cover_every_family_and_pass_their_checks(dataset):
    seen = {}
    for sample in dataset:
        state = load_state(sample.state)
        seen[state.scenario] = seen.get(state.scenario, 0) + 1
        on_target = evaluate_all(state.checks, state.target, state.source)
        assert all(ok for ok, _ in on_target), (sample.id, on_target)
        assert not all(ok for ok, _ in evaluate_all(state.checks, state.source, state.source)), sample.id
        assert sample.metadata["scenario"] == state.scenario and sample.reference_answer
    assert set(seen) == set(FAMILIES) and min(seen.values()) >= 2, seen


def test_perception_finds_the_parts_where_the_state_says(dataset):
    for sample in dataset[::3]:
        state = load_state(sample.state)
        for clip, truth in ((sample.target, state.target), (sample.source, state.source)):
            frames = read_video(clip).frames
            assert len(frames) == state.num_frames
            seen = perceive(frames, state.palette)
            for part in state.palette:
                for i in np.flatnonzero(truth.area[part] > 20):
                    err = math.hypot(seen.x[part][i] - truth.x[part][i], seen.y[part][i] - truth.y[part][i])
                    assert err < 1.5, (sample.id, part, int(i), err)


def test_generation_is_deterministic(tmp_path):
    outs = []
    for name in ("a", "b"):
        manifest = generate_dataset(tmp_path / name, per_dimension=4, seed=5, dimensions=["rave/temporal"])
        outs.append(Path(manifest).parent)
    states = sorted(p.name for p in (outs[0] / "states").iterdir())
    assert len(states) == 4
    for state in states:
        assert (outs[0] / "states" / state).read_bytes() == (outs[1] / "states" / state).read_bytes()
    a = read_video(next((outs[0] / "videos").glob("*_tgt.mp4"))).frames
    b = read_video(outs[1] / "videos" / next((outs[0] / "videos").glob("*_tgt.mp4")).name).frames
    assert np.array_equal(a, b)


def _line(xs: list[float]) -> Tracks:
    n = len(xs)
    return Tracks({"p": np.ones(n, bool)}, {"p": np.asarray(xs, float)}, {"p": np.full(n, 50.0)},
                  {"p": np.full(n, 30.0)}, np.ones(n))


def test_precedes_check_is_the_mirror_image_of_follows():
    source = _line([40.0 + 2 * i for i in range(8)])  # moves right from 40 to 54
    before = _line([24.0 + 2 * i for i in range(8)])  # 24 .. 38: ends right where the source starts
    after = _line([56.0 + 2 * i for i in range(8)])  # 56 .. 70: starts right where the source ends
    assert evaluate({"kind": "precedes", "part": "p"}, before, source)[0]
    assert not evaluate({"kind": "precedes", "part": "p"}, after, source)[0]
    assert not evaluate({"kind": "precedes", "part": "p"}, source, source)[0]
    assert evaluate({"kind": "follows", "part": "p"}, after, source)[0]
    assert not evaluate({"kind": "follows", "part": "p"}, before, source)[0]
