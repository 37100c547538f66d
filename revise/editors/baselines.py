"""Baseline editors that bracket every real editor on RVE-Bench.

* ``copy`` returns the source unchanged: it scores high on Consistency and low on Reasoning, so it is
  the floor any real editor must beat on Reasoning.
* ``oracle`` returns the ground-truth target: the ceiling a judge can award (a judge that does not give
  it top marks is miscalibrated).
* ``shuffle`` returns *another* sample's target from the same subset and dimension: a plausible-looking
  but wrong answer, the negative control that catches judges rewarding "looks like a target" instead
  of "is this sample's target". The pick is deterministic in ``(seed, sample id)``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import EditorError, VideoError
from ..video import Video, match_length, read_video, resize_frames
from .base import EditContext, Editor, register_editor

BASELINE_VERSION = 1


def _read(path, what: str, sample_id: str) -> Video:
    try:
        return read_video(path)
    except VideoError as exc:
        raise EditorError(f"sample {sample_id}: cannot read the {what}: {exc}") from None


@register_editor("copy")
class CopyEditor(Editor):
    """Returns the source video: the do-nothing floor."""

    name = "copy"

    def edit(self, source: Video, instruction: str, context: EditContext) -> Video:
        return source

    def info(self) -> dict:
        return {"editor": self.name, "version": BASELINE_VERSION}


@register_editor("oracle")
class OracleEditor(Editor):
    """Returns the sample's ground-truth target video: the ceiling."""

    name = "oracle"

    def edit(self, source: Video, instruction: str, context: EditContext) -> Video:
        sample = context.sample
        if sample.target is None:
            raise EditorError(f"sample {sample.id}: the manifest has no target video, so the oracle cannot answer")
        return _read(sample.target, "target", sample.id)

    def info(self) -> dict:
        return {"editor": self.name, "version": BASELINE_VERSION}


@register_editor("shuffle")
class ShuffleEditor(Editor):
    """Returns another sample's target (same subset and dimension), resized to the source's shape.

    The donor is drawn with ``numpy.random.default_rng([seed, hash(sample id)])`` from the other samples
    of the group that have a target, sorted by id, so the choice is stable across runs, shards and
    resumes. The donor is resampled in time and space to the source's frame count and size, so the
    control fails on content only, never on shape.
    """

    name = "shuffle"

    def edit(self, source: Video, instruction: str, context: EditContext) -> Video:
        donor = self.pick_donor(context)
        target = _read(donor.target, f"target of donor sample {donor.id}", context.sample.id)
        frames = match_length(target.frames, source.num_frames)
        frames = resize_frames(frames, source.height, source.width)
        return Video(np.ascontiguousarray(frames), source.fps)

    @staticmethod
    def pick_donor(context: EditContext):
        """The sample whose target is returned for ``context.sample`` (deterministic)."""
        sample = context.sample
        if context.manifest is None:
            raise EditorError(f"sample {sample.id}: shuffle needs the benchmark manifest to pick another sample")
        candidates = sorted(
            (s for s in context.manifest
             if s.subset == sample.subset and s.dimension == sample.dimension and s.id != sample.id
             and s.target is not None),
            key=lambda s: s.id,
        )
        if not candidates:
            raise EditorError(f"sample {sample.id}: shuffle needs another sample with a target in "
                              f"{sample.group}, and there is none")
        id_key = int.from_bytes(hashlib.sha256(sample.id.encode("utf-8")).digest()[:8], "big")
        rng = np.random.default_rng([int(context.seed) & 0xFFFFFFFF, id_key])
        return candidates[int(rng.integers(len(candidates)))]

    def info(self) -> dict:
        return {"editor": self.name, "version": BASELINE_VERSION, "donor": "same subset/dimension, rng([seed, sha256(id)])"}
