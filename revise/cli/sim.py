"""``revise sim``: see the subcommands' help."""

from __future__ import annotations

import typer

sim_app = typer.Typer(help="(being built)", no_args_is_help=True)
