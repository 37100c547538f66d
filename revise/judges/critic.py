"""The ``critic`` judge: the unified model's internal VLM scoring edits with its own ``judge`` prompt.

For each sample the VLM reads the source and the edit (``<judge> <video> source <video> edit
instruction <sep>``) and gives ``p = p(Yes)`` = :meth:`~revise.model.vlm.ReviseVLM.judge_probability`
(the sigmoid of ``judge_logit = log p(Yes) - log p(No)``): does the edit satisfy the instruction applied
to the source? This is the same number the self-reflective loss trains the generator against, so the
judge shows how the model's critic rates a run, next to the exact ``gt`` judge or a GPT-4o judge.

**Mapping onto** ``rve-judge-v1`` (:func:`to_rubric`, :data:`BANDS`). ``p`` is turned into an integer
1-5 by fixed bands:

=========================  =====  ======================================
p(Yes)                     score  meaning
=========================  =====  ======================================
p >= 0.9                   5      confident Yes
0.5 <= p < 0.9             4      Yes
0.3 <= p < 0.5             3      leaning No
0.1 <= p < 0.3             2      No
p < 0.1                    1      confident No
=========================  =====  ======================================

The bands are symmetric around the VLM's own decision boundary ``p = 0.5`` (0.9/0.1, then 0.5 splits Yes
from No), so "Reasoning >= 4" (the pass verdict of :mod:`revise.bench.agreement`) is exactly the VLM
answering ``Yes``, and "5" is a confident Yes.

**One verdict, three sub-scores.** The critic gives a single holistic answer; it has no separate signal
for Consistency or Quality (its negatives in training include wrong content, another sample's target,
perturbed targets and the unchanged source, so a "Yes" already implies a plausible, consistent edit, but
the three are not separable). Reasoning, Consistency and Quality therefore all carry the same score:
Overall equals that score and strict Accuracy (all three 5) means ``p >= 0.9``. Reporting None for two
of them would turn every sample into "not applicable" in ``summary.json``; repeating the verdict keeps
the rubric numbers usable *and* says plainly (in ``info()["mapping"]`` and every rationale) that
Consistency and Quality are not measured independently. Compare the critic with another judge on the
verdict, Reasoning and Overall, not on Consistency or Quality alone.

``metrics`` holds ``critic_p_yes`` and ``critic_logit``.

Options (``--judge-option critic.KEY=VALUE``): ``model`` (default the shipped ``revise-tiny``; a unified
checkpoint folder from ``revise train sft`` (its ``vlm/`` part is used) or a bare VLM folder with
``config.json``, ``model.safetensors``, ``tokenizer.json``), ``device`` (``cpu``, ``cuda``, or ``auto``:
cuda when available), ``threads`` (torch CPU threads while scoring; default: leave torch's setting).
The VLM samples its own ``config.frames`` frames per video (its architecture fixes it), so the run's
``--frames-k`` does not apply. The model is loaded once, on first use (``info()`` at the start of a run
loads it, so a corrupt checkpoint stops the run with a one-line :class:`~revise.errors.ConfigError`).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

from ..errors import ConfigError, JudgeError, ReviseError
from ..jsonfile import load_json_object
from .base import Judge, JudgeInput, JudgeResult, register_judge

VERSION = "critic-1"  # bump whenever the mapping (BANDS) or the prompt path changes
BANDS = ((0.9, 5), (0.5, 4), (0.3, 3), (0.1, 2))  # (lowest p(Yes), score), highest first; else 1
DEVICES = ("cpu", "cuda", "auto")
VLM_FILES = ("config.json", "model.safetensors", "tokenizer.json")
MAPPING = {
    "source": "p = p(Yes) = sigmoid(judge_logit) of the VLM's judge prompt (source video, edited video, instruction)",
    "bands": [list(b) for b in BANDS],
    "reasoning": "the p(Yes) band: 5 if p >= 0.9, 4 if p >= 0.5, 3 if p >= 0.3, 2 if p >= 0.1, else 1",
    "consistency": "same as reasoning: one holistic verdict, not measured separately",
    "quality": "same as reasoning: one holistic verdict, not measured separately",
    "pass": "reasoning >= 4 is p(Yes) >= 0.5 (the VLM answers Yes); all three 5 is p(Yes) >= 0.9",
}


def to_rubric(p: float) -> int:
    """Map ``p(Yes)`` in [0, 1] onto the 1-5 rubric with :data:`BANDS` (non-decreasing in ``p``)."""
    p = float(p)
    if not math.isfinite(p):
        raise ValueError(f"p(Yes) must be a finite number, got {p}")
    for bound, value in BANDS:
        if p >= bound:
            return value
    return 1


def resolve_vlm_dir(model: str) -> Path:
    """A shipped name, a unified checkpoint folder (-> its ``vlm/`` part) or a bare VLM folder -> the VLM
    folder. Raises a one-line :class:`ConfigError` naming the path when it is none of these."""
    from ..model.unified import MANIFEST_NAME, resolve_checkpoint

    path = resolve_checkpoint(model)
    manifest = path / MANIFEST_NAME
    if manifest.is_file():
        data = load_json_object(manifest)
        vlm_dir = path / str(data.get("vlm", "vlm"))
    elif (path / "vlm").is_dir():
        vlm_dir = path / "vlm"
    elif (path / "config.json").is_file():
        vlm_dir = path
    else:
        raise ConfigError(f"{path}: not a revise checkpoint (no {MANIFEST_NAME} or vlm/) nor a VLM folder "
                          "(no config.json)")
    if not vlm_dir.is_dir():
        raise ConfigError(f"{vlm_dir}: VLM checkpoint folder not found")
    missing = [name for name in VLM_FILES if not (vlm_dir / name).is_file()]
    if missing:
        raise ConfigError(f"{vlm_dir}: not a VLM checkpoint ({', '.join(missing)} missing)")
    return vlm_dir


@register_judge("critic")
class CriticJudge(Judge):
    """The internal VLM's ``p(Yes)`` mapped onto the rubric (see the module docstring)."""

    name = "critic"

    def __init__(self, model: str = "revise-tiny", device: str = "cpu", threads: int | None = None):
        if str(device) not in DEVICES and not str(device).startswith("cuda:"):
            raise ConfigError(f"critic judge: device {device!r}: expected one of {list(DEVICES)} or cuda:N")
        if threads is not None and int(threads) < 1:
            raise ConfigError(f"critic judge: threads must be >= 1, got {threads}")
        self.model_ref = str(model)
        self.vlm_dir = resolve_vlm_dir(self.model_ref)  # fail before the run starts, not on every sample
        self.device = str(device)
        self.threads = None if threads is None else int(threads)
        self._vlm = None
        self._weights_sha256: str | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def vlm(self):
        """The loaded :class:`~revise.model.vlm.ReviseVLM` (loaded once, thread-safe)."""
        with self._load_lock:
            if self._vlm is None:
                import torch

                from ..model.vlm import ReviseVLM

                device = self.device
                if device == "auto":
                    device = "cuda" if torch.cuda.is_available() else "cpu"
                try:
                    self._vlm = ReviseVLM.from_pretrained(self.vlm_dir, device=device).eval()
                except ConfigError:
                    raise
                except (RuntimeError, OSError, ValueError) as exc:  # e.g. cuda asked for but absent
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    raise ConfigError(f"{self.vlm_dir}: cannot load the VLM ({first})") from None
            return self._vlm

    def weights_sha256(self) -> str:
        from ..provenance import file_hash

        if self._weights_sha256 is None:
            self._weights_sha256 = file_hash(self.vlm_dir / "model.safetensors")
        return self._weights_sha256

    def info(self) -> dict:
        vlm = self.vlm
        return {"judge": self.name, "version": VERSION, "protocol": "rve-judge-v1", "model": self.model_ref,
                "path": str(self.vlm_dir), "weights_sha256": self.weights_sha256(),
                "frames": int(vlm.config.frames), "image_size": int(vlm.config.image_size),
                "mapping": MAPPING, "runtime": {"device": self.device, "threads": self.threads}}

    def judge(self, item: JudgeInput) -> tuple[float, float]:
        """``(p(Yes), judge_logit)`` of one sample; raises :class:`JudgeError` naming the sample."""
        import torch

        sample = item.sample
        vlm = self.vlm
        with self._run_lock:  # one forward at a time: the model (and torch's thread count) is shared
            previous = torch.get_num_threads()
            try:
                if self.threads:
                    torch.set_num_threads(self.threads)
                with torch.no_grad():
                    logit = vlm.judge_logit(item.source.frames, sample.instruction, item.edited.frames)
                    p_yes = torch.sigmoid(logit)  # = vlm.judge_probability(...)
                logit_v, p_v = float(logit.reshape(-1)[0]), float(p_yes.reshape(-1)[0])
            except ReviseError as exc:
                raise JudgeError(f"sample {sample.id}: critic: {exc}") from None
            except Exception as exc:  # bad frames, an instruction the prompt refuses, ...: this sample only
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise JudgeError(f"sample {sample.id}: critic: {type(exc).__name__}: {first}") from None
            finally:
                torch.set_num_threads(previous)
        if not (math.isfinite(p_v) and math.isfinite(logit_v)):
            raise JudgeError(f"sample {sample.id}: critic: non-finite p(Yes) {p_v} (logit {logit_v})")
        return p_v, logit_v

    def score(self, item: JudgeInput) -> JudgeResult:
        p_yes, logit = self.judge(item)
        score = float(to_rubric(p_yes))
        answer = "Yes" if p_yes >= 0.5 else "No"
        rationale = (f"critic p(Yes) = {p_yes:.3f} (logit {logit:+.2f}): {answer} -> {score:g}; "
                     "one holistic verdict: consistency and quality repeat it (not measured separately)")
        return JudgeResult(self.name, score, score, score, rationale,
                           {"critic_p_yes": p_yes, "critic_logit": logit})
