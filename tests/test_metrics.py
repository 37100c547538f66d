"""Classical metrics (revise.metrics) and the ``metrics`` judge, on tiny synthetic clips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import metrics as skimage_metrics

from revise.data import Sample
from revise.errors import JudgeError, SceneError
from revise.judges import JudgeInput, available, create_judge
from revise.metrics import (
    PSNR, PSNR_CAP, SSIM, VMAF, MetricError, TemporalSSIM, WarpError, agreement_mask, load_state_json, psnr, ssim,
    state_mask, temporal_ssim, vmaf, vmaf_available, vmaf_frames, warp_error,
)
from revise.metrics.fidelity import psnr_statistics
from revise.video import Video


def texture(height: int, width: int, seed: int = 0, blur: float = 2.0) -> np.ndarray:
    """A smooth random RGB texture, uint8, full range."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), blur)
    tex = (tex - tex.min()) / (tex.max() - tex.min())
    return (tex * 255).round().astype(np.uint8)


def panning(frames: int = 8, size: int = 48, step: int = 2, seed: int = 0) -> np.ndarray:
    """A window sliding ``step`` pixels right per frame over a larger texture (smooth translation)."""
    tex = texture(size + 8, size + step * frames + 8, seed)
    return np.stack([tex[4:4 + size, 4 + step * t:4 + step * t + size] for t in range(frames)])


def noisy(frames: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(frames + rng.normal(0, sigma, frames.shape), 0, 255).round().astype(np.uint8)


def sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return skimage_metrics.structural_similarity(a / 255.0, b / 255.0, channel_axis=-1, data_range=1.0,
                                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


# --- PSNR / SSIM ---------------------------------------------------------------------------------

def test_identical_videos_hit_the_psnr_cap_and_ssim_one():
    clip = panning()
    assert psnr(clip, clip) == PSNR_CAP
    assert ssim(clip, clip) == pytest.approx(1.0, abs=1e-6)


def test_psnr_of_a_known_error_level():
    target = np.full((2, 16, 16, 3), 128, np.uint8)
    preds = target.copy()
    preds[:, ::2] += 10
    preds[:, 1::2] -= 10  # every value off by exactly 10 levels: MSE = (10/255)^2
    assert psnr(preds, target) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)
    half = target.copy()
    half[:, :8] += 10  # half the pixels off by 10: MSE halves, PSNR + 10 log10(2)
    assert psnr(half, target) == pytest.approx(20 * math.log10(255 / 10) + 10 * math.log10(2), abs=1e-9)


@pytest.mark.numerics
def test_psnr_matches_skimage_on_gaussian_noise():
    target = panning()
    preds = noisy(target, 10.0)
    expected = skimage_metrics.peak_signal_noise_ratio(target, preds, data_range=255)
    assert psnr(preds, target) == pytest.approx(expected, abs=1e-9)
    assert psnr(preds, target) == pytest.approx(20 * math.log10(255 / 10), abs=0.5)  # clipping barely matters here
    assert psnr(preds / 255.0, target / 255.0) == pytest.approx(expected, abs=1e-6)  # float input in [0, 1]


@pytest.mark.numerics
def test_ssim_of_flat_images_is_the_luminance_term():
    a = np.full((1, 20, 20, 3), 128, np.uint8)
    b = np.full((1, 20, 20, 3), 64, np.uint8)
    x, y, c1 = 128 / 255, 64 / 255, 0.01**2
    assert ssim(b, a) == pytest.approx((2 * x * y + c1) / (x * x + y * y + c1), abs=1e-5)
    bright = np.full((1, 20, 20, 3), 250, np.uint8)  # float32 cancellation is worst on bright flat areas
    x, y = 250 / 255, 200 / 255
    assert ssim(b + 136, bright) == pytest.approx((2 * x * y + c1) / (x * x + y * y + c1), abs=1e-5)


@pytest.mark.numerics
def test_ssim_matches_skimage():
    target = panning(frames=3, size=40)
    preds = noisy(target, 25.0)
    expected = np.mean([sk_ssim(p, t) for p, t in zip(preds, target)])
    assert ssim(preds, target) == pytest.approx(expected, abs=1e-5)
    assert 0.2 < ssim(preds, target) < 0.95


@pytest.mark.numerics
def test_ssim_matches_torchmetrics_ssim_map_on_the_same_interior():
    torch = pytest.importorskip("torch")
    from torchmetrics.functional.image import structural_similarity_index_measure

    target = panning(frames=2, size=32)
    preds = noisy(target, 20.0)
    as_tensor = lambda f: torch.from_numpy(f).permute(0, 3, 1, 2).double() / 255.0  # noqa: E731
    _, full = structural_similarity_index_measure(as_tensor(preds), as_tensor(target), data_range=1.0,
                                                  return_full_image=True)
    # torchmetrics' own reduction averages a slightly different region; its map agrees exactly
    assert ssim(preds, target) == pytest.approx(float(full[..., 5:-5, 5:-5].mean()), abs=1e-5)


def test_prediction_is_aligned_to_the_target_length_and_size():
    target = panning(frames=8, size=32)
    bigger_and_longer = np.repeat(np.repeat(np.repeat(target, 2, axis=0), 2, axis=1), 2, axis=2)
    assert psnr(bigger_and_longer, target) == PSNR_CAP
    assert ssim(bigger_and_longer, target) == pytest.approx(1.0, abs=1e-6)


def test_masked_psnr_and_ssim_ignore_what_the_mask_leaves_out():
    target = panning(size=48)
    preds = target.copy()
    preds[:, 10:20, 10:20] = 255
    mask = np.ones(target.shape[:3], bool)
    mask[:, 10:20, 10:20] = False
    assert psnr(preds, target) < 40
    assert psnr(preds, target, mask=mask) == PSNR_CAP
    # SSIM counts only pixels whose 11x11 window is inside the mask: the change does not leak through windows
    assert ssim(preds, target, mask=mask[0]) == pytest.approx(1.0, abs=1e-6)
    assert ssim(preds, target) < 0.99
    full = np.ones(target.shape[:3], bool)
    assert ssim(preds, target, mask=full) == pytest.approx(ssim(preds, target), abs=1e-9)
    assert psnr(preds, target, mask=full) == pytest.approx(psnr(preds, target), abs=1e-9)
    empty = np.zeros(target.shape[:3], bool)
    assert math.isnan(psnr(preds, target, mask=empty)) and math.isnan(ssim(preds, target, mask=empty))
    with pytest.raises(ValueError, match="mask"):
        psnr(preds, target, mask=np.ones((5, 5), bool))


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8))


# --- stateful classes -------------------------------------------------------------------------------

@pytest.mark.numerics
def test_psnr_and_ssim_classes_equal_the_function_over_the_concatenation():
    a, b = panning(frames=4, seed=1), panning(frames=6, seed=2)
    na, nb = noisy(a, 5.0, seed=3), noisy(b, 20.0, seed=4)
    both_preds, both_target = np.concatenate([na, nb]), np.concatenate([a, b])
    for cls, fn in ((PSNR, psnr), (SSIM, ssim)):
        metric = cls()
        assert math.isnan(metric.compute())
        metric.update(na, a)
        metric.update(nb, b)
        assert metric.compute() == pytest.approx(fn(both_preds, both_target), abs=1e-6)  # float32 SSIM
        shard_a, shard_b = cls(), cls()
        shard_a.update(na, a)
        shard_b.update(nb, b)
        assert shard_a.merge(shard_b).compute() == pytest.approx(metric.compute(), abs=1e-12)
        restored = cls().load_state_dict(json.loads(json.dumps(metric.state_dict())))
        assert restored.compute() == metric.compute()
        metric.reset()
        assert math.isnan(metric.compute())
    with pytest.raises(TypeError):
        PSNR().merge(SSIM())


@pytest.mark.numerics
def test_masked_class_updates_pool_the_masked_pixels():
    a, b = panning(seed=1), panning(seed=2)
    na, nb = noisy(a, 5.0), noisy(b, 20.0)
    mask = np.zeros(a.shape[:3], bool)
    mask[:, :24] = True
    metric = SSIM()
    metric.update(na, a, mask=mask)
    metric.update(nb, b, mask=mask)
    both = np.concatenate([mask, mask])
    assert metric.compute() == pytest.approx(ssim(np.concatenate([na, nb]), np.concatenate([a, b]), mask=both), abs=1e-6)


@pytest.mark.numerics
def test_temporal_classes_pool_pairs_within_each_clip():
    a, b = panning(step=1, seed=1), noisy(panning(step=3, seed=2), 10.0)
    for cls, fn in ((TemporalSSIM, temporal_ssim), (WarpError, warp_error)):
        metric = cls()
        metric.update(a)
        metric.update(a)
        assert metric.compute() == pytest.approx(fn(a), abs=1e-7)  # two copies: the same mean
        metric.update(b)
        shard = cls()
        shard.update(b)
        other = cls()
        other.update(a)
        other.update(a)
        assert other.merge(shard).compute() == pytest.approx(metric.compute(), abs=1e-12)
    assert TemporalSSIM.higher_is_better and not WarpError.higher_is_better


# --- temporal consistency ----------------------------------------------------------------------------

def test_static_video_is_perfectly_consistent():
    static = np.repeat(texture(48, 48)[None], 6, axis=0)
    assert temporal_ssim(static) == pytest.approx(1.0, abs=1e-6)
    assert warp_error(static) == pytest.approx(0.0, abs=1e-3)


def test_warp_error_is_low_for_smooth_motion_and_high_for_noise():
    moving = panning(frames=8, size=64, step=2)
    noise = np.random.default_rng(0).integers(0, 256, moving.shape, dtype=np.uint8)
    assert warp_error(moving) < 0.01
    assert warp_error(noise) > 0.2
    assert temporal_ssim(noise) < 0.1 < temporal_ssim(moving)


@pytest.mark.numerics
def test_temporal_ssim_matches_skimage_on_consecutive_frames():
    clip = noisy(panning(frames=4, size=40, step=3), 8.0)
    expected = np.mean([sk_ssim(clip[t], clip[t + 1]) for t in range(len(clip) - 1)])
    assert temporal_ssim(clip) == pytest.approx(expected, abs=1e-5)


def test_single_frame_has_no_temporal_metrics():
    one = panning(frames=1)
    assert math.isnan(temporal_ssim(one)) and math.isnan(warp_error(one))


# --- VMAF ------------------------------------------------------------------------------------------

needs_vmaf = pytest.mark.skipif(not vmaf_available(), reason="bundled ffmpeg has no libvmaf")


@needs_vmaf
def test_vmaf_is_high_for_identical_and_much_lower_for_degraded_video():
    ref = panning(frames=6, size=64)
    degraded = noisy(np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in ref]), 25.0)
    same = vmaf(ref, ref)
    assert same > 90
    assert vmaf(degraded, ref) < same - 40
    metric = VMAF()
    metric.update(degraded, ref)
    assert metric.compute() == pytest.approx(float(np.mean(vmaf_frames(degraded, ref))), abs=1e-6)


@needs_vmaf
def test_vmaf_timeout_is_a_clear_error():
    ref = panning(frames=2, size=32)
    with pytest.raises(MetricError, match="timeout"):
        vmaf(ref, ref, timeout=1e-4)


# --- preservation masks ----------------------------------------------------------------------------

def write_state(path: Path, state: dict) -> Path:
    path.write_text(json.dumps(state), encoding="utf-8")
    return path


def hand_state(frames: int = 4) -> dict:
    """64x64 clip: 'ball' (involved, r = 5) moves in the target; 'box' never changes; 'cup' is not
    involved but moves in the target (a consequence of the edit); 'ghost' is involved but invisible."""
    def frame(t, target):
        return {"objects": {
            "ball": {"x": 16.0 + (3.0 * t if target else 0.0), "y": 16.0, "area": 25 * math.pi, "visible": True},
            "box": {"x": 48.0, "y": 48.0, "area": 100.0, "visible": True},
            "cup": {"x": 48.0, "y": 16.0 + (4.0 if target else 0.0), "area": 4 * math.pi, "visible": True},
            "ghost": {"x": None, "y": None, "area": 0.0, "visible": False},
        }, "globals": {"brightness": 1.0}}
    return {"format": "rve-sim-state/1", "sample_id": "s", "size": [64, 64], "fps": 8, "num_frames": frames,
            "involved": ["ball", "ghost"], "preserved": ["box"],
            "source": {"frames": [frame(t, False) for t in range(frames)]},
            "target": {"frames": [frame(t, True) for t in range(frames)]}}


def test_state_mask_cuts_discs_around_changing_objects_in_both_tracks():
    mask = state_mask(hand_state(), margin=2.0)  # ball radius 5 + 2
    assert mask.shape == (4, 64, 64) and mask.dtype == bool
    at = lambda t, x, y: bool(mask[t, int(y), int(x)])  # noqa: E731  pixel whose centre is (x+.5, y+.5)
    assert not at(0, 16, 16) and not at(3, 25, 16)  # ball in source and (frame 3) target position
    assert not at(0, 22, 16) and at(0, 24, 16)  # 6.5 px from the centre: inside r + margin = 7; 8.5: outside
    assert at(0, 48, 48) and at(0, 2, 60)  # the unchanged box and the background are preserved
    assert not at(0, 48, 16) and not at(0, 48, 20)  # 'cup' moved in the target: masked in both places
    relaxed = state_mask(hand_state(), margin=0.0)
    assert relaxed[0, 16, 22] and not mask[0, 16, 22]


def test_state_mask_global_change_masks_the_whole_frame_and_resamples():
    state = hand_state()
    state["target"]["frames"][3]["globals"]["brightness"] = 0.5
    mask = state_mask(state)
    assert not mask[3].any() and mask[2].any()
    small = state_mask(state, shape=(2, 32, 32))  # 4 -> 2 frames keeps frames 0 and 3; 64 -> 32 pixels
    assert small.shape == (2, 32, 32) and not small[1].any()
    assert small[0, 24, 24] and not small[0, 8, 8]  # the box is kept, the ball (16, 16) -> (8, 8) is not


def test_state_file_reader_refuses_bad_files(tmp_path):
    good = write_state(tmp_path / "s.json", hand_state())
    assert load_state_json(good)["size"] == [64, 64]
    with pytest.raises(SceneError, match="missing"):
        load_state_json(tmp_path / "absent.json")
    with pytest.raises(SceneError, match="rve-sim-state/1"):
        load_state_json(write_state(tmp_path / "other.json", {"format": "something-else"}))
    (tmp_path / "torn.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SceneError, match="torn.json"):
        load_state_json(tmp_path / "torn.json")
    with pytest.raises(SceneError, match="malformed"):
        state_mask({"format": "rve-sim-state/1", "size": [8, 8]}, where="x.json")


def test_agreement_mask_is_where_source_and_target_agree():
    source = panning(frames=3, size=32)
    target = noisy(source, 3.0)  # small noise, below the threshold: agreement
    target[:, 10:14, 10:14] = 0
    mask = agreement_mask(source, target, threshold=0.1, dilate=2)
    assert mask.shape == (3, 32, 32)
    assert not mask[:, 10:14, 10:14].any() and not mask[:, 8, 8].any()  # the change and its dilation
    assert mask[:, 7, 7].all() and mask[:, 25:, 25:].all()
    assert agreement_mask(source, source).all()


# --- the metrics judge -------------------------------------------------------------------------------

def sample(tmp_path: Path, *, target: bool = True, state: Path | None = None) -> Sample:
    return Sample(id="rave-causal-test-s0-0001", subset="rave", dimension="causal", instruction="What if ...?",
                  source=tmp_path / "missing_src.mp4", target=tmp_path / "missing_tgt.mp4" if target else None,
                  state=state)


def judge_input(smp: Sample, source, edited, target=None) -> JudgeInput:
    return JudgeInput(sample=smp, source=Video(source, 8.0), edited=Video(edited, 8.0),
                      target=None if target is None else Video(target, 8.0), edited_sha256="0" * 64)


ALL_KEYS = {"psnr_target", "ssim_target", "preservation_psnr", "preservation_ssim", "temporal_ssim", "warp_error"}


def test_metrics_judge_is_registered_and_describes_itself():
    assert "metrics" in available()
    info = create_judge("metrics").info()
    assert info["judge"] == "metrics" and set(info["metrics"]) == ALL_KEYS
    assert "warp_error" not in create_judge("metrics", flow=False).info()["metrics"]
    with pytest.raises(JudgeError):
        create_judge("metrics", agreement_threshold=2.0)


def test_metrics_judge_with_target_uses_the_agreement_mask(tmp_path):
    source = panning(frames=6, size=64)
    target = source.copy()
    target[:, 20:40, 20:40] = (200, 30, 30)
    edited = target.copy()
    result = create_judge("metrics").score(judge_input(sample(tmp_path), source, edited, target))
    assert result.judge == "metrics" and result.reasoning is result.consistency is result.quality is None
    assert result.rationale == "" and result.error is None
    assert set(result.metrics) == ALL_KEYS
    assert result.metrics["psnr_target"] == PSNR_CAP and result.metrics["ssim_target"] == pytest.approx(1.0, abs=1e-6)
    assert result.metrics["preservation_psnr"] == PSNR_CAP  # the edit changed only where the target does
    json.dumps(result.to_dict(), allow_nan=False)

    wrong = source.copy()  # no edit at all: preserved, but far from the target
    wrong[:, 50:60, 2:12] = 0  # and damage outside the edit region
    bad = create_judge("metrics").score(judge_input(sample(tmp_path), source, wrong, target)).metrics
    assert bad["psnr_target"] < 30 and bad["preservation_psnr"] < 40


def test_metrics_judge_prefers_the_state_mask(tmp_path):
    state = hand_state(frames=4)
    source = np.stack([texture(64, 64, seed=5)] * 4)
    edited = source.copy()
    edited[:, 12:20, 12:20] = 0  # inside the ball's disc only: allowed by the state
    path = write_state(tmp_path / "state.json", state)
    metrics = create_judge("metrics").score(judge_input(sample(tmp_path, target=False, state=path), source, edited)).metrics
    assert set(metrics) == {"preservation_psnr", "preservation_ssim", "temporal_ssim", "warp_error"}
    assert metrics["preservation_psnr"] == PSNR_CAP
    assert metrics["temporal_ssim"] == pytest.approx(1.0, abs=1e-6)

    edited[:, 40:56, 40:56] = 0  # the box must not change
    hurt = create_judge("metrics").score(judge_input(sample(tmp_path, target=False, state=path), source, edited)).metrics
    assert hurt["preservation_psnr"] < 30


def test_metrics_judge_not_applicable_cases(tmp_path):
    clip = panning(frames=4, size=32)
    nothing = create_judge("metrics").score(judge_input(sample(tmp_path, target=False), clip, clip)).metrics
    assert set(nothing) == {"temporal_ssim", "warp_error"}  # no target, no state: no fidelity, no preservation
    one = create_judge("metrics", flow=False).score(judge_input(sample(tmp_path), clip, clip[:1], clip)).metrics
    assert set(one) == {"psnr_target", "ssim_target", "preservation_psnr", "preservation_ssim"}  # 1 frame: no pairs

    state = hand_state()
    for frame in state["target"]["frames"]:
        frame["globals"]["brightness"] = 0.5  # everything changes: empty preservation mask
    path = write_state(tmp_path / "bright.json", state)
    source = np.stack([texture(64, 64)] * 4)
    lit = create_judge("metrics").score(judge_input(sample(tmp_path, target=False, state=path), source, source)).metrics
    assert "preservation_psnr" not in lit and "preservation_ssim" not in lit


def test_metrics_judge_failures_name_the_sample(tmp_path):
    clip = panning(frames=2, size=32)
    smp = sample(tmp_path, state=tmp_path / "absent.json")
    with pytest.raises(JudgeError, match="rave-causal-test-s0-0001.*state file missing"):
        create_judge("metrics").score(judge_input(smp, clip, clip, clip))


@needs_vmaf
def test_metrics_judge_adds_vmaf_on_request(tmp_path):
    clip = panning(frames=3, size=48)
    metrics = create_judge("metrics", vmaf=True, flow=False).score(judge_input(sample(tmp_path), clip, clip, clip)).metrics
    assert metrics["vmaf"] > 90
    assert "vmaf" not in create_judge("metrics").score(judge_input(sample(tmp_path), clip, clip, clip)).metrics


def test_psnr_statistics_are_exact_for_uint8():
    a = np.zeros((1, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 3
    sse, n = psnr_statistics(b, a)
    assert n == 48 and sse == pytest.approx(9 / 255**2, rel=1e-15)
