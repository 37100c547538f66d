"""Toy sizes of the unified model shared by the training tests: the real classes, seconds to train; and
stand-ins for a run killed right after a state save, or after its last state save but before its
checkpoint was written."""

from __future__ import annotations

import pytest

from revise.train.sft import SFTConfig

TOY_VLM = dict(image_size=16, grid=2, vision_channels=[8, 16, 16], frames=4, tubelet=2, hidden_size=32, num_layers=1,
               num_heads=2, intermediate_size=64, max_text_tokens=24, max_answer_tokens=24)
TOY_GEN = dict(num_layers=1, num_attention_heads=2, attention_head_dim=16, ffn_dim=64, context_dim=32, vlm_heads=2,
               num_vlm_queries=2, max_text_len=24, default_steps=3)


def toy_config(**overrides) -> SFTConfig:
    """A toy SFT run: 60 + 60 steps, metrics every step, a checkpoint every 20."""
    options = dict(vlm_steps=60, gen_steps=60, vlm_batch_size=8, gen_batch_size=4, vlm_lr=3e-3, gen_lr=2e-3,
                   vlm_warmup=5, gen_warmup=5, checkpoint_every=20, log_every=1, vlm_config=TOY_VLM,
                   generator_config=TOY_GEN)
    return SFTConfig(**{**options, **overrides})


class Crash(Exception):
    """Raised by :func:`crash_after_checkpoint`: a run killed at that point."""


def crash_after_checkpoint(monkeypatch: pytest.MonkeyPatch, trainer_cls, step: int) -> None:
    """Make ``trainer_cls`` raise :class:`Crash` right after its state save at ``step``. Pass a
    ``monkeypatch.context()`` to restore the trainer for the resumed run."""
    original = trainer_cls.checkpoint

    def checkpoint(self, stage, modules, optimizer, generators, at):
        original(self, stage, modules, optimizer, generators, at)
        if at == step:
            raise Crash()

    monkeypatch.setattr(trainer_cls, "checkpoint", checkpoint)


def crash_before_write(monkeypatch: pytest.MonkeyPatch, trainer_cls) -> None:
    """Make ``trainer_cls`` raise :class:`Crash` where it would write its finished checkpoint (``write``): a run
    killed after its last state save. Pass a ``monkeypatch.context()`` to restore it for the resumed run."""

    def write(self, *args, **kwargs):
        raise Crash()

    monkeypatch.setattr(trainer_cls, "write", write)
