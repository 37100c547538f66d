"""benchmarks/ablation_generator.py's building blocks: the train-split prefixes it hard-links, the scores it
reads back from real bench runs, the paired differences and the scaling plot."""

from __future__ import annotations

import importlib.util
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from revise.bench import run_bench
from revise.data import load_manifest
from revise.sim import generate_dataset
from revise.video import read_video

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ablation():
    spec = importlib.util.spec_from_file_location("ablation_generator", ROOT / "benchmarks" / "ablation_generator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_prefix_is_what_sim_generate_writes(ablation, tmp_path):
    work = tmp_path / "work"
    prefix = ablation.train_split(work, 1, 0, biggest=2, size=32)
    direct = generate_dataset(tmp_path / "direct", per_dimension=1, seed=0, split="train", size=32)
    a, b = list(load_manifest(prefix / "manifest.jsonl")), list(load_manifest(direct))
    assert [s.id for s in a] == [s.id for s in b] and len(a) == 8
    assert [s.instruction for s in a] == [s.instruction for s in b]
    assert [s.metadata for s in a] == [s.metadata for s in b]
    for x, y in zip(a, b):  # the same states and clips, and hard links to the big split's files
        assert x.state.read_bytes() == y.state.read_bytes()
        assert os.stat(x.source).st_nlink == 2 and os.stat(x.target).st_nlink == 2
        for u, v in ((x.source, y.source), (x.target, y.target)):
            # libx264 (PyAV's build) does not always write the same bytes for the same frames (measured: a
            # mean of up to 0.63 levels, at most 27, between two encodes of identical 32 px renders), so the
            # two files are compared decoded, within 2 levels on average: a wrong clip is off by far more
            d = np.abs(read_video(u).frames.astype(int) - read_video(v).frames.astype(int))
            assert d.mean() < 2.0, (u, d.mean(), d.max())
    assert ablation.train_split(work, 1, 0, biggest=2, size=32) == prefix  # a second call reuses it
    assert not list(work.glob(".*partial"))


def test_scores_and_paired_differences_from_real_runs(ablation, tmp_path):
    manifest = generate_dataset(tmp_path / "test", per_dimension=1, seed=0, split="test")
    runs = {}
    for editor in ("copy", "oracle"):
        out = tmp_path / editor
        run_bench(manifest, out, editor=editor, judges=["gt"], seed=0, report=False, progress=False)
        runs[editor] = ablation.shares(out)
    assert set(runs["copy"]) == set(runs["oracle"]) and len(runs["copy"]) == 8
    oracle = ablation.row_of(runs["oracle"], None)
    assert oracle["share"] == pytest.approx(1.0) and oracle["accuracy"] > 0
    copy = ablation.row_of(runs["copy"], runs["oracle"])
    expected = np.mean([runs["copy"][i][1] - 1.0 for i in runs["copy"]])
    assert copy["vs_control"] == pytest.approx(expected, abs=1e-4) and copy["vs_control"] < 0
    lo, hi = copy["vs_control_ci95"]
    assert lo <= copy["vs_control"] <= hi
    # against a previous checkpoint too; a base scored on other samples gives no difference
    both = ablation.row_of(runs["copy"], runs["copy"], runs["oracle"])
    assert both["vs_control"] == 0.0 and both["vs_previous"] == copy["vs_control"]
    assert both["vs_previous_ci95"] == copy["vs_control_ci95"]
    fewer = dict(list(runs["oracle"].items())[:4])
    assert "vs_previous" not in ablation.row_of(runs["copy"], None, fewer)
    assert set(copy["dimensions"]) == set(ablation.DIMENSIONS)


def test_scaling_plot_is_valid_svg_with_every_point(ablation):
    def entry(steps, clips, share):
        row = {"share": share, "ci95": [share - 0.02, share + 0.02]}
        return {"generator_steps": steps, "train_clips": clips, "val": dict(row), "test": dict(row)}

    variants = {"steps-500": entry(500, 1200, 0.2), "control": entry(1500, 1200, 0.23),
                "control+ema": entry(1500, 1200, 0.22), "previous": entry(5145, 1200, 0.38),
                "long": entry(7633, 4800, 0.43), "long+ema": entry(7633, 4800, 0.44),
                "data-40": entry(1500, 320, 0.21), "data-600": entry(1500, 4800, 0.25)}
    svg = ablation.scaling_svg(variants)
    root = ET.fromstring(svg)
    circles = root.findall("{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 4 + 2 + 3 + 1  # compute: four raw points and two EMA ones; data: three and one
    assert "5,145" in svg and "7,633" in svg and "4,800" in svg
    json.dumps(variants)  # what the script writes beside the plot is plain JSON


def test_own_vlm_run_is_recognised_finished_and_scored(ablation, tmp_path):
    """The vlm-facts variant's VLM: a real VLM-only run counts as finished only with all its steps, and its val
    scores (the facts ones included) are written once and then read back."""
    from toymodel import toy_config
    from revise.train.sft import train_sft

    data = tmp_path / "train"
    generate_dataset(data, per_dimension=1, seed=3, split="train", size=32, frames=16)
    run = tmp_path / "runs" / "v-vlm"
    assert not ablation.vlm_done(run, 4)
    train_sft(data, run, toy_config(stages=("vlm",), vlm_steps=4, vlm_facts=True), progress=False)
    assert ablation.vlm_done(run, 4) and not ablation.vlm_done(run, 5)
    row = ablation.vlm_scores(tmp_path, "v", run / "vlm", data / "manifest.jsonl")
    for key in ("judge_accuracy", "reason_colour_match", "describe_colour_match", "facts_colour_match",
                "facts_object_match"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["facts_examples"]  # RVE-Sim samples carry states, so the facts task is scored
    (tmp_path / "vlm-v.json").write_text(json.dumps({**row, "judge_accuracy": -1}))
    assert ablation.vlm_scores(tmp_path, "v", run / "vlm", data / "manifest.jsonl")["judge_accuracy"] == -1


def test_a_checkpoints_clips_and_steps_come_from_its_training_record(ablation, tmp_path):
    (tmp_path / "revise.json").write_text(json.dumps(
        {"training": {"train_samples": 4800, "steps": {"generator": 7633}, "vlm_from": {"spec": "revise-tiny"}}}))
    assert ablation.spec_of(tmp_path) == {"per_dimension": 600, "steps": 7633}
    (tmp_path / "revise.json").write_text(json.dumps(  # the critic step on top: the generator's record below it
        {"training": {"recipe": "critic", "train_samples": 1200, "steps": {"critic": 250},
                      "init_training": {"train_samples": 1200, "steps": {"vlm": 3000, "generator": 5145}}}}))
    assert ablation.spec_of(tmp_path) == {"per_dimension": 150, "steps": 5145}
    assert ablation.VARIANTS["long"]["bf16"] is False and ablation.VARIANTS["long"]["max_minutes"] == 95
