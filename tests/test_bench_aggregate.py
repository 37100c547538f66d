"""Aggregation math on hand-made result rows: means, failures, accuracy, CI, primary judge, leaderboard."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from revise.bench import (LEADERBOARD_COLUMNS, append_leaderboard, bootstrap_ci, compare_runs, leaderboard_rows,
                          read_leaderboard, summarize, summarize_run)
from revise.errors import ConfigError


def verdict(judge, r=None, c=None, q=None, error=None, **metrics):
    return {"judge": judge, "reasoning": r, "consistency": c, "quality": q, "rationale": "", "metrics": metrics,
            "error": error}


def row(sample_id, subset="rave", dimension="causal", status="ok", error=None, **judges):
    return {"id": sample_id, "subset": subset, "dimension": dimension, "instruction": "i", "editor": "e",
            "status": status, "error": error, "prediction": None, "prediction_sha256": None, "judges": judges,
            "seconds": 0.1, "flags": []}


ROWS = [
    row("a", j=verdict("j", 5, 5, 5, psnr=30.0)),                                   # passed
    row("b", j=verdict("j", 4, 5, 3, psnr=20.0)),                                   # overall 4
    row("c", status="failed", error="prediction: missing"),                         # failed -> 1
    row("d", j=verdict("j", error="server down", psnr=10.0)),                       # judge failed -> 1
    row("e", dimension="spatial", j=verdict("j", 5, 5, 5)),
    row("f", subset="icvg", dimension="camera", j=verdict("j", 2, 2, 2)),
    row("g", subset="icvg", dimension="camera", j=verdict("j")),                    # not applicable
]


def test_bootstrap_ci():
    values = [1.0, 2.0, 5.0, 4.0, 4.5]
    rng = np.random.default_rng(0)
    means = np.asarray(values)[rng.integers(0, 5, size=(1000, 5))].mean(axis=1)
    assert bootstrap_ci(values) == [round(float(x), 4) for x in np.quantile(means, [0.025, 0.975])]
    lo, hi = bootstrap_ci(values)
    assert lo <= np.mean(values) <= hi
    assert bootstrap_ci(values) == bootstrap_ci(values)  # seeded
    assert bootstrap_ci(values, seed=1) != bootstrap_ci(values)
    assert bootstrap_ci([3.0]) == [3.0, 3.0] and bootstrap_ci([]) is None
    wide, narrow = bootstrap_ci(values * 1), bootstrap_ci(values * 40)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_dimension_stats_count_failures_as_one():
    s = summarize(ROWS)
    causal = s["subsets"]["rave"]["dimensions"]["causal"]
    assert (causal["n"], causal["n_scored"], causal["n_failed"], causal["n_na"]) == (4, 2, 2, 0)
    assert causal["overall"] == pytest.approx((5 + 4 + 1 + 1) / 4)
    assert causal["overall_scored"] == 4.5
    assert causal["reasoning"] == pytest.approx((5 + 4 + 1 + 1) / 4)
    assert causal["quality"] == pytest.approx((5 + 3 + 1 + 1) / 4)
    assert causal["accuracy"] == 0.25
    assert causal["ci95"] == bootstrap_ci([5.0, 4.0, 1.0, 1.0])  # samples in id order
    assert causal["metrics"] == {"psnr": 20.0}  # the failed judge's metric still counts; the failed row has none
    camera = s["subsets"]["icvg"]["dimensions"]["camera"]
    assert (camera["n"], camera["n_na"], camera["overall"], camera["accuracy"]) == (2, 1, 2.0, 0.0)


def test_subset_and_run_level():
    s = summarize(ROWS)
    rave = s["subsets"]["rave"]
    assert rave["overall"] == pytest.approx((5 + 4 + 1 + 1 + 5) / 5)
    assert rave["overall_macro"] == pytest.approx((2.75 + 5.0) / 2)
    assert rave["accuracy"] == pytest.approx(2 / 5)
    assert s["overall"] == pytest.approx((5 + 4 + 1 + 1 + 5 + 2) / 6, abs=1e-4)
    assert s["overall_macro"] == pytest.approx((2.75 + 5.0 + 2.0) / 3, abs=1e-4)
    assert (s["n"], s["n_failed"], s["n_na"], s["n_rows"], s["n_rows_failed"]) == (7, 2, 1, 7, 1)
    assert s["failures"] == [{"id": "c", "error": "prediction: missing"}, {"id": "d", "error": "judge j: server down"}]
    assert s["primary_judge"] == "j" and s["judges"]["j"]["overall"] == s["overall"]
    assert s["complete"] is False and s["n_planned"] is None  # no provenance: completeness unknown
    shuffled = ROWS[:]
    random.Random(0).shuffle(shuffled)
    assert summarize(shuffled) == s  # row order (e.g. from --workers) does not matter
    json.dumps(s, allow_nan=False)


def test_primary_judge_and_metric_names():
    rows = [row("a", m=verdict("m", x=1.0, only_m=2.0), j=verdict("j", 5, 4, 3, x=3.0)),
            row("b", m=verdict("m", x=3.0, only_m=4.0), j=verdict("j", 3, 3, 3, x=5.0))]
    s = summarize(rows, provenance={"judge_names": ["m", "j"], "n_planned": 2})
    assert s["primary_judge"] == "j" and s["judges"]["m"]["rubric"] is False and s["judges"]["j"]["rubric"]
    assert s["complete"] is True
    assert s["subsets"]["rave"]["dimensions"]["causal"]["metrics"] == {"j:x": 4.0, "m:x": 2.0, "only_m": 3.0}
    assert s["judges"]["m"]["subsets"]["rave"]["dimensions"]["causal"]["metrics"] == {"only_m": 3.0, "x": 2.0}
    only_metrics = summarize([row("a", m=verdict("m", x=1.0))])
    assert only_metrics["primary_judge"] == "m" and only_metrics["overall"] is None and only_metrics["n_na"] == 1


def write_run(out, rows, **prov):
    out.mkdir(parents=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    provenance = {"judge_names": ["j"], "editor_label": "ed", "git_commit": "abc", "n_planned": len(rows),
                  "bench": {"name": "tiny", "sha256": "f00"}, "shard": None, **prov}
    (out / "run.json").write_text(json.dumps(provenance))
    return summarize_run(out)


def test_leaderboard_appends(tmp_path):
    a = write_run(tmp_path / "a", ROWS)
    b = write_run(tmp_path / "b", ROWS[:2], editor_label="other")
    board = tmp_path / "board.csv"
    append_leaderboard(board, leaderboard_rows(a, tmp_path / "a"))
    append_leaderboard(board, leaderboard_rows(b, tmp_path / "b"))
    append_leaderboard(board, leaderboard_rows(a, tmp_path / "a"))  # the same numbers again: not repeated
    lines = board.read_text().splitlines()
    assert lines[0] == ",".join(LEADERBOARD_COLUMNS) and sum(line.startswith("timestamp") for line in lines) == 1
    rows = read_leaderboard(board)
    assert [(r["editor"], r["judge"], r["n"], r["n_failed"]) for r in rows] == [("ed", "j", "7", "2"),
                                                                                ("other", "j", "2", "0")]
    assert rows[0]["rave_causal"] == "2.75" and rows[0]["icvg_camera"] == "2.0" and rows[0]["rave_temporal"] == ""
    assert float(rows[0]["overall"]) == a["overall"] and rows[0]["git_commit"] == "abc" and rows[0]["bench"] == "tiny"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n")
    with pytest.raises(ConfigError, match="columns"):
        append_leaderboard(bad, leaderboard_rows(a, tmp_path / "a"))


def test_compare_two_runs(tmp_path):
    write_run(tmp_path / "a", ROWS)
    better = [row(r["id"], r["subset"], r["dimension"], j=verdict("j", 5, 5, 5)) for r in ROWS]
    write_run(tmp_path / "b", better, bench={"name": "tiny", "sha256": "other"})
    comparison = compare_runs(tmp_path / "a", tmp_path / "b")
    groups = {g.group: g for g in comparison.groups}
    assert list(groups)[:3] == ["all", "rave", "rave/causal"]
    assert groups["rave/causal"].delta("overall") == 2.25 and groups["rave/causal"].delta("quality") == 2.5
    assert groups["rave/spatial"].delta("overall") == 0.0 and groups["rave/spatial"].ci_overlap is True
    assert groups["icvg/camera"].ci_overlap is False
    assert any("different benchmark" in note for note in comparison.notes)
    with pytest.raises(ConfigError, match="no results from judge"):
        compare_runs(tmp_path / "a", tmp_path / "b", judge="k")
