"""``revise-tiny`` (and any checkpoint of the unified model) as a bench editor.

Options (``--editor-option KEY=VALUE`` on ``revise bench run``): ``model`` (a checkpoint folder from
``revise train sft``, default the shipped ``revise-tiny``), ``steps`` and ``guidance`` (default: the
checkpoint's), ``reflect`` (N > 1: the model's own VLM picks the best of N candidates), ``detail``
(the full-resolution detail threshold, see :mod:`revise.model.detail`; default: the checkpoint's, 0 =
off), ``restore`` (the low-frequency restore threshold, same module; default: the checkpoint's, 0 = off),
``threads`` (torch CPU threads while editing; default: leave torch's setting). The
sampling seed is the run's seed mixed with the sample id, so a rerun or a resumed run gives the same
videos. The model is loaded once, on first use.
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from ..errors import ConfigError, EditorError
from ..video import Video
from .base import EditContext, Editor, register_editor


@register_editor("revise-tiny")
class UnifiedModelEditor(Editor):
    """The unified model (internal VLM + flow-matching generator) editing each sample."""

    name = "revise-tiny"

    def __init__(self, model: str = "revise-tiny", steps: int | None = None, guidance: float | None = None,
                 threads: int | None = None, reflect: int = 1, detail: float | None = None,
                 restore: float | None = None):
        from ..model.unified import resolve_checkpoint

        if steps is not None and int(steps) < 1:
            raise ConfigError(f"editor revise-tiny: steps must be >= 1, got {steps}")
        if guidance is not None and not float(guidance) >= 0:
            raise ConfigError(f"editor revise-tiny: guidance must be >= 0, got {guidance}")
        self.model_ref = str(model)
        self.path = resolve_checkpoint(model)  # fail before the run starts, not on every sample
        self.steps = None if steps is None else int(steps)
        self.guidance = None if guidance is None else float(guidance)
        self.threads = None if threads is None else int(threads)
        if int(reflect) < 1:
            raise ConfigError(f"editor revise-tiny: reflect must be >= 1, got {reflect}")
        self.reflect = int(reflect)
        if detail is not None and not float(detail) >= 0:
            raise ConfigError(f"editor revise-tiny: detail must be >= 0, got {detail}")
        self.detail = None if detail is None else float(detail)
        if restore is not None and not float(restore) >= 0:
            raise ConfigError(f"editor revise-tiny: restore must be >= 0, got {restore}")
        self.restore = None if restore is None else float(restore)
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                from ..model.unified import ReviseModel

                self._model = ReviseModel.from_pretrained(self.path)
            return self._model

    def edit(self, source: Video, instruction: str, context: EditContext) -> Video:
        import torch

        seed = int.from_bytes(hashlib.sha256(f"{context.seed}|{context.sample.id}".encode()).digest()[:4], "little")
        model = self.model
        previous = torch.get_num_threads()
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            with self._lock:  # one edit at a time: the model is shared between judge worker threads
                # the source as a frame source: a VideoFile is read in two streaming passes, never whole
                plan = model.plan_edit(source, instruction, steps=self.steps, guidance=self.guidance, seed=seed,
                                       n=self.reflect, detail=self.detail, restore=self.restore)
                frames = np.empty((source.num_frames, source.height, source.width, 3), np.uint8)
                for start, chunk in plan.renderer.frames(source):
                    frames[start:start + len(chunk)] = chunk
        except ValueError as exc:
            raise EditorError(f"sample {context.sample.id}: {exc}") from None
        finally:
            torch.set_num_threads(previous)
        return Video(frames, source.fps)

    def info(self) -> dict:
        from ..provenance import file_hash

        model = self.model
        gen = model.generator.config
        weights = {part: file_hash(self.path / part / name) for part, name in
                   (("vlm", "model.safetensors"), ("generator", "diffusion_pytorch_model.safetensors"))}
        return {"editor": self.name, "model": self.model_ref, "path": str(self.path), "weights_sha256": weights,
                "steps": self.steps or int(gen.default_steps), "guidance": self.guidance if self.guidance is not None
                else float(gen.default_guidance), "detail": self.detail if self.detail is not None
                else float(gen.default_detail), "restore": self.restore if self.restore is not None
                else float(getattr(gen, "default_restore", 0.0)), "seed": "sha256(run seed | sample id)",
                "reflect": self.reflect,
                "training": training_chain(model.info.get("training"))}


def training_chain(training: dict | None) -> list[dict]:
    """The recipes that made a checkpoint, first to last, with their step counts (``revise.json``'s
    ``training`` and the ``init_training`` records it nests)."""
    chain = []
    while isinstance(training, dict):
        chain.append({"recipe": training.get("recipe"), "steps": training.get("steps")})
        training = training.get("init_training")
    return chain[::-1]
