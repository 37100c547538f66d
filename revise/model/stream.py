"""Editing a clip of any length and size in bounded memory: which frames the model reads, and the output
rendered chunk by chunk.

The unified model reads a fixed handful of a clip's frames: the generator ``num_frames`` of them (nearest
frames, :func:`~revise.video.match_length`'s choice), the VLM ``frames`` of them
(:func:`~revise.model.vlm.prepare_video`'s choice) and detail transfer the first and the last. So an edit
is two passes over the source: one that keeps only those frames (:func:`needed_indices`, the ``take`` of a
frame source), then, once the model has made its clean estimate at model resolution, one that renders
each chunk of output frames from the estimate and the source frames at the same times
(:class:`EditRenderer`) and hands it on (to :class:`~revise.video.VideoWriter` in ``revise edit``). Peak
memory is a chunk of frames plus the handful, whatever the clip's length; the frames are identical to
those of a whole-clip computation.

A *frame source* has ``num_frames``, ``height``, ``width``, ``take(indices) -> {index: frame}`` and
``chunks(size) -> (start, frames)``: :class:`~revise.video.VideoReader` for a file, :class:`ArrayFrames`
for frames already in memory.
"""

from __future__ import annotations

import numpy as np

from ..video import resize_frames, sample_indices, time_indices, to_uint8
from .detail import DetailTransfer

CHUNK_BYTES = 32 << 20  # source frames per rendered chunk: about this many bytes of uint8 RGB


class ArrayFrames:
    """Frames in memory, uint8 ``(T, H, W, 3)``, as a frame source."""

    def __init__(self, frames: np.ndarray):
        self.frames = frames
        self.num_frames, self.height, self.width = (int(s) for s in frames.shape[:3])

    def take(self, indices) -> dict[int, np.ndarray]:
        return {int(i): self.frames[int(i)] for i in set(int(i) for i in indices) if 0 <= int(i) < self.num_frames}

    def chunks(self, size: int):
        for start in range(0, self.num_frames, size):
            yield start, self.frames[start:start + size]


def vlm_indices(num_frames: int, k: int) -> list[int]:
    """The frames the VLM samples from a clip (``prepare_video``'s choice: uniform, repeated when short)."""
    if num_frames == k:
        return list(range(k))
    if num_frames > k:
        return sample_indices(num_frames, k)
    return np.round(np.linspace(0, num_frames - 1, k)).astype(int).tolist()


def chunk_size(height: int, width: int) -> int:
    """Frames per rendered chunk: :data:`CHUNK_BYTES` of uint8 RGB, between 1 and 64."""
    return max(1, min(64, CHUNK_BYTES // max(1, height * width * 3)))


def needed_indices(num_frames: int, generator_frames: int, vlm_frames: int) -> tuple[np.ndarray, list[int], list[int]]:
    """``(generator indices, VLM indices, every index read)`` of a clip of ``num_frames`` frames; the last also
    holds the first and the last frame (detail transfer's held candidates)."""
    gen = time_indices(num_frames, generator_frames)
    vlm = vlm_indices(num_frames, vlm_frames)
    return gen, vlm, sorted({0, num_frames - 1, *gen.tolist(), *vlm})


class EditRenderer:
    """One clean estimate at model resolution -> output frames at the source's length and size, any chunk.

    ``video``: the estimate ``(3, t, h, w)`` in [-1, 1] (a tensor); ``num_frames`` / ``height`` / ``width``: the
    output's; ``first`` / ``last``: the source's first and last frames (uint8, full size; only read with
    ``detail`` > 0). Output frame ``i`` shows the estimate's nearest frame in time. ``detail`` = 0: the
    estimate as uint8, bilinear up (what :meth:`ReviseGenerator.tensor_to_frames` gives); > 0: detail
    transfer (:mod:`revise.model.detail`), with ``restore`` > 0 its low-frequency restore too.
    """

    def __init__(self, video, num_frames: int, height: int, width: int, first: np.ndarray | None = None,
                 last: np.ndarray | None = None, detail: float = 0.0, restore: float = 0.0):
        self.small = ((video.detach().float().clamp(-1, 1) + 1) / 2).permute(1, 2, 3, 0).cpu().numpy()
        self.num_frames, self.height, self.width = int(num_frames), int(height), int(width)
        self.index = time_indices(self.small.shape[0], self.num_frames)  # match_length's nearest frames
        self.detail = float(detail)
        self.restore = float(restore)
        self.transfer = DetailTransfer(first, last, self.small.shape[1:3], self.detail, self.restore) \
            if self.detail > 0 else None

    def render(self, indices, source: np.ndarray | None = None) -> np.ndarray:
        """Output frames at ``indices`` (uint8 ``(k, H, W, 3)``); ``source``: the source's frames there (needed
        with ``detail`` > 0)."""
        small = self.small[self.index[np.asarray(indices, dtype=int)]]
        if self.transfer is None:
            return np.ascontiguousarray(resize_frames(to_uint8(small), self.height, self.width))
        if source is None:
            raise ValueError("detail transfer needs the source's frames at the rendered times")
        return self.transfer.render(small, np.asarray(source))

    def frames(self, source, chunk: int | None = None):
        """``(start, uint8 (k, H, W, 3))`` over every output frame, reading the source's frames chunk by chunk
        (without detail transfer the source is not read)."""
        chunk = chunk or chunk_size(self.height, self.width)
        if self.transfer is None:
            for start in range(0, self.num_frames, chunk):
                stop = min(self.num_frames, start + chunk)
                yield start, self.render(range(start, stop))
            return
        done = 0
        for start, frames in source.chunks(chunk):
            stop = min(self.num_frames, start + len(frames))
            if stop > start:
                yield start, self.render(range(start, stop), frames[:stop - start])
            done = stop
        if done != self.num_frames:
            raise ValueError(f"the source gave {done} frames on the second pass, {self.num_frames} on the first")


def ahead(items, depth: int = 2):
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead of the consumer.

    Decoding and detail transfer (PyAV, OpenCV and numpy release the GIL) then overlap with the consumer's
    work (the H.264 encoder in ``revise edit``). An exception in the producer is raised in the consumer, at
    the item where it happened; a consumer that stops early stops the producer.
    """
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            box.put((done, exc))

    worker = threading.Thread(target=produce, name="revise-render", daemon=True)
    worker.start()
    try:
        while True:
            item, error = box.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
