"""Throughput of the RVE-Bench harness: samples per second end to end, and where the time goes.

Runs ``run_bench`` (editor -> judges -> fsynced results.jsonl -> summary) into a temporary folder for
each ``--workers`` value and reports samples/s, the mean seconds per sample, per judge, and the
harness's own share (decode + edit + mp4 write + row write: sample time minus judge time) and the share
of sample time spent decoding video.

    .venv/bin/python benchmarks/bench_harness_throughput.py                         # rve-sim-mini, copy, gt
    .venv/bin/python benchmarks/bench_harness_throughput.py --judge gt,metrics --workers 1,2
    .venv/bin/python benchmarks/bench_harness_throughput.py --sim-per-dimension 25 --judge gt,metrics  # 200 samples
    .venv/bin/python benchmarks/bench_harness_throughput.py --tiny --judge bt-diff  # no RVE-Sim needed

``--tiny`` builds a small synthetic benchmark with ``tests/benchtools.py`` (which also registers its
test judges ``bt-diff`` and ``bt-metrics``). Exit status 1 when a run is slower than ``--min-rate``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from revise.errors import ReviseError

ROOT = Path(__file__).resolve().parents[1]


def load_benchtools():
    """``tests/benchtools.py`` by path (the tests folder is not a package)."""
    spec = importlib.util.spec_from_file_location("benchtools", ROOT / "tests" / "benchtools.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def measure(bench, out: Path, *, editor: str, judges: list[str], workers: int, limit: int | None) -> dict:
    from revise.bench import load_results, run_bench

    from revise.video import io as video_io

    decoding = [0.0]
    decode = video_io.VideoReader._decode

    def timed_decode(self, *args, **kwargs):  # every frame the harness decodes (check passes, loads, streams)
        frames = decode(self, *args, **kwargs)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(frames)
            except StopIteration:
                decoding[0] += time.perf_counter() - t0
                return
            decoding[0] += time.perf_counter() - t0
            yield item

    video_io.VideoReader._decode = timed_decode
    started = time.perf_counter()
    try:
        result = run_bench(bench, out, editor=editor, judges=judges, workers=workers, limit=limit, progress=False,
                           report=False)
    finally:
        video_io.VideoReader._decode = decode
    wall = time.perf_counter() - started
    rows = load_results(result.results_path)
    per_judge = {j: sum((r["judges"].get(j) or {}).get("seconds", 0.0) for r in rows) / max(1, len(rows))
                 for j in judges}
    per_sample = sum(r["seconds"] for r in rows) / max(1, len(rows))
    return {"workers": workers, "n": len(rows), "failed": result.n_failed, "wall": wall,
            "rate": len(rows) / wall if wall else float("inf"), "per_sample": per_sample, "per_judge": per_judge,
            "harness": per_sample - sum(per_judge.values()), "overall": result.summary.get("overall"),
            "decode_share": decoding[0] / max(1e-9, sum(r["seconds"] for r in rows))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", default="rve-sim-mini", help="manifest path or rve-sim-mini[:SEED]")
    parser.add_argument("--tiny", action="store_true", help="use a synthetic tests/benchtools benchmark instead")
    parser.add_argument("--per-dimension", type=int, default=4, help="--tiny: samples per dimension")
    parser.add_argument("--sim-per-dimension", type=int, default=0,
                        help="generate an RVE-Sim test bench of N per dimension (25 -> 200 samples) instead of --bench")
    parser.add_argument("--editor", default="copy")
    parser.add_argument("--judge", default="gt", help="comma-separated judge names")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to try")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--min-rate", type=float, default=0.0, help="fail below this many samples/s")
    args = parser.parse_args(argv)

    judges = [j.strip() for j in args.judge.split(",") if j.strip()]
    try:
        return run(args, judges)
    except ReviseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args, judges: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="revise-harness-") as tmp:
        bench = args.bench
        if args.tiny:
            bench = load_benchtools().make_bench(Path(tmp) / "bench", per_dimension=args.per_dimension)
        elif args.sim_per_dimension:
            from revise.sim import generate_dataset

            bench = generate_dataset(Path(tmp) / "sim", per_dimension=args.sim_per_dimension, seed=0)
        # warm-up: imports (torch via provenance), judge and codec initialisation stay out of the numbers
        measure(bench, Path(tmp) / "warm-up", editor=args.editor, judges=judges, workers=1, limit=1)
        results = [measure(bench, Path(tmp) / f"out-w{w}", editor=args.editor, judges=judges, workers=int(w),
                           limit=args.limit) for w in args.workers.split(",")]
    print(f"bench {'tiny' if args.tiny else (f'RVE-Sim {args.sim_per_dimension}/dimension' if args.sim_per_dimension else bench)}, editor {args.editor}, judges {', '.join(judges)}")
    print(f"{'workers':>7} {'n':>5} {'failed':>6} {'wall s':>8} {'samples/s':>10} {'s/sample':>9} "
          f"{'harness s':>10} {'decode':>7}  per judge s")
    slow = False
    for r in results:
        judges_text = ", ".join(f"{j} {s:.4f}" for j, s in r["per_judge"].items())
        print(f"{r['workers']:>7} {r['n']:>5} {r['failed']:>6} {r['wall']:>8.2f} {r['rate']:>10.2f} "
              f"{r['per_sample']:>9.4f} {r['harness']:>10.4f} {r['decode_share']:>7.0%}  {judges_text}")
        slow |= r["rate"] < args.min_rate
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
