"""Reading and writing mp4 video with PyAV.

Frames are ``uint8`` arrays shaped ``(T, H, W, 3)`` in RGB order. Videos are written as H.264 in
``yuv420p`` with ``+faststart`` so every browser plays them.

Odd sizes: ``yuv420p`` needs an even width and height. ``write_video(odd="pad")`` (the default)
pads the last row/column by repeating it, so a 127x127 clip is stored as 128x128;
``odd="refuse"`` raises :class:`~revise.errors.VideoError` instead. Reading never changes sizes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import VideoError


@dataclass(frozen=True)
class VideoLimits:
    """Upper bounds that protect a run from a huge or hostile file (configurable per call)."""

    max_frames: int = 4096
    max_pixels: int = 4096 * 2304  # per frame: 4K UHD
    max_bytes: int = 4 << 30

    def check_size(self, path, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise VideoError(path, f"too large: {width}x{height} exceeds the limit of {self.max_pixels} pixels per frame")


DEFAULT_LIMITS = VideoLimits()


@dataclass
class Video:
    """Decoded frames plus their frame rate."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0


@dataclass(frozen=True)
class VideoInfo:
    """What the container says, without decoding the frames."""

    path: str
    frames: int  # 0 when the container does not say
    fps: float
    width: int
    height: int
    codec: str


def _open(path: Path):
    import av

    if not path.exists():
        raise VideoError(path, "missing: no such file")
    if path.is_dir():
        raise VideoError(path, "not a video: it is a directory")
    if path.stat().st_size == 0:
        raise VideoError(path, "not a video: the file is empty")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(path, f"not a video or corrupt: {_short(exc)}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(path, "not a video: it has no video stream")
    return container


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Container metadata (frame count, fps, size, codec) without decoding."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        return VideoInfo(str(path), int(stream.frames or 0), _stream_fps(stream), int(ctx.width), int(ctx.height), ctx.name)
    finally:
        container.close()


def read_video(path: str | os.PathLike, *, limits: VideoLimits = DEFAULT_LIMITS) -> Video:
    """Decode every frame of ``path`` to RGB uint8 ``(T, H, W, 3)``.

    Raises :class:`VideoError` naming the file when it is missing, not a video, corrupt, truncated
    (fewer frames decode than the container declares), has zero frames, or exceeds ``limits``.
    """
    import av

    path = Path(path)
    if path.exists() and path.is_file() and path.stat().st_size > limits.max_bytes:
        raise VideoError(path, f"too large: {path.stat().st_size} bytes exceeds the limit of {limits.max_bytes}")
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        limits.check_size(path, int(ctx.width), int(ctx.height))
        declared = int(stream.frames or 0)
        if declared > limits.max_frames:
            raise VideoError(path, f"too large: {declared} frames exceeds the limit of {limits.max_frames}")
        frames: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                if len(frames) >= limits.max_frames:
                    raise VideoError(path, f"too large: more than {limits.max_frames} frames")
                limits.check_size(path, frame.width, frame.height)
                frames.append(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise VideoError(path, f"corrupt: decoding failed after {len(frames)} frame(s): {_short(exc)}") from None
        fps = _stream_fps(stream)
    finally:
        container.close()
    if not frames:
        raise VideoError(path, "zero frames: the video stream holds no decodable frame")
    if declared and len(frames) < declared:
        raise VideoError(path, f"truncated: decoded {len(frames)} of the {declared} frames the container declares")
    if len({f.shape for f in frames}) != 1:
        raise VideoError(path, "corrupt: the frame size changes within the stream")
    return Video(np.stack(frames), fps if fps > 0 else 8.0)


def _as_frames(frames, path) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise VideoError(path, f"cannot write: frames must be shaped (T, H, W, 3), got {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise VideoError(path, "cannot write: zero frames")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            raise VideoError(path, f"cannot write: frames must be uint8, got {arr.dtype} (scale floats with to_uint8)")
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """Repeat the last row/column so height and width are even (what ``yuv420p`` needs)."""
    _, h, w, _ = frames.shape
    pad_h, pad_w = h % 2, w % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def write_video(
    path: str | os.PathLike,
    frames,
    fps: float = 8.0,
    *,
    crf: int = 18,
    preset: str = "medium",
    odd: str = "pad",
) -> Path:
    """Write frames as an H.264/yuv420p mp4 that browsers play; returns the path.

    The file is written to a temporary name and renamed, so a reader never sees half a video.
    ``odd="pad"`` pads odd sizes to even, ``odd="refuse"`` raises :class:`VideoError`.
    """
    import av

    path = Path(path)
    arr = _as_frames(frames, path)
    _, h, w, _ = arr.shape
    if (h % 2 or w % 2) and odd == "refuse":
        raise VideoError(path, f"odd size {w}x{h}: H.264 yuv420p needs even sizes (use odd='pad')")
    if odd not in ("pad", "refuse"):
        raise ValueError(f"odd must be 'pad' or 'refuse', not {odd!r}")
    arr = pad_to_even(arr)
    _, h, w, _ = arr.shape
    if fps <= 0:
        raise VideoError(path, f"cannot write: fps must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height = w, h
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset}
            for frame_rgb in arr:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    except av.error.FFmpegError as exc:
        tmp.unlink(missing_ok=True)
        raise VideoError(path, f"cannot write: {_short(exc)}") from None
    return path
