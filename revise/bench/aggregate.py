"""``summary.json``: every number of a run, derived from ``results.jsonl`` alone.

Per sample and judge, one of three outcomes:

* **scored**: the judge returned all three rubric scores (Reasoning, Consistency, Quality, 1..5);
* **failed**: the sample failed (editor, video or length error) or the judge raised / reported an
  error. A failed sample scores the rubric minimum, **1 on every sub-score**, in the headline numbers,
  so an editor that crashes cannot look better than one that answers badly. ``overall_scored`` (the
  mean over scored samples only) and ``n_failed`` are reported beside it;
* **not applicable**: the judge returned no rubric score and no error (e.g. a metrics-only judge);
  excluded from the rubric numbers (``n_na``).

For a group of samples (a dimension, a subset, the whole run)::

    reasoning, consistency, quality   mean sub-score over scored + failed samples (failed = 1)
    overall                           mean of the per-sample Overall (mean of the three), failed = 1
    overall_scored                    the same over scored samples only (None if none)
    overall_macro                     subsets and run: the mean of the member dimensions' overall
    accuracy                          share of scored + failed samples with all three sub-scores 5
    ci95                              [lo, hi], percentile bootstrap of ``overall`` (1000 resamples,
                                      numpy rng seeded 0, samples in id order: reproducible)
    n, n_scored, n_failed, n_na       counts
    metrics (dimensions only)         mean of each classical metric (``JudgeResult.metrics``) over
                                      the samples that report it with a finite value

The top level of the summary is the section of the *primary* judge (the first judge, in the run's
order, that returned any rubric score) plus ``primary_judge``, ``judges`` (every judge's section),
``provenance`` (``run.json``) and the run's completeness. In the top-level dimensions, ``metrics``
gathers every judge's metrics (a name reported by two judges becomes ``<judge>:<name>``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import SUBSETS
from .results import RESULTS_FILE, RUN_FILE, SUMMARY_FILE, read_json, read_results, write_json

SCORE_KEYS = ("reasoning", "consistency", "quality")
FAILED_SCORE = 1.0
MAX_SCORE = 5.0
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
DIGITS = 4


def bootstrap_ci(values, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap interval of the mean: ``[lo, hi]``, None for no values.

    Resamples ``len(values)`` values with replacement ``resamples`` times (``default_rng(seed)``) and
    returns the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled means.
    """
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    chunk = max(1, min(resamples, (1 << 22) // max(1, v.size)))  # bound memory to ~32 MiB of indices
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, v.size, size=(stop - start, v.size))
        means[start:stop] = v[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return [_round(lo), _round(hi)]


@dataclass
class Outcome:
    """One judge's verdict on one row, as aggregation sees it."""

    state: str  # "scored" | "failed" | "na"
    scores: tuple[float, float, float] | None = None  # as counted: failed -> (1, 1, 1)
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def overall(self) -> float | None:
        return None if self.scores is None else sum(self.scores) / 3.0

    @property
    def passed(self) -> bool:
        return self.state == "scored" and all(s >= MAX_SCORE for s in self.scores)


def judge_outcome(row: dict, judge: str) -> Outcome:
    """Classify ``row``'s result for ``judge`` (see the module docstring)."""
    if row.get("status") != "ok":
        return Outcome("failed", (FAILED_SCORE,) * 3, row.get("error") or "failed")
    result = (row.get("judges") or {}).get(judge)
    if not isinstance(result, dict):
        return Outcome("failed", (FAILED_SCORE,) * 3, f"judge {judge}: no result in this row")
    metrics = {k: float(v) for k, v in (result.get("metrics") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    if result.get("error"):
        return Outcome("failed", (FAILED_SCORE,) * 3, f"judge {judge}: {result['error']}", metrics)
    scores = [result.get(k) for k in SCORE_KEYS]
    if all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) for s in scores):
        return Outcome("scored", tuple(float(s) for s in scores), None, metrics)
    return Outcome("na", None, None, metrics)


def _round(x) -> float | None:
    return None if x is None else round(float(x), DIGITS)


def _mean(values) -> float | None:
    values = list(values)
    return _round(sum(values) / len(values)) if values else None


def group_stats(outcomes: list[Outcome], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """The numbers of one group of samples (outcomes in a stable order, e.g. by sample id)."""
    counted = [o for o in outcomes if o.state != "na"]
    scored = [o for o in counted if o.state == "scored"]
    stats = {
        "n": len(outcomes),
        "n_scored": len(scored),
        "n_failed": len(counted) - len(scored),
        "n_na": len(outcomes) - len(counted),
    }
    for i, key in enumerate(SCORE_KEYS):
        stats[key] = _mean(o.scores[i] for o in counted)
    stats["overall"] = _mean(o.overall for o in counted)
    stats["overall_scored"] = _mean(o.overall for o in scored)
    stats["accuracy"] = _mean(1.0 if o.passed else 0.0 for o in counted)
    stats["ci95"] = bootstrap_ci([o.overall for o in counted], resamples=resamples, seed=seed)
    return stats


def _metric_means(per_sample: list[dict[str, float]]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for metrics in per_sample:
        for key, value in metrics.items():
            sums.setdefault(key, []).append(value)
    return {key: _round(sum(v) / len(v)) for key, v in sorted(sums.items())}


def _ordered_groups(rows: list[dict]) -> list[tuple[str, str]]:
    present = {(r.get("subset"), r.get("dimension")) for r in rows}
    known = [(s, d) for s, dims in SUBSETS.items() for d in dims if (s, d) in present]
    return known + sorted(g for g in present if g not in set(known) and None not in g)


def judge_section(rows: list[dict], judge: str, *, metric_judges: list[str] | None = None,
                  resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """One judge's summary: run-level stats, ``subsets`` -> stats + ``dimensions`` -> stats + metrics.

    ``metric_judges`` names the judges whose metrics fill the dimensions' ``metrics`` (default: this
    judge only); a metric name two of them report is prefixed ``<judge>:``.
    """
    rows = sorted(rows, key=lambda r: r["id"])
    outcomes = {r["id"]: judge_outcome(r, judge) for r in rows}
    metric_judges = metric_judges or [judge]
    metric_outcomes = {j: {r["id"]: judge_outcome(r, j) for r in rows} for j in metric_judges}
    owners: dict[str, set[str]] = {}
    for j, by_id in metric_outcomes.items():
        for o in by_id.values():
            for key in o.metrics:
                owners.setdefault(key, set()).add(j)

    def metrics_of(sample_id: str) -> dict[str, float]:
        merged: dict[str, float] = {}
        for j in metric_judges:
            for key, value in metric_outcomes[j][sample_id].metrics.items():
                merged[key if len(owners[key]) == 1 else f"{j}:{key}"] = value
        return merged

    section = {"judge": judge, **group_stats(list(outcomes.values()), resamples=resamples, seed=seed)}
    subsets: dict[str, dict] = {}
    dim_overalls: list[float] = []
    for subset, dimension in _ordered_groups(rows):
        ids = [r["id"] for r in rows if r.get("subset") == subset and r.get("dimension") == dimension]
        stats = group_stats([outcomes[i] for i in ids], resamples=resamples, seed=seed)
        stats["metrics"] = _metric_means([metrics_of(i) for i in ids])
        entry = subsets.setdefault(subset, {"dimensions": {}})
        entry["dimensions"][dimension] = stats
    for subset, entry in subsets.items():
        ids = [r["id"] for r in rows if r.get("subset") == subset]
        entry.update(group_stats([outcomes[i] for i in ids], resamples=resamples, seed=seed))
        dims = [d["overall"] for d in entry["dimensions"].values() if d["overall"] is not None]
        entry["overall_macro"] = _mean(dims)
        dim_overalls.extend(dims)
    section["overall_macro"] = _mean(dim_overalls)
    section["subsets"] = subsets
    section["rubric"] = section["n_scored"] > 0
    section["failures"] = [{"id": i, "error": o.error} for i, o in outcomes.items() if o.state == "failed"]
    return section


def judge_order(rows: list[dict], provenance: dict | None = None) -> list[str]:
    """The run's judges in order: from ``run.json`` if known, then any others in order of appearance."""
    order: list[str] = []
    for name in (provenance or {}).get("judge_names", []) or []:
        if name not in order:
            order.append(name)
    for row in rows:
        for name in row.get("judges") or {}:
            if name not in order:
                order.append(name)
    return order


def summarize(rows: list[dict], *, provenance: dict | None = None, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED) -> dict:
    """The full ``summary.json`` dict for ``rows`` (see the module docstring)."""
    judges = judge_order(rows, provenance)
    sections = {j: judge_section(rows, j, resamples=resamples, seed=seed) for j in judges}
    primary = next((j for j in judges if sections[j]["rubric"]), judges[0] if judges else None)
    if primary is not None:
        top = judge_section(rows, primary, metric_judges=judges, resamples=resamples, seed=seed)
    else:  # no judge at all: only the failures can be told
        top = {"judge": None, **group_stats([judge_outcome(r, "") for r in sorted(rows, key=lambda r: r["id"])],
                                            resamples=resamples, seed=seed),
               "overall_macro": None, "subsets": {}, "rubric": False,
               "failures": [{"id": r["id"], "error": r.get("error")} for r in sorted(rows, key=lambda r: r["id"])
                            if r.get("status") != "ok"]}
    top.pop("judge")
    summary = {"primary_judge": primary, **top, "judges": sections}
    summary["n_rows"] = len(rows)
    summary["n_rows_failed"] = sum(1 for r in rows if r.get("status") != "ok")
    planned = (provenance or {}).get("n_planned")
    summary["n_planned"] = planned
    summary["complete"] = (planned is not None and len(rows) >= planned
                           and not (provenance or {}).get("shards_missing"))
    summary["provenance"] = provenance or {}
    return summary


def summarize_run(out_dir: str | os.PathLike, *, write: bool = True) -> dict:
    """Re-aggregate a run folder from ``results.jsonl`` (+ ``run.json``); writes ``summary.json``."""
    out_dir = Path(out_dir)
    results = out_dir / RESULTS_FILE
    if not results.is_file():
        from ..errors import ConfigError

        raise ConfigError(f"{out_dir}: no {RESULTS_FILE} here (is this a bench output folder?)")
    rows = read_results(results).rows
    provenance = read_json(out_dir / RUN_FILE, "run provenance") if (out_dir / RUN_FILE).exists() else {}
    summary = summarize(rows, provenance=provenance)
    if write:
        write_json(out_dir / SUMMARY_FILE, summary)
    return summary
