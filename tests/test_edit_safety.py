"""`revise edit` never silently damages: it refuses to write over its input, replaces an existing output only
with --overwrite / -y, writes files the umask allows others to read, and warns on clips outside RVE-Sim."""

from __future__ import annotations

import hashlib
import os

import pytest

from footage import clip
from revise.cli.main import main as cli_main
from revise.sim import generate_dataset
from revise.video import read_video


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    generate_dataset(root, per_dimension=1, seed=2, split="test", dimensions=["rave/causal"])
    return next((root / "videos").glob("*_src.mp4"))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edit(capsys, video, out, *extra) -> tuple[int, str, str]:
    rc = cli_main(["edit", "--video", str(video), "--instruction", "What if the red ball had never been there?",
                   "-o", str(out), "--steps", "2", *extra])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _one_line_error(err: str, text: str) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err and text in err, err


def test_the_output_may_not_be_the_input(source, tmp_path, capsys, one_thread):
    video = tmp_path / "in.mp4"
    video.write_bytes(source.read_bytes())
    before = _digest(video)
    os.link(video, tmp_path / "hard.mp4")
    (tmp_path / "soft.mp4").symlink_to(video)
    for out in (video, tmp_path / "." / "in.mp4", tmp_path / "hard.mp4", tmp_path / "soft.mp4"):
        for extra in ((), ("-y",)):  # not even with --overwrite
            rc, _, err = _edit(capsys, video, out, *extra)
            assert rc == 2
            _one_line_error(err, "the output is the input video")
    assert _digest(video) == before


def test_an_existing_output_is_replaced_only_with_overwrite(source, tmp_path, capsys, one_thread):
    out = tmp_path / "edit.mp4"
    out.write_bytes(b"someone else's file")
    rc, _, err = _edit(capsys, source, out)
    assert rc == 2
    _one_line_error(err, "already exists; pass --overwrite (-y)")
    assert out.read_bytes() == b"someone else's file"
    for flag in ("--overwrite", "-y"):
        rc, stdout, err = _edit(capsys, source, out, flag)
        assert rc in (0, None), err
        assert stdout.strip() == str(out) and read_video(out).frames.shape == read_video(source).frames.shape
    assert "warning" not in err  # an RVE-Sim clip is in the model's world
    rc, _, err = _edit(capsys, source, tmp_path)
    assert rc == 2
    _one_line_error(err, "the output is a folder")


def test_written_videos_follow_the_umask(source, tmp_path, capsys, one_thread):
    previous = os.umask(0o022)
    try:
        rc, _, err = _edit(capsys, source, tmp_path / "shared.mp4")
    finally:
        os.umask(previous)
    assert rc in (0, None), err
    assert (tmp_path / "shared.mp4").stat().st_mode & 0o777 == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_a_clip_outside_rve_sim_gets_one_warning_line(tmp_path, capsys, one_thread):
    real = clip("carphone_pristine.mp4")
    before = _digest(real)
    rc, stdout, err = _edit(capsys, real, tmp_path / "car.mp4")
    assert rc in (0, None), err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "outside RVE-Sim's world" in warnings[0], err
    assert "wan-vace" in warnings[0] and "wan-v2v" in warnings[0]
    assert stdout.strip() == str(tmp_path / "car.mp4") and _digest(real) == before
