"""One self-reflective training step against one flow-matching step, at the same batch, side by side.

Each variant runs in its own fresh child process (so one cannot inherit the other's allocator state):
it loads the checkpoint and a train split, runs ``--warmup`` untimed steps and then ``--steps`` timed
steps of ``revise.train.srf``'s step function (``lambda = 0``: FM only; ``lambda > 0``: FM + the critic's
``-log p(Yes)`` on x0_hat, with the reward applied to *every* row, ``--reward-t-range 0,1``, the worst
case). Memory is measured two ways: the peak resident set size above the process's size just before the
timed steps (sampled every 2 ms by a thread; allocator caching makes it noisy), and the bytes the autograd
graph saves for the backward pass in one step (activations; deterministic). Parameters, gradients and
AdamW moments are the same in both variants (the critic is frozen). Children alternate (fm, srf, fm, srf, ...) to spread machine noise.

Targets (issue 5): time ratio <= 1.6, peak-memory ratio <= 1.5.

    .venv/bin/python benchmarks/bench_srf_step.py --data /tmp/sft/train --model revise-tiny
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from revise.train.srf import SRFConfig, _SRFTrainer
    from revise.model.unified import ReviseModel, resolve_checkpoint
    from revise.model.vlm_data import load_frames
    import tempfile
    from pathlib import Path

    from revise.train.sft import ensure_train_data

    cfg = SRFConfig(steps=10**6, batch_size=args.batch_size, lam=args.lam, reward_t_range=(0.0, 1.0),
                    grad_checkpointing=args.grad_checkpointing, log_every=10**6, checkpoint_every=10**6)
    tmp = Path(tempfile.mkdtemp())
    trainer = _SRFTrainer(resolve_checkpoint(args.model), Path(args.data), tmp, cfg, False, False)
    trainer.bank = load_frames(ensure_train_data(args.data, per_dimension=150, seed=0), size=32, frames=16,
                               cache_dir=Path(args.data) / "cache")
    unified = ReviseModel.from_pretrained(trainer.init)
    captured = {}

    def fake_loop(stage, asked, step, step_fn, save):  # run the real step function, timed, no logging
        for i in range(args.warmup):
            step_fn(i, 10**6)
        base = rss_bytes()
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_bytes())
                time.sleep(0.002)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        times = []
        for i in range(args.steps):
            t0 = time.perf_counter()
            step_fn(args.warmup + i, 10**6)
            times.append(time.perf_counter() - t0)
        stop.set()
        thread.join()
        seen, saved = set(), [0]

        def pack(t):  # bytes the autograd graph keeps for the backward pass (activations), each storage once
            key = t.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                saved[0] += t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            step_fn(args.warmup + args.steps, 10**6)
        captured.update(seconds=float(np.median(times)), mean_seconds=float(np.mean(times)),
                        peak_bytes=peak[0] - base, saved_bytes=saved[0])
        return False

    trainer.loop = fake_loop
    trainer.checkpoint = lambda *a, **k: None
    trainer.train(unified)
    return captured


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="RVE-Sim train folder (generated if empty)")
    p.add_argument("--model", default="revise-tiny")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2, help="fm/srf child pairs")
    p.add_argument("--lambda", dest="lam", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    results: dict[str, list[dict]] = {"fm": [], "srf": []}
    for _ in range(args.rounds):
        for name, lam in (("fm", 0.0), ("srf", args.lam)):
            cmd = [sys.executable, __file__, "--child", "--data", args.data, "--model", args.model, "--batch-size",
                   str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup), "--lambda", str(lam),
                   "--threads", str(args.threads)] + (["--grad-checkpointing"] if args.grad_checkpointing else [])
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    fm_t = float(np.median([r["seconds"] for r in results["fm"]]))
    srf_t = float(np.median([r["seconds"] for r in results["srf"]]))
    fm_m = float(np.median([r["peak_bytes"] for r in results["fm"]]))
    srf_m = float(np.median([r["peak_bytes"] for r in results["srf"]]))
    fm_s = float(np.median([r["saved_bytes"] for r in results["fm"]]))
    srf_s = float(np.median([r["saved_bytes"] for r in results["srf"]]))
    print(json.dumps(results))
    print(f"batch {args.batch_size}, {args.threads} thread(s), grad checkpointing {args.grad_checkpointing}:")
    print(f"  FM step {fm_t * 1000:.0f} ms, self-reflective step {srf_t * 1000:.0f} ms -> time ratio "
          f"{srf_t / fm_t:.2f} (target <= 1.6)")
    print(f"  peak memory above the step's start: FM {fm_m / 2**20:.1f} MiB, self-reflective {srf_m / 2**20:.1f} MiB"
          f" -> ratio {srf_m / max(fm_m, 1):.2f} (target <= 1.5)")
    print(f"  activations saved for backward: FM {fm_s / 2**20:.1f} MiB, self-reflective {srf_s / 2**20:.1f} MiB -> "
          f"ratio {srf_s / max(fm_s, 1):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
