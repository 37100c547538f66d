"""The unified model against the ``copy`` floor on an RVE-Sim test split, with the exact ``gt`` judge.

Measures, for one checkpoint (default: the shipped ``revise-tiny``), side by side in one run:

* the editor: ``revise bench run`` with the ``revise-tiny`` editor and with ``copy`` on the same test
  split; Reasoning / Consistency / Quality / Overall per dimension, and the Reasoning share behind the
  rubric (``gt_reasoning_s`` in [0, 1]). Target (issue 4): Reasoning above ``copy`` in every dimension;
* its internal VLM: judge accuracy (balanced) and reasoning-answer scores (:func:`revise.train.vlm.evaluate_vlm`);
* the time of one edit of a 16-frame 128x128 clip (mean and max over ``--time-clips`` clips; target <= 5 s);
* the training record stored in the checkpoint (steps, seconds; target <= 60 min).

    .venv/bin/python benchmarks/bench_revise_tiny.py --work /tmp/bench_tiny
    .venv/bin/python benchmarks/bench_revise_tiny.py --work /tmp/bench_tiny --model /tmp/sft/revise-tiny
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from revise.bench import run_bench
from revise.data import SUBSETS, load_manifest
from revise.model.unified import ReviseModel, resolve_checkpoint
from revise.sim import generate_dataset
from revise.train.vlm import evaluate_vlm
from revise.video import read_video


def test_split(work: Path, per_dimension: int, seed: int) -> Path:
    folder = work / f"test-{per_dimension}-s{seed}"
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        generate_dataset(folder, per_dimension=per_dimension, seed=seed, split="test", workers=2, overwrite=True,
                         progress=True)
    return manifest


def cells(summary: dict) -> dict[str, dict]:
    out = {}
    gt = summary["judges"]["gt"]
    for subset, dims in SUBSETS.items():
        for dim in dims:
            c = gt["subsets"][subset]["dimensions"][dim]
            out[f"{subset}/{dim}"] = {k: c[k] for k in ("reasoning", "consistency", "quality", "overall", "n")}
            out[f"{subset}/{dim}"]["reasoning_s"] = c["metrics"]["gt_reasoning_s"]
    out["all"] = {k: gt[k] for k in ("reasoning", "consistency", "quality", "overall", "n", "accuracy")}
    dims = [v for k, v in out.items() if k != "all"]  # the per-sample mean share, from the dimensions' means
    out["all"]["reasoning_s"] = sum(v["reasoning_s"] * v["n"] for v in dims) / max(1, sum(v["n"] for v in dims))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="folder for the test split and the runs")
    p.add_argument("--model", default="revise-tiny", help="checkpoint folder or shipped name")
    p.add_argument("--per-dimension", type=int, default=10, help="test samples per dimension")
    p.add_argument("--seed", type=int, default=0, help="test-split seed (the demo's rve-sim-mini uses 0 too)")
    p.add_argument("--time-clips", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-vlm", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = test_split(args.work, args.per_dimension, args.seed)
    path = resolve_checkpoint(args.model)
    model = ReviseModel.from_pretrained(path)
    report: dict = {"model": str(path), "training": model.info.get("training", {}), "test": str(manifest)}

    # one edit of a 16-frame clip, timed (the bench below includes judging and video IO)
    samples = list(load_manifest(manifest))[: args.time_clips]
    seconds = []
    for s in samples:
        frames = read_video(s.source).frames
        t0 = time.perf_counter()
        model.edit(frames, s.instruction, seed=0)
        seconds.append(time.perf_counter() - t0)
    report["edit_seconds"] = {"mean": round(float(np.mean(seconds)), 3), "max": round(float(np.max(seconds)), 3),
                              "frames": int(frames.shape[0]), "size": list(frames.shape[1:3])}

    runs = {}
    for editor, options in (("revise-tiny", {"model": str(path)}), ("copy", {})):
        out = args.work / f"run-{editor}"
        result = run_bench(manifest, out, editor=editor, editor_options=options, judges=["gt"], seed=0,
                           resume=(out / "run.json").is_file(), progress=True)
        runs[editor] = cells(result.summary)
    report["editor"] = runs
    if not args.skip_vlm:
        vlm = evaluate_vlm(model.vlm, manifest, seed=0, cache_dir=args.work / "cache", progress=True)
        vlm["reason"].pop("examples", None)
        (vlm.get("facts") or {}).pop("examples", None)
        report["vlm"] = vlm
    (args.work / "bench_revise_tiny.json").write_text(json.dumps(report, indent=1) + "\n")

    t = report["training"]
    print(f"\ncheckpoint {path}: trained {t.get('steps')} steps in {t.get('seconds')} s")
    print(f"one edit of a {report['edit_seconds']['frames']}-frame {report['edit_seconds']['size']} clip: "
          f"{report['edit_seconds']['mean']:.2f} s mean, {report['edit_seconds']['max']:.2f} s max")
    if "vlm" in report:
        v = report["vlm"]
        print(f"VLM judge accuracy (balanced) {v['judge_accuracy']:.3f}; reasoning answers: word F1 "
              f"{v['reason']['word_f1']:.3f}, colour match {v['reason']['colour_match']:.3f}")
        if "facts" in v:
            print(f"VLM facts ('Which objects are in this video?' on the source clips): colour match "
                  f"{v['facts']['colour_match']:.3f}, object match {v['facts']['object_match']:.3f}, colour recall "
                  f"{v['facts']['colour_recall']:.3f}")
    print(f"\n{'dimension':<18}{'tiny R/C/Q':>16}{'copy R/C/Q':>16}{'tiny O':>8}{'copy O':>8}{'tiny s':>8}"
          f"{'copy s':>8}  R above copy")
    wins, dims = 0, 0
    for dim in runs["copy"]:
        a, b = runs["revise-tiny"][dim], runs["copy"][dim]
        above = a["reasoning"] > b["reasoning"]
        if dim != "all":
            wins, dims = wins + above, dims + 1
        print(f"{dim:<18}{'%.2f/%.2f/%.2f' % (a['reasoning'], a['consistency'], a['quality']):>16}"
              f"{'%.2f/%.2f/%.2f' % (b['reasoning'], b['consistency'], b['quality']):>16}{a['overall']:>8.2f}"
              f"{b['overall']:>8.2f}{a.get('reasoning_s', float('nan')):>8.3f}{b.get('reasoning_s', float('nan')):>8.3f}"
              f"  {'yes' if above else 'no'}")
    print(f"Reasoning above copy in {wins}/{dims} dimensions; accuracy (R, C, Q all 5) {runs['revise-tiny']['all']['accuracy']:.3f} "
          f"vs copy {runs['copy']['all']['accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
