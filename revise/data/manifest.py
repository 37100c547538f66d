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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
        row = {"id": self.id, "subset": self.subset, "dimension": self.dimension, "instruction": self.instruction}
        if self.source is not None:
            row["source"] = _relative(self.source, root)
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
    """``path`` relative to ``root``, both with symlinks resolved (what :func:`resolve_inside` compares)."""
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
    """A sample from one decoded row, or every problem found in it."""
    if not isinstance(row, dict):
        return None, [f"not a JSON object but {type(row).__name__}"]
    problems: list[str] = []
    unknown = sorted(set(row) - set(ROW_KEYS))
    if unknown:
        problems.append(f"unknown key(s) {unknown} (allowed: {list(ROW_KEYS)})")
    sample_id = row.get("id")
    if not isinstance(sample_id, str) or not sample_id.strip():
        problems.append("missing or empty 'id'")
    elif not all(c.isalnum() or c in "-_." for c in sample_id):
        problems.append(f"id {sample_id!r} may hold only letters, digits, '-', '_' and '.'")
    subset, dimension = row.get("subset"), row.get("dimension")
    if subset is None:
        problems.append(f"missing 'subset' (one of {list(SUBSETS)})")
    elif subset not in SUBSETS:
        problems.append(f"unknown subset {subset!r} (expected one of {list(SUBSETS)})")
    elif dimension is None:
        problems.append(f"missing 'dimension' (one of {list(SUBSETS[subset])})")
    elif dimension not in SUBSETS[subset]:
        problems.append(f"unknown dimension {dimension!r} for subset {subset!r} "
                        f"(expected one of {list(SUBSETS[subset])})")
    instruction = row.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        problems.append("empty instruction")
    paths: dict[str, Path | None] = {}
    for key in PATH_KEYS:
        value = row.get(key)
        paths[key] = None
        if value is None:
            if key == "source":
                problems.append("missing 'source'")
            continue
        try:
            resolved = resolve_inside(root, value)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
            continue
        if check_files and not resolved.is_file():
            what = "is a directory, not a file" if resolved.is_dir() else "missing file"
            problems.append(f"{key}: {what} {value!r}")
        paths[key] = resolved
    reference = row.get("reference_answer")
    if reference is not None and not isinstance(reference, str):
        problems.append("reference_answer must be a string")
    metadata = row.get("metadata", {})
    if not isinstance(metadata, dict):
        problems.append("metadata must be an object")
    if problems:
        return None, problems
    return Sample(id=sample_id, subset=subset, dimension=dimension, instruction=instruction.strip(),
                  source=paths["source"], target=paths["target"], reference_answer=reference,
                  state=paths["state"], metadata=metadata), []


def _probe_problems(sample: Sample) -> list[str]:
    """One problem per video of ``sample`` that does not open as a video (container check, no decoding)."""
    from ..errors import VideoError
    from ..video import probe

    problems = []
    for key in ("source", "target"):
        path = getattr(sample, key)
        if path is None:
            continue
        try:
            probe(path)
        except VideoError as exc:
            problems.append(f"{key}: {exc.reason}")
    return problems


def load_manifest(path: str | os.PathLike, *, check_files: bool = True, probe_videos: bool = False) -> Manifest:
    """Load and validate a JSONL manifest.

    Every bad row is reported (with its line number) in one :class:`ManifestError`: invalid JSON or
    UTF-8, unknown subset or dimension, duplicate id, missing file, a path escaping the manifest's
    folder (``..``, absolute, or through a symlink), an empty instruction. Blank lines are skipped.
    ``check_files=False`` skips the existence checks; ``probe_videos=True`` also opens every source
    and target video with :func:`revise.video.probe` (no decoding) and reports those that are not
    videos.
    """
    path = Path(path)
    if path.is_dir():
        raise ManifestError(path, ["is a directory, not a JSONL manifest file"])
    if not path.is_file():
        raise ManifestError(path, ["the manifest file does not exist"])
    root = path.parent
    samples: list[Sample] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                problems.append(f"line {lineno}: not UTF-8 text (byte {exc.start})")
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            sample, row_problems = _parse_row(row, root, check_files)
            if isinstance(row, dict) and isinstance(row.get("id"), str):
                first = seen.setdefault(row["id"], lineno)
                if first != lineno:
                    row_problems.append(f"duplicate id {row['id']!r} (first on line {first})")
                    sample = None
            if sample is not None and probe_videos:
                row_problems.extend(_probe_problems(sample))
                if row_problems:
                    sample = None
            problems.extend(f"line {lineno}: {p}" for p in row_problems)
            if sample is not None:
                samples.append(sample)
    if problems:
        raise ManifestError(path, problems)
    if not samples:
        raise ManifestError(path, ["the manifest holds no sample"])
    return Manifest(path, samples)


def _manifest_lines(samples: list[Sample], path: Path) -> list[str]:
    """The JSONL lines of ``samples`` for a manifest at ``path``; :class:`ManifestError` if any is bad."""
    root = path.parent
    lines: list[str] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, sample in enumerate(samples):
        row = sample.to_row(root)
        _, row_problems = _parse_row(row, root, check_files=False)
        first = seen.setdefault(sample.id, index)
        if first != index:
            row_problems.append(f"duplicate id {sample.id!r} (first at sample {first})")
        problems.extend(f"sample {index} ({sample.id!r}): {p}" for p in row_problems)
        lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False))
    if not samples:
        problems.append("no sample to write (a manifest needs at least one)")
    if problems:
        raise ManifestError(path, problems)
    return lines


def write_manifest(samples: Iterable[Sample], path: str | os.PathLike) -> Path:
    """Write samples as JSONL (sorted keys, paths relative to the manifest): byte-stable for equal input.

    Relative paths in a :class:`Sample` are taken relative to the current directory, as everywhere in
    Python. The rows are checked as :func:`load_manifest` checks them (except that files need not
    exist yet), so a manifest that could not be loaded back is never written: every bad sample is
    reported, by its position, in one :class:`ManifestError`, and the file is left untouched.
    """
    path = Path(path)
    lines = _manifest_lines(list(samples), path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
