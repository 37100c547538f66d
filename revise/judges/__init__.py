"""Judges: the ``rve-judge-v1`` protocol and its backends, registered by name (see ``available()``).

Importing this package registers every built-in judge; adding a backend is one module plus one import
line below.
"""

from .base import JUDGES, SCORE_KEYS, Judge, JudgeInput, JudgeResult, available, create_judge, register_judge
from . import openai_judge  # noqa: F401
from . import metrics_judge  # noqa: F401
from . import gt  # noqa: F401
from . import critic  # noqa: F401
from . import hf_vlm  # noqa: F401

__all__ = ["JUDGES", "SCORE_KEYS", "Judge", "JudgeInput", "JudgeResult", "available", "create_judge", "register_judge"]
