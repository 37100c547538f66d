"""Comparing two runs dimension by dimension: B minus A for each sub-score and Overall, with CI overlap.

Both runs are read from their ``summary.json`` (re-aggregated from ``results.jsonl`` when missing). Two
95% intervals that do not overlap are a strong sign of a real difference; overlapping ones are not
proof of none (the check is conservative).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..data import SUBSETS
from ..errors import ConfigError
from .aggregate import SCORE_KEYS, summarize_run
from .results import SUMMARY_FILE, read_json

FIELDS = (*SCORE_KEYS, "overall")


@dataclass
class GroupDiff:
    """One line of a comparison: a group (``all``, a subset, or ``subset/dimension``) in runs A and B."""

    group: str
    a: dict | None
    b: dict | None

    def value(self, run: str, key: str) -> float | None:
        stats = self.a if run == "a" else self.b
        return None if stats is None else stats.get(key)

    def delta(self, key: str) -> float | None:
        a, b = self.value("a", key), self.value("b", key)
        return None if a is None or b is None else round(b - a, 4)

    @property
    def ci_overlap(self) -> bool | None:
        ca, cb = self.value("a", "ci95"), self.value("b", "ci95")
        if not ca or not cb:
            return None
        return ca[0] <= cb[1] and cb[0] <= ca[1]


@dataclass
class Comparison:
    """Runs A and B judged by ``judge``: one :class:`GroupDiff` per group, plus caveats (``notes``)."""

    a: Path
    b: Path
    judge: str
    groups: list[GroupDiff]
    notes: list[str] = field(default_factory=list)


def load_summary(out_dir: str | os.PathLike) -> dict:
    """``OUT/summary.json``, or a fresh aggregation of ``OUT/results.jsonl`` when it is missing."""
    out_dir = Path(out_dir)
    if (out_dir / SUMMARY_FILE).is_file():
        return read_json(out_dir / SUMMARY_FILE, "summary")
    return summarize_run(out_dir, write=False)


def _canonical(names, order) -> list[str]:
    """``names`` in the benchmark's order (SUBSETS), unknown names last, alphabetically."""
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def _groups(section: dict) -> dict[str, dict]:
    groups = {"all": section}
    subsets = section.get("subsets") or {}
    for subset in _canonical(subsets, list(SUBSETS)):
        entry = subsets[subset]
        groups[subset] = entry
        dims = entry.get("dimensions") or {}
        for dim in _canonical(dims, list(SUBSETS.get(subset, ()))):
            groups[f"{subset}/{dim}"] = dims[dim]
    return groups


def compare_runs(a: str | os.PathLike, b: str | os.PathLike, *, judge: str | None = None) -> Comparison:
    """B minus A per group for ``judge`` (default: A's primary judge, which B must also have)."""
    sa, sb = load_summary(a), load_summary(b)
    judge = judge or sa.get("primary_judge")
    if judge is None:
        raise ConfigError(f"{a}: the run has no judge with rubric scores to compare")
    for path, summary in ((a, sa), (b, sb)):
        if judge not in (summary.get("judges") or {}):
            known = ", ".join(summary.get("judges") or {}) or "none"
            raise ConfigError(f"{path}: no results from judge {judge!r} (it has: {known}); pick one with --judge")
    ga, gb = _groups(sa["judges"][judge]), _groups(sb["judges"][judge])
    order = list(ga) + [g for g in gb if g not in ga]
    notes = []
    pa, pb = sa.get("provenance") or {}, sb.get("provenance") or {}
    if (pa.get("bench") or {}).get("sha256") != (pb.get("bench") or {}).get("sha256"):
        notes.append("the two runs used different benchmark manifests (sha256 differs)")
    if (pa.get("judges") or {}).get(judge) != (pb.get("judges") or {}).get(judge):
        notes.append(f"judge {judge!r} is configured differently in the two runs (info or prompt hash differs)")
    for path, summary in ((a, sa), (b, sb)):
        if not summary.get("complete", True):
            notes.append(f"{path}: the run is incomplete ({summary.get('n_rows')} of {summary.get('n_planned')} samples)")
    return Comparison(Path(a), Path(b), judge, [GroupDiff(g, ga.get(g), gb.get(g)) for g in order], notes)


def comparison_table(comparison: Comparison):
    """A rich Table: per group, A -> B and the difference for each sub-score and Overall."""
    from rich.table import Table

    def fmt(x):
        return "-" if x is None else f"{x:.2f}"

    def signed(x):
        if x is None:
            return "-"
        style = "green" if x > 0 else "red" if x < 0 else ""
        return f"[{style}]{x:+.2f}[/{style}]" if style else f"{x:+.2f}"

    table = Table(title=f"B - A, judge {comparison.judge}  (A = {comparison.a}, B = {comparison.b})")
    table.add_column("group")
    table.add_column("n A/B", justify="right")
    for key in FIELDS:
        table.add_column(key, justify="right")
    table.add_column("CIs overlap", justify="center")
    for g in comparison.groups:
        cells = [g.group, f"{g.value('a', 'n') if g.a else '-'}/{g.value('b', 'n') if g.b else '-'}"]
        for key in FIELDS:
            cells.append(f"{fmt(g.value('a', key))}->{fmt(g.value('b', key))} {signed(g.delta(key))}")
        overlap = g.ci_overlap
        cells.append("-" if overlap is None else "yes" if overlap else "[bold]no[/bold]")
        table.add_row(*cells)
    return table
