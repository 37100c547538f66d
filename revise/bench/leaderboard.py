"""``leaderboard.csv``: one row per editor x judge per run, appended across runs.

The header is written once, when the file is created; appending to a file with another header is an
error (never a silently misaligned CSV). Appending a row identical to one already there (apart from the
timestamp) is a no-op, so re-summarising a run does not duplicate it. Scores use the headline
convention of :mod:`revise.bench.aggregate` (failed samples count as 1; ``n_failed`` says how many).
"""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime, timezone
from pathlib import Path

from ..data import SUBSETS
from ..errors import ConfigError

DIMENSION_COLUMNS = [f"{subset}_{dim}" for subset, dims in SUBSETS.items() for dim in dims]
COLUMNS = ["timestamp", "bench", "editor", "judge", "n", "n_failed", "overall", "rave_overall", "icvg_overall",
           *DIMENSION_COLUMNS, "accuracy", "git_commit", "bench_sha256", "out_dir"]


def leaderboard_rows(summary: dict, out_dir: str | os.PathLike) -> list[dict]:
    """One row per judge that gave rubric scores, from a ``summary.json`` dict."""
    prov = summary.get("provenance") or {}
    bench = prov.get("bench") or {}
    shard = prov.get("shard")
    bench_label = bench.get("name", "")
    if shard:
        bench_label += f" (shard {shard[0]}/{shard[1]})"
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []
    for judge, section in (summary.get("judges") or {}).items():
        if not section.get("rubric"):
            continue
        subsets = section.get("subsets", {})
        row = {
            "timestamp": stamp, "bench": bench_label, "editor": prov.get("editor_label", ""), "judge": judge,
            "n": section.get("n"), "n_failed": section.get("n_failed"), "overall": section.get("overall"),
            "rave_overall": subsets.get("rave", {}).get("overall"),
            "icvg_overall": subsets.get("icvg", {}).get("overall"),
            "accuracy": section.get("accuracy"), "git_commit": prov.get("git_commit", ""),
            "bench_sha256": bench.get("sha256", ""), "out_dir": str(Path(out_dir).resolve()),
        }
        for column in DIMENSION_COLUMNS:
            subset, dim = column.split("_", 1)
            row[column] = subsets.get(subset, {}).get("dimensions", {}).get(dim, {}).get("overall")
        rows.append(row)
    return rows


def _as_cells(row: dict) -> list[str]:
    return ["" if row.get(c) is None else str(row[c]) for c in COLUMNS]


def append_leaderboard(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Append ``rows`` to the CSV at ``path`` (creating it with the header); skips exact repeats."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing: set[tuple[str, ...]] = set()
    if path.exists() and path.stat().st_size > 0:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            if header != COLUMNS:
                raise ConfigError(f"{path}: not a leaderboard with the current columns ({len(header)} columns, "
                                  f"expected {len(COLUMNS)}); use another --leaderboard file")
            existing = {tuple(r[1:]) for r in reader if r}
        write_header = False
    else:
        write_header = True
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if write_header:
        writer.writerow(COLUMNS)
    for row in rows:
        cells = _as_cells(row)
        if tuple(cells[1:]) in existing:
            continue
        existing.add(tuple(cells[1:]))
        writer.writerow(cells)
    if buffer.getvalue():
        with open(path, "a", newline="", encoding="utf-8") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
    return path


def read_leaderboard(path: str | os.PathLike) -> list[dict]:
    """The rows of a leaderboard CSV as dicts (strings), in file order."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
