"""Typed errors. Each names the file, line or sample it is about, in one line.

The CLI turns any :class:`ReviseError` into ``error: <message>`` and exit code 2, never a traceback.
"""


class ReviseError(Exception):
    """Base class for every error the toolkit raises on bad input."""


class VideoError(ReviseError):
    """A video could not be read or written (missing, not a video, corrupt, empty, too large)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ManifestError(ReviseError):
    """One or more rows of a benchmark manifest are invalid; ``problems`` lists every one."""

    def __init__(self, path, problems: list[str]):
        self.path = str(path)
        self.problems = list(problems)
        if len(self.problems) == 1 and not self.problems[0].startswith(("line ", "entry ")):
            super().__init__(f"{self.path}: {self.problems[0]}")  # a whole-file problem: one line
            return
        head = f"{self.path}: {len(self.problems)} invalid row(s)"
        super().__init__(head + "".join(f"\n  {p}" for p in self.problems))


class SceneError(ReviseError):
    """A simulated scene description or state file is invalid."""


class JudgeError(ReviseError):
    """A judge could not score a sample (server failure after retries, unparseable answer, ...)."""


class EditorError(ReviseError):
    """An editor could not produce a video for a sample."""


class ConfigError(ReviseError):
    """A configuration or checkpoint is missing, corrupt or inconsistent."""


class RegistryError(ReviseError):
    """An unknown name was asked of a registry (editor, judge, metric)."""
