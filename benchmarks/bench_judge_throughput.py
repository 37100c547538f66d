"""Throughput of the ``openai`` judge against a loopback server that answers in a fixed latency.

Scores N synthetic samples at a given concurrency and compares the wall time with the ideal
``ceil(N / concurrency) * latency`` (target: at most 1.5x), then reruns with the same cache, which must
make zero calls. Everything is local: the server is ``tests/judge_server.py`` on 127.0.0.1.

    .venv/bin/python benchmarks/bench_judge_throughput.py            # 64 samples, concurrency 8, 100 ms
    .venv/bin/python benchmarks/bench_judge_throughput.py --samples 128 --concurrency 16

Exit status 1 when the ratio is above ``--target`` or the rerun made a call.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from revise.data import Sample
from revise.judges import JudgeInput, create_judge
from revise.video import Video

ROOT = Path(__file__).resolve().parents[1]


def load_server_module():
    """``tests/judge_server.py`` by path (the tests folder is not a package)."""
    spec = importlib.util.spec_from_file_location("judge_server", ROOT / "tests" / "judge_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def synthetic_items(n: int, frames: int = 16, size: int = 64, seed: int = 0) -> list[JudgeInput]:
    """Tiny random clips: ``frames`` frames of ``size`` x ``size``, one source and one edit per sample."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        source = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
        edited = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
        sample = Sample(id=f"rave-causal-bench-s0-{i:04d}", subset="rave", dimension="causal",
                        instruction="What if the ball were twice as heavy?", source=Path(f"/bench/{i}.mp4"))
        items.append(JudgeInput(sample, Video(source, 8.0), Video(edited, 8.0), None, f"{i:064x}"))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.1, help="server latency per request, seconds")
    parser.add_argument("--target", type=float, default=1.5, help="allowed wall / ideal ratio")
    args = parser.parse_args(argv)

    os.environ.setdefault("REVISE_JUDGE_API_KEY", "sk-bench-not-a-real-key")
    server_module = load_server_module()
    items = synthetic_items(args.samples)
    ideal = math.ceil(args.samples / args.concurrency) * args.latency
    with tempfile.TemporaryDirectory() as tmp, server_module.JudgeServer(latency=args.latency) as server:
        cache = Path(tmp) / "judge_cache.sqlite"
        settings = {"base_url": server.base_url, "model": "bench-judge", "concurrency": args.concurrency}

        judge = create_judge("openai", cache=cache, **settings)
        start = time.perf_counter()
        results = judge.score_many(items)
        wall = time.perf_counter() - start
        judge.close()
        failed = sum(r.error is not None for r in results)
        calls = server.calls

        rerun_judge = create_judge("openai", cache=cache, **settings)
        start = time.perf_counter()
        rerun = rerun_judge.score_many(items)
        rerun_wall = time.perf_counter() - start
        rerun_judge.close()
        rerun_calls = server.calls - calls

    ratio = wall / ideal
    print(f"samples={args.samples} concurrency={args.concurrency} latency={args.latency * 1000:.0f}ms "
          f"frames=16x64x64 k=8 max_side=256")
    print(f"first run: wall={wall:.3f}s ideal={ideal:.3f}s ratio={ratio:.2f}x (target <= {args.target}x) "
          f"calls={calls} failed={failed} peak_in_flight={server.max_in_flight}")
    identical = [r.to_dict() for r in rerun] == [r.to_dict() for r in results]
    print(f"rerun (same cache): wall={rerun_wall:.3f}s calls={rerun_calls} "
          f"failed={sum(r.error is not None for r in rerun)} identical={identical}")
    ok = ratio <= args.target and rerun_calls == 0 and failed == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
