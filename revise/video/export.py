"""Exports for reports and docs: animated GIFs and labelled PNG contact sheets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .frames import resize_frames, sample_frames


def save_gif(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0, loop: int = 0) -> Path:
    """Write ``(T, H, W, 3)`` uint8 frames as an animated GIF; ``loop=0`` repeats forever.

    GIF stores each frame's delay in hundredths of a second, so the rate is approximate (8 fps is
    stored as 120 ms per frame). Each frame gets its own 256-colour palette.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"save_gif needs (T, H, W, 3) frames with T >= 1, got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"save_gif needs uint8 frames, got {frames.dtype} (convert with to_uint8)")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    duration_ms = int(round(1000.0 / fps))
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=loop,
                   optimize=False)
    return path


def contact_sheet(
    rows: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike | None = None,
    *,
    k: int = 8,
    tile: int = 96,
    label_width: int = 220,
    gap: int = 2,
) -> np.ndarray:
    """A grid: one row per ``(label, frames)`` pair, ``k`` uniformly sampled frames per row.

    Each tile is ``tile`` pixels high (width kept in proportion). Returns the RGB image and, when
    ``path`` is given, writes it as PNG.
    """
    if not rows:
        raise ValueError("contact_sheet needs at least one row")
    prepared = []
    for label, frames in rows:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0 or frames.dtype != np.uint8:
            raise ValueError(f"contact_sheet row {label!r}: need uint8 (T, H, W, 3) frames with T >= 1, "
                             f"got {frames.dtype} {frames.shape}")
        picked = sample_frames(frames, k)
        h, w = picked.shape[1:3]
        tile_w = max(1, round(tile * w / h))
        prepared.append((label, resize_frames(picked, tile, tile_w)))
    width = label_width + max(len(f) * (f.shape[2] + gap) for _, f in prepared)
    height = len(prepared) * (tile + gap) + gap
    sheet = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    for r, (label, frames) in enumerate(prepared):
        y = gap + r * (tile + gap)
        _draw_wrapped(draw, label, 4, y + 2, label_width - 8, tile - 4)
        for c, frame in enumerate(frames):
            sheet.paste(Image.fromarray(frame), (label_width + c * (frame.shape[1] + gap), y))
    image = np.asarray(sheet)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(path, format="PNG", optimize=True)
    return image


def _draw_wrapped(draw: ImageDraw.ImageDraw, text: str, x: int, y: int, width: int, height: int) -> None:
    """Greedy word wrap in the default bitmap font (about 6 px per character, 11 px per line)."""
    per_line = max(8, width // 6)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            if len(line) + len(word) + 1 > per_line and line:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
    for i, line in enumerate(lines[: max(1, height // 11)]):
        draw.text((x, y + 11 * i), line, fill=(20, 20, 20))
