"""A small SQLite cache of judge answers, so a rerun of a benchmark makes zero judge calls.

Answers are keyed by ``(sample id, prediction sha256, judge model, prompt hash)``; the prompt hash is
the caller's fingerprint of everything that shapes the request (prompt text, frames sampled, image size,
seed). Only valid answers are cache hits. An answer that could not be parsed is kept in a separate
``failures`` table for inspection and is never returned by :meth:`JudgeCache.get`, so a rerun retries it.

The file uses WAL mode, so several runner processes (shards) can share it; within a process one
connection is shared behind a lock, so the cache is safe to use from a thread pool.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import JudgeError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    sample_id TEXT NOT NULL,
    prediction_sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    raw TEXT NOT NULL,
    parsed TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (sample_id, prediction_sha256, model, prompt_hash)
);
CREATE TABLE IF NOT EXISTS failures (
    sample_id TEXT NOT NULL,
    prediction_sha256 TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    raw TEXT NOT NULL,
    error TEXT NOT NULL,
    created REAL NOT NULL
);
"""


@dataclass(frozen=True)
class CacheKey:
    """What identifies one judge answer."""

    sample_id: str
    prediction_sha256: str
    model: str
    prompt_hash: str

    def as_tuple(self) -> tuple[str, str, str, str]:
        return (self.sample_id, self.prediction_sha256, self.model, self.prompt_hash)


@dataclass(frozen=True)
class CachedAnswer:
    """A cached valid answer: the raw text the judge returned, its parsed form and when it was stored."""

    raw: str
    parsed: dict
    created: float


class JudgeCache:
    """Thread-safe SQLite store of judge answers (see the module docstring).

    >>> cache = JudgeCache(tmp_path / "judge_cache.sqlite")     # doctest: +SKIP
    >>> cache.put(key, raw_text, verdict.to_dict()); cache.get(key).parsed
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self._lock = threading.Lock()
        conn = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, check_same_thread=False,
                                   isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        except (OSError, sqlite3.Error) as exc:
            if conn is not None:
                conn.close()
            raise JudgeError(f"{self.path}: cannot open the judge cache: {exc}") from None

    def _execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise JudgeError(f"{self.path}: judge cache error: {exc}") from None

    def get(self, key: CacheKey) -> CachedAnswer | None:
        """The valid answer stored under ``key``, or None."""
        rows = self._execute("SELECT raw, parsed, created FROM answers WHERE sample_id=? AND prediction_sha256=? "
                             "AND model=? AND prompt_hash=?", key.as_tuple())
        if not rows:
            return None
        raw, parsed, created = rows[0]
        return CachedAnswer(raw=raw, parsed=json.loads(parsed), created=created)

    def put(self, key: CacheKey, raw: str, parsed: dict) -> None:
        """Store a valid answer (replacing any earlier one under the same key)."""
        self._execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (*key.as_tuple(), raw, json.dumps(parsed, sort_keys=True), time.time()))

    def record_failure(self, key: CacheKey, raw: str, error: str) -> None:
        """Log an answer that could not be parsed; it is kept for inspection, never served as a hit."""
        self._execute("INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)", (*key.as_tuple(), raw, error, time.time()))

    def failures(self, key: CacheKey | None = None) -> list[dict]:
        """Logged unparseable answers (all, or those under ``key``), oldest first."""
        query = "SELECT sample_id, prediction_sha256, model, prompt_hash, raw, error, created FROM failures"
        args: tuple = ()
        if key is not None:
            query += " WHERE sample_id=? AND prediction_sha256=? AND model=? AND prompt_hash=?"
            args = key.as_tuple()
        rows = self._execute(query + " ORDER BY rowid", args)
        names = ("sample_id", "prediction_sha256", "model", "prompt_hash", "raw", "error", "created")
        return [dict(zip(names, row)) for row in rows]

    def __len__(self) -> int:
        return self._execute("SELECT COUNT(*) FROM answers")[0][0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "JudgeCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
