"""The ``rve-judge-v1`` protocol: prompt, frame sampling, answer schema and a strict answer parser.

A VLM judge scores one edit on three criteria, each an integer 1-5:

* **Reasoning** - did the change the instruction implies happen, and correctly;
* **Consistency** - RAVE: everything the instruction does not imply is preserved;
  ICVG: identity and scene continuity carry over into the next shot;
* **Quality** - visual and physical plausibility, temporal coherence.

Per sample, Overall = (R + C + Q) / 3 (range 1-5, higher is better) and strict Accuracy = R = C = Q = 5;
both are computed in one place, :class:`~revise.judges.base.JudgeResult` (``overall``, ``passed``).
The prompt text is versioned: it lives in the package file ``revise/prompts/rve-judge-v1.txt`` and its
:func:`~revise.provenance.text_hash` is recorded with every result, so a silently edited prompt shows up
as a different hash.

The judge sees ``k`` frames sampled uniformly (:func:`~revise.video.sample_indices`) from the source and
from the edited video, in order and labelled with their timestamps, so motion counts and not only
appearance. :func:`build_prompt` makes a backend-neutral :class:`JudgePrompt` (text interleaved with
frames); :func:`openai_messages` turns it into OpenAI-style chat messages; :func:`parse_answer` accepts
only a valid answer and raises :class:`~revise.errors.JudgeError` for anything else - it never guesses.

Example::

    prompt = build_prompt(item, k=8)
    messages = openai_messages(prompt, max_side=256)
    verdict = parse_answer('{"reasoning": 5, "consistency": 4, "quality": 5, "rationale": "ok"}')
    result = verdict.to_result("openai")
"""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from string import Template

import numpy as np

from ..errors import JudgeError
from ..provenance import text_hash
from ..video import Video, resize_frames, sample_indices
from .base import SCORE_KEYS, JudgeInput, JudgeResult

PROTOCOL_VERSION = "rve-judge-v1"
SCORE_MIN, SCORE_MAX = 1, 5
DEFAULT_K = 8
DEFAULT_MAX_SIDE = 256
IMAGE_FORMATS = ("jpeg", "png")
SUBSET_NAMES = {
    "rave": "RAVE (reasoning-aware video editing: edit the source in place)",
    "icvg": "ICVG (in-context video-to-video generation: the next, related shot)",
}

ANSWER_KEYS = (*SCORE_KEYS, "rationale")

ANSWER_SCHEMA: dict = {
    "type": "object",
    "properties": {
        **{key: {"type": "integer", "enum": list(range(SCORE_MIN, SCORE_MAX + 1))} for key in SCORE_KEYS},
        "rationale": {"type": "string"},
    },
    "required": list(ANSWER_KEYS),
    "additionalProperties": False,
}
"""JSON schema of the answer: three integers 1-5 and a rationale, nothing else."""

RESPONSE_FORMAT: dict = {
    "type": "json_schema",
    "json_schema": {"name": "rve_judge_v1", "strict": True, "schema": ANSWER_SCHEMA},
}
"""``response_format=`` for OpenAI-compatible servers with structured outputs (OpenAI, vLLM, SGLang)."""

_SECTION = re.compile(r"^=== (?P<name>[a-z:]+) ===$", re.MULTILINE)
_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*)\n```\Z", re.DOTALL | re.IGNORECASE)


@lru_cache(maxsize=1)
def prompt_text() -> str:
    """The full text of the versioned prompt file, exactly as shipped."""
    return resources.files("revise").joinpath("prompts", f"{PROTOCOL_VERSION}.txt").read_text(encoding="utf-8")


def prompt_hash() -> str:
    """:func:`~revise.provenance.text_hash` of :func:`prompt_text`; recorded with every verdict."""
    return text_hash(prompt_text())


@lru_cache(maxsize=1)
def _sections() -> dict[str, str]:
    text = prompt_text()
    marks = list(_SECTION.finditer(text))
    sections = {}
    for mark, nxt in zip(marks, [*marks[1:], None]):
        end = nxt.start() if nxt else len(text)
        sections[mark.group("name")] = text[mark.end():end].strip("\n")
    return sections


def section(name: str) -> str:
    """One named section of the prompt file (``system``, ``rubric:rave``, ``user:intro``, ...)."""
    try:
        return _sections()[name]
    except KeyError:
        raise JudgeError(f"{PROTOCOL_VERSION} prompt file has no section {name!r}") from None


def system_prompt(subset: str) -> str:
    """The system message: role, method and the rubric worded for ``subset`` (``rave`` or ``icvg``)."""
    if subset not in SUBSET_NAMES:
        raise JudgeError(f"{PROTOCOL_VERSION}: unknown subset {subset!r} (expected one of {sorted(SUBSET_NAMES)})")
    return section("system") + "\n\n" + section(f"rubric:{subset}")


@dataclass
class LabelledFrame:
    """One sampled frame and where it came from (``source frame 1/8 at t=0.00s``)."""

    label: str
    index: int
    time: float
    frame: np.ndarray  # (H, W, 3) uint8


def labelled_frames(video: Video, k: int, role: str) -> list[LabelledFrame]:
    """``k`` frames sampled uniformly from ``video`` in order, each labelled with its role and timestamp."""
    indices = sample_indices(video.num_frames, k)
    fps = float(video.fps) if video.fps and video.fps > 0 else 0.0
    out = []
    for n, index in enumerate(indices, start=1):
        t = index / fps if fps else 0.0
        out.append(LabelledFrame(f"{role} frame {n}/{len(indices)} at t={t:.2f}s", index, t, video.frames[index]))
    return out


@dataclass
class JudgePrompt:
    """A backend-neutral prompt: a system text and a user turn of text and frames interleaved in order."""

    system: str
    parts: list[str | LabelledFrame] = field(default_factory=list)

    @property
    def frames(self) -> list[LabelledFrame]:
        return [p for p in self.parts if isinstance(p, LabelledFrame)]


def _video_line(name: str, video: Video, k: int) -> str:
    fps = float(video.fps) if video.fps else 0.0
    return Template(section(name)).substitute(
        num_frames=video.num_frames, fps=f"{fps:g}", duration=f"{video.duration:.2f}",
        k=len(sample_indices(video.num_frames, k)),
    )


def build_prompt(item: JudgeInput, k: int = DEFAULT_K, *, with_reference: bool = True) -> JudgePrompt:
    """The ``rve-judge-v1`` prompt for one sample: instruction, then the labelled source and edited frames.

    ``with_reference`` adds the manifest's ``reference_answer`` (a text description of a correct
    output) when the sample has one. The target video is never shown: the judge must reason.
    """
    sample = item.sample
    if sample.subset not in SUBSET_NAMES:
        raise JudgeError(f"sample {sample.id}: unknown subset {sample.subset!r} "
                         f"(expected one of {sorted(SUBSET_NAMES)})")
    if k <= 0:
        raise JudgeError(f"{PROTOCOL_VERSION}: k must be positive, got {k}")
    for role, video in (("source", item.source), ("edited", item.edited)):
        if video.num_frames == 0:
            raise JudgeError(f"sample {sample.id}: the {role} video has no frames")
    reference = ""
    if with_reference and sample.reference_answer:
        reference = f"Reference answer (what a correct output shows): {sample.reference_answer}"
    intro = Template(section("user:intro")).substitute(
        instruction=sample.instruction, subset_name=SUBSET_NAMES[sample.subset], dimension=sample.dimension,
        reference=reference,
    ).strip()
    parts: list[str | LabelledFrame] = [intro, _video_line("user:source", item.source, k)]
    parts += labelled_frames(item.source, k, "source")
    parts.append(_video_line("user:edited", item.edited, k))
    parts += labelled_frames(item.edited, k, "edited")
    parts.append(section("user:answer"))
    return JudgePrompt(system_prompt(sample.subset), parts)


def fit_max_side(frame: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink ``frame`` so its longer side is at most ``max_side`` (aspect kept; never enlarged)."""
    h, w = frame.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return frame
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return resize_frames(frame[None], *size)[0]


def image_data_uri(frame: np.ndarray, max_side: int = DEFAULT_MAX_SIDE, image_format: str = "jpeg") -> str:
    """A ``data:image/...;base64,`` URI of one RGB frame, resized to ``max_side`` (JPEG quality 90 or PNG)."""
    from PIL import Image

    if image_format not in IMAGE_FORMATS:
        raise JudgeError(f"{PROTOCOL_VERSION}: image format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    buf = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(fit_max_side(frame, max_side)))
    if image_format == "jpeg":
        image.save(buf, format="JPEG", quality=90)
    else:
        image.save(buf, format="PNG")
    return f"data:image/{image_format};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def openai_messages(prompt: JudgePrompt, max_side: int = DEFAULT_MAX_SIDE, image_format: str = "jpeg") -> list[dict]:
    """OpenAI-style multimodal chat messages: a system message and one user message whose content is
    text parts and ``image_url`` (data URI) parts, each frame preceded by its label."""
    content: list[dict] = []
    for part in prompt.parts:
        if isinstance(part, LabelledFrame):
            content.append({"type": "text", "text": part.label})
            url = image_data_uri(part.frame, max_side, image_format)
            content.append({"type": "image_url", "image_url": {"url": url}})
        else:
            content.append({"type": "text", "text": part})
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]


@dataclass(frozen=True)
class Verdict:
    """A parsed, valid ``rve-judge-v1`` answer."""

    reasoning: int
    consistency: int
    quality: int
    rationale: str

    def to_dict(self) -> dict:
        return {"reasoning": self.reasoning, "consistency": self.consistency, "quality": self.quality,
                "rationale": self.rationale}

    def to_result(self, judge: str) -> JudgeResult:
        return JudgeResult(judge=judge, reasoning=float(self.reasoning), consistency=float(self.consistency),
                           quality=float(self.quality), rationale=self.rationale)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise JudgeError(f"duplicate key(s) {', '.join(map(repr, dupes))}")
    return dict(pairs)


def _reject_constant(name: str):
    raise JudgeError(f"non-finite number {name}")


def _preview(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")


def parse_answer(text: str | None) -> Verdict:
    """Parse a judge's answer. Accepts exactly one JSON object with the keys ``reasoning``,
    ``consistency``, ``quality`` (integers 1-5) and ``rationale`` (a string), optionally inside one
    ```` ```json ```` fence. Anything else (prose, half an object, missing or extra keys, floats, out of
    range) raises :class:`JudgeError` with a one-line reason; nothing is ever guessed."""
    if text is None or not text.strip():
        raise JudgeError("unparseable answer: empty")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group("body").strip()
    try:
        obj = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise JudgeError(f"unparseable answer: not a JSON object ({exc.msg}, char {exc.pos}): "
                         f"{_preview(text)}") from None
    except JudgeError as exc:
        raise JudgeError(f"unparseable answer: {exc}: {_preview(text)}") from None
    if not isinstance(obj, dict):
        raise JudgeError(f"unparseable answer: expected a JSON object, got {type(obj).__name__}: {_preview(text)}")
    missing = [k for k in ANSWER_KEYS if k not in obj]
    extra = sorted(set(obj) - set(ANSWER_KEYS))
    if missing or extra:
        what = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                       extra and f"unexpected {', '.join(extra)}"]))
        raise JudgeError(f"unparseable answer: {what}: {_preview(text)}")
    for key in SCORE_KEYS:
        value = obj[key]
        if type(value) is not int:  # bool is an int subclass; 4.0 and "4" are not answers either
            raise JudgeError(f"unparseable answer: {key} must be an integer 1-5, got {value!r}")
        if not SCORE_MIN <= value <= SCORE_MAX:
            raise JudgeError(f"unparseable answer: {key} must be in 1-5, got {value}")
    if not isinstance(obj["rationale"], str):
        raise JudgeError(f"unparseable answer: rationale must be a string, got {type(obj['rationale']).__name__}")
    return Verdict(obj["reasoning"], obj["consistency"], obj["quality"], obj["rationale"])


__all__ = [
    "ANSWER_KEYS", "ANSWER_SCHEMA", "DEFAULT_K", "DEFAULT_MAX_SIDE", "IMAGE_FORMATS", "PROTOCOL_VERSION",
    "RESPONSE_FORMAT", "SCORE_MAX", "SCORE_MIN", "SUBSET_NAMES", "JudgePrompt", "LabelledFrame", "Verdict",
    "build_prompt", "fit_max_side", "image_data_uri", "labelled_frames", "openai_messages", "parse_answer",
    "prompt_hash", "prompt_text", "section", "system_prompt",
]
