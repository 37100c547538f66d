"""The judge interface: what a judge sees (:class:`JudgeInput`) and what it returns (:class:`JudgeResult`).

Every judge maps its verdict onto the ``rve-judge-v1`` rubric: Reasoning, Consistency and Quality, each
1-5; per-sample Overall is their mean and strict Accuracy means all three are 5. Classical metrics ride
along in ``metrics`` (name -> value).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..data import Sample
from ..registry import Registry
from ..video import Video

SCORE_KEYS = ("reasoning", "consistency", "quality")


@dataclass
class JudgeInput:
    """One sample to score: the manifest row, the source, the edit and (if any) the target.

    The videos are :class:`~revise.video.Video` or, from the bench runner, :class:`~revise.video.VideoFile`
    (checked, on disk): ``.frames`` decodes the clip once, ``.chunks(size)`` streams it in bounded memory
    (what the ``metrics`` judge uses); both have ``num_frames``, ``height``, ``width`` and ``fps``."""

    sample: Sample
    source: Video
    edited: Video
    target: Video | None
    edited_sha256: str


@dataclass
class JudgeResult:
    """A judge's verdict on one sample. Scores are 1..5 or None (not applicable / failed)."""

    judge: str
    reasoning: float | None = None
    consistency: float | None = None
    quality: float | None = None
    rationale: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def overall(self) -> float | None:
        """Mean of the three sub-scores; None if any is missing."""
        scores = [self.reasoning, self.consistency, self.quality]
        if any(s is None for s in scores):
            return None
        return sum(scores) / 3.0

    @property
    def passed(self) -> bool:
        """Strict accuracy: every sub-score is 5."""
        return all(s is not None and s >= 5.0 for s in (self.reasoning, self.consistency, self.quality))

    def to_dict(self) -> dict:
        row = asdict(self)
        row["overall"] = self.overall
        row["passed"] = self.passed
        return row

    @classmethod
    def from_dict(cls, row: dict) -> "JudgeResult":
        known = {k: row[k] for k in ("judge", "reasoning", "consistency", "quality", "rationale", "metrics", "error") if k in row}
        return cls(**known)


class Judge:
    """Base class. Subclasses set ``name`` and implement :meth:`score` (thread-safe) and :meth:`info`."""

    name: str = "judge"

    def info(self) -> dict:
        """Provenance: judge id and version, model, prompt hash, frames sampled. Settings that change how it
        runs but not what it scores go under ``"runtime"`` (ignored when checking --resume and merges)."""
        return {"judge": self.name}

    def score(self, item: JudgeInput) -> JudgeResult:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (connections, caches); called once at the end of a run."""


JUDGES: Registry[Judge] = Registry("judge")
register_judge = JUDGES.register


def available() -> list[str]:
    """Names of the registered judges."""
    return JUDGES.available()


def create_judge(name: str, **kwargs) -> Judge:
    """Instantiate a registered judge by name (raises RegistryError naming the known ones)."""
    return JUDGES.create(name, **kwargs)
