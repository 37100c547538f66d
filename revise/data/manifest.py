"""The benchmark data model: a :class:`Sample` and a JSONL manifest with paths relative to it.

One JSON object per line::

    {"id": "rave-causal-0001", "subset": "rave", "dimension": "causal",
     "instruction": "What if the red ball had never been rolled?",
     "source": "videos/rave-causal-0001_src.mp4", "target": "videos/rave-causal-0001_tgt.mp4",
     "reference_answer": "...", "state": "states/rave-causal-0001.json", "metadata": {...}}

``target``, ``reference_answer``, ``state`` and ``metadata`` are optional. Paths are relative to the
manifest's folder and may not leave it (no absolute paths, no ``..``, no symlink pointing out).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import ManifestError

SUBSETS: dict[str, tuple[str, ...]] = {
    "rave": ("causal", "spatial", "temporal", "commonsense"),
    "icvg": ("camera", "causal", "emotional", "commonsense"),
}
ROW_KEYS = ("id", "subset", "dimension", "instruction", "source", "target", "reference_answer", "state", "metadata")
PATH_KEYS = ("source", "target", "state")


@dataclass
class Sample:
    """One benchmark item. Paths are absolute once loaded (resolved against the manifest's folder)."""

    id: str
    subset: str
    dimension: str
    instruction: str
    source: Path
    target: Path | None = None
    reference_answer: str | None = None
    state: Path | None = None
    metadata: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        """``subset/dimension``, the unit results are aggregated over."""
        return f"{self.subset}/{self.dimension}"

    def to_row(self, root: Path) -> dict:
        """The manifest row, with paths relative to ``root``."""
        row = {"id": self.id, "subset": self.subset, "dimension": self.dimension, "instruction": self.instruction,
               "source": _relative(self.source, root)}
        if self.target is not None:
            row["target"] = _relative(self.target, root)
        if self.reference_answer is not None:
            row["reference_answer"] = self.reference_answer
        if self.state is not None:
            row["state"] = _relative(self.state, root)
        if self.metadata:
            row["metadata"] = self.metadata
        return row


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()


@dataclass
class Manifest:
    """The samples of one manifest file, in file order."""

    path: Path
    samples: list[Sample]

    @property
    def root(self) -> Path:
        return self.path.parent

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def by_id(self) -> dict[str, Sample]:
        return {s.id: s for s in self.samples}


def resolve_inside(root: Path, value: str) -> Path:
    """``root / value``, refusing absolute paths and anything (``..``, symlinks) that leaves ``root``."""
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty relative path")
    if Path(value).is_absolute() or value.startswith("~"):
        raise ValueError(f"path {value!r} is absolute; manifest paths are relative to the manifest")
    root_real = Path(os.path.realpath(root))
    resolved = Path(os.path.realpath(root_real / value))
    if resolved != root_real and root_real not in resolved.parents:
        raise ValueError(f"path {value!r} escapes the benchmark folder")
    return resolved


def _parse_row(row: object, root: Path, check_files: bool) -> tuple[Sample | None, list[str]]:
    if not isinstance(row, dict):
        return None, ["not a JSON object"]
    problems: list[str] = []
    unknown = sorted(set(row) - set(ROW_KEYS))
    if unknown:
        problems.append(f"unknown key(s) {unknown}")
    sample_id = row.get("id")
    if not isinstance(sample_id, str) or not sample_id.strip():
        problems.append("missing or empty 'id'")
    elif not all(c.isalnum() or c in "-_." for c in sample_id):
        problems.append(f"id {sample_id!r} may hold only letters, digits, '-', '_' and '.'")
    subset, dimension = row.get("subset"), row.get("dimension")
    if subset not in SUBSETS:
        problems.append(f"unknown subset {subset!r} (expected one of {list(SUBSETS)})")
    elif dimension not in SUBSETS[subset]:
        problems.append(f"unknown dimension {dimension!r} for subset {subset!r} (expected one of {list(SUBSETS[subset])})")
    instruction = row.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        problems.append("empty instruction")
    paths: dict[str, Path | None] = {}
    for key in PATH_KEYS:
        value = row.get(key)
        if value is None:
            if key == "source":
                problems.append("missing 'source'")
            paths[key] = None
            continue
        try:
            resolved = resolve_inside(root, value)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
            paths[key] = None
            continue
        if check_files and not resolved.is_file():
            problems.append(f"{key}: missing file {value!r}")
        paths[key] = resolved
    for key in ("reference_answer",):
        if row.get(key) is not None and not isinstance(row[key], str):
            problems.append(f"{key} must be a string")
    metadata = row.get("metadata", {})
    if not isinstance(metadata, dict):
        problems.append("metadata must be an object")
    if problems:
        return None, problems
    return Sample(id=sample_id, subset=subset, dimension=dimension, instruction=instruction.strip(),
                  source=paths["source"], target=paths["target"], reference_answer=row.get("reference_answer"),
                  state=paths["state"], metadata=metadata), []


def load_manifest(path: str | os.PathLike, *, check_files: bool = True) -> Manifest:
    """Load and validate a JSONL manifest.

    Every bad row is reported (with its line number) in one :class:`ManifestError`: invalid JSON,
    unknown subset or dimension, duplicate id, missing file, a path escaping the folder, an empty
    instruction. Blank lines are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(path, ["the manifest file does not exist"])
    root = path.parent
    samples: list[Sample] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {lineno}: invalid JSON ({exc.msg})")
                continue
            sample, row_problems = _parse_row(row, root, check_files)
            if isinstance(row, dict) and isinstance(row.get("id"), str):
                first = seen.setdefault(row["id"], lineno)
                if first != lineno:
                    row_problems.append(f"duplicate id {row['id']!r} (first on line {first})")
                    sample = None
            problems.extend(f"line {lineno}: {p}" for p in row_problems)
            if sample is not None:
                samples.append(sample)
    if problems:
        raise ManifestError(path, problems)
    if not samples:
        raise ManifestError(path, ["the manifest holds no sample"])
    return Manifest(path, samples)


def write_manifest(samples: Iterable[Sample], path: str | os.PathLike) -> Path:
    """Write samples as JSONL (sorted keys, paths relative to the manifest): byte-stable for equal input."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.parent
    lines = [json.dumps(s.to_row(root), sort_keys=True, ensure_ascii=False) for s in samples]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)
    return path
