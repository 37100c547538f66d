"""RVE-Sim datasets: every dimension, ground truth that differs as the instruction says, determinism,
disjoint splits, perception accuracy on ground-truth renders, and the CLI."""

from __future__ import annotations

import filecmp
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from revise.cli.main import main
from revise.data import SUBSETS, load_manifest
from revise.sim import evaluate_all, generate_dataset, load_state, perceive
from revise.sim.scenarios import families, split_of
from revise.sim.tools import centre_errors
from revise.video import read_video

ALL_GROUPS = [f"{s}/{d}" for s, dims in SUBSETS.items() for d in dims]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rvesim") / "test"
    return generate_dataset(out, per_dimension=3, seed=0, split="test")


def test_every_dimension_has_at_least_two_families():
    for group in ALL_GROUPS:
        subset, dim = group.split("/")
        assert len(families(subset, dim)) >= 2, group


def test_every_dimension_is_generated(dataset):
    manifest = load_manifest(dataset)
    counts = Counter(s.group for s in manifest)
    assert counts == {g: 3 for g in ALL_GROUPS}
    for s in manifest:
        assert s.target is not None and s.state is not None and s.reference_answer
        assert s.metadata["target_caption"] and s.metadata["split"] == "test"
        assert s.metadata["scenario"] in {f.name for f in families(s.subset, s.dimension)}


def test_ground_truth_differs_from_the_source_as_the_instruction_says(dataset):
    for s in load_manifest(dataset):
        state = load_state(s.state)
        on_target = evaluate_all(state.checks, state.target, state.source)
        assert all(ok for ok, _ in on_target), (s.id, [why for ok, why in on_target if not ok])
        on_source = evaluate_all(state.checks, state.source, state.source)
        assert not all(ok for ok, _ in on_source), f"{s.id}: the source already satisfies every check"


def test_perception_recovers_centres_within_1_5_px(dataset):
    worst = {}
    for s in load_manifest(dataset):
        state = load_state(s.state)
        for clip, truth in (("source", state.source), ("target", state.target)):
            frames = read_video(getattr(s, clip)).frames
            errors = centre_errors(perceive(frames, state.palette), truth, min_area=20.0)
            for part, err in errors.items():
                worst[(s.id, clip, part)] = err
    bad = {k: round(v, 2) for k, v in worst.items() if not v <= 1.5}
    assert not bad, bad
    assert len(worst) > 50


def test_same_seed_gives_identical_files_and_frames(tmp_path):
    a = generate_dataset(tmp_path / "a", per_dimension=1, seed=7)
    b = generate_dataset(tmp_path / "b", per_dimension=1, seed=7)
    assert a.read_bytes() != b"" and a.read_text().replace("/a/", "/b/") == b.read_text().replace("/a/", "/b/")
    states_a = sorted((tmp_path / "a" / "states").iterdir())
    assert len(states_a) == 8
    for sa in states_a:
        assert filecmp.cmp(sa, tmp_path / "b" / "states" / sa.name, shallow=False), sa.name
    for va in sorted((tmp_path / "a" / "videos").iterdir()):
        assert np.array_equal(read_video(va).frames, read_video(tmp_path / "b" / "videos" / va.name).frames), va.name
    c = generate_dataset(tmp_path / "c", per_dimension=1, seed=8)
    assert c.read_text() != a.read_text()


def test_splits_are_disjoint_by_construction(tmp_path):
    signatures = {}
    for split in ("train", "val", "test"):
        manifest = load_manifest(generate_dataset(tmp_path / split, per_dimension=2, seed=3, split=split))
        sigs = set()
        for s in manifest:
            key = f"{s.metadata['scenario']}|{s.metadata['signature']}"
            assert split_of(key) == split
            sigs.add(key)
        signatures[split] = sigs
    assert not (signatures["train"] & signatures["test"])
    assert not (signatures["train"] & signatures["val"])
    assert not (signatures["val"] & signatures["test"])


def test_manifest_paths_are_relative_and_state_files_are_compact_json(dataset):
    for line in dataset.read_text().splitlines():
        row = json.loads(line)
        for key in ("source", "target", "state"):
            assert not row[key].startswith("/") and ".." not in row[key]
    state = json.loads(next((dataset.parent / "states").iterdir()).read_text())
    assert state["format"] == "rve-sim-state/1" and len(state["source"]["frames"]) == 16


def test_other_sizes_and_lengths(tmp_path):
    manifest = load_manifest(generate_dataset(tmp_path / "big", per_dimension=1, seed=0, size=96, frames=12, fps=6,
                                              dimensions=["rave/causal", "icvg/camera"]))
    assert len(manifest) == 2
    for s in manifest:
        video = read_video(s.target)
        assert video.frames.shape == (12, 96, 96, 3) and video.fps == pytest.approx(6)
        assert load_state(s.state).size == (96, 96)


def test_cli_generate_makes_forty_valid_samples(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["sim", "generate", "--out", str(out), "--per-dimension", "5", "--seed", "0"]) == 0
    manifest = load_manifest(out / "manifest.jsonl")
    assert len(manifest) == 40
    assert main(["sim", "generate", "--out", str(out), "--per-dimension", "5", "--seed", "0"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["sim", "generate", "--out", str(tmp_path / "x"), "--split", "holdout"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "holdout" in err and "Traceback" not in err


def test_cli_perceive_and_sheet(dataset, tmp_path, capsys):
    sample = next(iter(load_manifest(dataset)))
    assert main(["sim", "perceive", str(sample.target), "--state", str(sample.state)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines and all("max centre error" in line for line in lines)
    assert main(["sim", "perceive", str(sample.target), "--state", str(sample.state), "--out", str(tmp_path / "p.json")]) == 0
    report = json.loads((tmp_path / "p.json").read_text())
    assert len(report["frames"]) == 16
    assert main(["sim", "sheet", str(dataset), "--out", str(tmp_path / "sheet.png")]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "sheet.png").size[1] > 16 * 90
