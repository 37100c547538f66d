"""The HTML report: structure, escaping, self-containment, embedded vs linked videos (no browser here)."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from revise.bench.aggregate import summarize_run
from revise.bench.report import write_report
from revise.data import Sample, write_manifest
from revise.errors import ReviseError
from revise.video import write_video

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_ATTR = '"><img src=x onerror=alert(1)>'


def _clip(colour: tuple[int, int, int], frames: int = 12, size: int = 64) -> np.ndarray:
    """A square moving left to right over a dark background, so playback is visibly a video."""
    clip = np.full((frames, size, size, 3), 24, np.uint8)
    for t in range(frames):
        x = 4 + t * (size - 24) // max(1, frames - 1)
        clip[t, 20:40, x:x + 16] = colour
    return clip


def _verdict(judge: str, r, c, q, rationale: str = "", **metrics) -> dict:
    scores = [r, c, q]
    overall = None if any(s is None for s in scores) else sum(scores) / 3
    return {"judge": judge, "reasoning": r, "consistency": c, "quality": q, "overall": overall,
            "passed": all(s == 5 for s in scores), "rationale": rationale, "metrics": metrics, "error": None}


def build_run(root: Path) -> Path:
    """A hand-made run folder: four samples (one failed, one without target, one with hostile text).

    Sources and targets live outside OUT (absolute paths) except one source given relative to OUT;
    predictions are ``videos/<id>.mp4`` inside OUT, as the runner writes them.
    """
    data, out = root / "data", root / "out"
    src = write_video(data / "src.mp4", _clip((230, 60, 60)), fps=8)
    tgt = write_video(data / "tgt.mp4", _clip((60, 200, 90)), fps=8)
    edit = write_video(out / "videos" / "edit.mp4", _clip((70, 110, 240)), fps=8)
    shutil.copyfile(src, out / "inputs_src.mp4")
    ids = ["rave-causal-test-s0-0000", "rave-temporal-test-s0-0001", "icvg-camera-test-s0-0002",
           "rave-spatial-test-s0-0003"]
    for sample in ids[:3]:
        shutil.copyfile(edit, out / "videos" / f"{sample}.mp4")
    (out / "videos" / "edit.mp4").unlink()
    rows = [
        {"id": ids[0], "subset": "rave", "dimension": "causal",
         "instruction": "Remove the ramp: where does the ball land?",
         "editor": "copy", "status": "ok", "error": None, "prediction": f"videos/{ids[0]}.mp4",
         "prediction_sha256": "0" * 64, "source": str(src), "target": str(tgt), "reference_answer": "On the floor.",
         "judges": {"gt": _verdict("gt", 5, 5, 5, "Exact match with the target.", psnr=31.25),
                    "metrics": _verdict("metrics", None, None, None, "", ssim=0.91234)},
         "seconds": 1.5},
        {"id": ids[1], "subset": "rave", "dimension": "temporal",
         "instruction": f"Reverse time {XSS_SCRIPT} {XSS_ATTR}",
         "editor": "copy", "status": "ok", "error": None, "prediction": f"videos/{ids[1]}.mp4",
         "prediction_sha256": "1" * 64, "source": str(src), "target": str(tgt),
         "judges": {"gt": _verdict("gt", 2, 4, 5, f"Wrong direction {XSS_ATTR} {XSS_SCRIPT}")}, "seconds": 0.7},
        {"id": ids[2], "subset": "icvg", "dimension": "camera", "instruction": "Pan the camera to the left.",
         "editor": "copy", "status": "ok", "error": None,
         "prediction": str((out / "videos" / f"{ids[2]}.mp4").resolve()),
         "prediction_sha256": "2" * 64, "source": "inputs_src.mp4", "target": None,
         "judges": {"gt": _verdict("gt", 3, 3, 4, "Open-ended: no target.")}, "seconds": 0.4},
        {"id": ids[3], "subset": "rave", "dimension": "spatial", "instruction": "Move the box onto the shelf.",
         "editor": "copy", "status": "failed", "error": "EditorError: out of memory <oom>", "prediction": None,
         "prediction_sha256": None, "source": str(src), "judges": {}, "seconds": 0.1},  # no target key
    ]
    dim = {"reasoning": 5.0, "consistency": 5.0, "quality": 5.0, "overall": 5.0, "accuracy": 1.0,
           "ci95": [4.5, 5.0], "n": 1, "metrics": {"psnr": 31.25, "ssim": 0.91234}}
    summary = {
        "overall": 4.1, "primary_judge": "gt",
        "subsets": {
            "rave": {"overall": 4.33, "accuracy": 0.5, "dimensions": {
                "causal": dim,
                "temporal": {**dim, "reasoning": 2.0, "consistency": 4.0, "overall": 3.67, "accuracy": 0.0,
                             "ci95": [2.9, 4.4]},
                "spatial": {"n": 0}}},
            "icvg": {"overall": 3.33, "accuracy": 0.0, "dimensions": {
                "camera": {"reasoning": 3.0, "consistency": 3.0, "quality": 4.0, "overall": 3.33, "accuracy": 0.0,
                           "ci95": None, "n": 1}}},
        },
        "failures": [{"id": ids[3], "error": "EditorError: out of memory <oom>"}],
        "n_failed": 1, "n_planned": 4,
        "provenance": _provenance(),
    }
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        f.write('{"id": "torn')  # a run killed mid-write leaves a torn last line
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (out / "run.json").write_text(json.dumps(_provenance()), encoding="utf-8")
    return out


def _provenance(manifest: Path | None = None) -> dict:
    """``run.json`` in the shape the runner writes it."""
    return {"package": "revise", "version": "0.1.0", "git_commit": "deadbeef", "created": "2025-01-01T00:00:00+00:00",
            "bench": {"name": "hand-made", "manifest": str(manifest) if manifest else None},
            "editor": {"editor": "copy"}, "editor_label": "copy",
            "judges": {"gt": {"judge": "gt", "prompt_hash": "ab12cd34ef56ab78", "frames": "all"},
                       "metrics": {"judge": "metrics", "version": "1"}},
            "judge_names": ["gt", "metrics"], "seed": 0, "frames_k": 8, "n_planned": 4, "note": XSS_ATTR}


class _Collector(HTMLParser):
    """Start tags with their attributes, and the page's text."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in (a.get("class") or "").split())]


def _parse(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("report"))


def test_structure_tables_cards_and_filters(run_dir):
    page = write_report(run_dir).read_text(encoding="utf-8")
    doc = _parse(page)
    cards = doc.find("article", "card")
    assert len(cards) == 4
    assert {c["data-status"] for c in cards} == {"ok", "failed"}
    assert [c["data-dimension"] for c in cards] == ["causal", "spatial", "temporal", "camera"]  # benchmark order
    # one table per subset; rave has 3 dimensions + a total row, icvg 1 + total
    assert page.count('<table class="dims">') == 2
    assert len(doc.find("tr")) >= 2 + 3 + 1 + 1 + 1
    assert "[4.50, 5.00]" in page and "psnr" in page and "0.9123" in page
    assert page.count('<svg class="chart"') == 2 and page.count('class="whisker"') == 2
    # source + edit + target side by side where they exist (the failed one has no edit nor target key)
    assert len(doc.find("video")) == 3 + 3 + 2 + 1
    text = "".join(doc.text)
    assert "no target for this sample" in text and "no edit (the sample failed)" in text
    assert "On the floor." in text  # reference answer
    for fact in ("gt: ab12cd34ef56ab78", "deadbeef", "2025-01-01T00:00:00+00:00", "0.1.0", "copy", "hand-made",
                 "k=8, gt: all", "gt (primary), metrics"):
        assert fact in text
    assert {s["id"] for s in doc.find("select")} == {"f-subset", "f-dimension", "f-status"}
    assert doc.find("a", None) and any(a.get("href") == "#s1" for a in doc.find("a"))  # failure -> its card
    for video in doc.find("video"):
        assert {"muted", "loop", "autoplay", "playsinline", "controls"} <= set(video)


def test_user_text_is_escaped(run_dir):
    page = write_report(run_dir).read_text(encoding="utf-8")
    doc = _parse(page)
    assert XSS_SCRIPT not in page and XSS_ATTR not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert not doc.find("img")
    assert [t for t, _ in doc.tags].count("script") == 1  # only the page's own filter script
    assert not any(k.startswith("on") for _, attrs in doc.tags for k in attrs)
    assert XSS_SCRIPT in "".join(doc.text) and XSS_ATTR in "".join(doc.text)  # shown as text, intact
    assert "out of memory &lt;oom&gt;" in page


def test_self_contained_with_embedded_videos(run_dir):
    page = write_report(run_dir, title="Run <1>").read_text(encoding="utf-8")
    doc = _parse(page)
    assert "<title>Run &lt;1&gt;</title>" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"url\(|@import", page, re.I)
    assert not doc.find("link", None) or all(a.get("href", "").startswith("data:") for a in doc.find("link"))
    srcs = [v["src"] for v in doc.find("video")]
    assert srcs and all(s.startswith("data:video/mp4;base64,") for s in srcs)
    assert not (run_dir / "report_videos").exists()


def test_linked_videos_stay_inside_the_run_folder(tmp_path):
    out = build_run(tmp_path)
    page = write_report(out, embed_videos=False).read_text(encoding="utf-8")
    srcs = [v["src"] for v in _parse(page).find("video")]
    assert len(srcs) == 9
    for src in srcs:
        assert not src.startswith(("data:", "/", "file:")) and ".." not in src
        path = out / unquote(src)
        assert path.is_file() and path.resolve().is_relative_to(out.resolve())
    copied = sorted(p.name for p in (out / "report_videos").iterdir())
    assert len(copied) == 5  # sources and targets outside OUT (two samples with both, the failed one's source)
    assert "inputs_src.mp4" in srcs and "report_videos" in " ".join(srcs)
    assert str(tmp_path) not in page  # no absolute machine path leaks into the page
    # the folder is portable: move it and every link still resolves
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    assert all((moved / unquote(s)).is_file() for s in srcs)
    write_report(moved, embed_videos=False)  # re-running over existing copies is fine


def test_size_cap_falls_back_to_links(tmp_path):
    out = build_run(tmp_path)
    page = write_report(out, embed_videos=True, max_embed_mb=0.001).read_text(encoding="utf-8")
    srcs = [v["src"] for v in _parse(page).find("video")]
    assert srcs and not any(s.startswith("data:") for s in srcs)
    assert "exceed the embedding cap" in page


def test_tolerates_missing_keys_and_summary(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text(json.dumps({"id": "x-1", "status": "failed"}) + "\n", encoding="utf-8")
    page = write_report(out).read_text(encoding="utf-8")
    doc = _parse(page)
    assert len(doc.find("article", "card")) == 1 and not doc.find("video")
    assert "summary.json is missing" in page and "—" in page


def test_missing_results_names_the_file(tmp_path):
    with pytest.raises(ReviseError, match="results.jsonl"):
        write_report(tmp_path)


def test_videos_and_reference_from_the_runs_manifest(tmp_path):
    """The runner's rows carry no source/target: the report finds them through run.json's manifest."""
    out = build_run(tmp_path)
    data = tmp_path / "data"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()[:4]]
    samples = [Sample(id=r["id"], subset=r["subset"], dimension=r["dimension"], instruction=r["instruction"],
                      source=data / "src.mp4", target=data / "tgt.mp4", reference_answer=f"answer {i}")
               for i, r in enumerate(rows)]
    manifest = write_manifest(samples, data / "manifest.jsonl")
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({k: v for k, v in row.items() if k not in ("source", "target")}) + "\n")
    (out / "summary.json").unlink()
    (out / "run.json").write_text(json.dumps(_provenance(manifest)), encoding="utf-8")
    doc = _parse(write_report(out).read_text(encoding="utf-8"))
    assert len(doc.find("video")) == 3 + 3 + 3 + 2  # every source and target; the failed sample has no edit
    text = "".join(doc.text)
    assert "answer 2" in text and "On the floor." in text  # a row's own reference answer wins
    assert "hand-made" in text and "deadbeef" in text  # provenance from run.json when summary.json is absent


def test_report_of_a_run_aggregated_by_the_harness(run_dir):
    """The real ``summary.json`` of these rows (not the hand-written one) renders every dimension."""
    out = run_dir.parent / "aggregated"
    shutil.copytree(run_dir, out)
    summary = summarize_run(out)
    page = write_report(out).read_text(encoding="utf-8")
    doc = _parse(page)
    dims = [(s, d) for s, sub in summary["subsets"].items() for d in sub["dimensions"]]
    assert len(dims) == 4
    assert page.count('<table class="dims">') >= 2
    body_rows = [a for t, a in doc.tags if t == "tr" and a.get("class") == ""]
    assert len(body_rows) >= len(dims)
    assert f"{summary['overall']:.2f}" in page
