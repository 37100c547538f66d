"""Internal VLM: judge accuracy (overall, per negative kind, per dimension) and reasoning-answer accuracy
on an RVE-Sim test split, after training from scratch on the train split (or for a given checkpoint).

Target (issue 4): judge accuracy >= 90 % (balanced: positives vs. the source / another target / a
perturbed target; definitions in ``revise/train/vlm.py``). Datasets are generated under ``--work`` the
first time (train seed 0, test seed 1; about 95 s + 20 s) and reused; decoded frames are cached there.

    .venv/bin/python benchmarks/bench_vlm.py --work /tmp/bench_vlm --minutes 20
    .venv/bin/python benchmarks/bench_vlm.py --work /tmp/bench_vlm --checkpoint /tmp/bench_vlm/run
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from revise.sim import generate_dataset


def dataset(work: Path, split: str, per_dimension: int, seed: int) -> Path:
    folder = work / f"{split}-{per_dimension}-s{seed}"
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        t0 = time.perf_counter()
        generate_dataset(folder, per_dimension=per_dimension, seed=seed, split=split, workers=2, overwrite=True)
        print(f"generated {split}: {per_dimension * 8} samples in {time.perf_counter() - t0:.0f} s")
    return manifest


def report(result: dict) -> None:
    print(f"\njudge accuracy (balanced) {result['judge_accuracy']:.3f}   positives "
          f"{result['judge_positive_accuracy']:.3f}   negatives {result['judge_negative_accuracy']:.3f}")
    kinds = result["judge_by_kind"].items()
    print("  by kind:  " + "  ".join(f"{k} {v['accuracy']:.3f} (n={v['n']})" for k, v in kinds))
    print("  by dimension:")
    for group, acc in result["judge_by_dimension"].items():
        print(f"    {group:20s} {acc:.3f}")
    if "reason" in result:
        r = result["reason"]
        print(f"reasoning: exact {r['exact']:.3f}  word F1 {r['word_f1']:.3f}  keyword F1 {r['keyword_f1']:.3f}  "
              f"colours right {r['colour_match']:.3f}  teacher-forced token acc {r['token_accuracy']:.3f}")
        for group, s in r["by_dimension"].items():
            print(f"    {group:20s} exact {s['exact']:.2f}  keyword F1 {s['keyword_f1']:.3f}  "
                  f"colours {s['colour_match']:.2f}")
        for ex in r["examples"][:3]:
            print(f"  [{ex['id']}] {ex['instruction']}\n    ref: {ex['reference']}\n    gen: {ex['generated']}")
    print(f"evaluated {result['samples']} test samples in {result['seconds']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="datasets, frame cache and the run go here")
    parser.add_argument("--train-per-dim", type=int, default=150)
    parser.add_argument("--test-per-dim", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=20.0, help="training time (fixes the step count)")
    parser.add_argument("--steps", type=int, default=None, help="exact step count instead of --minutes")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, default=None, help="evaluate this checkpoint, no training")
    args = parser.parse_args()

    import torch

    from revise.model.vlm import ReviseVLM
    from revise.train.vlm import evaluate_vlm, train_vlm

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    test = dataset(args.work, "test", args.test_per_dim, 1)
    cache = args.work / "cache"
    if args.checkpoint is not None:
        model = ReviseVLM.from_pretrained(args.checkpoint)
        result = evaluate_vlm(model, test, seed=args.seed, cache_dir=cache, progress=True)
        record = {"checkpoint": str(args.checkpoint), "eval": result}
    else:
        train = dataset(args.work, "train", args.train_per_dim, 0)
        t0 = time.perf_counter()
        record = train_vlm(train, args.work / "run", steps=args.steps, max_minutes=None if args.steps else args.minutes,
                           batch_size=args.batch_size, lr=args.lr, seed=args.seed, eval_manifest=test,
                           cache_dir=cache, threads=args.threads, log_every=100, progress=True)
        record["wall_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"trained {record['steps']} steps on {record['train_samples']} samples "
              f"({record['parameters'] / 1e6:.2f} M parameters) in {record['train_seconds']} s; "
              f"wall {record['wall_seconds']} s")
        result = record["eval"]
    report(result)
    (args.work / "bench_vlm.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
