"""Resuming killed runs (SIGKILL at random points, torn lines) and merging shards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import benchtools
from revise.bench import merge_runs, run_bench
from revise.bench.results import load_results, read_results
from revise.bench.runner import exclusive_run, run_identity
from revise.errors import ConfigError

JUDGES = ["bt-diff", "bt-metrics"]
SCRIPT = Path(benchtools.__file__).resolve()


def run(bench, out, **kw):
    kw.setdefault("judges", JUDGES)
    kw.setdefault("editor", "shuffle")
    return run_bench(bench, out, progress=False, report=False, **kw)


def numbers(summary: dict) -> dict:
    """A summary without its provenance (timestamps, CLI arguments and paths differ between runs)."""
    return {k: v for k, v in summary.items() if k != "provenance"}


def check_rows(out: Path, ids: set[str]) -> None:
    """Every line parses, no id twice, none lost; no half-written video is left behind."""
    lines = (out / "results.jsonl").read_text().splitlines()
    seen = [json.loads(line)["id"] for line in lines]
    assert len(seen) == len(set(seen)) and set(seen) == ids
    assert not list((out / "videos").glob(".*"))


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return benchtools.make_bench(tmp_path_factory.mktemp("bench"), per_dimension=3)


@pytest.fixture(scope="module")
def reference(bench, tmp_path_factory):
    return run(bench, tmp_path_factory.mktemp("ref") / "out")


def count_rows(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_resume_after_sigkill_at_random_points(bench, reference, tmp_path):
    """Five kill -9 at random moments of one run, then a resume to completion: same summary."""
    out = tmp_path / "out"
    results = out / "results.jsonl"
    ids = {r["id"] for r in load_results(reference.results_path)}
    rng = np.random.default_rng(20240611)
    argv = [sys.executable, str(SCRIPT), "bench", "run", "--bench", str(bench), "--editor", "shuffle",
            "--judge", ",".join(JUDGES), "--judge-option", "bt-diff.sleep=[0.02,0.05]", "--out", str(out),
            "--no-progress", "--no-report"]
    kills = 0
    for trial in range(5):
        before = count_rows(results)
        proc = subprocess.Popen(argv + (["--resume"] if trial else []), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        wait_for = before + int(rng.integers(1, 4))
        deadline = time.monotonic() + 60
        while count_rows(results) < wait_for and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0.0, 0.05)))  # lands inside the next sample: judging, encoding, writing
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.returncode in (0, -signal.SIGKILL), stderr
        assert len(read_results(results).rows) >= before  # nothing finished is ever lost
    assert kills >= 4  # the run is long enough that the kills land mid-run
    assert count_rows(results) < len(ids)
    done = subprocess.run(argv + ["--resume"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    check_rows(out, ids)
    summary = json.loads((out / "summary.json").read_text())
    assert numbers(summary) == numbers(reference.summary)
    assert run_identity(summary["provenance"]) == run_identity(reference.summary["provenance"])
    assert len(summary["provenance"]["resumed"]) == 5


def test_torn_last_line_is_redone(bench, reference, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference.out_dir, out)
    data = (out / "results.jsonl").read_bytes()
    lines = data.splitlines(keepends=True)
    last_id = json.loads(lines[-1])["id"]
    (out / "results.jsonl").write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    found = read_results(out / "results.jsonl")
    assert found.torn and last_id not in {r["id"] for r in found.rows}
    with pytest.raises(ConfigError, match="pass --resume"):
        run(bench, out)
    result = run(bench, out, resume=True)
    assert result.n_run == 1 and result.n_skipped == len(lines) - 1
    check_rows(out, {json.loads(line)["id"] for line in lines})
    assert numbers(result.summary) == numbers(reference.summary)

    (out / "results.jsonl").write_bytes(b"".join(lines[:3]) + b"{garbage\n" + b"".join(lines[3:]))
    with pytest.raises(ConfigError, match="line 4 is not valid JSON"):
        run(bench, out, resume=True)


def test_resume_refuses_other_settings(bench, tmp_path):
    out = tmp_path / "out"
    run(bench, out, limit=3)
    for change, key in (({"editor": "copy"}, "editor"), ({"seed": 1}, "seed"), ({"judges": ["bt-diff"]}, "judge"),
                        ({"frames_k": 4}, "frames_k"), ({"limit": 4}, "limit")):
        with pytest.raises(ConfigError, match=f"cannot resume.*{key}"):
            run(bench, out, resume=True, **{"limit": 3, **change})
    other = benchtools.make_bench(tmp_path / "other", per_dimension=3, seed=1)
    with pytest.raises(ConfigError, match="bench_sha256"):
        run(other, out, resume=True, limit=3)
    assert run(bench, out, resume=True, limit=3).n_run == 0  # same settings: nothing left to do
    with exclusive_run(out):  # as if another process were running in OUT
        with pytest.raises(ConfigError, match="another revise bench process"):
            run(bench, out, resume=True, limit=3)


def test_shards_merge_to_the_unsharded_run(bench, tmp_path):
    full = run(bench, tmp_path / "full", limit=19)
    shards = [run(bench, tmp_path / f"s{i}", limit=19, shard=f"{i}/2") for i in range(2)]
    assert [s.n_planned for s in shards] == [10, 9]
    assert {r["id"] for r in load_results(shards[0].results_path)}.isdisjoint(
        {r["id"] for r in load_results(shards[1].results_path)})
    merged = merge_runs([tmp_path / "s1", tmp_path / "s0"], tmp_path / "merged", report=False)
    assert numbers(merged.summary) == numbers(full.summary)
    assert merged.summary["complete"] and merged.summary["provenance"]["shard"] is None
    assert len(merged.summary["provenance"]["merged_from"]) == 2
    for row in load_results(merged.results_path):
        assert (tmp_path / "merged" / row["prediction"]).is_file()

    with pytest.raises(ConfigError, match="fresh --out"):
        merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged", report=False)
    shutil.copytree(tmp_path / "s0", tmp_path / "s0-copy")
    with pytest.raises(ConfigError, match="shard 0/2 is given twice"):
        merge_runs([tmp_path / "s0", tmp_path / "s0-copy"], tmp_path / "m2", report=False)
    run(bench, tmp_path / "s1-seed", limit=19, shard="1/2", seed=5)
    with pytest.raises(ConfigError, match="differs .* in seed"):
        merge_runs([tmp_path / "s0", tmp_path / "s1-seed"], tmp_path / "m3", report=False)
    with pytest.raises(ConfigError, match="is in both"):
        merge_runs([tmp_path / "full", tmp_path / "s0"], tmp_path / "m4", report=False)
    partial = merge_runs([tmp_path / "s0"], tmp_path / "m5", report=False)
    assert not partial.summary["complete"] and partial.summary["provenance"]["shards_missing"] == ["1/2"]


def test_run_identity_ignores_editor_and_judge_runtime_settings():
    from revise.bench.runner import run_identity

    base = {"editor": {"editor": "wan-vace", "options": {"steps": 30}, "runtime": {"device": "cuda:0", "threads": 4}},
            "judges": {"gt": {"judge": "gt", "runtime": {"workers": 2}}}, "seed": 0, "bench": {"sha256": "x"}}
    moved = {**base, "editor": {**base["editor"], "runtime": {"device": "cpu", "threads": 1}},
             "judges": {"gt": {"judge": "gt", "runtime": {"workers": 8}}}}
    changed = {**base, "editor": {**base["editor"], "options": {"steps": 50}}}
    assert run_identity(base) == run_identity(moved)
    assert run_identity(base) != run_identity(changed)
