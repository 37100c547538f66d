"""RVE-Sim generation speed: samples per second at 128x128x16 frames (source + target clip per sample).

Target (issue 2): >= 10 samples/s on the 2-core reference machine. Prints samples/s with 1 and 2 worker
processes, and where the time goes (physics, rendering, H.264 encoding, state files) measured on the
single-process run.

    .venv/bin/python benchmarks/bench_sim_generate.py [--per-dimension 25] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from revise.sim import generate as gen


def timed_run(per_dimension: int, workers: int, profile: bool) -> tuple[float, int, dict]:
    spent: dict[str, float] = defaultdict(float)
    originals = {}
    if profile:
        def wrap(module, name, key):
            fn = getattr(module, name)
            originals[(module, name)] = fn

            def inner(*a, **k):
                t0 = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    spent[key] += time.perf_counter() - t0
            setattr(module, name, inner)
        wrap(gen, "simulate", "physics")
        wrap(gen, "render_frame", "render")
        wrap(gen, "write_video", "encode")
        wrap(gen, "dump_state", "state")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            manifest = gen.generate_dataset(Path(tmp) / "d", per_dimension=per_dimension, seed=0, workers=workers)
            seconds = time.perf_counter() - t0
            n = sum(1 for _ in manifest.open())
    finally:
        for (module, name), fn in originals.items():
            setattr(module, name, fn)
    return seconds, n, dict(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-dimension", type=int, default=25, help="samples per dimension (x8 in all)")
    parser.add_argument("--quick", action="store_true", help="5 per dimension")
    args = parser.parse_args()
    per_dim = 5 if args.quick else args.per_dimension
    timed_run(1, 1, False)  # warm imports and caches
    print(f"RVE-Sim generation, {per_dim * 8} samples (128x128, 16 frames, source + target)")
    print(f"{'workers':>8} {'seconds':>9} {'samples/s':>10}")
    profile = None
    for workers in (1, 2):
        seconds, n, spent = timed_run(per_dim, workers, workers == 1)
        if workers == 1:
            profile = (seconds, spent)
        print(f"{workers:>8} {seconds:>9.2f} {n / seconds:>10.1f}")
    seconds, spent = profile
    print("time share (1 worker):", ", ".join(f"{k} {v / seconds:.0%}" for k, v in sorted(spent.items())),
          f", other {(seconds - sum(spent.values())) / seconds:.0%}")


if __name__ == "__main__":
    main()
