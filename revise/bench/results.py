"""``OUT/results.jsonl`` and ``OUT/run.json``: the only files a run's numbers are derived from.

One JSON row per sample, appended, flushed and fsynced as each sample finishes::

    {"id", "subset", "dimension", "instruction", "editor", "status": "ok"|"failed", "error",
     "prediction", "prediction_sha256", "judges": {"<name>": JudgeResult.to_dict() + {"seconds"}},
     "seconds", "flags": [...]}

A row is written as one ``write`` of ``json + "\n"``, so a kill can only leave a last line without its
newline: :func:`read_results` ignores that tail (whether or not it parses) and :func:`repair_torn_tail`
truncates it away so the sample is redone. A bad complete line is corruption, not a kill: an error.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
LEADERBOARD_FILE = "leaderboard.csv"
VIDEOS_DIR = "videos"
STATUSES = ("ok", "failed")


@dataclass
class ResultsFile:
    """What :func:`read_results` found: the good rows, and where the good bytes end."""

    rows: list[dict]
    good_bytes: int
    torn: bool  # bytes after the last newline: a row cut by a kill mid-write


def read_results(path: str | os.PathLike) -> ResultsFile:
    """Parse ``results.jsonl``; a torn last line is reported, not returned. Missing file -> no rows.

    Raises :class:`ConfigError` naming the line for a complete line that is not JSON, a row without
    an ``id`` or a known ``status``, or an id that appears twice.
    """
    path = Path(path)
    if not path.exists():
        return ResultsFile([], 0, False)
    data = path.read_bytes()
    *complete, tail = data.split(b"\n")  # a row is written as one ``line + "\n"``: only the tail can be torn
    rows: list[dict] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(f"{path}: line {lineno} is not valid JSON (and not a torn last line); "
                              "fix or remove it") from None
        _check_row(path, lineno, row)
        if row["id"] in seen:
            raise ConfigError(f"{path}: line {lineno}: id {row['id']!r} already on line {seen[row['id']]}")
        seen[row["id"]] = lineno
        rows.append(row)
    return ResultsFile(rows, len(data) - len(tail), bool(tail))


def _check_row(path: Path, lineno: int, row: object) -> None:
    if not isinstance(row, dict) or not isinstance(row.get("id"), str):
        raise ConfigError(f"{path}: line {lineno}: not a result row (no 'id')")
    if row.get("status") not in STATUSES:
        raise ConfigError(f"{path}: line {lineno}: status {row.get('status')!r} is not one of {list(STATUSES)}")
    if not isinstance(row.get("judges", {}), dict):
        raise ConfigError(f"{path}: line {lineno}: 'judges' must be an object")


def load_results(path: str | os.PathLike) -> list[dict]:
    """The finished rows of a ``results.jsonl`` (a torn last line is ignored)."""
    return read_results(path).rows


def repair_torn_tail(path: str | os.PathLike) -> ResultsFile:
    """Read the file and truncate a torn last line away, so appending continues on a clean line."""
    found = read_results(path)
    path = Path(path)
    if path.exists() and path.stat().st_size != found.good_bytes:
        with open(path, "r+b") as f:
            f.truncate(found.good_bytes)
            f.flush()
            os.fsync(f.fileno())
    return found


class ResultsWriter:
    """Appends rows to ``results.jsonl``: one ``write`` per row, then flush and fsync."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")

    def append(self, row: dict) -> None:
        line = json.dumps(json_safe(row), ensure_ascii=False, allow_nan=False) + "\n"
        self._file.write(line.encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def json_safe(value):
    """``value`` as plain JSON data: numpy scalars -> Python numbers, NaN/inf -> None, tuples -> lists,
    paths -> strings (judges may put any of these in ``metrics``)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write JSON atomically (temporary file, fsync, rename), keys sorted for stable diffs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(json_safe(data), f, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Load a JSON object, raising :class:`ConfigError` naming the file when missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no {what} here (is this a bench output folder?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid JSON in the {what}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {what} is not a JSON object")
    return data
