"""The JSONL manifest: round trips, every bad-row case with its line number, the ``revise data validate`` CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from revise.cli.main import main
from revise.data import SUBSETS, Manifest, Sample, load_manifest, resolve_inside, write_manifest
from revise.errors import ManifestError


@pytest.fixture
def bench(tmp_path) -> Path:
    """A benchmark folder with two (placeholder) videos and a state file."""
    root = tmp_path / "bench"
    (root / "videos").mkdir(parents=True)
    (root / "states").mkdir()
    for name in ("a_src.mp4", "a_tgt.mp4", "b_src.mp4"):
        (root / "videos" / name).write_bytes(b"video")
    (root / "states" / "a.json").write_text("{}")
    return root


def good_row(sample_id: str = "rave-causal-0001", **changes) -> dict:
    row = {"id": sample_id, "subset": "rave", "dimension": "causal",
           "instruction": "What if the red ball had never been pushed?", "source": "videos/a_src.mp4"}
    row.update(changes)
    return {k: v for k, v in row.items() if v is not None}


def write_lines(path: Path, lines: list[object]) -> Path:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def test_subsets_are_the_papers():
    assert SUBSETS == {"rave": ("causal", "spatial", "temporal", "commonsense"),
                       "icvg": ("camera", "causal", "emotional", "commonsense")}


def test_load_resolves_paths_and_keeps_order(bench):
    path = write_lines(bench / "manifest.jsonl", [
        good_row(target="videos/a_tgt.mp4", state="states/a.json", reference_answer="it stays still",
                 metadata={"seed": 3}),
        "",
        good_row("icvg-camera-0001", subset="icvg", dimension="camera", source="videos/b_src.mp4",
                 instruction="  Show the next shot from above.  "),
    ])
    manifest = load_manifest(path)
    assert isinstance(manifest, Manifest) and len(manifest) == 2 and manifest.root == bench
    first, second = list(manifest)
    assert first.source == (bench / "videos" / "a_src.mp4").resolve() and first.source.is_absolute()
    assert first.target == (bench / "videos" / "a_tgt.mp4").resolve()
    assert first.state == (bench / "states" / "a.json").resolve()
    assert (first.reference_answer, first.metadata, first.group) == ("it stays still", {"seed": 3}, "rave/causal")
    assert (second.target, second.state, second.reference_answer, second.metadata) == (None, None, None, {})
    assert second.instruction == "Show the next shot from above."
    assert set(manifest.by_id()) == {"rave-causal-0001", "icvg-camera-0001"}


def test_write_then_load_round_trip_is_byte_stable(bench):
    samples = [
        Sample("rave-spatial-1", "rave", "spatial", "Imagine the box were left of the ball.",
               bench / "videos/a_src.mp4",
               target=bench / "videos/a_tgt.mp4", state=bench / "states/a.json", metadata={"k": [1, 2]}),
        Sample("icvg-emotional-1", "icvg", "emotional", "Show the moment after the news.", bench / "videos/b_src.mp4",
               reference_answer="joy"),
    ]
    path = write_manifest(samples, bench / "manifest.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["source"] == "videos/a_src.mp4" and rows[0]["state"] == "states/a.json"
    assert "target" not in rows[1] and "metadata" not in rows[1]
    loaded = load_manifest(path)
    assert [s.id for s in loaded] == ["rave-spatial-1", "icvg-emotional-1"]
    assert loaded.samples[0].target == (bench / "videos/a_tgt.mp4").resolve()
    first_bytes = path.read_bytes()
    write_manifest(loaded, path)
    assert path.read_bytes() == first_bytes
    assert sorted(p.name for p in bench.iterdir()) == ["manifest.jsonl", "states", "videos"]  # no temporary left


def test_every_bad_row_is_reported_with_its_line(bench, tmp_path):
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"video")
    os.symlink(outside, bench / "videos" / "link_out.mp4")
    os.symlink(tmp_path, bench / "dir_link")
    lines = [
        good_row(),                                                          # 1 fine
        good_row("r2", subset="ravee"),                                      # 2 unknown subset
        good_row("r3", dimension="camera"),                                  # 3 camera is ICVG-only
        good_row(),                                                          # 4 duplicate of line 1
        good_row("r5", source="videos/missing.mp4"),                         # 5 missing file
        good_row("r6", source="../outside.mp4"),                             # 6 escapes with ..
        good_row("r7", source=str(outside)),                                 # 7 absolute
        good_row("r8", source="videos/link_out.mp4"),                        # 8 escapes through a symlink
        good_row("r9", instruction="   "),                                   # 9 empty instruction
        '{"id": "r10", "subset": ',                                          # 10 invalid JSON
        "",                                                                  # 11 blank: skipped
        "[1, 2]",                                                            # 12 not an object
        good_row("r13", source="dir_link/outside.mp4"),                      # 13 escapes through a linked folder
        good_row("r14", target="videos/missing_tgt.mp4", colour="red"),      # 14 missing target, unknown key
        good_row("bad id!"),                                                 # 15 bad id characters
        good_row("r16", subset=None),                                        # 16 no subset
        good_row("r17", source="videos"),                                    # 17 a directory
        good_row("r18", metadata=[1], reference_answer=3),                   # 18 wrong types
        good_row("r19", source=None),                                        # 19 no source
    ]
    path = write_lines(bench / "manifest.jsonl", lines)
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(path)
    problems = excinfo.value.problems
    expected = {
        2: "unknown subset 'ravee'", 3: "unknown dimension 'camera' for subset 'rave'",
        4: "duplicate id 'rave-causal-0001' (first on line 1)", 5: "source: missing file 'videos/missing.mp4'",
        6: "escapes the benchmark folder", 7: "is absolute", 8: "escapes the benchmark folder",
        9: "empty instruction", 10: "invalid JSON", 12: "not a JSON object", 13: "escapes the benchmark folder",
        15: "may hold only letters", 16: "missing 'subset'", 17: "is a directory", 18: "metadata must be an object",
        19: "missing 'source'",
    }
    for line, text in expected.items():
        assert any(p.startswith(f"line {line}: ") and text in p for p in problems), (line, text, problems)
    line14 = [p for p in problems if p.startswith("line 14: ")]
    assert any("target: missing file" in p for p in line14) and any("unknown key(s) ['colour']" in p for p in line14)
    assert any(p.startswith("line 18: ") and "reference_answer must be a string" in p for p in problems)
    assert not any(p.startswith(("line 1: ", "line 11: ")) for p in problems)
    message = str(excinfo.value)
    assert message.splitlines()[0] == f"{path}: {len(problems)} invalid row(s)"
    assert len(message.splitlines()) == len(problems) + 1


def test_symlinks_that_stay_inside_are_fine(bench):
    os.symlink(bench / "videos" / "a_src.mp4", bench / "videos" / "alias.mp4")
    manifest = load_manifest(write_lines(bench / "manifest.jsonl", [good_row(source="videos/alias.mp4")]))
    assert manifest.samples[0].source == (bench / "videos" / "a_src.mp4").resolve()


def test_manifest_reached_through_a_symlinked_folder(bench, tmp_path):
    write_lines(bench / "manifest.jsonl", [good_row()])
    os.symlink(bench, tmp_path / "alias")
    assert len(load_manifest(tmp_path / "alias" / "manifest.jsonl")) == 1


def test_non_utf8_line_and_bom(bench):
    path = bench / "manifest.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(good_row()).encode() + b"\n" + b'{"id": "caf\xe9"}\n')
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(path)
    assert excinfo.value.problems == ["line 2: not UTF-8 text (byte 11)"]


@pytest.mark.parametrize("make, text", [
    (lambda root: root / "nope.jsonl", "does not exist"),
    (lambda root: root / "videos", "is a directory"),
    (lambda root: write_lines(root / "empty.jsonl", ["", "  "]), "holds no sample"),
])
def test_whole_file_problems(bench, make, text):
    with pytest.raises(ManifestError, match=text):
        load_manifest(make(bench))


def test_check_files_false_still_refuses_escapes(bench):
    path = write_lines(bench / "manifest.jsonl", [good_row(source="videos/later.mp4")])
    assert load_manifest(path, check_files=False).samples[0].source.name == "later.mp4"
    write_lines(path, [good_row(source="../x.mp4")])
    with pytest.raises(ManifestError, match="line 1: source: path '../x.mp4' escapes"):
        load_manifest(path, check_files=False)


def test_probe_videos_reports_files_that_are_not_videos(bench):
    path = write_lines(bench / "manifest.jsonl", [good_row(), good_row("r2", target="videos/a_tgt.mp4")])
    assert len(load_manifest(path)) == 2  # placeholders pass the existence check
    with pytest.raises(ManifestError) as excinfo:
        load_manifest(path, probe_videos=True)
    problems = excinfo.value.problems
    assert problems[0].startswith("line 1: source: not a video")
    assert [p.split(":")[0] for p in problems] == ["line 1", "line 2", "line 2"]


def test_write_refuses_what_could_not_be_loaded(bench, tmp_path):
    elsewhere = tmp_path / "elsewhere.mp4"
    good = Sample("ok", "rave", "causal", "Why?", bench / "videos/a_src.mp4")
    bad = [
        good,
        Sample("ok", "rave", "causal", "Why?", bench / "videos/a_src.mp4"),
        Sample("far", "rave", "causal", "Why?", elsewhere),
        Sample("dim", "icvg", "spatial", "Why?", bench / "videos/a_src.mp4"),
        Sample("empty", "rave", "causal", "", bench / "videos/a_src.mp4"),
    ]
    path = bench / "manifest.jsonl"
    with pytest.raises(ManifestError) as excinfo:
        write_manifest(bad, path)
    problems = excinfo.value.problems
    assert any(p.startswith("sample 1 ('ok'): duplicate id") for p in problems)
    assert any(p.startswith("sample 2 ('far'): source: path") and "escapes" in p for p in problems)
    assert any(p.startswith("sample 3 ('dim'): unknown dimension 'spatial'") for p in problems)
    assert any(p.startswith("sample 4 ('empty'): empty instruction") for p in problems)
    assert not path.exists()
    with pytest.raises(ManifestError, match="no sample"):
        write_manifest([], path)
    assert not path.exists()


def test_write_takes_relative_sample_paths_from_the_working_directory(bench, monkeypatch):
    monkeypatch.chdir(bench.parent)
    path = write_manifest([Sample("a", "rave", "temporal", "When?", Path("bench/videos/a_src.mp4"))],
                          Path("bench/manifest.jsonl"))
    assert json.loads(path.read_text())["source"] == "videos/a_src.mp4"


def test_resolve_inside(bench, tmp_path):
    assert resolve_inside(bench, "videos/a_src.mp4") == (bench / "videos/a_src.mp4").resolve()
    assert resolve_inside(bench, "videos/../videos/a_src.mp4") == (bench / "videos/a_src.mp4").resolve()
    for value, text in (("../x", "escapes"), ("/etc/passwd", "absolute"), ("~/x", "absolute"), ("", "non-empty"),
                        ("videos/../../x", "escapes")):
        with pytest.raises(ValueError, match=text):
            resolve_inside(bench, value)
    with pytest.raises(ValueError):
        resolve_inside(bench, 3)


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_validate_ok(bench, capsys):
    path = write_lines(bench / "manifest.jsonl", [good_row(), good_row("i1", subset="icvg", dimension="camera")])
    assert main(["data", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 2 valid samples" in out and "icvg/camera: 1" in out and "rave/causal: 1" in out


def test_cli_validate_bad_rows(bench, capsys):
    path = write_lines(bench / "manifest.jsonl", [good_row(), good_row("r2", subset="nope"), good_row()])
    assert main(["data", "validate", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert lines[0] == f"error: {path}: 2 invalid row(s)"
    assert lines[1].strip().startswith("line 2: unknown subset 'nope'")
    assert lines[2].strip().startswith("line 3: duplicate id")
    assert "Traceback" not in captured.err and captured.out == ""


def test_cli_validate_probe(bench, capsys):
    path = write_lines(bench / "manifest.jsonl", [good_row()])
    assert main(["data", "validate", "--probe", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: 1 invalid row(s)") and "line 1: source: not a video" in err


def test_cli_validate_missing_file(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'none.jsonl'}") and "does not exist" in err
    assert "Traceback" not in err


def test_whole_file_problem_is_one_line(tmp_path):
    from revise.data import load_manifest
    from revise.errors import ManifestError

    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.jsonl")
    assert "\n" not in str(info.value) and "nope.jsonl" in str(info.value)
