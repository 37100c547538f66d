"""Streaming video: the chunked reader and writer, chunk-by-chunk detail transfer and editing, and the metrics
judge in one pass: each gives what the whole-clip code gives, in memory that does not grow with the clip."""

from __future__ import annotations

import math
import os
import tracemalloc

import numpy as np
import pytest

from footage import clip
from revise.errors import VideoError
from revise.metrics import agreement_mask, psnr, ssim, temporal_ssim, warp_error
from revise.metrics.streaming import clip_metrics, shrink, shrink_mask, working_factor
from revise.model.detail import DetailTransfer, transfer_detail, transfer_detail_reference
from revise.model.stream import needed_indices
from revise.model.unified import ReviseModel
from revise.sim import generate_dataset
from revise.video import Video, VideoFile, VideoReader, VideoWriter, read_video, resize_frames, to_float, write_video


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    manifest = generate_dataset(root, per_dimension=1, seed=5, split="test",
                                dimensions=["rave/causal", "rave/commonsense", "icvg/camera"])
    return root, [line for line in manifest.read_text().splitlines()]


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Two H.264 encodes of the same frames: x264's frame threads make them differ by rounding only (a mean
    under one grey level); any other difference (a frame lost, shifted or re-rendered) is far above it."""
    return a.shape == b.shape and float(np.abs(a.astype(np.int16) - b).mean()) < 1.0


def _sources(sim):
    import json

    root, rows = sim
    return [(root / json.loads(r)["source"], json.loads(r)["instruction"]) for r in rows]


@pytest.fixture(scope="module")
def model(one_thread):
    return ReviseModel.from_pretrained("revise-tiny")


def test_reader_chunks_take_and_count_match_read_video():
    path = clip("bikes.mp4")
    whole = read_video(path).frames
    reader = VideoReader(path)
    assert (reader.num_frames, reader.height, reader.width) == whole.shape[:3]
    starts, blocks = zip(*reader.chunks(7))
    assert list(starts) == list(range(0, len(whole), 7))
    assert np.array_equal(np.concatenate(blocks), whole)
    kept = reader.take([0, 3, 249, 10_000])
    assert sorted(kept) == [0, 3, 249] and all(np.array_equal(kept[i], whole[i]) for i in kept)
    assert reader.count() == len(whole)
    assert VideoFile(path, in_memory=256 << 20).loaded  # 250 frames of 640x272 (131 MB) fit: decoded at once
    lazy = VideoFile(path, in_memory=1 << 20)
    assert not lazy.loaded and lazy.num_frames == len(whole)
    assert np.array_equal(np.concatenate([c for _, c in lazy.chunks(64)]), whole) and not lazy.loaded
    assert np.array_equal(lazy.frames, whole) and lazy.loaded


def test_reader_reports_a_truncated_file_like_read_video(tmp_path):
    path = write_video(tmp_path / "a.mp4", np.random.default_rng(0).integers(0, 255, (12, 64, 64, 3), np.uint8))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(VideoError) as whole:
        read_video(cut)
    for in_memory in (64 << 20, 0):  # decoded at once, or checked by the counting pass
        with pytest.raises(VideoError) as streamed:
            VideoFile(cut, in_memory=in_memory)
        assert str(whole.value) == str(streamed.value)


def test_writer_in_chunks_equals_write_video_and_follows_the_umask(tmp_path):
    frames = np.random.default_rng(1).integers(0, 255, (10, 48, 62, 3), np.uint8)
    write_video(tmp_path / "whole.mp4", frames, 8.0)
    previous = os.umask(0o027)
    try:
        with VideoWriter(tmp_path / "chunks.mp4", 8.0) as writer:
            for start in range(0, 10, 3):
                writer.write(frames[start:start + 3])
    finally:
        os.umask(previous)
    # two runs of x264 with frame threads may differ by a few rounded levels; the frames written are the same
    assert _close(read_video(tmp_path / "chunks.mp4").frames, read_video(tmp_path / "whole.mp4").frames)
    assert (tmp_path / "chunks.mp4").stat().st_mode & 0o777 == 0o640
    previous = os.umask(0o002)
    try:
        write_video(tmp_path / "shared.mp4", frames, 8.0)
    finally:
        os.umask(previous)
    assert (tmp_path / "shared.mp4").stat().st_mode & 0o777 == 0o664


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    old = write_video(tmp_path / "out.mp4", np.zeros((4, 32, 32, 3), np.uint8))
    before = old.read_bytes()
    with pytest.raises(RuntimeError):
        with VideoWriter(old, 8.0) as writer:
            writer.write(np.zeros((4, 32, 32, 3), np.uint8))
            raise RuntimeError("the editor crashed")
    with pytest.raises(VideoError, match="differs from the first frames'"):
        with VideoWriter(old, 8.0) as writer:
            writer.write(np.zeros((2, 32, 32, 3), np.uint8))
            writer.write(np.zeros((2, 16, 32, 3), np.uint8))
    assert old.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize("size", [(128, 128), (90, 160), (32, 32), (64, 64)])
def test_chunked_detail_transfer_equals_the_whole_clip_formula(size):
    rng = np.random.default_rng(2)
    height, width = size
    source = resize_frames(rng.integers(0, 256, (6, 8, 8, 3), np.uint8), height, width)
    edit = np.clip(to_float(resize_frames(source, 64, 64)) + rng.normal(0, 0.08, (6, 64, 64, 3)), 0, 1)
    edit[:, 20:40, 10:30] = 0.9  # a changed region beyond every threshold
    for threshold in (0.0, 0.2, 0.4):
        reference = transfer_detail_reference(edit, source, threshold)
        # the same float32 operations, one frame at a time (OpenCV's products and sums are exact per element)
        assert np.array_equal(transfer_detail(edit, source, threshold), reference), (size, threshold)
        renderer = DetailTransfer(source[0], source[-1], (64, 64), threshold)
        parts = [renderer.render(edit[i:i + 4], source[i:i + 4]) for i in range(0, 6, 4)]
        assert np.array_equal(np.concatenate(parts), reference)


def test_streamed_edit_of_a_file_equals_the_in_memory_edit(sim, model, tmp_path):
    from revise.model.unified import edit_file

    for k, (path, instruction) in enumerate(_sources(sim)):
        frames = read_video(path).frames
        for options in ({"steps": 3}, {"steps": 2, "detail": 0.0}, {"steps": 2, "reflect": 2})[: 3 if k == 0 else 1]:
            expected = model.edit(frames, instruction, seed=4, **options)
            reflect = options.pop("reflect", 1)
            plan = model.plan_edit(VideoReader(path), instruction, seed=4, n=reflect, **options)
            streamed = np.concatenate([c for _, c in plan.renderer.frames(VideoReader(path), chunk=5)])
            assert np.array_equal(streamed, expected), (path.name, options)  # one code path: the same bytes
    out = edit_file(model, path, instruction, tmp_path / "streamed.mp4", seed=4, steps=3)
    reference = write_video(tmp_path / "ref.mp4", model.edit(frames, instruction, seed=4, steps=3))
    assert _close(read_video(out).frames, read_video(reference).frames)  # two H.264 encodes of the same frames


def test_the_model_reads_only_a_handful_of_frames():
    gen, vlm, needed = needed_indices(1000, 16, 8)
    assert len(gen) == 16 and len(vlm) == 8 and len(needed) <= 26 and {0, 999} <= set(needed)
    _, vlm_short, needed_short = needed_indices(5, 16, 8)
    assert len(vlm_short) == 8 and needed_short == [0, 1, 2, 3, 4]


def test_rendering_memory_does_not_grow_with_the_clip(model, tmp_path):
    """Peak Python-side (numpy) allocation of the streamed render + encode of a 24- and a 96-frame clip."""
    rng = np.random.default_rng(3)
    base = resize_frames(rng.integers(0, 256, (4, 8, 8, 3), np.uint8), 192, 256)
    peaks = []
    for frames in (24, 96):
        path = write_video(tmp_path / f"clip{frames}.mp4", base[np.arange(frames) % 4], 8.0)
        source = VideoReader(path)
        plan = model.plan_edit(source, "What if the red ball had never been there?", steps=2)
        tracemalloc.start()
        with VideoWriter(tmp_path / f"out{frames}.mp4", source.fps) as writer:
            for _, chunk in plan.renderer.frames(source, chunk=8):
                writer.write(chunk)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert VideoReader(tmp_path / f"out{frames}.mp4").count() == frames
    assert peaks[1] < 1.3 * peaks[0], peaks  # 4x the frames, about the same peak (a whole clip would be 4x)


def test_metrics_in_one_pass_equal_the_whole_clip_functions(sim):
    import json

    root, rows = sim
    row = json.loads(rows[0])
    source, target = read_video(root / row["source"]), read_video(root / row["target"])
    edited = Video(np.ascontiguousarray(source.frames[:, ::-1]), source.fps)  # a real change everywhere
    mask = agreement_mask(source.frames, target.frames)
    values = clip_metrics(edited, target=VideoFile(root / row["target"]),
                          source=VideoFile(root / row["source"]),
                          mask_chunk=lambda start, s, t: agreement_mask(s, t))
    # PSNR sums integers (exact); SSIM pools float32 maps chunk by chunk instead of over the clip (1e-6)
    assert values["psnr_target"] == psnr(edited.frames, target.frames)
    assert values["preservation_psnr"] == psnr(edited.frames, source.frames, mask=mask)
    assert math.isclose(values["ssim_target"], ssim(edited.frames, target.frames), abs_tol=1e-6)
    assert math.isclose(values["preservation_ssim"], ssim(edited.frames, source.frames, mask=mask), abs_tol=1e-6)
    assert math.isclose(values["temporal_ssim"], temporal_ssim(edited.frames), abs_tol=1e-6)
    assert math.isclose(values["warp_error"], warp_error(edited.frames), abs_tol=1e-6)
    short = Video(edited.frames[::3], edited.fps)  # another length: resampled to the target's, nearest frame
    from revise.video import match_length

    assert clip_metrics(short, target=target, temporal=False, flow=False)["psnr_target"] == \
        psnr(match_length(short.frames, target.num_frames), target.frames)


def test_working_resolution_follows_wangs_rule():
    assert [working_factor(h, w) for h, w in ((128, 128), (383, 500), (384, 512), (720, 1280), (2160, 3840))] == \
        [1, 1, 2, 3, 8]
    frames = np.arange(2 * 7 * 9 * 3, dtype=np.uint8).reshape(2, 7, 9, 3)
    assert shrink(frames, 3).shape == (2, 2, 3, 3)
    assert shrink(frames, 3)[0, 0, 0, 0] == round(frames[0, :3, :3, 0].mean())
    mask = np.ones((1, 6, 6), bool)
    mask[0, 0, 0] = False
    assert shrink_mask(mask, 3).tolist() == [[[False, True], [True, True]]]


def test_low_frequency_restore_removes_a_patch_pattern_and_keeps_changes():
    """An edit that is the source plus a faint per-patch pattern (the generator's seams) and one changed
    square: with restore the untouched part is the source's own pixels, the square is the edit's."""
    rng = np.random.default_rng(7)
    source = resize_frames(rng.integers(0, 256, (3, 8, 8, 3), np.uint8), 128, 128)
    small = to_float(resize_frames(source, 64, 64))
    pattern = np.zeros((8, 8, 3), np.float32)
    pattern[4] = -0.03  # a dark row inside every 8x8 patch, about 8 grey levels
    edit = np.clip(small + np.tile(pattern, (8, 8, 1))[None], 0, 1)
    edit[:, 24:40, 24:40] = [1.0, 0.0, 0.0]
    seamed = transfer_detail(edit, source, 0.4)
    restored = transfer_detail(edit, source, 0.4, restore=0.2)
    untouched = np.ones((128, 128), bool)
    untouched[40:88, 40:88] = False  # the square (48..80) and a margin for the erosion and the bilinear spread
    assert np.abs(seamed.astype(int) - source)[:, untouched].max() >= 6
    assert np.abs(restored.astype(int) - source)[:, untouched].max() <= 1
    assert np.array_equal(restored[:, 52:76, 52:76], seamed[:, 52:76, 52:76])  # the change is the edit's
    assert np.array_equal(transfer_detail(edit, source, 0.4, restore=0.0), transfer_detail_reference(edit, source, 0.4))
    chunked = DetailTransfer(source[0], source[-1], (64, 64), 0.4, restore=0.2)
    assert np.array_equal(np.concatenate([chunked.render(edit[i:i + 2], source[i:i + 2]) for i in (0, 2)]), restored)
