"""Sanity of the exact ``gt`` judge: the baselines must land where they belong, per dimension.

Targets (issue 3): oracle Overall >= 4.8; copy Reasoning <= 2 on every dimension; shuffle below oracle
on every dimension. Runs ``copy``, ``shuffle`` and ``oracle`` over a freshly generated RVE-Sim test
split and prints a per-dimension table (mean Reasoning / Consistency / Quality / Overall) and the verdict.

    .venv/bin/python benchmarks/bench_gt_sanity.py [--per-dimension 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from revise.bench import run_bench
from revise.data import SUBSETS
from revise.sim import generate_dataset

EDITORS = ("copy", "shuffle", "oracle")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-dimension", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="revise-gt-sanity-") as tmp:
        bench = generate_dataset(Path(tmp) / "bench", per_dimension=args.per_dimension, seed=args.seed)
        summaries = {name: run_bench(bench, Path(tmp) / name, editor=name, judges=["gt"], progress=False,
                                     report=False).summary for name in EDITORS}
    print(f"gt judge sanity, RVE-Sim test split, {args.per_dimension} per dimension, seed {args.seed}")
    print(f"{'dimension':<18}" + "".join(f"{name + ' R/C/Q/O':>26}" for name in EDITORS))
    ok = True
    for subset, dims in SUBSETS.items():
        for dim in dims:
            cells = {name: summaries[name]["subsets"][subset]["dimensions"][dim] for name in EDITORS}
            line = f"{subset + '/' + dim:<18}"
            for name in EDITORS:
                c = cells[name]
                line += f"{c['reasoning']:>8.2f}{c['consistency']:>6.2f}{c['quality']:>6.2f}{c['overall']:>6.2f}"
            ok &= cells["oracle"]["overall"] >= 4.8
            ok &= cells["copy"]["reasoning"] <= 2.0
            ok &= cells["shuffle"]["overall"] < cells["oracle"]["overall"]
            print(line)
    print("overall: " + ", ".join(f"{name} {summaries[name]['overall']:.2f}" for name in EDITORS))
    print("PASS" if ok else "FAIL", "(oracle >= 4.8, copy reasoning <= 2, shuffle < oracle, on every dimension)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
