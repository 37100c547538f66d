"""Tiny RVE-Bench benchmarks and deterministic test judges/editors, reusable by any test.

``make_bench(root)`` writes real H.264 videos (PyAV) and a manifest: each sample is a small coloured
square moving over a flat background; its target moves the square elsewhere and recolours it.
Importing this module registers:

* judge ``bt-diff``: rubric scores from pixel differences (Reasoning: the share of the pixels the target
  changes that the edit gets right; Consistency: the border, where the square never goes, vs the
  source; Quality: temporal smoothness), plus metrics.
  Options: ``sleep=[lo, hi]`` seconds per sample (deterministic per id), ``fail_ids=[...]`` (raise
  JudgeError on those samples), ``frames_k``.
* judge ``bt-metrics``: metrics only (``mean_intensity``, ``mae_target``), no rubric scores.
* editor ``bt-crash``: copies the source but raises EditorError on ``crash_ids``.
* editor ``bt-stretch``: returns the source with every frame doubled (a wrong-length output).

Run as a script it is the ``revise`` CLI with those registered (for subprocess tests)::

    python tests/benchtools.py bench run --bench ... --judge bt-diff ...
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from revise.data import SUBSETS, Sample, write_manifest
from revise.editors import EditContext, Editor, register_editor
from revise.errors import EditorError, JudgeError
from revise.judges import Judge, JudgeInput, JudgeResult, register_judge
from revise.provenance import text_hash
from revise.video import Video, resize_frames, write_video

SIZE = 32
FRAMES = 8
FPS = 8.0


def _clip(rng: np.random.Generator, *, frames: int, size: int, background, colour, start, velocity) -> np.ndarray:
    video = np.empty((frames, size, size, 3), np.uint8)
    video[:] = np.asarray(background, np.uint8)
    side = size // 4
    for t in range(frames):
        x = int(np.clip(start[0] + velocity[0] * t, 4, size - side - 4))
        y = int(np.clip(start[1] + velocity[1] * t, 4, size - side - 4))
        video[t, y:y + side, x:x + side] = colour
    return video


def make_bench(root: str | Path, *, per_dimension: int = 1, groups: list[tuple[str, str]] | None = None,
               frames: int = FRAMES, size: int = SIZE, seed: int = 0, targets: bool = True) -> Path:
    """Write a tiny benchmark under ``root``; returns ``root/manifest.jsonl``.

    ``groups`` defaults to all eight ``(subset, dimension)`` pairs; ids are ``<subset>-<dim>-<k>``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    groups = groups or [(s, d) for s, dims in SUBSETS.items() for d in dims]
    samples = []
    for subset, dim in groups:
        for k in range(per_dimension):
            sample_id = f"{subset}-{dim}-{k}"
            background = rng.integers(30, 90, size=3)
            colour = rng.integers(150, 255, size=3)
            start = rng.integers(4, size // 2, size=2)
            velocity = rng.integers(-1, 2, size=2)
            src = _clip(rng, frames=frames, size=size, background=background, colour=colour, start=start,
                        velocity=velocity)
            source = write_video(root / "videos" / f"{sample_id}_src.mp4", src, FPS)
            target = None
            if targets:
                tgt = _clip(rng, frames=frames, size=size, background=background, colour=255 - colour,
                            start=size - 4 - size // 4 - start, velocity=-velocity)
                target = write_video(root / "videos" / f"{sample_id}_tgt.mp4", tgt, FPS)
            samples.append(Sample(id=sample_id, subset=subset, dimension=dim,
                                  instruction=f"What if the square of {sample_id} went the other way?",
                                  source=source, target=target, metadata={"seed": seed}))
    return write_manifest(samples, root / "manifest.jsonl")


def _bucket(distance: float) -> float:
    for score, bound in ((5.0, 0.02), (4.0, 0.05), (3.0, 0.10), (2.0, 0.20)):
        if distance < bound:
            return score
    return 1.0


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0)


def _aligned(edited: Video, like: Video) -> np.ndarray:
    frames = resize_frames(edited.frames, like.height, like.width)
    idx = np.round(np.linspace(0, len(frames) - 1, like.num_frames)).astype(int)
    return frames[idx]


def _unit(sample_id: str) -> float:
    return int.from_bytes(hashlib.sha256(sample_id.encode()).digest()[:4], "big") / 2**32


@register_judge("bt-diff")
class FrameDiffJudge(Judge):
    """Deterministic rubric scores from pixel differences (a stand-in for a real judge in tests)."""

    name = "bt-diff"

    def __init__(self, sleep=(0.0, 0.0), fail_ids=(), frames_k: int = 8):
        self.sleep = (float(sleep[0]), float(sleep[1]))
        self.fail_ids = set(fail_ids)
        self.frames_k = frames_k

    def info(self) -> dict:
        return {"judge": self.name, "version": 1, "prompt_hash": text_hash("bt-diff/1"), "frames_k": self.frames_k}

    def score(self, item: JudgeInput) -> JudgeResult:
        sample_id = item.sample.id
        lo, hi = self.sleep
        if hi > 0:
            time.sleep(lo + (hi - lo) * _unit(sample_id))
        if sample_id in self.fail_ids:
            raise JudgeError(f"bt-diff: refusing sample {sample_id} (test failure)")
        edited = _aligned(item.edited, item.source)
        border = np.ones(edited.shape[1:3], bool)
        border[3:-3, 3:-3] = False
        consistency = _bucket(_mae(edited[:, border], item.source.frames[:, border]))
        metrics = {"mae_source": _mae(edited, item.source.frames)}
        if item.target is not None:
            tgt = _aligned(item.target, item.source)
            metrics["mae_target"] = _mae(edited, tgt)
            changed = np.abs(tgt.astype(np.int16) - item.source.frames.astype(np.int16)).max(axis=-1) > 40
            close = np.abs(edited.astype(np.int16) - tgt.astype(np.int16)).max(axis=-1) <= 24
            reasoning = float(1 + round(4 * close[changed].mean())) if changed.any() else 5.0
        else:
            reasoning = 1.0
        steps = np.abs(np.diff(edited.astype(np.float32), axis=0)).mean() / 255.0 if len(edited) > 1 else 0.0
        quality = 5.0 if steps < 0.1 else 3.0
        return JudgeResult(judge=self.name, reasoning=reasoning, consistency=consistency, quality=quality,
                           rationale="pixel differences", metrics=metrics)


@register_judge("bt-metrics")
class MetricsOnlyJudge(Judge):
    """Reports metrics and no rubric score (like a classical-metrics judge)."""

    name = "bt-metrics"

    def info(self) -> dict:
        return {"judge": self.name, "version": 1}

    def score(self, item: JudgeInput) -> JudgeResult:
        metrics = {"mean_intensity": float(item.edited.frames.mean() / 255.0)}
        if item.target is not None:
            metrics["mae_target"] = _mae(_aligned(item.edited, item.source), _aligned(item.target, item.source))
        return JudgeResult(judge=self.name, metrics=metrics)


@register_editor("bt-crash")
class CrashingEditor(Editor):
    """Copies the source, except that it raises on ``crash_ids``."""

    name = "bt-crash"

    def __init__(self, crash_ids=()):
        self.crash_ids = set(crash_ids)

    def edit(self, source: Video, instruction: str, context: EditContext) -> Video:
        if context.sample.id in self.crash_ids:
            raise EditorError(f"bt-crash: out of ideas for {context.sample.id}")
        return source

    def info(self) -> dict:
        return {"editor": self.name, "crash_ids": sorted(self.crash_ids)}


@register_editor("bt-stretch")
class StretchingEditor(Editor):
    """Returns the source with every frame twice: twice the source's length."""

    name = "bt-stretch"

    def edit(self, source: Video, instruction: str, context: EditContext) -> Video:
        return Video(np.repeat(source.frames, 2, axis=0), source.fps)


if __name__ == "__main__":
    from revise.cli.main import main

    sys.exit(main(sys.argv[1:]))
