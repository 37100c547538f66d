"""Reading and writing mp4 video with PyAV.

Frames are ``uint8`` arrays shaped ``(T, H, W, 3)`` in RGB order. Videos are written as H.264 in
``yuv420p`` with ``+faststart`` so every browser plays them.

Odd sizes: ``yuv420p`` needs an even width and height. ``write_video(odd="pad")`` (the default)
pads the last row/column by repeating it, so a 127x127 clip is stored (and read back) as 128x128;
``odd="refuse"`` raises :class:`~revise.errors.VideoError` instead. Reading never changes sizes.

Every failure on a bad file raises :class:`~revise.errors.VideoError` with a one-line message that
starts with the file's path and then says what is wrong: ``missing``, ``not a video``, ``corrupt``,
``truncated``, ``zero frames`` or ``too large``. (An audio file whose only picture is its cover art
is not a video, although FFmpeg lists the picture as a video stream.)

Truncation is detected three ways, because FFmpeg itself decodes whatever is left of a chopped file
without complaint: an MP4/MOV whose top-level box runs past the end of the file, fewer decoded frames
than the container's index declares, or (for containers that declare no frame count, e.g. Matroska)
decoded frames that stop well short of the declared duration.
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import VideoError

DEFAULT_FPS = 8.0  # used when a container declares no frame rate at all


@dataclass(frozen=True)
class VideoLimits:
    """Upper bounds that protect a run from a huge or hostile file (configurable per call).

    ``max_frames``: decoded frames; ``max_pixels``: width x height of one frame; ``max_total_pixels``:
    frames x width x height, i.e. the decoded array's size / 3 (the default, 2**30, is 3 GiB of RGB);
    ``max_bytes``: the file's size on disk.
    """

    max_frames: int = 4096
    max_pixels: int = 4096 * 2304  # per frame: 4K UHD
    max_total_pixels: int = 1 << 30
    max_bytes: int = 4 << 30

    def __post_init__(self) -> None:
        for name in ("max_frames", "max_pixels", "max_total_pixels", "max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"VideoLimits.{name} must be a positive integer, got {value!r}")

    def check_size(self, path, width: int, height: int) -> None:
        """Refuse a frame size over ``max_pixels``."""
        if width * height > self.max_pixels:
            raise VideoError(path, f"too large: {width}x{height} exceeds the limit of {self.max_pixels} pixels "
                                   f"per frame")

    def check_frames(self, path, num_frames: int, width: int, height: int) -> None:
        """Refuse a clip over ``max_frames`` frames or ``max_total_pixels`` pixels in all."""
        if num_frames > self.max_frames:
            raise VideoError(path, f"too large: {num_frames} frames exceeds the limit of {self.max_frames}")
        if num_frames * width * height > self.max_total_pixels:
            raise VideoError(path, f"too large: {num_frames} frames of {width}x{height} exceed the limit of "
                                   f"{self.max_total_pixels} pixels in all")


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

    def chunks(self, size: int):
        """``(start index, frames[start:start + size])`` views, in order (what :meth:`VideoFile.chunks` streams)."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        for start in range(0, self.num_frames, size):
            yield start, self.frames[start:start + size]

    def take(self, indices) -> dict[int, np.ndarray]:
        """``{index: frame}`` for the valid ``indices`` (a frame source, :mod:`revise.model.stream`)."""
        return {int(i): self.frames[int(i)] for i in set(int(i) for i in indices) if 0 <= int(i) < self.num_frames}


@dataclass(frozen=True)
class VideoInfo:
    """What the container says, without decoding the frames."""

    path: str
    frames: int  # 0 when the container does not say
    fps: float
    width: int
    height: int
    codec: str


def _short(exc: BaseException) -> str:
    """An exception as one short line; for FFmpeg errors just the reason (not the errno or path)."""
    text = " ".join(str(getattr(exc, "strerror", None) or exc).split())
    return (text or type(exc).__name__)[:200]


_MP4_BRANDS = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")
_SIGNATURES = ((0, b"\x1a\x45\xdf\xa3"), (0, b"RIFF"), (0, b"OggS"), (0, b"FLV"), (0, b"\x00\x00\x01\xba"))


def _head(path: Path, size: int = 16) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _looks_like_video(head: bytes) -> bool:
    """A known container signature (MP4/MOV, Matroska/WebM, AVI, Ogg, FLV, MPEG-PS) at the file start."""
    return head[4:8] in _MP4_BRANDS or any(head[at:at + len(sig)] == sig for at, sig in _SIGNATURES)


def _mp4_overrun(path: Path, file_size: int) -> str | None:
    """For an MP4/MOV file: a description of the top-level box that runs past the end, else ``None``."""
    offset = 0
    with open(path, "rb") as f:
        while offset + 8 <= file_size:
            f.seek(offset)
            header = f.read(16)
            size, kind = struct.unpack(">I4s", header[:8])
            if size == 1:
                if len(header) < 16:
                    return None
                size = struct.unpack(">Q", header[8:16])[0]
            elif size == 0:  # "to the end of the file"
                return None
            if size < 8:
                return None  # not a box structure we understand: let FFmpeg judge
            if offset + size > file_size:
                name = kind.decode("latin-1")
                return f"its '{name}' box needs {offset + size} bytes but the file has {file_size}"
            offset += size
    return None


def _open(path: Path, limits: VideoLimits | None = None):
    """Open ``path`` for reading after the cheap checks; returns a container with a video stream."""
    import av

    if not path.exists():
        raise VideoError(path, "missing: no such file")
    if path.is_dir():
        raise VideoError(path, "not a video: it is a directory")
    if not path.is_file():
        raise VideoError(path, "not a video: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise VideoError(path, "not a video: the file is empty")
    if limits is not None and size > limits.max_bytes:
        raise VideoError(path, f"too large: {size} bytes exceeds the limit of {limits.max_bytes}")
    try:
        head = _head(path)
        overrun = _mp4_overrun(path, size) if head[4:8] in _MP4_BRANDS else None
    except OSError as exc:
        raise VideoError(path, f"cannot read: {_short(exc)}") from None
    if overrun:
        raise VideoError(path, f"truncated: {overrun}")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        kind = "corrupt" if _looks_like_video(head) else "not a video"
        raise VideoError(path, f"{kind}: FFmpeg cannot open it ({_short(exc)})") from None
    if _video_stream(container) is None:
        kinds = sorted({"cover picture" if _is_cover(s) else s.type for s in container.streams})
        container.close()
        detail = f"only {' and '.join(kinds)}" if kinds else "no stream at all"
        raise VideoError(path, f"not a video: it has no video stream ({detail})")
    return container


def _is_cover(stream) -> bool:
    """A still picture attached to an audio file (album art), which FFmpeg lists as a video stream."""
    import av

    return stream.type == "video" and bool(stream.disposition & av.stream.Disposition.attached_pic)


def _video_stream(container):
    """The first real video stream (not a cover picture), or ``None``."""
    return next((s for s in container.streams.video if not _is_cover(s)), None)


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe(path: str | os.PathLike) -> VideoInfo:
    """Container metadata (frame count, fps, size, codec) without decoding.

    Raises :class:`VideoError` for a missing file, a file that is not a video, a video without a
    video stream, and an MP4 cut short; a file that opens but fails to decode is only caught by
    :func:`read_video`.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = _video_stream(container)
        ctx = stream.codec_context
        return VideoInfo(str(path), int(stream.frames or 0), _stream_fps(stream), int(ctx.width), int(ctx.height),
                         ctx.name)
    finally:
        container.close()


class VideoReader:
    """Stream the frames of one file in bounded memory, with every check of :func:`read_video`.

    Opening reads only the container's header (fps, size, the declared frame count). Each pass over the
    file (:meth:`frames`, :meth:`chunks`, :meth:`take`, :meth:`count`) decodes it again from the start, so
    peak memory is one chunk, whatever the clip's length; a pass raises :class:`VideoError` naming the file
    for a corrupt, truncated or oversized clip, exactly where :func:`read_video` would.
    ``num_frames`` is the declared count until a pass has counted the frames (then the decoded count).
    """

    def __init__(self, path: str | os.PathLike, *, limits: VideoLimits = DEFAULT_LIMITS):
        self.path = Path(path)
        self.limits = limits
        container = _open(self.path, limits)
        try:
            stream = _video_stream(container)
            ctx = stream.codec_context
            self.width, self.height = int(ctx.width), int(ctx.height)
            limits.check_size(self.path, self.width, self.height)
            self.declared = int(stream.frames or 0)
            limits.check_frames(self.path, self.declared, self.width, self.height)
            fps = _stream_fps(stream)
        finally:
            container.close()
        self.fps = fps if fps > 0 else DEFAULT_FPS
        self._counted: int | None = None

    @property
    def num_frames(self) -> int:
        """The decoded frame count once a pass has finished, else the container's (0: it declares none)."""
        return self._counted if self._counted is not None else self.declared

    def count(self) -> int:
        """Decode the whole clip without converting a frame and return (and remember) its frame count."""
        for _ in self._decode(convert=False):
            pass
        return int(self._counted)

    def frames(self):
        """Every frame, in order, as uint8 ``(H, W, 3)`` RGB."""
        for _, rgb in self._decode():
            yield rgb

    def chunks(self, size: int):
        """``(start index, uint8 (k, H, W, 3))`` blocks of at most ``size`` frames, in order."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        block: list[np.ndarray] = []
        start = 0
        for index, rgb in self._decode():
            block.append(rgb)
            if len(block) == size:
                yield start, np.stack(block)
                start, block = index + 1, []
        if block:
            yield start, np.stack(block)

    def take(self, indices) -> dict[int, np.ndarray]:
        """One pass that keeps only the frames at ``indices`` (converted; the rest are decoded, not
        converted): ``{index: uint8 (H, W, 3)}``. Indices past the end are absent from the result."""
        wanted = {int(i) for i in indices}
        kept: dict[int, np.ndarray] = {}
        for index, rgb in self._decode(convert=lambda i: i in wanted):
            if rgb is not None:
                kept[index] = rgb
        return kept

    def read(self) -> Video:
        """The whole clip in memory (what :func:`read_video` returns)."""
        return read_video(self.path, limits=self.limits)

    def _decode(self, convert=True):
        """Yield ``(index, rgb or None)``; ``convert`` is a bool or a predicate of the index."""
        import av
        from av.video.reformatter import VideoReformatter

        path, limits = self.path, self.limits
        container = _open(path, limits)
        count = 0
        try:
            stream = _video_stream(container)
            ctx = stream.codec_context
            width, height = int(ctx.width), int(ctx.height)
            stream.thread_type = _decode_threads(width, height)
            limits.check_size(path, width, height)
            declared = int(stream.frames or 0)
            limits.check_frames(path, declared, width, height)
            fps = _stream_fps(stream)
            # One converter for the whole clip: frame.to_ndarray(format=...) builds a fresh swscale
            # context for every frame, which made the YUV->RGB step 4-6x slower.
            reformatter = VideoReformatter()
            last_end = None
            try:
                for frame in container.decode(stream):
                    if (frame.width, frame.height) != (width, height):
                        if count:
                            raise VideoError(path, f"corrupt: the frame size changes from {width}x{height} to "
                                                   f"{frame.width}x{frame.height} at frame {count}")
                        width, height = frame.width, frame.height  # the codec context guessed wrong
                        limits.check_size(path, width, height)
                        self.width, self.height = width, height
                    limits.check_frames(path, count + 1, width, height)
                    wanted = convert(count) if callable(convert) else convert
                    rgb = reformatter.reformat(frame, format="rgb24").to_ndarray() if wanted else None
                    if frame.time is not None:
                        last_end = frame.time + _frame_seconds(frame, fps)
                    count += 1
                    yield count - 1, rgb
            except av.error.FFmpegError as exc:
                raise VideoError(path, f"corrupt: decoding failed after {count} frame(s): {_short(exc)}") from None
            expected_end = _declared_end(container, stream) if not declared else None
        finally:
            container.close()
        if count == 0:
            raise VideoError(path, "zero frames: the video stream holds no decodable frame")
        if declared and count < declared:
            raise VideoError(path, f"truncated: decoded {count} of the {declared} frames the container declares")
        if expected_end is not None and last_end is not None and fps > 0 and last_end < expected_end - 1.5 / fps:
            raise VideoError(path, f"truncated: frames stop at {last_end:.2f}s of the {expected_end:.2f}s the "
                                   f"container declares")
        self._counted = count


class VideoFile:
    """A video on disk that stands in for a :class:`Video`: frames decoded only when asked for.

    Opening checks the whole file, so a corrupt or truncated file fails here with :func:`read_video`'s
    one-line message. A clip whose declared frames fit in ``in_memory`` bytes of RGB (RVE-Sim's, say) is
    simply decoded into memory then; a larger one is checked by a pass that decodes without converting a
    frame, and :meth:`chunks` and :meth:`take` stream it from the file (memory: one chunk) until
    :attr:`frames` is read, which decodes the whole clip into memory once (later calls use it).
    """

    def __init__(self, path: str | os.PathLike, *, limits: VideoLimits = DEFAULT_LIMITS, in_memory: int = 64 << 20):
        self.path = Path(path)
        self.reader = VideoReader(self.path, limits=limits)
        self.fps = self.reader.fps
        self._frames: np.ndarray | None = None
        declared = self.reader.declared * self.reader.width * self.reader.height * 3
        if 0 < declared <= in_memory:
            self._frames = read_video(self.path, limits=limits).frames
        else:
            self.reader.count()

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = read_video(self.path, limits=self.reader.limits).frames
        return self._frames

    @property
    def loaded(self) -> bool:
        """Whether the frames are in memory."""
        return self._frames is not None

    @property
    def num_frames(self) -> int:
        return int(self._frames.shape[0]) if self._frames is not None else self.reader.num_frames

    @property
    def height(self) -> int:
        return int(self._frames.shape[1]) if self._frames is not None else self.reader.height

    @property
    def width(self) -> int:
        return int(self._frames.shape[2]) if self._frames is not None else self.reader.width

    duration = Video.duration

    def chunks(self, size: int):
        """``(start, uint8 (k, H, W, 3))`` blocks, streamed from the file unless the frames are in memory."""
        if self._frames is not None:
            return Video.chunks(self, size)
        return self.reader.chunks(size)

    def take(self, indices) -> dict[int, np.ndarray]:
        """``{index: frame}`` for the valid ``indices`` (one pass over the file unless in memory)."""
        if self._frames is not None:
            return Video.take(self, indices)
        return self.reader.take(indices)


def read_video(path: str | os.PathLike, *, limits: VideoLimits = DEFAULT_LIMITS) -> Video:
    """Decode every frame of ``path`` to RGB uint8 ``(T, H, W, 3)``.

    Raises :class:`VideoError` naming the file when it is missing, not a video, corrupt, truncated,
    has zero frames, or exceeds ``limits``. A container that declares no frame rate reads as
    ``DEFAULT_FPS`` (8). :class:`VideoReader` streams the same frames chunk by chunk instead.
    """
    reader = VideoReader(path, limits=limits)
    declared = reader.declared
    buffer = np.empty((declared, reader.height, reader.width, 3), np.uint8) if declared and reader.width \
        and reader.height else None
    chunks: list[np.ndarray] = []
    for index, rgb in reader._decode():
        if buffer is not None and rgb.shape != buffer.shape[1:]:
            buffer = np.empty((declared, *rgb.shape), np.uint8)  # the codec context guessed the size wrong
        if buffer is not None and index < len(buffer):
            buffer[index] = rgb
        else:
            chunks.append(rgb)
    if buffer is None:
        frames = np.stack(chunks)
    elif chunks:
        frames = np.concatenate([buffer, np.stack(chunks)])
    else:
        frames = buffer
    return Video(frames, reader.fps)


def _decode_threads(width: int, height: int) -> str:
    """FFmpeg frame threads only for big frames on a machine with cores to spare.

    On 2 busy cores, frame threads were no faster than one thread at any size tried (128x128 to
    1280x720) and sometimes twice as slow (thread start-up, the frame pipeline's delay), while the
    RGB conversion in this thread needs a core anyway. H.264 from x264 has one slice per frame, so
    slice threads do nothing.
    """
    return "AUTO" if width * height >= 640 * 480 and (os.cpu_count() or 1) >= 4 else "NONE"


def _frame_seconds(frame, fps: float) -> float:
    """How long ``frame`` is shown: its own duration when the container gives one, else 1 / fps."""
    duration, time_base = getattr(frame, "duration", None), frame.time_base
    if duration and time_base is not None:
        return float(duration * time_base)
    return 1.0 / fps if fps > 0 else 0.0


def _declared_end(container, stream) -> float | None:
    """When the stream's end time is declared (only trusted for single-stream files), in seconds."""
    if stream.duration is not None and stream.time_base is not None:
        start = stream.start_time or 0
        return float((start + stream.duration) * stream.time_base)
    if len(container.streams) == 1 and container.duration:
        start = container.start_time or 0
        return (start + container.duration) / 1_000_000
    return None


def _as_frames(frames, path) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise VideoError(path, f"cannot write: frames must be shaped (T, H, W, 3), got {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise VideoError(path, f"cannot write: no pixels in frames shaped {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
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


def current_umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux), else by setting and
    restoring it (under a lock, so two threads never both see a zero umask)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def _check_write_options(crf: int, odd: str) -> None:
    if odd not in ("pad", "refuse"):
        raise ValueError(f"odd must be 'pad' or 'refuse', not {odd!r}")
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"crf must be within 0..51 (lower is better), not {crf!r}")


class VideoWriter:
    """Write an H.264/yuv420p mp4 chunk by chunk (browsers play it); memory is one chunk, not the clip.

    Use as a context manager: ``with VideoWriter(path, fps) as out: out.write(chunk)`` where each chunk is
    ``(k, H, W, 3)`` uint8 RGB of one size (other integer types are clipped to 0..255; floats are refused).
    Frames go to a temporary name in the same folder, renamed into place when the block ends without an
    error (so a reader never sees half a video, and a failed write leaves no file and no old file
    damaged); the file gets the mode a plain ``open()`` would give (``0o666`` less the umask).
    ``odd="pad"`` pads odd sizes to even by repeating the last row/column, ``odd="refuse"`` raises.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 8.0, *, crf: int = 18, preset: str = "medium",
                 odd: str = "pad"):
        _check_write_options(crf, odd)
        self.path = Path(path)
        if not np.isfinite(fps) or fps <= 0:
            raise VideoError(self.path, f"cannot write: fps must be a positive number, got {fps}")
        self.fps, self.crf, self.preset, self.odd = fps, int(crf), preset, odd
        self.frames_written = 0
        self._size: tuple[int, int] | None = None
        self._container = self._stream = self._tmp = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, frames) -> None:
        """Append ``(k, H, W, 3)`` frames (or one ``(H, W, 3)`` frame)."""
        import av

        arr = np.asarray(frames)
        if arr.ndim == 3:
            arr = arr[None]
        arr = _as_frames(arr, self.path)
        _, h, w, _ = arr.shape
        if self._size is None:
            if (h % 2 or w % 2) and self.odd == "refuse":
                raise VideoError(self.path, f"cannot write: odd size {w}x{h}; H.264 yuv420p needs even sizes "
                                            "(use odd='pad')")
            self._start(h, w)
        elif (h, w) != self._size:
            self.abort()
            raise VideoError(self.path, f"cannot write: frame size {w}x{h} differs from the first frames' "
                                        f"{self._size[1]}x{self._size[0]}")
        arr = np.ascontiguousarray(pad_to_even(arr))
        try:
            for frame_rgb in arr:
                frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
                self._container.mux(self._stream.encode(frame))
                self.frames_written += 1
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise VideoError(self.path, f"cannot write: {_short(exc)}") from None

    def _start(self, h: int, w: int) -> None:
        import av

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp.mp4", dir=self.path.parent)
            os.close(handle)
            self._tmp = Path(tmp_name)
            os.chmod(self._tmp, 0o666 & ~current_umask())  # mkstemp's 0600 would hide it from the group
        except OSError as exc:
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)
            raise VideoError(self.path, f"cannot write: {_short(exc)}") from None
        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = w + w % 2, h + h % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": self.preset}
            # x264 frame threads, as the ffmpeg CLI uses (PyAV would pick slice threads).
            stream.codec_context.thread_type = "AUTO"
            self._stream = stream
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise VideoError(self.path, f"cannot write: {_short(exc)}") from None
        self._size = (h, w)

    def close(self) -> Path:
        """Flush the encoder and move the file into place; returns its path."""
        import av

        if self._container is None:
            if self._tmp is None:
                raise VideoError(self.path, "cannot write: no frames were written")
            return self.path
        try:
            self._container.mux(self._stream.encode())
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except (av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise VideoError(self.path, f"cannot write: {_short(exc)}") from None
        return self.path

    def abort(self) -> None:
        """Stop and remove the temporary file; the target path is left as it was."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # closing a half-written container may fail; the file goes anyway
                pass
            self._container = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


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

    ``frames`` is ``(T, H, W, 3)`` uint8 RGB (other integer types are clipped to 0..255; floats are
    refused: convert them with :func:`~revise.video.to_uint8`). ``fps`` may be fractional (29.97).
    The file is written to a temporary name in the same folder and renamed, so a reader never sees
    half a video; its mode follows the umask. ``odd="pad"`` pads odd sizes to even, ``odd="refuse"``
    raises :class:`VideoError`. :class:`VideoWriter` writes chunk by chunk instead.
    """
    _check_write_options(crf, odd)
    path = Path(path)
    arr = _as_frames(frames, path)
    writer = VideoWriter(path, fps, crf=crf, preset=preset, odd=odd)
    try:
        writer.write(arr)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
