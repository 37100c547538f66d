"""Judge agreement: how often a judge (e.g. the ``critic``) reaches the same verdict as a reference judge
(e.g. the exact ``gt`` judge) on the same edits.

Example::

    from revise.bench.agreement import run_agreement
    result = run_agreement("rve-sim-mini", "out/agree", judge="critic", reference="gt",
                           judge_options={"critic": {"model": "runs/sft"}})
    print(result.agreement["verdict_agreement"])

What it does: every editor of ``editors`` (default :data:`DEFAULT_EDITORS`: ``oracle``, ``copy``,
``shuffle``; a mix of right and wrong answers, so both verdicts occur) is run over the bench with both
judges by :func:`~revise.bench.runner.run_bench`, one run per editor in ``OUT/runs/<editor>``. Runs are
always opened with ``resume``: calling it again over the same ``OUT`` continues a killed run and reuses
finished ones (run_bench refuses a run folder made with other settings). Then ``OUT/agreement.json`` is
derived from the runs' ``results.jsonl`` alone (:func:`compute_agreement`).

**Verdict.** A sample *passes* for a rubric judge when its Reasoning score is >= ``pass_reasoning``
(default :data:`PASS_REASONING` = 4): the change the instruction implies happened, by that judge's
reading. For the critic's bands (:mod:`revise.judges.critic`) that is ``p(Yes) >= 0.5``, the VLM's own
Yes; for ``gt`` it is a Reasoning share >= 0.85 (checks passed and involved parts tracked). Reasoning,
not strict Accuracy (all three 5), because Reasoning is what every judge measures: the critic has no
separate Consistency or Quality signal.

**Which samples count.** Only samples that *both* judges scored (rubric scores from each, no error)
are paired. A failed row (an editor error, e.g. ``shuffle`` without a second sample in a dimension) or a
judge error is left out and counted under ``excluded`` (never scored as a fail: that would be agreement
by construction).

``agreement.json`` (:data:`FORMAT`)::

    verdict_agreement   share of paired samples, pooled over editors, where both verdicts are equal
    cohen_kappa         the same corrected for chance (None when undefined: one verdict everywhere)
    confusion           counts {judge_pass_reference_pass, judge_pass_reference_fail,
                        judge_fail_reference_pass, judge_fail_reference_fail}
    judge_pass_rate, reference_pass_rate
    correlations        {reasoning, overall}: {pearson, spearman} (None when a side is constant or n < 2)
    by_score            per rubric score (reasoning, consistency, quality, overall): exact (same score),
                        within_1 (|difference| <= 1), mean_abs_diff, pass_agreement (both >= the
                        threshold or both below)
    by_editor           per editor: n, verdict_agreement, cohen_kappa, confusion, pass rates,
                        correlations, mean reasoning and overall of each judge
    by_dimension        per "subset/dimension", pooled over editors: n, verdict_agreement, confusion
    n, excluded         paired samples; {n, by_reason, samples: first 50 (editor, id, reason)}
    verdict             the definition, the threshold and each judge's verdict in its own terms
    provenance          both judges' info(), editors' info(), bench, seed, frames_k, limit, runs,
                        package version and git commit, cli_args
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from ..provenance import base_provenance
from .aggregate import SCORE_KEYS, judge_outcome
from .results import RESULTS_FILE, RUN_FILE, read_json, read_results, write_json

FORMAT = "revise-agreement/1"
AGREEMENT_FILE = "agreement.json"
RUNS_DIR = "runs"
DEFAULT_EDITORS = ("oracle", "copy", "shuffle")
PASS_REASONING = 4.0
RUBRIC_KEYS = (*SCORE_KEYS, "overall")
CONFUSION_KEYS = ("judge_pass_reference_pass", "judge_pass_reference_fail", "judge_fail_reference_pass",
                  "judge_fail_reference_fail")
MAX_LISTED = 50
DIGITS = 4
VERDICT_DEFINITION = ("a sample passes for a rubric judge when its Reasoning score >= {t:g} (rve-judge-v1, 1-5); "
                      "agreement is the share of samples scored by both judges whose pass/fail verdicts are equal, "
                      "pooled over editors; samples either judge did not score are excluded")


@dataclass
class AgreementResult:
    """What :func:`run_agreement` did: the numbers, where they are, and each editor's run."""

    out_dir: Path
    agreement: dict
    runs: dict  # editor -> RunResult

    @property
    def path(self) -> Path:
        return self.out_dir / AGREEMENT_FILE


# ------------------------------------------------------------------------------------------ statistics


def _round(x) -> float | None:
    return None if x is None else round(float(x), DIGITS) + 0.0  # + 0.0: no -0.0 in the JSON


def rankdata(values) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (as ``scipy.stats.rankdata``)."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v), dtype=np.float64)
    sorted_v = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def pearson(x, y) -> float | None:
    """Pearson correlation; None for fewer than 2 pairs or a constant side."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2:
        return None
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    if denom == 0.0:
        return None
    return float(np.clip((a * b).sum() / denom, -1.0, 1.0))


def spearman(x, y) -> float | None:
    """Spearman rank correlation (Pearson of average ranks); None where :func:`pearson` is."""
    if len(x) < 2:
        return None
    return pearson(rankdata(x), rankdata(y))


def cohen_kappa(judge: Sequence[bool], reference: Sequence[bool]) -> float | None:
    """Cohen's kappa of two binary verdict lists; None when chance agreement is 1 (one verdict everywhere)."""
    n = len(judge)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(judge, reference)) / n
    pj, pr = sum(judge) / n, sum(reference) / n
    expected = pj * pr + (1 - pj) * (1 - pr)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def passes(reasoning: float, threshold: float = PASS_REASONING) -> bool:
    """The pass verdict of a rubric judge: Reasoning >= ``threshold``."""
    return float(reasoning) >= threshold


# ------------------------------------------------------------------------------------------ pairing


def pair_rows(rows: list[dict], judge: str, reference: str, editor: str) -> tuple[list[dict], list[dict]]:
    """``(paired, excluded)``: per row, both judges' rubric scores, or why the row is left out."""
    paired, excluded = [], []
    for row in rows:
        outcomes = {name: judge_outcome(row, name) for name in (judge, reference)}
        if row.get("status") != "ok":
            excluded.append({"editor": editor, "id": row["id"], "reason": "sample failed",
                             "error": row.get("error")})
            continue
        bad = [(name, o) for name, o in outcomes.items() if o.state != "scored"]
        if bad:
            name, outcome = bad[0]
            reason = f"{name}: error" if outcome.state == "failed" else f"{name}: no rubric scores"
            excluded.append({"editor": editor, "id": row["id"], "reason": reason, "error": outcome.error})
            continue
        entry = {"editor": editor, "id": row["id"], "group": f"{row.get('subset')}/{row.get('dimension')}"}
        for role, name in (("judge", judge), ("reference", reference)):
            scores = dict(zip(SCORE_KEYS, outcomes[name].scores))
            scores["overall"] = outcomes[name].overall
            entry[role] = scores
        paired.append(entry)
    return paired, excluded


def _verdict_stats(pairs: list[dict], threshold: float) -> dict:
    vj = [passes(p["judge"]["reasoning"], threshold) for p in pairs]
    vr = [passes(p["reference"]["reasoning"], threshold) for p in pairs]
    confusion = dict.fromkeys(CONFUSION_KEYS, 0)
    for a, b in zip(vj, vr):
        confusion[f"judge_{'pass' if a else 'fail'}_reference_{'pass' if b else 'fail'}"] += 1
    n = len(pairs)
    return {"n": n, "verdict_agreement": _round(sum(a == b for a, b in zip(vj, vr)) / n) if n else None,
            "cohen_kappa": _round(cohen_kappa(vj, vr)), "confusion": confusion,
            "judge_pass_rate": _round(sum(vj) / n) if n else None,
            "reference_pass_rate": _round(sum(vr) / n) if n else None}


def _correlations(pairs: list[dict]) -> dict:
    out = {}
    for key in ("reasoning", "overall"):
        x = [p["judge"][key] for p in pairs]
        y = [p["reference"][key] for p in pairs]
        out[key] = {"pearson": _round(pearson(x, y)), "spearman": _round(spearman(x, y))}
    return out


def _by_score(pairs: list[dict], threshold: float) -> dict:
    out = {}
    for key in RUBRIC_KEYS:
        diffs = [abs(p["judge"][key] - p["reference"][key]) for p in pairs]
        n = len(pairs)
        out[key] = {
            "exact": _round(sum(d < 1e-9 for d in diffs) / n) if n else None,
            "within_1": _round(sum(d <= 1.0 + 1e-9 for d in diffs) / n) if n else None,
            "mean_abs_diff": _round(sum(diffs) / n) if n else None,
            "pass_agreement": _round(sum((p["judge"][key] >= threshold) == (p["reference"][key] >= threshold)
                                         for p in pairs) / n) if n else None,
        }
    return out


def _means(pairs: list[dict]) -> dict:
    n = len(pairs)
    return {role: {key: _round(sum(p[role][key] for p in pairs) / n) if n else None for key in ("reasoning", "overall")}
            for role in ("judge", "reference")}


def compute_agreement(runs: dict[str, str | os.PathLike], judge: str, reference: str, *,
                      pass_reasoning: float = PASS_REASONING) -> dict:
    """The agreement numbers (module docstring) from ``{editor: run folder}``'s ``results.jsonl`` alone."""
    if judge == reference:
        raise ConfigError(f"the judge and the reference are both {judge!r}; compare two different judges")
    pairs, excluded, by_editor = [], [], {}
    for editor, folder in runs.items():
        rows = read_results(Path(folder) / RESULTS_FILE).rows
        p, e = pair_rows(rows, judge, reference, editor)
        pairs += p
        excluded += e
        by_editor[editor] = {**_verdict_stats(p, pass_reasoning), "n_rows": len(rows), "n_excluded": len(e),
                             "correlations": _correlations(p), "means": _means(p)}
    groups: dict[str, list[dict]] = {}
    for p in pairs:
        groups.setdefault(p["group"], []).append(p)
    by_dimension = {}
    for group in sorted(groups):
        stats = _verdict_stats(groups[group], pass_reasoning)
        by_dimension[group] = {k: stats[k] for k in ("n", "verdict_agreement", "confusion")}
    return {
        "format": FORMAT, "judge": judge, "reference": reference, "pass_reasoning": float(pass_reasoning),
        **_verdict_stats(pairs, pass_reasoning),
        "correlations": _correlations(pairs), "by_score": _by_score(pairs, pass_reasoning),
        "by_editor": by_editor, "by_dimension": by_dimension, "means": _means(pairs),
        "excluded": {"n": len(excluded), "by_reason": dict(Counter(e["reason"] for e in excluded)),
                     "samples": excluded[:MAX_LISTED]},
    }


def verdict_section(judge: str, reference: str, threshold: float, infos: dict) -> dict:
    """The verdict definitions written into agreement.json: the rule, and each judge's reading of it."""
    def reading(name: str) -> str:
        info = infos.get(name) or {}
        bands = (info.get("mapping") or {}).get("bands") if isinstance(info.get("mapping"), dict) else None
        if bands:  # p(Yes) bands (the critic): the lowest p that reaches the threshold
            reached = [float(bound) for bound, value in bands if float(value) >= threshold]
            if reached:
                return f"Reasoning >= {threshold:g}, i.e. p(Yes) >= {min(reached):g}"
            return f"Reasoning >= {threshold:g} (never reached by its bands)"
        return f"Reasoning >= {threshold:g}"

    return {"definition": VERDICT_DEFINITION.format(t=threshold), "pass_reasoning": float(threshold),
            "judge": {"name": judge, "passes_when": reading(judge)},
            "reference": {"name": reference, "passes_when": reading(reference)}}


# ------------------------------------------------------------------------------------------ the command


def _parse_editors(editors: str | Sequence[str]) -> list[str]:
    items = editors.split(",") if isinstance(editors, str) else list(editors)
    names = [str(e).strip() for e in items if str(e).strip()]
    if not names:
        raise ConfigError("--editors: give at least one editor, e.g. oracle,copy,shuffle")
    dupes = sorted(n for n, c in Counter(names).items() if c > 1)
    if dupes:
        raise ConfigError(f"--editors: {', '.join(dupes)} listed twice")
    bad = [n for n in names if "/" in n or n.startswith(".")]
    if bad:
        raise ConfigError(f"--editors: {bad[0]!r} is not an editor name")
    return names


def run_agreement(
    bench: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    judge: str = "critic",
    reference: str = "gt",
    editors: str | Sequence[str] = DEFAULT_EDITORS,
    judge_options: dict | None = None,
    editor_options: dict | None = None,
    limit: int | None = None,
    seed: int = 0,
    frames_k: int = 8,
    workers: int = 1,
    pass_reasoning: float = PASS_REASONING,
    report: bool = False,
    progress: bool = True,
    cli_args: dict | None = None,
) -> AgreementResult:
    """Run each editor over ``bench`` with ``judge`` and ``reference`` into ``OUT/runs/<editor>``
    (resumable) and write ``OUT/agreement.json``. ``editor_options`` maps an editor name to its options;
    ``judge_options`` a judge name to its options (both judges of every run get them)."""
    from ..editors import EDITORS
    from .runner import run_bench

    judge, reference = str(judge).strip(), str(reference).strip()
    if not judge or not reference:
        raise ConfigError("give a judge (--judge) and a reference judge (--reference)")
    if judge == reference:
        raise ConfigError(f"--judge and --reference are both {judge!r}; compare two different judges")
    if not (math.isfinite(float(pass_reasoning)) and 1.0 <= float(pass_reasoning) <= 5.0):
        raise ConfigError(f"--pass-reasoning {pass_reasoning}: must be within the rubric's 1-5")
    names = _parse_editors(editors)
    for name in names:  # an unknown name fails now, not after the editors before it have run
        EDITORS.factory(name)
    editor_options = dict(editor_options or {})
    unknown = sorted(set(editor_options) - set(names))
    if unknown:
        raise ConfigError(f"options given for editor(s) {unknown} that are not in --editors")
    out_dir = Path(out_dir)
    runs, folders = {}, {}
    for name in names:
        folder = out_dir / RUNS_DIR / name
        args = {**(cli_args or {}), "agreement_editor": name}
        runs[name] = run_bench(bench, folder, editor=name, editor_options=editor_options.get(name),
                               judges=[judge, reference], judge_options=judge_options, resume=True, limit=limit,
                               seed=seed, frames_k=frames_k, workers=workers, report=report, progress=progress,
                               cli_args=args)
        folders[name] = folder
    agreement = compute_agreement(folders, judge, reference, pass_reasoning=pass_reasoning)
    run_files = {name: read_json(folder / RUN_FILE, "run provenance (run.json)") for name, folder in folders.items()}
    first = run_files[names[0]]
    infos = first.get("judges") or {}
    agreement["verdict"] = verdict_section(judge, reference, float(pass_reasoning), infos)
    agreement["provenance"] = {
        **base_provenance(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "judges": {judge: infos.get(judge), reference: infos.get(reference)},
        "editors": {name: run_files[name].get("editor") for name in names},
        "bench": first.get("bench"), "seed": seed, "frames_k": frames_k, "limit": limit,
        "judge_options": first.get("judge_options"), "editor_options": editor_options,
        "runs": {name: str(Path(RUNS_DIR) / name) for name in names},
        "n_planned": {name: r.n_planned for name, r in runs.items()},
        "cli_args": cli_args,
    }
    write_json(out_dir / AGREEMENT_FILE, agreement)
    return AgreementResult(out_dir=out_dir, agreement=agreement, runs=runs)
