"""Pick a checkpoint's default sampler settings (steps, guidance, detail) on RVE-Sim's *val* split, never test.

Each ``steps:guidance[:detail]`` item edits the val split with the ``revise-tiny`` editor and is scored by the
exact ``gt`` judge; the table shows mean Reasoning, the Reasoning share ``s``, Consistency, Quality and
Overall. ``detail`` is the full-resolution detail threshold (:mod:`revise.model.detail`; 0 = off, the
default when an item leaves it out). Of the items within ``SHARE_TIE`` of the highest mean Reasoning
share, the one with the highest Overall is printed; ``--write`` stores it as the generator's
``default_steps`` / ``default_guidance`` / ``default_detail`` in the checkpoint's ``generator/config.json``.

    .venv/bin/python benchmarks/tune_sampling.py --model /tmp/sft/revise-tiny --work /tmp/tune
    .venv/bin/python benchmarks/tune_sampling.py --work /tmp/tune --grid 12:2:0,12:2:0.15,12:2:0.3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from revise.bench import run_bench
from revise.model.unified import resolve_checkpoint
from revise.sim import generate_dataset

SHARE_TIE = 0.005  # Reasoning shares this close count as a tie (one sample's share moves the mean by ~0.01)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="revise-tiny")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--grid", default="12:1,12:2,12:3,12:4,24:3")
    p.add_argument("--per-dimension", type=int, default=8)
    p.add_argument("--seed", type=int, default=2, help="val-split seed")
    p.add_argument("--write", action="store_true", help="store the best pair in the checkpoint's generator config")
    args = p.parse_args(argv)
    path = resolve_checkpoint(args.model)
    val = args.work / f"val-{args.per_dimension}-s{args.seed}" / "manifest.jsonl"
    if not val.is_file():
        generate_dataset(val.parent, per_dimension=args.per_dimension, seed=args.seed, split="val", workers=2,
                         overwrite=True)
    rows = []
    for item in args.grid.split(","):
        fields = item.split(":")
        steps, guidance = int(fields[0]), float(fields[1])
        detail = float(fields[2]) if len(fields) > 2 else 0.0
        out = args.work / (f"run-{steps}-{guidance:g}" + (f"-{detail:g}" if detail else ""))
        result = run_bench(val, out, editor="revise-tiny", editor_options={"model": str(path), "steps": steps,
                                                                           "guidance": guidance, "detail": detail,
                                                                           "threads": 1},
                           judges=["gt"], resume=(out / "run.json").is_file(), report=False, progress=True)
        results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        share = float(np.mean([r["judges"]["gt"]["metrics"]["gt_reasoning_s"] for r in results]))
        gt = result.summary["judges"]["gt"]
        rows.append({"steps": steps, "guidance": guidance, "detail": detail, "reasoning_s": share,
                     **{k: gt[k] for k in ("reasoning", "consistency", "quality", "overall")}})
    print(f"{'steps':>6}{'guidance':>9}{'detail':>7}{'R':>7}{'s':>8}{'C':>7}{'Q':>7}{'O':>7}")
    for r in rows:
        print(f"{r['steps']:>6}{r['guidance']:>9.1f}{r['detail']:>7.2f}{r['reasoning']:>7.2f}{r['reasoning_s']:>8.3f}"
              f"{r['consistency']:>7.2f}{r['quality']:>7.2f}{r['overall']:>7.2f}")
    top = max(r["reasoning_s"] for r in rows)
    best = max((r for r in rows if r["reasoning_s"] >= top - SHARE_TIE), key=lambda r: r["overall"])
    print(f"best on val: steps {best['steps']}, guidance {best['guidance']}, detail {best['detail']}")
    (args.work / "tune_sampling.json").write_text(json.dumps({"model": str(path), "val": str(val), "rows": rows,
                                                              "best": best}, indent=1) + "\n")
    if args.write:
        config_path = path / "generator" / "config.json"
        config = json.loads(config_path.read_text())
        config["default_steps"], config["default_guidance"] = best["steps"], best["guidance"]
        config["default_detail"] = best["detail"]
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        print(f"wrote default_steps / default_guidance / default_detail into {config_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
