"""Replay a finished ``revise train sft`` run's generator step times through the ``--max-minutes`` planner.

Reads the run's ``metrics.csv`` (one row per logging step: stage, step, elapsed seconds), spreads each
logging interval of the generator stage (the last stage, which gets the rest of the budget) evenly over its
steps, and runs the planner on them with :func:`revise.train.sft.replay_plan` (a simulated clock that
advances by those step times, ending the stage as the training loop does). It prints how many steps the
stage ran and how many the current planner would have planned in the same budget, and the seconds each
uses, so a change to the planner can be judged on real step times.

    .venv/bin/python benchmarks/replay_budget_plan.py --metrics benchmarks/data/sft-metrics-previous-revise-tiny.csv \\
        --max-minutes 55
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from revise.train.sft import replay_plan


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
    new = replay_plan(lambda i: per_step[i % len(per_step)], budget, log_every=log_every)
    late = new["totals"][len(new["totals"]) // 2:]
    print(f"generator stage: budget {budget:.0f} s from its start at {started:.0f} s; "
          f"step time median {np.median(per_step):.3f} s, range {per_step.min():.3f}-{per_step.max():.3f} s")
    print(f"  the run:          {ran['steps']:>6} steps in {ran['seconds']:7.0f} s ({ran['seconds'] / budget:.1%} of the budget)")
    print(f"  current planner:  {new['steps']:>6} steps in {new['seconds']:7.0f} s ({new['seconds'] / budget:.1%} of the budget); "
          f"plan in the second half {min(late)}-{max(late)}"
          + ("; cut by the deadline before its schedule ended" if new["cut_by_deadline"] else "; schedule completed"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
