"""Import the official ReViSE data-prep JSON into a revise manifest.

The official format is a JSON list of ``{source_video_path, target_video_path, instruction, type}``
with absolute (cluster) paths. Because manifest paths may not leave the benchmark folder, the
videos are brought into ``out_dir/videos/`` (hard link when possible, else a copy), and a manifest
with relative paths is written beside them.

``type`` names the reasoning dimension. It may carry the subset (``"rave_causal"``,
``"ICVG-camera"``, ``"rave/causal"``) or be the bare dimension (``"causal"``), in which case the
``subset`` argument decides, or the dimension's uniqueness does (``"spatial"`` is RAVE-only).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ..errors import ManifestError
from .manifest import SUBSETS, Sample, write_manifest


def parse_type(value: object, subset: str | None) -> tuple[str, str]:
    """``(subset, dimension)`` from an official ``type`` value; raises ``ValueError`` if ambiguous."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("missing 'type'")
    parts = [p for p in re.split(r"[\s_/\-:]+", value.strip().lower()) if p]
    named_subset = next((p for p in parts if p in SUBSETS), None)
    dims = [p for p in parts if p not in SUBSETS]
    if len(dims) != 1:
        raise ValueError(f"cannot read a dimension from type {value!r}")
    dimension = dims[0]
    chosen = named_subset or subset
    if chosen is None:
        owners = [name for name, allowed in SUBSETS.items() if dimension in allowed]
        if len(owners) != 1:
            raise ValueError(f"type {value!r} fits subsets {owners}; pass subset=")
        chosen = owners[0]
    if chosen not in SUBSETS:
        raise ValueError(f"unknown subset {chosen!r}")
    if dimension not in SUBSETS[chosen]:
        raise ValueError(f"dimension {dimension!r} is not in subset {chosen!r}")
    return chosen, dimension


def _bring(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def import_official(
    json_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    subset: str | None = None,
    video_root: str | os.PathLike | None = None,
    id_prefix: str = "official",
) -> Path:
    """Convert an official data-prep JSON list into ``out_dir/manifest.jsonl``; returns its path.

    ``video_root`` resolves relative video paths (default: the JSON file's folder). Every bad entry
    is reported, by its index in the list, in one :class:`ManifestError`; nothing is written then.
    """
    json_path = Path(json_path)
    out_dir = Path(out_dir)
    try:
        entries = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(json_path, ["the file does not exist"]) from None
    except json.JSONDecodeError as exc:
        raise ManifestError(json_path, [f"line {exc.lineno}: invalid JSON ({exc.msg})"]) from None
    if not isinstance(entries, list):
        raise ManifestError(json_path, ["expected a JSON list of {source_video_path, target_video_path, instruction, type}"])
    base = Path(video_root) if video_root is not None else json_path.parent
    problems: list[str] = []
    planned: list[tuple[Sample, list[tuple[Path, Path]]]] = []
    width = max(4, len(str(len(entries))))
    for index, entry in enumerate(entries):
        where = f"entry {index}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        try:
            sub, dim = parse_type(entry.get("type"), subset)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        instruction = entry.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            problems.append(f"{where}: empty instruction")
            continue
        sample_id = f"{id_prefix}-{sub}-{dim}-{index:0{width}d}"
        copies: list[tuple[Path, Path]] = []
        paths: dict[str, Path | None] = {}
        for key, role in (("source_video_path", "src"), ("target_video_path", "tgt")):
            value = entry.get(key)
            if value in (None, "") and key == "target_video_path":
                paths[role] = None
                continue
            if not isinstance(value, str):
                problems.append(f"{where}: missing {key}")
                break
            src = Path(value) if Path(value).is_absolute() else base / value
            if not src.is_file():
                problems.append(f"{where}: {key} {value!r} does not exist")
                break
            dst = out_dir / "videos" / f"{sample_id}_{role}{src.suffix or '.mp4'}"
            copies.append((src, dst))
            paths[role] = dst
        else:
            sample = Sample(id=sample_id, subset=sub, dimension=dim, instruction=instruction.strip(),
                            source=paths["src"], target=paths.get("tgt"),
                            metadata={"official_type": entry["type"], "official_index": index})
            planned.append((sample, copies))
    if problems:
        raise ManifestError(json_path, problems)
    for _, copies in planned:
        for src, dst in copies:
            _bring(src, dst)
    return write_manifest([s for s, _ in planned], out_dir / "manifest.jsonl")
