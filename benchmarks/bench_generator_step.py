"""One generator training step in fp32 against the same step under bf16 autocast (``train sft --bf16
generator``), side by side, at 32 px (the default config) and at 64 px (patches 2x8x8, source tokens 2x16x16:
the same token counts; the shipped ``revise-tiny``'s size).

Each (size, precision) variant runs in its own fresh child process, with the trainer's own pieces: the
generator prepared by an accelerate ``Accelerator`` on the CPU, the ``x0`` flow-matching loss, gradient
clipping and AdamW, a batch of 8 random clips with VLM hidden states of the tiny VLM's width (the step
does not depend on the pixel values). ``--warmup`` untimed steps, then ``--steps`` timed ones; the
children alternate (fp32, bf16, fp32, bf16, ...) over ``--rounds`` to spread machine noise, and the
median over rounds is reported. It also prints the relative difference of the first step's loss
(the same weights and batch), to show the autocast changes the numbers only in their last digits.

    .venv/bin/python benchmarks/bench_generator_step.py --threads 2

Run it alone on the machine: other processes on the two cores change the times more than the precision.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

SIZES = {32: {}, 64: {"sample_size": [64, 64], "patch_size": [2, 8, 8], "source_patch_size": [2, 16, 16]}}


def child(args) -> dict:
    import contextlib

    import torch
    from accelerate import Accelerator

    from revise.model.flow import flow_matching_loss
    from revise.model.generator import ReviseGenerator

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ReviseGenerator(vocab_size=612, vlm_dim=128, anchor_frames=True, gated_skip=True, **SIZES[args.size])
    acc = Accelerator(cpu=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    wrapped, optimizer = acc.prepare(model, optimizer)
    h = args.size
    data = torch.Generator().manual_seed(1)
    batch = {"source": torch.rand(8, 3, 16, h, h, generator=data) * 2 - 1,
             "target": torch.rand(8, 3, 16, h, h, generator=data) * 2 - 1,
             "text_ids": torch.randint(1, 612, (8, 32), generator=data),
             "vlm_hidden": torch.randn(8, 48, 128, generator=data), "vlm_mask": torch.ones(8, 48, dtype=torch.bool)}
    noise = torch.Generator().manual_seed(2)

    def step() -> float:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()
        with ctx:
            loss, _ = flow_matching_loss(wrapped, batch, noise, loss_space="x0")
        optimizer.zero_grad(set_to_none=True)
        acc.backward(loss)
        acc.clip_grad_norm_(wrapped.parameters(), 1.0)
        optimizer.step()
        return float(loss.item())

    first = step()
    for _ in range(args.warmup):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    return {"size": args.size, "precision": args.precision, "seconds": (time.perf_counter() - start) / args.steps,
            "first_loss": first}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per child")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    parser.add_argument("--rounds", type=int, default=2, help="children per variant, alternating")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per child")
    parser.add_argument("--sizes", default="32,64", help="generator sizes to measure (32 and/or 64)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(s not in SIZES for s in sizes):
        parser.error(f"--sizes takes {sorted(SIZES)}, got {args.sizes}")
    results: dict = {}
    for size in sizes:
        for _ in range(args.rounds):
            for precision in ("fp32", "bf16"):
                out = subprocess.run([sys.executable, __file__, "--child", "--size", str(size), "--precision",
                                      precision, "--steps", str(args.steps), "--warmup", str(args.warmup),
                                      "--threads", str(args.threads)], check=True, capture_output=True, text=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                results.setdefault((size, precision), []).append(row)
                print(f"  {size} px {precision}: {row['seconds']:.3f} s/step", flush=True)
    print(f"generator step, batch 8, {args.threads} threads, median of {args.rounds} children x {args.steps} steps:")
    for size in sizes:
        fp32 = float(np.median([r["seconds"] for r in results[(size, "fp32")]]))
        bf16 = float(np.median([r["seconds"] for r in results[(size, "bf16")]]))
        a, b = results[(size, "fp32")][0]["first_loss"], results[(size, "bf16")][0]["first_loss"]
        print(f"{size} px: fp32 {fp32:.3f} s, bf16 autocast {bf16:.3f} s, speed-up {fp32 / bf16:.2f}x; "
              f"first-step loss {a:.5f} vs {b:.5f} (relative difference {abs(a - b) / abs(a):.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
