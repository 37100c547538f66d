"""Reading small JSON files (configs, checkpoint manifests) with a one-line error naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import ConfigError


def parse_json_object(text: str, what: str) -> dict:
    """The JSON object in ``text``; :class:`ConfigError` ``"<what>: invalid JSON (...)"`` when it is not valid
    JSON or not an object."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ConfigError(f"{what}: invalid JSON ({exc})") from None
    return data


def load_json_object(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; :class:`ConfigError` ``"<path>: invalid JSON (...)"`` when the text is not
    valid JSON or not an object. The caller checks that the file exists (its message says what is missing)."""
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON ({exc})") from None
    return parse_json_object(text, str(path))
