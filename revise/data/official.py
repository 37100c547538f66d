"""Import the official ReViSE data-prep JSON into a revise manifest.

The official format is a JSON list of ``{source_video_path, target_video_path, instruction, type}``
with absolute (cluster) paths. Because manifest paths may not leave the benchmark folder, the
videos are brought into ``out_dir/videos/`` (hard link when possible, else a copy), and a manifest
with relative paths is written beside them.

``type`` names the reasoning dimension. It may carry the subset (``"rave_causal"``,
``"ICVG-camera"``, ``"rave/causal"``) or be the bare dimension (``"causal"``), in which case the
``subset`` argument decides, or the dimension's uniqueness does (``"spatial"`` is RAVE-only).
``causal`` and ``commonsense`` belong to both subsets, so a bare one without ``subset`` is an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ..errors import ManifestError
from .manifest import SUBSETS, Sample, _manifest_lines, write_manifest

_FILLER_WORDS = {"reasoning", "reason", "aware", "based"}


def parse_type(value: object, subset: str | None) -> tuple[str, str]:
    """``(subset, dimension)`` from an official ``type`` value; raises ``ValueError`` if it cannot tell.

    Accepted: the bare dimension (``"spatial"``, ``"Causal Reasoning"``, ``"common_sense"``) or the
    subset plus the dimension in any order and separator (``"rave_causal"``, ``"ICVG-camera"``,
    ``"rave/causal"``). A bare dimension that both subsets have (``causal``, ``commonsense``) needs
    ``subset``; a subset named in ``type`` must agree with ``subset`` when both are given.
    """
    if subset is not None and subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r} (expected one of {list(SUBSETS)})")
    if not isinstance(value, str) or not value.strip():
        raise ValueError("missing 'type'")
    parts = [p for p in re.split(r"[\s_/\-:.]+", value.strip().lower()) if p]
    named = [p for p in parts if p in SUBSETS]
    words = [p for p in parts if p not in SUBSETS and p not in _FILLER_WORDS]
    dimension = "".join(words)  # "common sense" -> "commonsense"
    known = {d for dims in SUBSETS.values() for d in dims}
    if len(set(named)) > 1 or dimension not in known:
        raise ValueError(f"cannot read a subset/dimension from type {value!r} "
                         f"(dimensions: {sorted(known)}, subsets: {list(SUBSETS)})")
    if named and subset is not None and named[0] != subset:
        raise ValueError(f"type {value!r} names subset {named[0]!r} but subset={subset!r} was given")
    chosen = named[0] if named else subset
    if chosen is None:
        owners = [name for name, allowed in SUBSETS.items() if dimension in allowed]
        if len(owners) != 1:
            raise ValueError(f"type {value!r} is a dimension of both {' and '.join(owners)}; "
                             f"pass the subset (subset= / --subset)")
        chosen = owners[0]
    if dimension not in SUBSETS[chosen]:
        raise ValueError(f"dimension {dimension!r} is not in subset {chosen!r} "
                         f"(expected one of {list(SUBSETS[chosen])})")
    return chosen, dimension


def _bring(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (a copy across file systems); a no-op when they are one file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        if os.path.samefile(src, dst):
            return
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

    ``video_root`` resolves relative video paths (default: the JSON file's folder). Sample ids are
    ``<id_prefix>-<subset>-<dimension>-<index>`` (the entry's index in the list). Every bad entry is
    reported, by its index in the list, in one :class:`ManifestError`; nothing is written then.
    """
    json_path = Path(json_path)
    out_dir = Path(out_dir)
    if subset is not None and subset not in SUBSETS:
        raise ManifestError(json_path, [f"unknown subset {subset!r} (expected one of {list(SUBSETS)})"])
    if not id_prefix or not all(c.isalnum() or c in "-_." for c in id_prefix):
        raise ManifestError(json_path, [f"id prefix {id_prefix!r} may hold only letters, digits, '-', '_' and '.'"])
    try:
        entries = json.loads(json_path.read_text(encoding="utf-8-sig"))
    except (FileNotFoundError, IsADirectoryError):
        raise ManifestError(json_path, ["the file does not exist"]) from None
    except UnicodeDecodeError:
        raise ManifestError(json_path, ["not UTF-8 text"]) from None
    except json.JSONDecodeError as exc:
        raise ManifestError(json_path, [f"line {exc.lineno}: invalid JSON ({exc.msg})"]) from None
    if not isinstance(entries, list):
        raise ManifestError(json_path, ["expected a JSON list of "
                                        "{source_video_path, target_video_path, instruction, type}"])
    if not entries:
        raise ManifestError(json_path, ["the list is empty"])
    base = Path(video_root) if video_root is not None else json_path.parent
    problems: list[str] = []
    planned: list[tuple[Sample, list[tuple[Path, Path]]]] = []
    width = max(4, len(str(len(entries) - 1)))
    for index, entry in enumerate(entries):
        where = f"entry {index}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not a JSON object")
            continue
        entry_problems: list[str] = []
        try:
            sub, dim = parse_type(entry.get("type"), subset)
        except ValueError as exc:
            entry_problems.append(str(exc))
            sub, dim = "unknown", "unknown"
        instruction = entry.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            entry_problems.append("empty instruction")
        sample_id = f"{id_prefix}-{sub}-{dim}-{index:0{width}d}"
        copies: list[tuple[Path, Path]] = []
        paths: dict[str, Path | None] = {"src": None, "tgt": None}
        for key, role in (("source_video_path", "src"), ("target_video_path", "tgt")):
            value = entry.get(key)
            if value in (None, "") and key == "target_video_path":
                continue
            if not isinstance(value, str) or not value:
                entry_problems.append(f"missing {key}")
                continue
            src = Path(value).expanduser()
            src = src if src.is_absolute() else base / src
            if not src.is_file():
                where_looked = "" if Path(value).is_absolute() else f" (relative to {base})"
                entry_problems.append(f"{key} {value!r} does not exist{where_looked}")
                continue
            dst = out_dir / "videos" / f"{sample_id}_{role}{src.suffix.lower() or '.mp4'}"
            copies.append((src, dst))
            paths[role] = dst
        if entry_problems:
            problems.extend(f"{where}: {p}" for p in entry_problems)
            continue
        metadata = {"official_type": entry["type"], "official_index": index,
                    "official_source": entry["source_video_path"]}
        if paths["tgt"] is not None:
            metadata["official_target"] = entry["target_video_path"]
        sample = Sample(id=sample_id, subset=sub, dimension=dim, instruction=instruction.strip(),
                        source=paths["src"], target=paths["tgt"], metadata=metadata)
        planned.append((sample, copies))
    if problems:
        raise ManifestError(json_path, problems)
    samples = [s for s, _ in planned]
    manifest_path = out_dir / "manifest.jsonl"
    _manifest_lines(samples, manifest_path)  # refuse before any file is brought in
    for _, copies in planned:
        for src, dst in copies:
            _bring(src, dst)
    return write_manifest(samples, manifest_path)
