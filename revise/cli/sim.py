"""``revise sim``: generate RVE-Sim datasets, perceive sim videos, list families, draw contact sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

sim_app = typer.Typer(
    help=("RVE-Sim: a physics-simulated world of counterfactual video edits with exact ground truth "
          "(both RVE-Bench subsets, all eight reasoning dimensions)."),
    no_args_is_help=True,
)


@sim_app.command("generate")
def generate(
    out: Path = typer.Option(..., "--out", help="Folder to write manifest.jsonl, videos/ and states/ into."),
    per_dimension: int = typer.Option(5, "--per-dimension", "-n", help="Samples per reasoning dimension (8 dimensions)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice: the same seed gives identical files."),
    split: str = typer.Option("test", "--split", help="train, val or test; disjoint by construction (scene hash)."),
    size: int = typer.Option(128, "--size", help="Frame height and width in pixels."),
    frames: int = typer.Option(16, "--frames", help="Frames per clip."),
    fps: float = typer.Option(8.0, "--fps", help="Frames per second of the clips."),
    dimensions: Optional[str] = typer.Option(None, "--dimensions", help="Comma list to restrict, e.g. 'rave/causal,icvg'."),
    workers: int = typer.Option(1, "--workers", help="Processes to render with (output is identical)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset in OUT."),
) -> None:
    """Generate an RVE-Sim benchmark: source/target mp4s, per-frame state JSON and one manifest."""
    from ..sim import generate_dataset

    dims = [d.strip() for d in dimensions.split(",") if d.strip()] if dimensions else None
    path = generate_dataset(out, per_dimension=per_dimension, seed=seed, split=split, size=size, frames=frames, fps=fps,
                            dimensions=dims, workers=workers, progress=True, overwrite=overwrite)
    typer.echo(str(path))


@sim_app.command("perceive")
def perceive_cmd(
    video: Path = typer.Argument(..., help="Any video of an RVE-Sim scene (e.g. an editor's prediction)."),
    state: Optional[Path] = typer.Option(None, "--state", help="The sample's state JSON: its palette, size and true tracks."),
    clip: str = typer.Option("target", "--clip", help="Which true clip to compare with: target or source."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the per-frame positions as JSON here."),
) -> None:
    """Recover per-frame object centres and areas from a video by their known colours."""
    from ..sim.tools import perceive_video, write_json

    if clip not in ("target", "source"):
        raise typer.BadParameter("--clip must be target or source")
    report = perceive_video(video, state, clip)
    if out is not None:
        write_json(report, out)
        typer.echo(str(out))
    errors = report.get("max_centre_error_px")
    if errors is not None:
        for part, err in sorted(errors.items()):
            typer.echo(f"{part}: max centre error {err:.2f} px")
    elif out is None:
        import json

        typer.echo(json.dumps(report, sort_keys=True))


@sim_app.command("families")
def families_cmd() -> None:
    """List the scenario families of every dimension."""
    from ..data import SUBSETS
    from ..sim.scenarios import families

    for subset, dims in SUBSETS.items():
        for dim in dims:
            names = ", ".join(f.name for f in families(subset, dim)) or "(none)"
            typer.echo(f"{subset}/{dim}: {names}")


@sim_app.command("sheet")
def sheet(
    manifest: Path = typer.Argument(..., help="A manifest.jsonl (e.g. from `revise sim generate`)."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    per_dimension: int = typer.Option(1, "--per-dimension", help="Samples shown per dimension."),
    k: int = typer.Option(8, "--k", help="Frames shown per clip."),
) -> None:
    """Draw a PNG contact sheet of source and target clips, one pair per dimension."""
    from ..sim.tools import dataset_sheet

    typer.echo(str(dataset_sheet(manifest, out, per_dimension=per_dimension, k=k)))
