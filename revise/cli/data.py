"""``revise data``: manifest validation and the official ReViSE importer."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(help="Benchmark manifests: validate them, import the official ReViSE data-prep JSON.",
                       no_args_is_help=True)


@data_app.command("validate")
def validate(
    manifest: Path = typer.Argument(..., help="A JSONL manifest; every bad row is reported with its line."),
    probe_videos: bool = typer.Option(False, "--probe", help="Also open every source/target video (no decoding)."),
) -> None:
    """Check a manifest (subsets, dimensions, ids, files, paths) and print a per-dimension count."""
    from collections import Counter

    from ..data import load_manifest

    loaded = load_manifest(manifest, probe_videos=probe_videos)
    counts = Counter(s.group for s in loaded)
    typer.echo(f"{manifest}: {len(loaded)} valid samples")
    for group, n in sorted(counts.items()):
        typer.echo(f"  {group}: {n}")


@data_app.command("import-official")
def import_official_cmd(
    json_path: Path = typer.Argument(
        ..., help="The official JSON list of {source_video_path, target_video_path, instruction, type}."),
    out: Path = typer.Option(
        ..., "--out", help="Benchmark folder to create; videos are linked or copied into OUT/videos/."),
    subset: Optional[str] = typer.Option(None, help="rave or icvg, for entries whose type names only the dimension."),
    video_root: Optional[Path] = typer.Option(
        None, help="Folder that relative video paths are relative to (default: the JSON's folder)."),
    id_prefix: str = typer.Option("official", help="Sample ids are <prefix>-<subset>-<dimension>-<index>."),
) -> None:
    """Convert the official ReViSE data-prep JSON into a revise manifest (OUT/manifest.jsonl)."""
    from ..data import import_official

    path = import_official(json_path, out, subset=subset, video_root=video_root, id_prefix=id_prefix)
    typer.echo(str(path))
