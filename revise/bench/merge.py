"""Joining the output folders of sharded runs (``--shard i/n``) into one run, then re-aggregating.

The shards must come from the same run settings (bench sha256, editor, judges with their prompt
hashes, seed, frame sampling k, length policy, limit); only ``shard`` may differ. A sample id present
in two folders is an error, as is the same shard index twice. Missing shards are allowed but recorded
(``shards_missing`` in ``run.json``), and the summary then says ``complete: false``.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from ..errors import ConfigError
from .aggregate import summarize_run
from .leaderboard import append_leaderboard, leaderboard_rows
from .results import LEADERBOARD_FILE, RESULTS_FILE, RUN_FILE, ResultsWriter, read_json, read_results, write_json
from .runner import IDENTITY_KEYS, RunResult, exclusive_run, run_identity, write_report_if_available


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def merge_runs(out_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
               leaderboard: str | os.PathLike | None = None, report: bool = True,
               cli_args: dict | None = None) -> RunResult:
    """Merge shard folders into ``out`` (results, videos, run.json), then write summary and leaderboard."""
    dirs = [Path(d) for d in out_dirs]
    out = Path(out)
    if len(dirs) < 1:
        raise ConfigError("merge needs at least one run folder")
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise ConfigError("merge: the same run folder is given twice")
    if out.resolve() in {d.resolve() for d in dirs}:
        raise ConfigError(f"merge: --out {out} is one of the inputs; choose a fresh folder")
    existing = read_results(out / RESULTS_FILE)
    if existing.rows or existing.torn:
        raise ConfigError(f"{out / RESULTS_FILE} already holds results; choose a fresh --out")

    provs = [read_json(d / RUN_FILE, "run provenance (run.json)") for d in dirs]
    reference = run_identity(provs[0])
    for d, prov in zip(dirs[1:], provs[1:]):
        ident = run_identity(prov)
        diffs = [k for k in IDENTITY_KEYS if k != "shard" and ident.get(k) != reference.get(k)]
        if diffs:
            k = diffs[0]
            raise ConfigError(f"merge: {d} differs from {dirs[0]} in {', '.join(diffs)} "
                              f"({k}: {json.dumps(ident.get(k), sort_keys=True)[:160]} vs "
                              f"{json.dumps(reference.get(k), sort_keys=True)[:160]}); only shards of one run merge")
    shards = [tuple(p["shard"]) if p.get("shard") else None for p in provs]
    counts = {s[1] for s in shards if s is not None}
    if len(counts) > 1:
        raise ConfigError(f"merge: shards of different splits {sorted(counts)} (every --shard i/n needs the same n)")
    seen_shards: dict[tuple, Path] = {}
    for d, s in zip(dirs, shards):
        if s is not None and s in seen_shards:
            raise ConfigError(f"merge: shard {s[0]}/{s[1]} is given twice ({seen_shards[s]} and {d})")
        if s is not None:
            seen_shards[s] = d
    missing = sorted(i for n in counts for i in range(n) if (i, n) not in seen_shards)

    row_sets = [read_results(d / RESULTS_FILE).rows for d in dirs]
    owner: dict[str, Path] = {}
    for d, rows in zip(dirs, row_sets):
        for row in rows:
            if row["id"] in owner:
                raise ConfigError(f"merge: sample {row['id']!r} is in both {owner[row['id']]} and {d}")
            owner[row["id"]] = d

    merged = dict(provs[0])
    merged.update({
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "shard": None,
        "n_planned": sum(p.get("n_planned") or 0 for p in provs),
        "shards_missing": [f"{i}/{next(iter(counts))}" for i in missing],
        "merged_from": [{"out_dir": str(d.resolve()), "shard": p.get("shard"), "git_commit": p.get("git_commit"),
                         "created": p.get("created"), "n_rows": len(rows)}
                        for d, p, rows in zip(dirs, provs, row_sets)],
        "cli_args": cli_args, "resumed": [],
    })
    with exclusive_run(out):
        write_json(out / RUN_FILE, merged)
        with ResultsWriter(out / RESULTS_FILE) as writer:
            for d, rows in zip(dirs, row_sets):
                for row in rows:
                    prediction = row.get("prediction")
                    if prediction and not Path(prediction).is_absolute() and (d / prediction).is_file():
                        _link_or_copy(d / prediction, out / prediction)
                    writer.append(row)
        summary = summarize_run(out)
        append_leaderboard(leaderboard or out / LEADERBOARD_FILE, leaderboard_rows(summary, out))
        report_path = write_report_if_available(out) if report else None
    n = len(owner)
    return RunResult(out_dir=out, summary=summary, n_planned=merged["n_planned"], n_run=n, n_skipped=0,
                     n_failed=summary["n_rows_failed"], report=report_path)
