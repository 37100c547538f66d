"""The RVE-Bench runner end to end on tiny real benchmarks: baselines, predictions, failures, CLI."""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest

import benchtools
from revise.bench import compare_runs, comparison_table, read_leaderboard, run_bench
from revise.bench.results import load_results
from revise.bench.runner import redact_secrets
from revise.cli.main import main
from revise.editors import EditContext, create_editor
from revise.data import load_manifest
from revise.errors import ConfigError, ManifestError
from revise.provenance import file_hash
from revise.video import read_video, write_video

JUDGES = ["bt-diff", "bt-metrics"]


def run(bench, out, **kw):
    kw.setdefault("judges", JUDGES)
    return run_bench(bench, out, progress=False, report=False, **kw)


def rows_by_id(out):
    return {r["id"]: r for r in load_results(out / "results.jsonl")}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return benchtools.make_bench(tmp_path_factory.mktemp("bench"), per_dimension=2)


@pytest.fixture(scope="module")
def baselines(bench, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    board = root / "shared_leaderboard.csv"
    return {name: run(bench, root / name, editor=name, leaderboard=board) for name in ("copy", "oracle", "shuffle")}


def test_baselines_bracket_the_scores(baselines):
    copy, oracle, shuffle = (baselines[k].summary for k in ("copy", "oracle", "shuffle"))
    assert oracle["primary_judge"] == "bt-diff"  # bt-metrics gives no rubric scores
    assert oracle["overall"] == 5.0 and oracle["accuracy"] == 1.0 and oracle["ci95"] == [5.0, 5.0]
    assert copy["reasoning"] == 1.0 and copy["consistency"] == 5.0
    assert shuffle["reasoning"] < 5.0 and shuffle["consistency"] < 5.0
    assert copy["overall"] < oracle["overall"] and shuffle["overall"] < oracle["overall"]
    for summary in (copy, oracle, shuffle):
        assert summary["n"] == 16 and summary["n_failed"] == 0 and summary["complete"]
        assert set(summary["subsets"]) == {"rave", "icvg"}
        dims = summary["subsets"]["icvg"]["dimensions"]
        assert set(dims) == {"camera", "causal", "emotional", "commonsense"}
        assert dims["camera"]["n"] == 2 and {"mae_source", "mean_intensity"} <= set(dims["camera"]["metrics"])
        assert summary["judges"]["bt-metrics"]["rubric"] is False


def test_run_files_and_provenance(baselines, bench):
    result = baselines["shuffle"]
    out = result.out_dir
    prov = json.loads((out / "run.json").read_text())
    assert prov["bench"]["sha256"] == file_hash(bench) and prov["bench"]["manifest"] == str(bench.resolve())
    assert prov["editor"]["editor"] == "shuffle" and prov["judge_names"] == JUDGES
    assert prov["judges"]["bt-diff"]["prompt_hash"] and prov["judges"]["bt-diff"]["frames_k"] == 8
    for key in ("version", "git_commit", "platform", "python", "seed", "frames_k", "shard", "n_planned", "created"):
        assert key in prov
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"] == prov
    rows = rows_by_id(out)
    assert len(rows) == 16
    for row in rows.values():
        assert row["status"] == "ok" and row["error"] is None and row["flags"] == []
        assert row["prediction"] == f"videos/{row['id']}.mp4" and (out / row["prediction"]).is_file()
        assert len(row["prediction_sha256"]) == 64
        assert set(row["judges"]) == set(JUDGES) and row["seconds"] >= 0


def test_shuffle_donor_is_deterministic_and_from_the_same_group(bench):
    manifest = load_manifest(bench)
    editor = create_editor("shuffle")
    for sample in manifest:
        donor = editor.pick_donor(EditContext(sample, manifest, seed=3))
        assert donor.id != sample.id and donor.group == sample.group
        assert editor.pick_donor(EditContext(sample, manifest, seed=3)).id == donor.id


def test_scoring_saved_videos_as_predictions(baselines, bench, tmp_path):
    """The saved mp4s are H.264 (lossy): scoring them again is close to, not exactly, the oracle's 5."""
    oracle = baselines["oracle"]
    again = run(bench, tmp_path / "pred", predictions=oracle.out_dir / "videos")
    assert again.summary["n_failed"] == 0 and again.summary["overall"] >= 4.5
    row = rows_by_id(tmp_path / "pred")["rave-causal-0"]
    saved = (oracle.out_dir / "videos" / "rave-causal-0.mp4").resolve()
    assert row["prediction"] == str(saved) and row["prediction_sha256"] == file_hash(saved)
    assert row["editor"] == "predictions:videos"
    assert not (tmp_path / "pred" / "videos").exists()


def test_leaderboard_and_compare(baselines):
    board = read_leaderboard(baselines["copy"].out_dir.parent / "shared_leaderboard.csv")
    assert [(r["editor"], r["judge"]) for r in board] == [("copy", "bt-diff"), ("oracle", "bt-diff"),
                                                         ("shuffle", "bt-diff")]
    assert float(board[1]["overall"]) == 5.0 and board[1]["rave_causal"] == "5.0" and board[1]["n"] == "16"
    comparison = compare_runs(baselines["copy"].out_dir, baselines["oracle"].out_dir)
    overall = comparison.groups[0]
    assert overall.group == "all" and overall.delta("reasoning") == 4.0 and overall.ci_overlap is False
    assert {g.group for g in comparison.groups} >= {"rave", "rave/causal", "icvg/camera"}
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(comparison_table(comparison))
    assert "rave/causal" in console.export_text()


def test_baselines_without_targets_fail_cleanly(tmp_path):
    bench = benchtools.make_bench(tmp_path / "b", per_dimension=1, groups=[("rave", "causal"), ("icvg", "camera")],
                                  targets=False)
    oracle = run(bench, tmp_path / "oracle", editor="oracle")
    rows = rows_by_id(tmp_path / "oracle")
    assert all(r["status"] == "failed" and "no target" in r["error"] for r in rows.values())
    assert oracle.summary["overall"] == 1.0 and oracle.summary["n_failed"] == 2
    assert oracle.summary["overall_scored"] is None
    assert {f["id"] for f in oracle.summary["failures"]} == set(rows)
    run(bench, tmp_path / "shuffle", editor="shuffle")
    errors = [r["error"] for r in rows_by_id(tmp_path / "shuffle").values()]
    assert all("needs another sample with a target" in e for e in errors)


def zero_frame_video(path):
    """A file with a declared H.264 stream and no frame (AVI keeps the empty stream)."""
    container = av.open(str(path), "w", format="avi")
    stream = container.add_stream("libx264", rate=8)
    stream.width = stream.height = 32
    stream.pix_fmt = "yuv420p"
    container.start_encoding()
    container.mux(stream.encode())
    container.close()


def test_predictions_with_broken_files(tmp_path):
    bench = benchtools.make_bench(tmp_path / "b", per_dimension=1)
    manifest = load_manifest(bench)
    preds = tmp_path / "preds"
    preds.mkdir()
    for sample in manifest:
        shutil.copy(sample.target, preds / f"{sample.id}.mp4")
    ids = [s.id for s in manifest]
    (preds / f"{ids[0]}.mp4").unlink()
    (preds / f"{ids[1]}.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    (preds / f"{ids[2]}.mp4").write_bytes(b"")
    zero_frame_video(preds / f"{ids[3]}.mp4")
    short = read_video(manifest.samples[4].target).frames[:5]
    write_video(preds / f"{ids[4]}.mp4", short, 8)
    result = run(bench, tmp_path / "out", predictions=preds)
    rows = rows_by_id(tmp_path / "out")
    expected = {ids[0]: "missing", ids[1]: "not a video", ids[2]: "empty", ids[3]: "zero frames",
                ids[4]: "wrong length: the prediction has 5 frames, expected 8 (the source's)"}
    for sample_id, text in expected.items():
        row = rows[sample_id]
        assert row["status"] == "failed" and text in row["error"] and "\n" not in row["error"], row
        assert row["error"].startswith("prediction: ") or row["error"].startswith("wrong length")
        assert row["judges"] == {}
    for sample_id in ids[5:]:
        assert rows[sample_id]["status"] == "ok" and rows[sample_id]["judges"]["bt-diff"]["overall"] == 5.0
    summary = result.summary
    assert summary["n_failed"] == 5 and summary["overall_scored"] == 5.0
    assert summary["overall"] == pytest.approx((5 * 1 + 3 * 5) / 8, abs=1e-4)
    assert rows[ids[1]]["prediction_sha256"] is not None and rows[ids[0]]["prediction_sha256"] is None

    resampled = run(bench, tmp_path / "resampled", predictions=preds, length_policy="resample")
    row = rows_by_id(tmp_path / "resampled")[ids[4]]
    assert row["status"] == "ok" and row["flags"] == ["resampled from 5 to 8 frames"]
    assert resampled.summary["n_failed"] == 4


def test_editor_failures_do_not_stop_the_run(tmp_path):
    bench = benchtools.make_bench(tmp_path / "b", per_dimension=1, groups=[("rave", "causal"), ("rave", "spatial"),
                                                                            ("icvg", "camera")])
    run(bench, tmp_path / "crash", editor="bt-crash", editor_options={"crash_ids": ["rave-spatial-0"]})
    rows = rows_by_id(tmp_path / "crash")
    assert rows["rave-spatial-0"]["status"] == "failed"
    assert rows["rave-spatial-0"]["error"] == "editor bt-crash: bt-crash: out of ideas for rave-spatial-0"
    assert rows["rave-causal-0"]["status"] == rows["icvg-camera-0"]["status"] == "ok"
    stretch = run(bench, tmp_path / "stretch", editor="bt-stretch")
    errors = {r["error"] for r in rows_by_id(tmp_path / "stretch").values()}
    assert errors == {"wrong length: the edited video has 16 frames, expected 8 (the source's)"}
    assert stretch.summary["overall"] == 1.0


def test_a_judge_failing_on_one_sample_keeps_the_others(tmp_path):
    bench = benchtools.make_bench(tmp_path / "b", per_dimension=2, groups=[("rave", "causal"), ("icvg", "camera")])
    options = {"bt-diff": {"fail_ids": ["rave-causal-1"]}}
    result = run(bench, tmp_path / "two", editor="oracle", judge_options=options)
    row = rows_by_id(tmp_path / "two")["rave-causal-1"]
    assert row["status"] == "ok"
    assert "refusing sample rave-causal-1" in row["judges"]["bt-diff"]["error"]
    assert row["judges"]["bt-diff"]["overall"] is None
    assert row["judges"]["bt-metrics"]["metrics"]["mae_target"] < 0.05
    summary = result.summary
    assert summary["n_failed"] == 1 and summary["overall_scored"] == 5.0 and summary["overall"] == 4.0
    assert summary["failures"] == [{"id": "rave-causal-1",
                                    "error": "judge bt-diff: bt-diff: refusing sample rave-causal-1 (test failure)"}]
    assert summary["n_rows_failed"] == 0
    run(bench, tmp_path / "one", editor="oracle", judges=["bt-diff"], judge_options=options)
    row = rows_by_id(tmp_path / "one")["rave-causal-1"]
    assert row["status"] == "failed" and row["error"].startswith("every judge failed: bt-diff:")


def test_workers_give_the_same_summary(bench, baselines, tmp_path):
    threaded = run(bench, tmp_path / "threads", editor="shuffle", workers=3)
    strip = lambda s: {k: v for k, v in s.items() if k != "provenance"}  # noqa: E731
    assert strip(threaded.summary) == strip(baselines["shuffle"].summary)
    hashes = lambda out: {i: r["prediction_sha256"] for i, r in rows_by_id(out).items()}  # noqa: E731
    assert hashes(tmp_path / "threads") == hashes(baselines["shuffle"].out_dir)


def test_bad_manifest_is_one_clear_error(tmp_path, capsys):
    bench = benchtools.make_bench(tmp_path / "b", per_dimension=1, groups=[("rave", "causal")])
    lines = bench.read_text().splitlines()
    lines.append(json.dumps({"id": "x", "subset": "rave", "dimension": "camera", "instruction": "i", "source": "v.mp4"}))
    lines.append("{not json")
    bench.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError) as info:
        run(bench, tmp_path / "out", editor="copy")
    assert "line 2" in str(info.value) and "line 3" in str(info.value)
    assert not (tmp_path / "out").exists()
    code = main(["bench", "run", "--bench", str(bench), "--editor", "copy", "--judge", "bt-diff",
                 "--out", str(tmp_path / "out"), "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "invalid row(s)" in err and "Traceback" not in err


def test_cli(tmp_path, capsys):
    bench = benchtools.make_bench(tmp_path / "b", per_dimension=1, groups=[("rave", "causal"), ("icvg", "camera")])
    out = tmp_path / "out"
    base = ["bench", "run", "--bench", str(bench), "--judge", "bt-diff,bt-metrics", "--no-progress", "--no-report"]
    assert main([*base, "--editor", "copy", "--out", str(out), "--judge-option", "bt-diff.sleep=[0, 0.001]"]) == 0
    assert "2 sample(s) run" in capsys.readouterr().out
    prov = json.loads((out / "run.json").read_text())
    assert prov["cli_args"]["judge"] == JUDGES and prov["judge_options"] == {"bt-diff": {"sleep": [0, 0.001]}}

    def error_of(argv):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        return err

    assert "pass --resume" in error_of([*base, "--editor", "copy", "--out", str(out)])
    assert "cannot resume" in error_of([*base, "--editor", "oracle", "--out", str(out), "--resume"])
    assert "exactly one of" in error_of([*base, "--editor", "copy", "--predictions", str(tmp_path), "--out", str(tmp_path / "x")])
    assert "environment" in error_of([*base, "--editor", "copy", "--out", str(tmp_path / "x"),
                                      "--judge-option", "bt-diff.api_key=sk-123"])
    assert "available" in error_of([*base, "--editor", "nope", "--out", str(tmp_path / "x")])
    assert "i/n" in error_of([*base, "--editor", "copy", "--out", str(tmp_path / "x"), "--shard", "2"])
    assert "length policy" in error_of([*base, "--editor", "copy", "--out", str(tmp_path / "x"), "--length", "pad"])
    assert "not a folder" in error_of([*base, "--predictions", str(tmp_path / "none"), "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
    assert redact_secrets({"openai": {"api_key": "sk", "model": "m"}, "token": 1}) == {
        "openai": {"api_key": "<redacted>", "model": "m"}, "token": "<redacted>"}

    assert main([*base, "--editor", "oracle", "--out", str(tmp_path / "oracle")]) == 0
    capsys.readouterr()
    assert main(["bench", "summarize", str(out), "--no-report"]) == 0
    assert "rave/causal" in capsys.readouterr().out
    assert len(read_leaderboard(out / "leaderboard.csv")) == 1  # re-summarising does not repeat the row
    assert main(["bench", "compare", str(out), str(tmp_path / "oracle")]) == 0
    assert "reasoning" in capsys.readouterr().out
    assert "no results from judge" in error_of(["bench", "compare", str(out), str(tmp_path / "oracle"), "--judge", "gt"])
    assert main(["bench", "list"]) == 0
    listed = capsys.readouterr().out
    assert "copy, " in listed and "shuffle" in listed and "bt-diff" in listed
    assert main(["bench", "run", "--help"]) == 0


def test_rve_sim_mini_name_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("REVISE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="must be an integer"):
        run("rve-sim-mini:x", tmp_path / "out", editor="copy")


def test_run_identity_ignores_judge_runtime_settings_only():
    from revise.bench.runner import run_identity

    base = {"editor": {"editor": "copy"}, "judges": {"openai": {"prompt_hash": "abc", "runtime": {"concurrency": 8}}},
            "bench": {"sha256": "x"}}
    faster = {**base, "judges": {"openai": {"prompt_hash": "abc", "runtime": {"concurrency": 32}}}}
    other_prompt = {**base, "judges": {"openai": {"prompt_hash": "def", "runtime": {"concurrency": 8}}}}
    assert run_identity(base) == run_identity(faster)
    assert run_identity(base) != run_identity(other_prompt)


def test_rve_sim_mini_is_generated_once_into_the_cache_keyed_on_the_sim_code(tmp_path):
    from revise.bench import rve_sim_mini
    from revise.data import load_manifest
    from revise.sim.generate import code_fingerprint

    manifest = rve_sim_mini(0, cache_dir=tmp_path)
    assert code_fingerprint() in manifest.parent.name
    samples = load_manifest(manifest)
    assert len(samples) == 32 and {s.metadata["split"] for s in samples} == {"test"}
    stamp = manifest.stat().st_mtime_ns
    assert rve_sim_mini(0, cache_dir=tmp_path) == manifest and manifest.stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
