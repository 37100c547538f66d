"""Editors: ``edit(source, instruction, context) -> Video``, registered by name (see ``available()``).

Importing this package registers every built-in editor; adding one is one module plus one import line.
"""

from .base import EDITORS, EditContext, Editor, available, create_editor, register_editor
from . import baselines  # noqa: F401  (registers copy, oracle, shuffle)
from . import unified  # noqa: F401  (registers revise-tiny)
from . import diffusers_wan  # noqa: F401  (registers wan-vace, wan-v2v)

__all__ = ["EDITORS", "EditContext", "Editor", "available", "create_editor", "register_editor"]
