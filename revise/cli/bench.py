"""``revise bench``: see the subcommands' help."""

from __future__ import annotations

import typer

bench_app = typer.Typer(help="(being built)", no_args_is_help=True)
