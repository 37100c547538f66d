"""GIF and PNG contact-sheet export, checked by opening the results with PIL."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageSequence

from footage import clip
from revise.video import contact_sheet, read_video, save_gif


def coloured_frames(num_frames: int, height: int = 24, width: int = 32) -> np.ndarray:
    """Solid frames, each a distinct colour, so no GIF frame is merged with the next."""
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frames[t] = (40 + 20 * t % 200, 200 - 15 * t % 180, 90 + 30 * t % 150)
    return frames


def test_gif_has_every_frame_size_timing_and_loop(tmp_path):
    frames = coloured_frames(6)
    path = save_gif(tmp_path / "sub" / "clip.gif", frames, fps=10)
    assert path == tmp_path / "sub" / "clip.gif"
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 6 and gif.size == (32, 24)
        assert gif.info["loop"] == 0
        durations = []
        for t, frame in enumerate(ImageSequence.Iterator(gif)):
            durations.append(frame.info["duration"])
            rgb = np.asarray(frame.convert("RGB"))
            assert np.abs(rgb.astype(int) - frames[t].astype(int)).max() <= 4
    assert durations == [100] * 6


def test_gif_of_a_real_clip(tmp_path):
    video = read_video(clip("carphone_distorted.mp4"))
    frames = video.frames[::20]
    path = save_gif(tmp_path / "carphone.gif", frames, fps=video.fps)
    with Image.open(path) as gif:
        assert gif.n_frames == len(frames) and gif.size == (176, 144)
        first = np.asarray(gif.convert("RGB")).astype(float)
    assert np.abs(first - frames[0]).mean() < 12  # a 256-colour palette stays close


@pytest.mark.parametrize("frames, fps, match", [
    (np.zeros((0, 4, 4, 3), np.uint8), 8, "T >= 1"),
    (np.zeros((2, 4, 4), np.uint8), 8, "T, H, W, 3"),
    (np.zeros((2, 4, 4, 3), np.float32), 8, "uint8"),
    (np.zeros((2, 4, 4, 3), np.uint8), 0, "fps"),
])
def test_gif_refuses_bad_input(tmp_path, frames, fps, match):
    with pytest.raises(ValueError, match=match):
        save_gif(tmp_path / "bad.gif", frames, fps=fps)
    assert not (tmp_path / "bad.gif").exists()


def test_contact_sheet_layout_and_png(tmp_path):
    wide = coloured_frames(20, 30, 60)
    square = coloured_frames(3, 40, 40)
    path = tmp_path / "sheets" / "sheet.png"
    image = contact_sheet([("source: a fairly long label that must wrap over lines", wide), ("edited", square)],
                          path, k=4, tile=50, label_width=120, gap=2)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] == 2 * (50 + 2) + 2
    assert image.shape[1] == 120 + 4 * (100 + 2)  # the wide row: 4 tiles 100 px wide
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (image.shape[1], image.shape[0])
        np.testing.assert_array_equal(np.asarray(png.convert("RGB")), image)
    # First tile of row one shows frame 0 of the wide clip; the square row has only 3 tiles.
    tile = image[2:52, 120:220].astype(int)
    assert np.abs(tile - wide[0, 0, 0].astype(int)).max() <= 2  # solid colour frames
    row2_tile = image[54:104, 120:170].astype(int)
    assert np.abs(row2_tile - square[0, 0, 0].astype(int)).max() <= 2
    beyond = image[54:104, 120 + 3 * 52 + 5:]
    assert (beyond == 250).all()  # background where the 4th tile would be
    assert (image[2:50, :110] < 100).any()  # the label is drawn


def test_contact_sheet_without_path_and_unicode_label(tmp_path):
    image = contact_sheet([("résumé → 日本 ✓", coloured_frames(2))], k=8)
    assert image.shape[0] == 96 + 4
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet_refuses_bad_rows():
    with pytest.raises(ValueError, match="at least one row"):
        contact_sheet([])
    with pytest.raises(ValueError, match="'empty'"):
        contact_sheet([("empty", np.zeros((0, 8, 8, 3), np.uint8))])
    with pytest.raises(ValueError, match="'floats'"):
        contact_sheet([("floats", np.zeros((2, 8, 8, 3), np.float32))])
