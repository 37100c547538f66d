"""The domain detector (revise.model.domain): RVE-Sim is in-domain at any size, real footage is not."""

from __future__ import annotations

import dataclasses
import functools
import time

import cv2
import numpy as np
import pytest

from footage import clip
from revise.data import load_manifest
from revise.model.domain import MAX_FRAMES, THRESHOLD, DomainReport, assess_domain
from revise.sim import generate_dataset
from revise.video import read_video


@pytest.fixture(scope="module")
def sim_clips(tmp_path_factory) -> dict[str, np.ndarray]:
    """Sources and targets of 18 RVE-Sim test samples: one per dimension, and every family of rave/commonsense
    (night fall: the lamp's glow gives the most colours) and icvg/camera (the zoom: the biggest shapes)."""
    root = tmp_path_factory.mktemp("domain")
    clips = {}
    for name, per_dim, dims in (("all", 1, None), ("some", 5, ["rave/commonsense", "icvg/camera"])):
        manifest = load_manifest(generate_dataset(root / name, per_dimension=per_dim, seed=0, split="test",
                                                  dimensions=dims))
        for sample in manifest:
            scenario = sample.metadata["scenario"]
            clips[f"{sample.id} {scenario} src"] = read_video(sample.source).frames
            clips[f"{sample.id} {scenario} tgt"] = read_video(sample.target).frames
    assert any("nightfall" in key for key in clips) and any("camera_zoom" in key for key in clips)
    return clips


def resize(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width * height < frames.shape[1] * frames.shape[2]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (width, height), interpolation=interp) for f in frames])


def test_rve_sim_clips_are_in_domain(sim_clips):
    for name, frames in sim_clips.items():
        report = assess_domain(frames)
        assert report.in_domain, f"{name}: {report}"
        assert 0.0 <= report.score < THRESHOLD
        assert report.reason == "flat-coloured, few colours: looks like RVE-Sim"
        assert report.frames == 16


def test_rve_sim_upscaled_to_720p_is_in_domain(sim_clips):
    for name, frames in sim_clips.items():
        if name.endswith("src"):
            sizes = ((1280, 720), (720, 720)) if "nightfall" in name or "zoom" in name else ((1280, 720),)
            for width, height in sizes:
                report = assess_domain(resize(frames, width, height))
                assert report.in_domain, f"{name} at {width}x{height}: {report}"


@functools.lru_cache(maxsize=None)
def _frames(name: str) -> np.ndarray:
    return read_video(clip(name)).frames


def _window(name: str) -> np.ndarray:
    return _frames(name)[:16]


@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4",
                                  "carphone_distorted.mp4"])
def test_real_footage_is_flagged_native_and_shrunk(name):
    frames = _window(name)  # bikes' first window is its hardest: a plain white wall
    for label, x in (("native", frames), ("128x128", resize(frames, 128, 128))):
        report = assess_domain(x)
        assert not report.in_domain, f"{name} {label}: {report}"
        assert report.score >= THRESHOLD
        assert "not RVE-Sim" in report.reason and "\n" not in report.reason


def test_flat_and_textured_synthetic_frames():
    flat = np.full((4, 96, 160, 3), (205, 205, 205), np.uint8)
    flat[:, 70:] = (150, 150, 150)                                   # a floor
    cv2.circle(flat[1], (50, 40), 12, (220, 40, 40), -1, cv2.LINE_AA)  # an anti-aliased ball
    assert assess_domain(flat).in_domain
    noisy = np.clip(flat + np.random.default_rng(0).normal(0, 8, flat.shape), 0, 255).astype(np.uint8)
    report = assess_domain(noisy)
    assert not report.in_domain and report.texture > 0.3, report


def test_bad_input_raises_value_error_in_one_line():
    good = np.zeros((2, 32, 32, 3), np.uint8)
    for bad in (good.tolist(), good.astype(np.float32), good[0], good[..., :1], np.zeros((2, 32, 32, 4), np.uint8),
                good[:0], np.zeros((2, 4, 32, 3), np.uint8), None):
        with pytest.raises(ValueError) as info:
            assess_domain(bad)
        message = str(info.value)
        assert "\n" not in message and message.startswith("assess_domain needs"), message


def test_deterministic_and_length_independent():
    frames = _window("carphone_pristine.mp4")
    first, second = assess_domain(frames), assess_domain(frames.copy())
    assert first == second
    strided = np.ascontiguousarray(frames[:, ::-1])[:, ::-1]  # same pixels, another memory layout
    assert assess_domain(strided) == first
    long = _frames("carphone_pristine.mp4")
    report = assess_domain(long)
    assert report.frames == MAX_FRAMES and report == assess_domain(long) and not report.in_domain


def test_report_is_a_frozen_dataclass_and_quick():
    frames = _window("bigbuckbunny.mp4")
    assert frames.shape[1:] == (720, 1280, 3)
    start = time.perf_counter()
    report = assess_domain(frames)
    assert time.perf_counter() - start < 1.0  # ~25 ms here; the benchmark measures it properly
    assert isinstance(report, DomainReport) and isinstance(report.in_domain, bool)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.score = 0.0  # type: ignore[misc]
    assert report.to_dict()["score"] == report.score
