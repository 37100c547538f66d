"""The reward-hacking monitor of ``revise train srf``: is the generator getting *right*, or only pleasing its critic?

Every ``monitor_every`` steps (and once before the first step and once after the last) the generator, as it is
at that step, edits a fixed set of RVE-Sim val samples (:func:`load_monitor_set`) exactly as ``revise edit``
would (:meth:`~revise.model.unified.ReviseModel.edit`: the checkpoint's sampler settings and detail transfer,
the same seed every time, so that two evaluations differ only by the weights). Each edit is then scored twice:

- by the **critic** the run trains against: ``p(Yes)`` of the VLM's judge prompt on the source, the edit and
  the instruction, with the run's Yes/No head (the trained one with ``--unfreeze-critic-head``);
- by the exact **gt** judge (:class:`~revise.judges.gt.GroundTruthJudge`): the Reasoning share ``gt_reasoning_s`` and
  the Reasoning score.

One row per evaluation goes to ``OUT/metrics.jsonl`` (:class:`MonitorLog`): the mean critic ``p(Yes)``, the
mean gt share, their per-sample Pearson correlation, the critic-gt verdict agreement (critic passes at
``p >= 0.5``, gt at Reasoning >= 4, as ``revise bench agreement``), and the per-sample Pearson correlation of the
*changes* since the first evaluation (``delta_corr``: does a sample the critic now likes more also score better
with gt?). Reward hacking reads as ``critic_p_yes`` rising while ``gt_share`` does not, and a ``delta_corr``
near zero or below. The per-sample values are kept in the row, so any other statistic can be computed later.
:func:`monitor_svg` draws the rows of one or more runs (``docs/srf-curves.svg``).

The rows are append-only; a resumed run first drops the rows of the steps it will evaluate again (those at
or after the step it resumes from), so the file never holds duplicates.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bench.agreement import passes, pearson
from ..errors import ConfigError

METRICS_NAME = "metrics.jsonl"
CRITIC_PASS = 0.5  # the critic's pass: p(Yes) >= 0.5 (gt's: revise.bench.agreement.passes)
FPS = 8.0  # the in-memory clips' frame rate (the gt judge compares frames, not times)


@dataclass
class MonitorSet:
    """The fixed val samples of the monitor, with their decoded source and target clips."""

    samples: list
    sources: list[np.ndarray]
    targets: list[np.ndarray | None]
    manifest: Path


def load_monitor_set(manifest: str | Path, limit: int | None = None) -> MonitorSet:
    """The RVE-Sim samples of ``manifest`` (a ``manifest.jsonl`` or its folder), the first ``limit`` of them;
    every sample needs its ground-truth state (one-line :class:`ConfigError` otherwise)."""
    from ..data import load_manifest
    from ..video import read_video

    path = Path(manifest)
    path = path / "manifest.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"{path}: the monitor's val set is not there (give an RVE-Sim manifest.jsonl)")
    samples = list(load_manifest(path).samples)[:limit]
    if not samples:
        raise ConfigError(f"{path}: the monitor's val set is empty")
    missing = [s.id for s in samples if s.state is None]
    if missing:
        raise ConfigError(f"{path}: the monitor needs RVE-Sim samples with ground truth; {missing[0]} has no state")
    sources = [read_video(s.source).frames for s in samples]
    targets = [read_video(s.target).frames if s.target is not None else None for s in samples]
    return MonitorSet(samples, sources, targets, path)


def evaluate(unified, head, monitor: MonitorSet, *, seed: int = 0, steps: int | None = None,
             guidance: float | None = None) -> dict:
    """Edit every monitor sample with ``unified`` (its generator as it is now) and score each edit by the critic
    (Yes/No rows ``head`` ``(2, hidden)``) and the gt judge. Returns the per-sample lists ``ids``, ``p_yes``,
    ``share``, ``reasoning``, and the summary (see the module docstring; ``delta_corr`` is added by
    :func:`with_changes`)."""
    import torch

    from ..judges.base import JudgeInput
    from ..judges.gt import GroundTruthJudge
    from ..video import Video
    from .srf import critic_logit

    judge = GroundTruthJudge()
    generator = unified.generator
    was_training = generator.training
    generator.eval()
    ids, p_yes, share, reasoning = [], [], [], []
    try:
        with torch.no_grad():
            for k, (sample, source, target) in enumerate(zip(monitor.samples, monitor.sources, monitor.targets)):
                edit = unified.edit(source, sample.instruction, steps=steps, guidance=guidance, seed=seed + k)
                logit = critic_logit(unified.vlm, head, source[None], edit[None], [sample.instruction])
                result = judge.score(JudgeInput(sample, Video(source, FPS), Video(edit, FPS),
                                                None if target is None else Video(target, FPS), ""))
                ids.append(sample.id)
                p_yes.append(round(float(torch.sigmoid(logit.float())[0]), 6))
                share.append(round(float(result.metrics["gt_reasoning_s"]), 6))
                reasoning.append(float(result.reasoning))
    finally:
        generator.train(was_training)
    critic_pass = [p >= CRITIC_PASS for p in p_yes]
    gt_pass = [passes(r) for r in reasoning]
    return {"n": len(ids), "critic_p_yes": round(float(np.mean(p_yes)), 6), "gt_share": round(float(np.mean(share)), 6),
            "gt_reasoning": round(float(np.mean(reasoning)), 4), "corr": _round(pearson(p_yes, share)),
            "agreement": round(float(np.mean([c == g for c, g in zip(critic_pass, gt_pass)])), 6),
            "critic_pass": round(float(np.mean(critic_pass)), 6), "gt_pass": round(float(np.mean(gt_pass)), 6),
            "ids": ids, "p_yes": p_yes, "share": share, "reasoning": reasoning}


def with_changes(row: dict, first: dict | None) -> dict:
    """``row`` plus ``delta_p_yes``, ``delta_share`` (the means' change since ``first``) and ``delta_corr``, the
    per-sample correlation of the two changes (None for the first row or a constant change)."""
    if first is None or first.get("ids") != row["ids"]:
        return {**row, "delta_p_yes": None, "delta_share": None, "delta_corr": None}
    dp = np.subtract(row["p_yes"], first["p_yes"])
    ds = np.subtract(row["share"], first["share"])
    return {**row, "delta_p_yes": round(float(dp.mean()), 6), "delta_share": round(float(ds.mean()), 6),
            "delta_corr": _round(pearson(dp, ds))}


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


class MonitorLog:
    """``OUT/metrics.jsonl``: one JSON object per evaluation, appended (rank 0 only). ``resume_from`` > 0 drops
    the rows of steps >= ``resume_from`` (they are evaluated again) and keeps the first row for the changes."""

    def __init__(self, out: Path, resume_from: int, *, main: bool = True):
        self.path = Path(out) / METRICS_NAME
        self.main = main
        self.rows: list[dict] = []
        if self.path.is_file() and resume_from > 0:
            self.rows = [r for r in read_rows(self.path) if int(r["step"]) < resume_from]
        if main:
            self.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in self.rows))

    @property
    def first(self) -> dict | None:
        return self.rows[0] if self.rows else None

    def done(self, step: int) -> bool:
        return any(int(r["step"]) == step for r in self.rows)

    def log(self, step: int, row: dict, extra: dict | None = None) -> dict:
        full = with_changes({"step": int(step), **(extra or {}), **row}, self.first)
        self.rows.append(full)
        if self.main:
            with self.path.open("a") as f:
                f.write(json.dumps(full, sort_keys=True) + "\n")
        return full


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a ``metrics.jsonl``; a torn last line (a killed write) is skipped, any other bad line is a
    one-line error naming the file and line."""
    path = Path(path)
    lines = path.read_text().splitlines()
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if n == len(lines):
                break
            raise ConfigError(f"{path}:{n}: not a JSON object") from None
    return rows


def monitor_svg(runs: dict[str, list[dict]], title: str = "self-reflective training: critic vs gt") -> str:
    """Two panels against the training step, one line per run: the critic's mean ``p(Yes)`` (dashed) and the
    gt Reasoning share (solid) on the left; the critic-gt agreement (solid) and ``delta_corr`` (dotted) on the
    right. ``runs``: label -> the rows of its ``metrics.jsonl``."""
    from html import escape

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    w, h, pad, gap = 820, 320, 56, 56
    pw = (w - 2 * pad - gap) / 2
    steps = [int(r["step"]) for rows in runs.values() for r in rows] or [0, 1]
    lo_x, hi_x = min(steps), max(max(steps), min(steps) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="11"><rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2:.0f}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']
    panels = (("critic p(Yes) (dashed) and gt share (solid)", (("critic_p_yes", "6,3"), ("gt_share", "")), 0.0, 1.0),
              ("critic-gt agreement (solid), delta corr (dotted)", (("agreement", ""), ("delta_corr", "2,3")), -1.0, 1.0))
    for p_i, (label, series, lo_y, hi_y) in enumerate(panels):
        x0 = pad + p_i * (pw + gap)

        def X(v, x0=x0):
            return x0 + (v - lo_x) / (hi_x - lo_x) * pw

        def Y(v, lo_y=lo_y, hi_y=hi_y):
            return h - pad - (v - lo_y) / (hi_y - lo_y) * (h - 2 * pad)

        parts.append(f'<rect x="{x0:.1f}" y="{pad}" width="{pw:.1f}" height="{h - 2 * pad}" fill="none" stroke="#999"/>')
        parts.append(f'<text x="{x0 + pw / 2:.1f}" y="{pad - 8}" text-anchor="middle">{escape(label)}</text>')
        for t in range(5):
            v = lo_y + (hi_y - lo_y) * t / 4
            parts.append(f'<text x="{x0 - 4:.1f}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        for t in range(5):
            v = lo_x + (hi_x - lo_x) * t / 4
            parts.append(f'<text x="{X(v):.1f}" y="{h - pad + 14}" text-anchor="middle">{v:,.0f}</text>')
        parts.append(f'<text x="{x0 + pw / 2:.1f}" y="{h - pad + 28}" text-anchor="middle">step</text>')
        for r_i, (run, rows) in enumerate(runs.items()):
            colour = colours[r_i % len(colours)]
            for key, dash in series:
                pts = [(int(r["step"]), r[key]) for r in rows if isinstance(r.get(key), (int, float))]
                if not pts:
                    continue
                line = " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in pts)
                style = f' stroke-dasharray="{dash}"' if dash else ""
                parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{style}/>')
                for s, v in pts:
                    parts.append(f'<circle cx="{X(s):.1f}" cy="{Y(v):.1f}" r="2.5" fill="{colour}"/>')
    for r_i, run in enumerate(runs):
        parts.append(f'<text x="{pad + 150 * r_i}" y="{h - 8}" fill="{colours[r_i % len(colours)]}">'
                     f'— {escape(run)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
