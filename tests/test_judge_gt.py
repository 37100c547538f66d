"""The exact ``gt`` judge on real RVE-Sim samples: oracle, copy, damaged edits, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from revise.data import Sample, load_manifest
from revise.errors import JudgeError
from revise.judges import JudgeInput, create_judge
from revise.judges.gt import THRESHOLDS, to_rubric
from revise.sim import generate_dataset
from revise.video import Video, read_video


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    path = generate_dataset(tmp_path_factory.mktemp("gt") / "b", per_dimension=1, seed=5)
    return list(load_manifest(path))


def _score(sample, edited: Video):
    src, tgt = read_video(sample.source), read_video(sample.target)
    return create_judge("gt").score(JudgeInput(sample, src, edited, tgt, "sha"))


def test_rubric_thresholds():
    assert [to_rubric(s) for s in (1.0, 0.95, 0.9, 0.75, 0.6, 0.2)] == [5, 5, 4, 3, 2, 1]
    assert THRESHOLDS[0] == (0.95, 5)


def test_oracle_is_perfect_and_copy_fails_reasoning(samples):
    for s in samples:
        oracle = _score(s, read_video(s.target))
        assert (oracle.reasoning, oracle.consistency, oracle.quality) == (5, 5, 5), (s.id, oracle.rationale)
        assert oracle.passed and oracle.metrics["gt_checks"] == 1.0
        copy = _score(s, read_video(s.source))
        assert copy.reasoning <= 2, (s.id, copy.rationale)
        assert "failed:" in copy.rationale


def test_damaged_edits_lose_the_right_scores(samples):
    s = next(x for x in samples if x.subset == "rave")
    target = read_video(s.target)
    noisy = np.clip(target.frames.astype(int) + np.random.default_rng(0).integers(-90, 90, target.frames.shape), 0, 255)
    res = _score(s, Video(noisy.astype(np.uint8), target.fps))
    assert res.quality < 5 or res.consistency < 5
    blank = Video(np.full_like(target.frames, 200), target.fps)
    res = _score(s, blank)
    assert res.reasoning <= 2 and res.consistency <= 3
    short = Video(target.frames[::2], target.fps)
    res = _score(s, short)
    assert "resampled in time" in res.rationale


def test_other_resolution_is_resized(samples):
    import cv2

    s = samples[0]
    target = read_video(s.target)
    big = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_LINEAR) for f in target.frames])
    res = _score(s, Video(big, target.fps))
    assert res.reasoning == 5


def test_sample_without_state_is_a_clear_error(samples, tmp_path):
    s = samples[0]
    bare = Sample(id="plain-1", subset=s.subset, dimension=s.dimension, instruction="x", source=s.source, target=s.target)
    with pytest.raises(JudgeError, match="plain-1: no state file"):
        _score(bare, read_video(s.target))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad = Sample(id="plain-2", subset=s.subset, dimension=s.dimension, instruction="x", source=s.source, target=s.target,
                 state=broken)
    with pytest.raises(JudgeError, match="plain-2"):
        _score(bad, read_video(s.target))
