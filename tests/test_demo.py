"""`revise demo` end to end: rve-sim-mini, the baselines and the shipped revise-tiny, reports, leaderboard."""

from __future__ import annotations

import csv

import pytest

from revise.cli.main import main as cli_main


@pytest.mark.slow
def test_demo_runs_every_editor_and_ranks_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REVISE_CACHE", str(tmp_path / "cache"))
    rc = cli_main(["demo", "--out", str(tmp_path / "demo")])
    assert rc in (0, None)
    out = capsys.readouterr().out
    assert "revise-tiny" in out and "Leaderboard" in out
    with (tmp_path / "demo" / "leaderboard.csv").open(newline="") as f:
        rows = {r["editor"]: r for r in csv.DictReader(f) if r["judge"] == "gt"}
    assert set(rows) == {"copy", "shuffle", "revise-tiny", "oracle"}
    overall = {k: float(v["overall"]) for k, v in rows.items()}
    assert overall["oracle"] == 5.0
    assert overall["shuffle"] < overall["copy"] < overall["oracle"]
    assert 1.0 <= overall["revise-tiny"] < overall["oracle"]
    for name in rows:
        report = tmp_path / "demo" / "runs" / name / "report.html"
        assert report.is_file() and report.stat().st_size > 10_000
        assert int(rows[name]["n"]) == 32 and int(rows[name]["n_failed"]) == 0
