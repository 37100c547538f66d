"""Train the flow-matching generator alone on RVE-Sim and score its edits with the exact ``gt`` judge.

A unit benchmark of ``revise.model.generator`` before the unified trainer exists: no VLM (its tokens
are the learned null tokens, i.e. CFG-dropped), and the instruction is tokenised with a throw-away
whitespace word vocabulary built from the training instructions (TEMPORARY: the unified model uses
``revise.model.tokenizer``). Steps:

1. generate RVE-Sim train / val / test splits (or reuse them in ``--data``), decode every clip once to
   uint8 tensors at the model resolution and cache them as safetensors (``DATA/cache-*.safetensors``);
2. train for ``--minutes`` of wall time (AdamW, warm-up then cosine decay to 0 over the time budget,
   2 CPU threads), logging the loss to ``OUT/train_log.jsonl``;
3. pick ``--steps`` / ``--guidance`` on the val split (each setting in ``--grid``), then edit every test
   sample with the chosen setting, upsample to 128 px (``generate`` returns the source's size) and score
   it, and the ``copy`` baseline, with the ``gt`` judge; write ``OUT/eval.json`` and print a table.

    .venv/bin/python benchmarks/bench_generator_sim.py --data /tmp/rvesim --out /tmp/gen-run --minutes 20

Targets kept in mind (issue 4): training <= 60 min on this CPU, one 16-frame edit <= 5 s, Reasoning
above ``copy`` on every dimension, checkpoint <= 30 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from revise.data import SUBSETS, load_manifest
from revise.judges import create_judge
from revise.judges.base import JudgeInput
from revise.model.flow import flow_matching_loss
from revise.model.generator import ReviseGenerator
from revise.sim import generate_dataset
from revise.video import Video, match_length, read_video, resize_frames

WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")
SPLITS = {"train": ("train", 1), "val": ("val", 2), "test": ("test", 0)}  # name -> (split, seed)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def build_vocab(texts) -> dict[str, int]:
    """TEMPORARY word vocabulary: 0 = pad, 1 = unknown, then words by count then text."""
    counts = Counter(w for t in texts for w in words(t))
    ordered = sorted(counts, key=lambda w: (-counts[w], w))
    return {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(ordered)}}


def encode(text: str, vocab: dict[str, int], max_len: int) -> list[int]:
    return [vocab.get(w, 1) for w in words(text)][:max_len]


def ensure_split(data: Path, name: str, per_dimension: int) -> Path:
    split, seed = SPLITS[name]
    manifest = data / name / "manifest.jsonl"
    if not manifest.exists():
        generate_dataset(data / name, per_dimension=per_dimension, seed=seed, split=split, workers=2)
    return manifest


def cached_tensors(data: Path, name: str, manifest: Path, shape: tuple[int, int, int]):
    """uint8 (N, 3, T, H, W) sources and targets at the model resolution, decoded once and cached."""
    from safetensors.torch import load_file, save_file

    t, h, w = shape
    cache = data / f"cache-{name}-{t}x{h}x{w}.safetensors"
    samples = list(load_manifest(manifest))
    if cache.exists():
        tensors = load_file(str(cache))
        return samples, tensors["source"], tensors["target"]

    def small(path):
        frames = resize_frames(match_length(read_video(path).frames, t), h, w)
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)

    source = torch.stack([small(s.source) for s in samples])
    target = torch.stack([small(s.target) for s in samples])
    save_file({"source": source, "target": target}, str(cache))
    return samples, source, target


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1.0


def train(model, source, target, ids, *, minutes, max_steps, batch_size, lr, warmup, change_weight, loss_space, seed,
          log_path):
    """Train until ``minutes`` of wall time or ``max_steps`` (if given) pass; the cosine decay follows
    whichever budget is set (steps first: on a shared machine wall time is not reproducible)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    budget = minutes * 60.0
    start, cpu_start = time.time(), time.process_time()
    step, window, history = 0, [], []
    model.train()
    with open(log_path, "w") as log:
        while (elapsed := time.time() - start) < budget and (max_steps is None or step < max_steps):
            frac = step / max_steps if max_steps else elapsed / budget
            scale = min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * frac))
            for group in opt.param_groups:
                group["lr"] = lr * scale
            idx = torch.randint(0, len(source), (batch_size,), generator=gen)
            batch = {"source": to_unit(source[idx]), "target": to_unit(target[idx]), "text_ids": ids[idx]}
            loss, _ = flow_matching_loss(model, batch, gen, change_weight=change_weight, loss_space=loss_space)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            window.append(loss.item())
            if step % 50 == 0:
                row = {"step": step, "seconds": round(time.time() - start, 1),
                       "cpu_seconds": round(time.process_time() - cpu_start, 1), "loss": float(np.mean(window)),
                       "lr": lr * scale}
                history.append(row)
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(f"step {step:5d}  {row['seconds']:7.1f}s  loss {row['loss']:.4f}  lr {row['lr']:.2e}", flush=True)
                window = []
    model.eval()
    return step, time.time() - start, history


def evaluate(model, samples, vocab, *, steps, guidance, seed, with_copy):
    """Per-sample gt scores of the generator's edits (and of ``copy``), plus seconds per edit."""
    judge = create_judge("gt")
    rows, seconds = [], []
    for s in samples:
        src, tgt = read_video(s.source), read_video(s.target)
        ids = encode(s.instruction, vocab, model.config.max_text_len)
        t0 = time.time()
        frames = model.generate(src.frames, ids, steps=steps, guidance=guidance, seed=seed)
        seconds.append(time.time() - t0)
        row = {"id": s.id, "dim": f"{s.subset}/{s.dimension}"}
        for name, edited in (("gen", frames), ("copy", src.frames)) if with_copy else (("gen", frames),):
            r = judge.score(JudgeInput(s, src, Video(edited, src.fps), tgt, "bench"))
            row[name] = (r.reasoning, r.consistency, r.quality)
            row[name + "_reasoning_s"] = r.metrics["gt_reasoning_s"]
        rows.append(row)
    return rows, seconds


def table(rows) -> dict:
    by_dim = defaultdict(list)
    for r in rows:
        by_dim[r["dim"]].append(r)
    out = {}
    for dim in [f"{s}/{d}" for s, ds in SUBSETS.items() for d in ds]:
        rs = by_dim.get(dim, [])
        if not rs:
            continue
        cell = {"n": len(rs)}
        for name in ("gen", "copy"):
            if name in rs[0]:
                cell[name] = [round(float(np.mean([r[name][i] for r in rs])), 2) for i in range(3)]
                cell[name + "_reasoning_s"] = round(float(np.mean([r[name + "_reasoning_s"] for r in rs])), 3)
        out[dim] = cell
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder for the generated splits and tensor caches")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--train-per-dimension", type=int, default=150)
    p.add_argument("--val-per-dimension", type=int, default=4)
    p.add_argument("--test-per-dimension", type=int, default=10)
    p.add_argument("--minutes", type=float, default=20.0, help="wall-time budget for training")
    p.add_argument("--max-steps", type=int, default=None, help="step budget (the schedule follows it when set)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--change-weight", type=float, default=0.0)
    p.add_argument("--loss-space", choices=("velocity", "x0"), default="x0")
    p.add_argument("--config", type=json.loads, default={}, help="JSON overrides of ReviseGenerator's config")
    p.add_argument("--grid", default="12:1,12:2,12:3", help="steps:guidance settings tried on val")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.time()
    sizes = {"train": args.train_per_dimension, "val": args.val_per_dimension, "test": args.test_per_dimension}
    manifests = {name: ensure_split(args.data, name, n) for name, n in sizes.items()}
    train_samples = list(load_manifest(manifests["train"]))
    vocab = build_vocab(s.instruction for s in train_samples)
    model = ReviseGenerator(vocab_size=len(vocab), **args.config)
    cfg = model.config
    shape = model.video_shape
    train_samples, source, target = cached_tensors(args.data, "train", manifests["train"], shape)
    ids = torch.stack([model.pad_ids(encode(s.instruction, vocab, cfg.max_text_len))[0] for s in train_samples])
    print(f"data ready in {time.time() - t0:.0f}s: {len(train_samples)} train samples, vocab {len(vocab)}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters", flush=True)

    cpu0 = time.process_time()
    steps_done, train_s, history = train(
        model, source, target, ids, minutes=args.minutes, max_steps=args.max_steps, batch_size=args.batch_size,
        lr=args.lr, warmup=args.warmup, change_weight=args.change_weight, loss_space=args.loss_space, seed=args.seed,
        log_path=args.out / "train_log.jsonl")
    train_cpu = time.process_time() - cpu0
    model.save_pretrained(args.out / "generator")
    (args.out / "vocab.json").write_text(json.dumps(vocab))

    val = list(load_manifest(manifests["val"]))
    choice, best = None, -1.0
    val_scores = {}
    for item in args.grid.split(","):
        steps, guidance = item.split(":")
        rows, _ = evaluate(model, val, vocab, steps=int(steps), guidance=float(guidance), seed=args.seed,
                           with_copy=False)
        score = float(np.mean([r["gen_reasoning_s"] for r in rows]))
        val_scores[item] = score
        print(f"val {item}: mean reasoning share {score:.3f}", flush=True)
        if score > best:
            choice, best = (int(steps), float(guidance)), score
    test = list(load_manifest(manifests["test"]))
    rows, seconds = evaluate(model, test, vocab, steps=choice[0], guidance=choice[1], seed=args.seed, with_copy=True)
    per_dim = table(rows)
    ckpt_bytes = sum(f.stat().st_size for f in (args.out / "generator").iterdir())
    report = {"config": dict(cfg), "args": {k: str(v) for k, v in vars(args).items()}, "train_steps": steps_done,
              "train_seconds": round(train_s, 1), "train_cpu_seconds": round(train_cpu, 1),
              "loss_first": history[0]["loss"] if history else None,
              "loss_last": history[-1]["loss"] if history else None, "val_grid": val_scores,
              "chosen": {"steps": choice[0], "guidance": choice[1]},
              "seconds_per_edit": {"mean": round(float(np.mean(seconds)), 3), "max": round(float(np.max(seconds)), 3)},
              "checkpoint_bytes": ckpt_bytes, "per_dimension": per_dim, "rows": rows}
    (args.out / "eval.json").write_text(json.dumps(report, indent=1))
    print(f"trained {steps_done} steps in {train_s:.0f}s wall, {train_cpu:.0f}s CPU; "
          f"loss {report['loss_first']:.4f} -> {report['loss_last']:.4f}; "
          f"chosen steps {choice[0]} guidance {choice[1]}; {report['seconds_per_edit']['mean']:.2f}s per edit; "
          f"checkpoint {ckpt_bytes / 1e6:.1f} MB")
    print(f"{'dimension':<18}{'gen R/C/Q':>18}{'copy R/C/Q':>18}{'gen R share':>13}{'copy R share':>14}")
    wins = 0
    for dim, c in per_dim.items():
        g, k = c["gen"], c["copy"]
        wins += g[0] > k[0]
        print(f"{dim:<18}{'%.2f/%.2f/%.2f' % tuple(g):>18}{'%.2f/%.2f/%.2f' % tuple(k):>18}"
              f"{c['gen_reasoning_s']:>13.3f}{c['copy_reasoning_s']:>14.3f}")
    print(f"Reasoning above copy on {wins}/{len(per_dim)} dimensions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
