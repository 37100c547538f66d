"""``revise demo``: the main job on the embedded default, end to end and offline.

Generates ``rve-sim-mini`` (the seeded RVE-Sim test-split mini benchmark), runs the baseline editors
``copy`` (the source unchanged), ``shuffle`` (another sample's target: a negative control) and
``oracle`` (the ground truth: the ceiling), and the unified model ``revise-tiny`` (the checkpoint
shipped in the package, trained on RVE-Sim's train split; see docs/model.md), with the exact ``gt``
judge and the classical metrics, and writes one HTML report per editor plus a shared leaderboard.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

DEMO_EDITORS = ("copy", "shuffle", "revise-tiny", "oracle")
DEMO_JUDGES = ("gt", "metrics")


@dataclass
class DemoResult:
    out_dir: Path
    reports: dict[str, Path]
    leaderboard: Path
    summaries: dict[str, dict]


def run_demo(out_dir: str | os.PathLike = "demo_out", *, seed: int = 0, editors=DEMO_EDITORS, judges=DEMO_JUDGES,
             progress: bool = True) -> DemoResult:
    """Run the demo into ``out_dir`` (its ``runs/`` and leaderboard are replaced); returns the paths."""
    from .bench import run_bench, rve_sim_mini

    out = Path(out_dir)
    runs = out / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    leaderboard = out / "leaderboard.csv"
    leaderboard.unlink(missing_ok=True)
    manifest = rve_sim_mini(0, progress=progress)
    reports, summaries = {}, {}
    for name in editors:
        result = run_bench(manifest, runs / name, editor=name, judges=list(judges), seed=seed, leaderboard=leaderboard,
                           progress=progress)
        reports[name] = result.report
        summaries[name] = result.summary
    return DemoResult(out, reports, leaderboard, summaries)
