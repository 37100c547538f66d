"""Entry point of the ``revise`` command.

Every subcommand only parses options and calls the Python API. Any :class:`revise.errors.ReviseError`
becomes a one-line ``error: ...`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import ReviseError
from .bench import bench_app
from .data import data_app
from .model import register_model_commands
from .scale import register_scale_commands
from .sim import sim_app

app = typer.Typer(
    name="revise",
    help=(
        "Reason-informed video editing. RVE-Sim makes counterfactual video edits with exact ground truth; "
        "the RVE-Bench harness runs editors and judges over a benchmark and reports; the unified model "
        "(internal VLM + flow-matching generator) edits videos and trains with self-reflection."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(sim_app, name="sim")
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")
register_model_commands(app)
register_scale_commands(app)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for the runs, reports and leaderboard."),
    seed: int = typer.Option(0, "--seed", help="Seed of the editors (the shuffle pick) and the bootstrap."),
) -> None:
    """The main job, offline: rve-sim-mini, the baselines and revise-tiny, the gt judge, HTML reports."""
    from rich.console import Console
    from rich.table import Table

    from ..bench import read_leaderboard
    from ..demo import run_demo

    result = run_demo(out, seed=seed)
    console = Console()
    table = Table(title=f"Leaderboard ({result.leaderboard})",
                  caption=("rve-judge-v1 scores from 1 to 5 by the exact gt judge; accuracy = share with all three "
                           "sub-scores at 5.\ncopy = the source unchanged, shuffle = another sample's target "
                           "(a negative control), oracle = the ground truth (the ceiling);\nrevise-tiny = the shipped unified "
                           "model (internal VLM + flow-matching generator, trained on RVE-Sim's train split)."))
    for column in ("editor", "judge", "n", "overall", "rave_overall", "icvg_overall", "accuracy"):
        table.add_column(column, justify="left" if column in ("editor", "judge") else "right")
    for row in read_leaderboard(result.leaderboard):
        table.add_row(*(str(row.get(c, "")) for c in ("editor", "judge", "n", "overall", "rave_overall", "icvg_overall",
                                                         "accuracy")))
    console.print(table)
    for name, report in result.reports.items():
        console.print(f"report ({name}): {report}")


@app.command()
def version() -> None:
    """Print the package version and git commit."""
    from .. import __version__
    from ..provenance import git_commit

    typer.echo(f"revise {__version__} ({git_commit()})")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input ends with a one-line message and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except ReviseError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except SystemExit as exc:  # typer/click exits (--help, usage errors)
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors surface as ClickException in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
