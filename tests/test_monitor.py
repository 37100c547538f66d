"""The reward-hacking monitor of ``revise train srf`` (``--monitor-every``): its rows in ``metrics.jsonl``, that it
does not change training, that its numbers are the critic's and the gt judge's on the run's own edits, that a
resumed run neither loses nor repeats rows, and its plot."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

from revise.errors import ConfigError
from revise.model.unified import ReviseModel
from revise.sim import generate_dataset
from revise.train.monitor import (MonitorLog, evaluate, load_monitor_set, monitor_svg, pearson, read_rows,
                                  with_changes)
from revise.train.srf import SRFConfig, train_srf
from toymodel import Crash, crash_before_write

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(srf_init, tmp_path_factory):
    data, init = srf_init
    val = generate_dataset(tmp_path_factory.mktemp("monitor") / "val", per_dimension=1, seed=0, split="val",
                           size=32, frames=16)
    return data, val, init


def config(**overrides) -> SRFConfig:
    options = dict(steps=4, batch_size=4, lr=1e-3, warmup=2, lam=0.5, reward_t_range=(0.0, 1.0),
                   checkpoint_every=2, log_every=1)
    return SRFConfig(**{**options, **overrides})


def _losses(out: Path) -> list[tuple[str, str, str]]:
    with (out / "metrics.csv").open(newline="") as f:
        return [(r["step"], r["loss"], r["detail"]) for r in csv.DictReader(f)]


def test_monitor_logs_the_critic_and_gt_without_changing_training(setup, tmp_path):
    data, val, init = setup
    train_srf(init, data, tmp_path / "plain", config(), progress=False)
    train_srf(init, data, tmp_path / "watched", config(monitor_every=2, monitor_data=str(val), monitor_samples=6),
              progress=False)
    # the same batches, noise and updates: the monitor has its own seeds
    assert _losses(tmp_path / "watched") == _losses(tmp_path / "plain")
    a = ReviseModel.from_pretrained(tmp_path / "plain").generator.state_dict()
    b = ReviseModel.from_pretrained(tmp_path / "watched").generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "plain" / "metrics.jsonl").exists()

    rows = read_rows(tmp_path / "watched" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 2, 4]  # before the first step, every 2, after the last
    for r in rows:
        assert r["n"] == 6 and len(r["p_yes"]) == len(r["share"]) == len(r["ids"]) == 6
        assert all(0.0 <= p <= 1.0 for p in r["p_yes"]) and all(0.0 <= s <= 1.0 for s in r["share"])
        assert r["critic_p_yes"] == pytest.approx(np.mean(r["p_yes"]), abs=1e-6)
        assert r["gt_share"] == pytest.approx(np.mean(r["share"]), abs=1e-6)
        assert 0.0 <= r["agreement"] <= 1.0 and r["lam"] == 0.5
    assert rows[0]["delta_corr"] is None and rows[0]["delta_p_yes"] is None
    assert rows[-1]["delta_share"] == pytest.approx(np.mean(np.subtract(rows[-1]["share"], rows[0]["share"])),
                                                    abs=1e-5)
    assert rows[-1]["p_yes"] != rows[0]["p_yes"]  # the generator changed, and the critic saw it

    # the last row is the finished checkpoint's edits, scored by its critic and the gt judge
    model = ReviseModel.from_pretrained(tmp_path / "watched")
    again = evaluate(model, model.vlm.yes_no_rows().detach(), load_monitor_set(val, 6), seed=0)
    assert again["ids"] == rows[-1]["ids"]
    assert again["p_yes"] == pytest.approx(rows[-1]["p_yes"], abs=1e-5)
    assert again["share"] == pytest.approx(rows[-1]["share"], abs=1e-5)
    assert again["corr"] == (None if rows[-1]["corr"] is None else pytest.approx(rows[-1]["corr"], abs=1e-4))


def test_a_resumed_run_neither_loses_nor_repeats_monitor_rows(setup, tmp_path, monkeypatch):
    """Killed after its last evaluation but before the checkpoint was written, the resumed run evaluates that
    step again and the file ends as an uninterrupted run's; the default val set is generated into OUT."""
    from revise.train.srf import _SRFTrainer

    data, _, init = setup
    settings = config(monitor_every=2, monitor_samples=4)
    train_srf(init, data, tmp_path / "full", settings, progress=False)

    with monkeypatch.context() as m:
        crash_before_write(m, _SRFTrainer)
        with pytest.raises(Crash):
            train_srf(init, data, tmp_path / "late", settings, progress=False)
    assert [r["step"] for r in read_rows(tmp_path / "late" / "metrics.jsonl")] == [0, 2, 4]
    train_srf(init, data, tmp_path / "late", settings, resume=True, progress=False)
    assert (tmp_path / "late" / "monitor-val" / "manifest.jsonl").is_file()

    def strip(rows):
        return [{k: v for k, v in r.items() if k not in ("seconds", "val")} for r in rows]

    full, late = (read_rows(tmp_path / name / "metrics.jsonl") for name in ("full", "late"))
    assert [r["step"] for r in late] == [0, 2, 4]
    assert strip(late) == strip(full)


def test_monitor_log_drops_rows_it_will_write_again(tmp_path):
    log = MonitorLog(tmp_path, 0)
    base = {"ids": ["a", "b", "c"], "p_yes": [0.1, 0.5, 0.9], "share": [0.2, 0.3, 0.4]}
    for step in (0, 10, 20):
        log.log(step, {**base, "p_yes": [p + step / 100 for p in base["p_yes"]]})
    assert log.done(10) and not log.done(5)
    resumed = MonitorLog(tmp_path, 10)  # resuming from step 10: its row and later ones go
    assert [r["step"] for r in read_rows(tmp_path / "metrics.jsonl")] == [0]
    assert resumed.first["step"] == 0 and not resumed.done(10)
    row = resumed.log(10, {**base, "share": [0.2, 0.5, 0.9]})
    assert row["delta_share"] == pytest.approx(np.mean([0.0, 0.2, 0.5]), abs=1e-6)
    assert row["delta_corr"] is None  # the critic did not change: no correlation of changes
    (tmp_path / "new").mkdir()
    assert MonitorLog(tmp_path / "new", 0).first is None


def test_changes_correlation_and_bad_files():
    first = {"ids": [1, 2, 3, 4], "p_yes": [0.5] * 4, "share": [0.5] * 4}
    up = {"ids": [1, 2, 3, 4], "p_yes": [0.6, 0.7, 0.8, 0.9], "share": [0.5, 0.6, 0.7, 0.8]}
    assert with_changes(up, first)["delta_corr"] == pytest.approx(1.0)
    hacked = {**up, "share": [0.8, 0.7, 0.6, 0.5]}  # the critic likes more exactly what gt likes less
    assert with_changes(hacked, first)["delta_corr"] == pytest.approx(-1.0)
    assert with_changes(up, {**first, "ids": [9, 9, 9, 9]})["delta_corr"] is None  # another val set
    assert pearson([1, 1], [1, 2]) is None and pearson([1], [2]) is None


def test_read_rows_skips_a_torn_last_line_and_names_a_bad_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\n{"step": 1}\n{"step": 2, "x"')
    assert [r["step"] for r in read_rows(path)] == [0, 1]
    path.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(ConfigError, match=r"metrics.jsonl:2: not a JSON object"):
        read_rows(path)


def test_monitor_settings_are_one_line_errors(setup, tmp_path, capsys):
    from revise.cli.main import main

    data, val, init = setup
    with pytest.raises(ConfigError, match="monitor_every must be >= 0"):
        config(monitor_every=-1)
    with pytest.raises(ConfigError, match="the monitor's val set is not there"):
        train_srf(init, data, tmp_path / "a", config(monitor_every=2, monitor_data=str(tmp_path / "nope")),
                  progress=False)
    rc = main(["train", "srf", "--init", str(init), "--data", str(data), "--out", str(tmp_path / "b"),
               "--monitor-every", "2", "--monitor-data", str(data / "manifest.jsonl"), "--monitor-samples", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "monitor_samples" in err, err


def test_monitor_plot_is_valid_svg_with_every_point():
    def rows(values):
        return [{"step": s, "critic_p_yes": p, "gt_share": g, "agreement": a, "delta_corr": d}
                for s, p, g, a, d in values]

    runs = {"lambda 0.1 <frozen>": rows([(0, 0.3, 0.4, 0.8, None), (50, 0.5, 0.4, 0.7, -0.2), (100, 0.7, 0.38, 0.6, -0.4)]),
            "fm only": rows([(0, 0.3, 0.4, 0.8, None), (100, 0.31, 0.42, 0.8, 0.1)])}
    svg = monitor_svg(runs)
    root = ET.fromstring(svg)
    circles = root.findall("{http://www.w3.org/2000/svg}circle")
    assert len(circles) == (3 + 3 + 3 + 2) + (2 + 2 + 2 + 1)  # every numeric value of every series
    assert "&lt;frozen&gt;" in svg and "<frozen>" not in svg
    json.dumps(runs)


def test_a_run_saved_before_the_monitor_existed_resumes(setup, tmp_path, monkeypatch):
    """An ``srf_config.json`` written before the monitor's settings existed counts them as their defaults."""
    from revise.train.srf import _SRFTrainer

    data, _, init = setup
    out = tmp_path / "old"

    with monkeypatch.context() as m:
        crash_before_write(m, _SRFTrainer)
        with pytest.raises(Crash):
            train_srf(init, data, out, config(steps=2), progress=False)
    saved = json.loads((out / "srf_config.json").read_text())
    old = {k: v for k, v in saved.items() if not k.startswith("monitor_")}
    assert len(old) == len(saved) - 3
    (out / "srf_config.json").write_text(json.dumps(old))
    train_srf(init, data, out, config(steps=2), resume=True, progress=False)
    assert (out / "revise.json").is_file()
    with pytest.raises(ConfigError, match=r"changed settings \['monitor_every'\]"):
        train_srf(init, data, out, config(steps=2, monitor_every=1), resume=True, progress=False)
