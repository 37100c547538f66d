"""Replay a finished ``revise train sft`` run's generator step times through the ``--max-minutes`` planner.

Reads the run's ``metrics.csv`` (one row per logging step: stage, step, elapsed seconds), spreads each
logging interval of the generator stage (the last stage, which gets the rest of the budget) evenly over its
steps, and drives :meth:`revise.train.sft._Trainer.plan` with a
clock that advances by those step times, as the training loop does (with the loop's deadline stop). It
prints how many steps the stage ran and how many the current planner would have planned in the same
budget, and the seconds each uses, so a change to the planner can be judged on real step times.

    .venv/bin/python benchmarks/replay_budget_plan.py --metrics benchmarks/data/sft-metrics-previous-revise-tiny.csv \\
        --max-minutes 55
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import revise.train.sft as sft


def replay(step_seconds: np.ndarray, budget: float, log_every: int, calibration_steps: int = 10) -> dict:
    """Drive the planner with a fake clock; step ``i`` takes ``step_seconds[i % len]`` seconds."""
    clock = [0.0]
    real = sft.time.perf_counter
    sft.time.perf_counter = lambda: clock[0]
    try:
        fake = SimpleNamespace(cfg=SimpleNamespace(log_every=log_every, calibration_steps=calibration_steps),
                               meta={"planned": {}}, agree=lambda value: value,
                               stage_budget=lambda stage: budget - clock[0])
        step, total = 0, sft._Trainer.plan(fake, "stage", 10**9, 0, 0.0, 0)
        totals = []
        while step < total:
            clock[0] += float(step_seconds[step % len(step_seconds)])
            step += 1
            total = sft._Trainer.plan(fake, "stage", 10**9, step, 0.0, 0)
            totals.append(total)
            if clock[0] >= budget and step < total:  # the loop's deadline stop
                break
    finally:
        sft.time.perf_counter = real
    late = totals[len(totals) // 2:]
    return {"steps": step, "seconds": clock[0], "plan_range_second_half": (min(late), max(late)),
            "cut_by_deadline": step < total}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metrics", type=Path, required=True, help="a run folder's metrics.csv")
    p.add_argument("--max-minutes", type=float, required=True, help="the run's --max-minutes")
    args = p.parse_args(argv)
    rows = [r for r in csv.DictReader(args.metrics.open()) if r["stage"] == "generator"]
    if len(rows) < 3:
        raise SystemExit(f"{args.metrics}: fewer than 3 logged generator steps")
    steps = np.array([int(r["step"]) for r in rows])
    seconds = np.array([float(r["seconds"]) for r in rows])
    log_every = int(steps[0])
    per_step = np.repeat(np.diff(seconds) / np.diff(steps), np.diff(steps))
    started = seconds[0] - log_every * per_step[0]  # the stage's first step, in run seconds
    budget = 60.0 * args.max_minutes - started
    ran = {"steps": int(steps[-1]), "seconds": float(seconds[-1] - started)}
    new = replay(per_step, budget, log_every)
    print(f"generator stage: budget {budget:.0f} s from its start at {started:.0f} s; "
          f"step time median {np.median(per_step):.3f} s, range {per_step.min():.3f}-{per_step.max():.3f} s")
    print(f"  the run:          {ran['steps']:>6} steps in {ran['seconds']:7.0f} s ({ran['seconds'] / budget:.1%} of the budget)")
    print(f"  current planner:  {new['steps']:>6} steps in {new['seconds']:7.0f} s ({new['seconds'] / budget:.1%} of the budget); "
          f"plan in the second half {new['plan_range_second_half'][0]}-{new['plan_range_second_half'][1]}"
          + ("; cut by the deadline before its schedule ended" if new["cut_by_deadline"] else "; schedule completed"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
