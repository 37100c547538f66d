"""``revise train`` / ``revise edit``: the unified model's commands (being built)."""

from __future__ import annotations

import typer


def register_model_commands(app: typer.Typer) -> None:
    """Attach the model commands to the root app."""
