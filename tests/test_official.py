"""The importer of the official ReViSE data-prep JSON, and ``revise data import-official``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from footage import clip
from revise.cli.main import main
from revise.data import import_official, load_manifest, parse_type
from revise.errors import ManifestError


@pytest.mark.parametrize("value, subset, expected", [
    ("spatial", None, ("rave", "spatial")),
    ("temporal", None, ("rave", "temporal")),
    ("camera", None, ("icvg", "camera")),
    ("Emotional", None, ("icvg", "emotional")),
    ("causal", "rave", ("rave", "causal")),
    ("commonsense", "icvg", ("icvg", "commonsense")),
    ("rave_causal", None, ("rave", "causal")),
    ("ICVG-camera", None, ("icvg", "camera")),
    ("rave/commonsense", None, ("rave", "commonsense")),
    ("icvg: causal", None, ("icvg", "causal")),
    ("causal_icvg", None, ("icvg", "causal")),
    ("Causal Reasoning", "icvg", ("icvg", "causal")),
    ("common_sense", "rave", ("rave", "commonsense")),
    ("rave_causal", "rave", ("rave", "causal")),
])
def test_parse_type(value, subset, expected):
    assert parse_type(value, subset) == expected


@pytest.mark.parametrize("value, subset, text", [
    ("causal", None, "both rave and icvg"),
    ("commonsense", None, "both rave and icvg"),
    ("rave_camera", None, "'camera' is not in subset 'rave'"),
    ("spatial", "icvg", "'spatial' is not in subset 'icvg'"),
    ("physics", None, "cannot read"),
    ("rave_icvg_causal", None, "cannot read"),
    ("rave_causal", "icvg", "names subset 'rave' but subset='icvg'"),
    ("", None, "missing 'type'"),
    (None, None, "missing 'type'"),
    (3, None, "missing 'type'"),
    ("causal", "vbench", "unknown subset 'vbench'"),
])
def test_parse_type_refuses(value, subset, text):
    with pytest.raises(ValueError, match=text):
        parse_type(value, subset)


@pytest.fixture
def official(tmp_path) -> tuple[Path, Path]:
    """An official-style JSON (absolute and relative paths) beside two real H.264 clips."""
    data = tmp_path / "official"
    (data / "clips").mkdir(parents=True)
    shutil.copy(clip("carphone_distorted.mp4"), data / "clips" / "src.mp4")
    shutil.copy(clip("carphone_distorted.mp4"), data / "clips" / "tgt.MP4")
    entries = [
        {"source_video_path": str(data / "clips" / "src.mp4"), "target_video_path": str(data / "clips" / "tgt.MP4"),
         "instruction": "What if the driver had hung up?", "type": "rave_causal"},
        {"source_video_path": "clips/src.mp4", "target_video_path": "clips/tgt.MP4",
         "instruction": "Show the next shot.", "type": "camera"},
        {"source_video_path": "clips/src.mp4", "target_video_path": None,
         "instruction": " Imagine the car turning left. ", "type": "spatial"},
    ]
    path = data / "data.json"
    path.write_text(json.dumps(entries))
    return path, tmp_path / "bench"


def test_import_writes_a_loadable_manifest(official):
    json_path, out = official
    manifest_path = import_official(json_path, out)
    assert manifest_path == out / "manifest.jsonl"
    manifest = load_manifest(manifest_path, probe_videos=True)
    ids = [s.id for s in manifest]
    assert ids == ["official-rave-causal-0000", "official-icvg-camera-0001", "official-rave-spatial-0002"]
    first, second, third = manifest
    assert (first.subset, first.dimension, first.instruction) == ("rave", "causal", "What if the driver had hung up?")
    assert first.source == (out / "videos" / "official-rave-causal-0000_src.mp4").resolve()
    assert first.target == (out / "videos" / "official-rave-causal-0000_tgt.mp4").resolve()
    assert first.source.read_bytes() == clip("carphone_distorted.mp4").read_bytes()
    assert first.metadata == {"official_type": "rave_causal", "official_index": 0,
                              "official_source": str(json_path.parent / "clips" / "src.mp4"),
                              "official_target": str(json_path.parent / "clips" / "tgt.MP4")}
    assert (second.subset, second.dimension) == ("icvg", "camera")
    assert third.target is None and third.instruction == "Imagine the car turning left."
    rows = [json.loads(line) for line in manifest_path.read_text().splitlines()]
    assert all(not Path(row["source"]).is_absolute() for row in rows)


def test_import_again_into_the_same_folder(official):
    json_path, out = official
    first = import_official(json_path, out).read_bytes()
    assert import_official(json_path, out).read_bytes() == first


def test_import_from_its_own_output_keeps_the_videos(official, tmp_path):
    """Re-importing entries whose paths are the very files of a previous import must not delete them."""
    json_path, out = official
    manifest = load_manifest(import_official(json_path, out))
    again = [{"source_video_path": str(s.source), "target_video_path": None, "instruction": s.instruction,
              "type": f"{s.subset}_{s.dimension}"} for s in manifest]
    again_path = tmp_path / "again.json"
    again_path.write_text(json.dumps(again))
    load_manifest(import_official(again_path, out), probe_videos=True)


def test_video_root_and_subset(official, tmp_path):
    json_path, _ = official
    entries = [{"source_video_path": "src.mp4", "target_video_path": "tgt.MP4", "instruction": "Why?",
                "type": "causal"}]
    elsewhere = tmp_path / "ambiguous.json"
    elsewhere.write_text(json.dumps(entries))
    manifest = load_manifest(import_official(elsewhere, tmp_path / "out", subset="icvg",
                                             video_root=json_path.parent / "clips", id_prefix="mine"))
    assert [s.id for s in manifest] == ["mine-icvg-causal-0000"]


def test_every_bad_entry_is_reported_by_index_and_nothing_is_written(official):
    json_path, out = official
    entries = json.loads(json_path.read_text())
    entries += [
        {"source_video_path": "clips/src.mp4", "instruction": "Why?", "type": "causal"},          # 3 ambiguous
        {"source_video_path": "clips/gone.mp4", "instruction": "Why?", "type": "spatial"},        # 4 missing source
        {"source_video_path": "clips/src.mp4", "target_video_path": "/no/such/tgt.mp4",
         "instruction": "", "type": "temporal"},                                                    # 5 two problems
        ["not", "an", "object"],                                                                    # 6
        {"target_video_path": "clips/tgt.MP4", "instruction": "Why?", "type": "camera"},          # 7 no source
        {"source_video_path": "clips/src.mp4", "instruction": "Why?", "type": "rave_camera"},     # 8 wrong subset
    ]
    json_path.write_text(json.dumps(entries))
    with pytest.raises(ManifestError) as excinfo:
        import_official(json_path, out)
    problems = excinfo.value.problems
    assert problems[0].startswith("entry 3: type 'causal' is a dimension of both rave and icvg")
    assert problems[1] == (f"entry 4: source_video_path 'clips/gone.mp4' does not exist "
                           f"(relative to {json_path.parent})")
    assert problems[2] == "entry 5: empty instruction"
    assert problems[3] == "entry 5: target_video_path '/no/such/tgt.mp4' does not exist"
    assert problems[4] == "entry 6: not a JSON object"
    assert problems[5] == "entry 7: missing source_video_path"
    assert problems[6].startswith("entry 8: dimension 'camera' is not in subset 'rave'")
    assert len(problems) == 7
    assert str(excinfo.value).splitlines()[0] == f"{json_path}: 7 invalid row(s)"
    assert not out.exists()


@pytest.mark.parametrize("content, text", [
    (None, "does not exist"),
    ("{not json", "line 1: invalid JSON"),
    ('{"source_video_path": "a.mp4"}', "expected a JSON list"),
    ("[]", "the list is empty"),
])
def test_whole_file_problems(tmp_path, content, text):
    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ManifestError, match=text):
        import_official(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_arguments(official):
    json_path, out = official
    with pytest.raises(ManifestError, match="unknown subset 'both'"):
        import_official(json_path, out, subset="both")
    with pytest.raises(ManifestError, match="id prefix 'a b'"):
        import_official(json_path, out, id_prefix="a b")
    assert not out.exists()


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_import_official(official, capsys):
    json_path, out = official
    assert main(["data", "import-official", str(json_path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "manifest.jsonl")
    assert main(["data", "validate", "--probe", str(out / "manifest.jsonl")]) == 0


def test_cli_import_official_ambiguous_type(official, tmp_path, capsys):
    json_path, out = official
    entries = [{"source_video_path": "clips/src.mp4", "instruction": "Why?", "type": "commonsense"}]
    path = json_path.parent / "ambiguous.json"
    path.write_text(json.dumps(entries))
    assert main(["data", "import-official", str(path), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == f"error: {path}: 1 invalid row(s)"
    assert "entry 0: type 'commonsense' is a dimension of both rave and icvg" in captured.err
    assert "Traceback" not in captured.err and not out.exists()
    assert main(["data", "import-official", str(path), "--out", str(out), "--subset", "icvg"]) == 0
    assert load_manifest(out / "manifest.jsonl").samples[0].id == "official-icvg-commonsense-0000"


def test_cli_import_official_missing_json(tmp_path, capsys):
    assert main(["data", "import-official", str(tmp_path / "none.json"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'none.json'}") and "does not exist" in err
    assert "Traceback" not in err
