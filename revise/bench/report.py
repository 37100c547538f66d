"""The HTML report of a bench run: one self-contained page built from ``results.jsonl`` and ``summary.json``.

Source and target videos come from each row's ``source`` / ``target`` when present, else from the
benchmark manifest recorded in the run's provenance (``run.json`` -> ``bench.manifest``).

The page has no external references (inline CSS, JS and SVG, no CDN) and opens offline from ``file://``.
Videos are embedded as base64 ``data:`` URIs when they fit under a size cap; otherwise they are linked by
relative paths, and any video outside the run folder is copied (or hard-linked) into
``OUT/report_videos/`` first, so the folder stays portable. Every piece of text from the run is
HTML-escaped, and a Content-Security-Policy that only allows the page's own script (by hash) backs that up.

Example::

    from revise.bench.report import write_report
    path = write_report(Path("runs/copy"), embed_videos=False)   # -> runs/copy/report.html
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import mimetypes
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote

from ..data import SUBSETS, load_manifest
from ..errors import ReviseError
from ..judges.base import SCORE_KEYS as JUDGE_SCORE_KEYS
from .results import RESULTS_FILE, RUN_FILE, SUMMARY_FILE, load_results, read_json

SCORE_KEYS = (*JUDGE_SCORE_KEYS, "overall")
DIMENSIONS = list(dict.fromkeys(d for dims in SUBSETS.values() for d in dims))
VIDEO_ROLES = (("source", "Source"), ("prediction", "Edit"), ("target", "Target"))
REPORT_VIDEOS = "report_videos"
MISSING = "—"


def write_report(
    out_dir: Path, *, title: str | None = None, embed_videos: bool = True, max_embed_mb: float = 200
) -> Path:
    """Write ``out_dir/report.html`` for the run in ``out_dir`` and return its path.

    ``embed_videos``: inline every video as a ``data:`` URI when their total size is at most
    ``max_embed_mb`` megabytes (all or none, so the page is either one file or one folder); otherwise
    link them relatively, copying those outside ``out_dir`` into ``out_dir/report_videos/``.
    Raises :class:`~revise.errors.ReviseError` naming the file when ``results.jsonl`` is missing or
    corrupt (a torn last line is ignored).
    """
    out_dir = Path(out_dir).resolve()
    results = out_dir / RESULTS_FILE
    if not results.is_file():
        raise ReviseError(f"{results}: missing: a report needs the run's {RESULTS_FILE}")
    rows = sorted(load_results(results), key=_sample_order)
    summary = read_json(out_dir / SUMMARY_FILE, "summary") if (out_dir / SUMMARY_FILE).is_file() else {}
    if not _dict(summary.get("provenance")) and (out_dir / RUN_FILE).is_file():
        summary["provenance"] = read_json(out_dir / RUN_FILE, "run provenance")
    notes = _fill_from_manifest(rows, _dict(summary.get("provenance")))

    videos = _VideoLinker(out_dir, rows, embed=embed_videos, max_embed_bytes=int(max_embed_mb * 1e6))
    page = _render_page(rows, summary, videos, title, notes)
    target = out_dir / "report.html"
    tmp = target.with_name(f".report.html.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target


# --------------------------------------------------------------------------------------------- loading


def _fill_from_manifest(rows: list[dict], prov: dict) -> list[str]:
    """Give rows without ``source`` / ``target`` / ``reference_answer`` those of the run's manifest.

    Returns notes for the page (why some videos may be absent); never raises: the report is derived.
    """
    wanted = ("source", "target", "reference_answer")
    if all(all(k in row for k in wanted) for row in rows):
        return []
    manifest = _dict(prov.get("bench")).get("manifest")
    if not isinstance(manifest, str) or not manifest:
        if all("source" in row for row in rows):
            return []
        return ["The run does not name its manifest, so source and target videos may be missing."]
    try:
        samples = load_manifest(manifest, check_files=False).by_id()  # a missing video shows as missing
    except (ReviseError, OSError) as exc:
        return [f"Could not read the run's manifest, so source and target videos may be missing: {exc}"]
    for row in rows:
        sample = samples.get(row.get("id"))
        if sample is None:
            continue
        for key in wanted:
            if key not in row:
                value = getattr(sample, key)
                row[key] = str(value) if isinstance(value, Path) else value
    return []


def _order_key(subset, dimension) -> tuple:
    """Subsets and dimensions in the benchmark's own order; unknown ones after, alphabetically."""
    subsets = list(SUBSETS)
    s_rank = subsets.index(subset) if subset in SUBSETS else len(subsets)
    dims = list(SUBSETS.get(subset, DIMENSIONS))
    d_rank = dims.index(dimension) if dimension in dims else len(dims)
    return (s_rank, str(subset), d_rank, str(dimension))


def _sample_order(row: dict) -> tuple:
    return (*_order_key(row.get("subset"), row.get("dimension")), str(row.get("id", "")))


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------------------------------------- videos


class _VideoLinker:
    """Turns a row's video path into a ``src`` the page can use (data URI or a relative link inside OUT)."""

    def __init__(self, out_dir: Path, rows: list[dict], *, embed: bool, max_embed_bytes: int):
        self.out_dir = out_dir
        refs = [p for row in rows for key, _ in VIDEO_ROLES if (p := self.resolve(row.get(key))) is not None]
        self.total_bytes = sum(p.stat().st_size for p in refs)
        self.embed = embed and self.total_bytes <= max_embed_bytes
        self.note = self._describe(embed, max_embed_bytes)

    def _describe(self, asked: bool, cap: int) -> str:
        size = f"{self.total_bytes / 1e6:.1f} MB" if self.total_bytes >= 1e5 else f"{self.total_bytes / 1e3:.0f} kB"
        if self.embed:
            return f"Videos are embedded in this page ({size}); it is a single self-contained file."
        if asked:
            return (f"Videos ({size}) exceed the embedding cap of {cap / 1e6:g} MB, so they are linked: keep this "
                    f"page next to its videos/ and {REPORT_VIDEOS}/ folders.")
        return f"Videos ({size}) are linked: keep this page next to its videos/ and {REPORT_VIDEOS}/ folders."

    def resolve(self, value) -> Path | None:
        """The existing video file a row's path names (absolute or relative to OUT), or None."""
        if not isinstance(value, str) or not value:
            return None
        try:
            path = Path(value)
            path = (path if path.is_absolute() else self.out_dir / path).resolve()
            return path if path.is_file() else None
        except (OSError, ValueError):  # unreadable, or not a path at all (e.g. a NUL byte)
            return None

    def src(self, row: dict, role: str) -> str | None:
        path = self.resolve(row.get(role))
        if path is None:
            return None
        if self.embed:
            mime = mimetypes.guess_type(path.name)[0] or "video/mp4"
            return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        if not path.is_relative_to(self.out_dir):
            path = self._bring_inside(path, row, role)
        return quote(path.relative_to(self.out_dir).as_posix())

    def _bring_inside(self, path: Path, row: dict, role: str) -> Path:
        """Hard-link (or copy) a video that lives outside OUT into OUT/report_videos/."""
        sample = str(row.get("id", "sample"))
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", sample)[:80]
        digest = hashlib.sha256(f"{sample}\0{role}\0{path}".encode()).hexdigest()[:8]
        dest = self.out_dir / REPORT_VIDEOS / f"{safe}-{role}-{digest}{path.suffix or '.mp4'}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            if os.path.samefile(dest, path):
                return dest
            dest.unlink()
        try:
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
        return dest


# ------------------------------------------------------------------------------------------- formatting


def _e(value) -> str:
    """HTML-escape any value as text (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def _fmt(value, digits: int = 2) -> str:
    if value is None or isinstance(value, str) and not value:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return MISSING if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _fmt_metric(value) -> str:
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:.4g}"
    return _fmt(value)


def _fmt_ci(value) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
        return f"[{value[0]:.2f}, {value[1]:.2f}]"
    return MISSING


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _score_class(value) -> str:
    """A colour band for a 1..5 score (used by the chips and table cells)."""
    if not _is_number(value):
        return "s-na"
    return f"s{min(5, max(1, int(round(value))))}"


# ------------------------------------------------------------------------------------------- provenance


def _names(value) -> list[str]:
    """Names from a provenance entry that may be a string, a dict with a name, a dict of names, or a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [n for item in value for n in _names(item)]
    if isinstance(value, dict):
        for key in ("name", "editor", "judge", "id"):
            if isinstance(value.get(key), str):
                return [value[key]]
        return [str(k) for k in value]
    return []


def _first(data: dict, keys: tuple[str, ...]):
    return next((data[k] for k in keys if data.get(k) not in (None, "", [], {})), None)


def _provenance_facts(prov: dict, rows: list[dict], primary: str | None) -> list[tuple[str, str]]:
    """The header's key facts, read from ``run.json`` as the runner writes it, with fallbacks."""
    editors = _names(prov.get("editor_label")) or _names(prov.get("editor"))
    editors = editors or sorted({str(r["editor"]) for r in rows if r.get("editor")})
    judges = _names(prov.get("judge_names")) or _names(prov.get("judges"))
    judges = judges or sorted({str(n) for r in rows for n in _dict(r.get("judges"))})
    if primary in judges:
        judges = [primary] + [j for j in judges if j != primary]
    infos = {str(k): _dict(v) for k, v in _dict(prov.get("judges")).items()}

    def per_judge(keys: tuple[str, ...]) -> list[str]:
        return [f"{name}: {value}" for name, info in infos.items() if (value := _first(info, keys)) is not None]

    bench = prov.get("bench")
    frames_k = _first(prov, ("frames_k", "frame_sampling"))
    facts = [
        ("Bench", _first(bench, ("name",)) if isinstance(bench, dict) else bench),
        ("Editor", ", ".join(editors)),
        ("Judges", ", ".join(f"{j} (primary)" if j == primary else j for j in judges)),
        ("Prompt hash", ", ".join(per_judge(("prompt_hash",))) or _first(prov, ("prompt_hash",))),
        ("Git commit", _first(prov, ("git_commit", "commit"))),
        ("Version", _first(prov, ("version",))),
        ("Date", _first(prov, ("created", "date", "started", "timestamp"))),
        ("Seed", _first(prov, ("seed",))),
        ("Frame sampling", ", ".join(([f"k={frames_k}"] if frames_k is not None else [])
                                     + per_judge(("frames", "k", "frames_k")))),
    ]
    return [(label, _fmt(value)) for label, value in facts]


def _flatten(data, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict) and data:
        return [item for key, value in data.items() for item in _flatten(value, f"{prefix}{key}.")]
    if isinstance(data, list) and data and any(isinstance(v, (dict, list)) for v in data):
        return [item for i, value in enumerate(data) for item in _flatten(value, f"{prefix}{i}.")]
    text = json.dumps(data, ensure_ascii=False) if isinstance(data, (list, dict)) else _fmt(data)
    return [(prefix.rstrip("."), text)]


# ---------------------------------------------------------------------------------------------- rendering


def _render_page(rows: list[dict], summary: dict, videos: _VideoLinker, title: str | None,
                 notes: list[str]) -> str:
    prov = _dict(summary.get("provenance"))
    primary = summary.get("primary_judge")
    if not isinstance(primary, str) or not primary:
        primary = next((str(n) for r in rows for n in _dict(r.get("judges"))), None)
    facts = _provenance_facts(prov, rows, primary)
    if title is None:
        editor = dict(facts)["Editor"]
        title = f"RVE-Bench report · {editor}" if editor != MISSING else "RVE-Bench report"
    script = _SCRIPT
    csp = (
        "default-src 'none'; base-uri 'none'; form-action 'none'; style-src 'unsafe-inline'; img-src data:; "
        "media-src data: 'self' file:; script-src 'sha256-"
        + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<header class=\"top\"><h1>{_e(title)}</h1>{_render_facts(facts, summary, rows)}</header>",
        "<main>",
        _render_rubric(primary, failed_count_as_one="n_failed" in summary),
        _render_provenance_details(prov),
        _render_results(summary, primary),
        _render_failures(summary, rows),
        _render_samples(rows, videos, primary, notes),
        "</main>",
        f"<script>{script}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _render_facts(facts: list[tuple[str, str]], summary: dict, rows: list[dict]) -> str:
    failed = sum(1 for r in rows if r.get("status") != "ok")
    planned = summary.get("n_planned")
    samples = f"{len(rows)} of {planned} planned" if isinstance(planned, int) and planned != len(rows) else len(rows)
    head = [("Overall", _fmt(summary.get("overall"))), ("Samples", str(samples)), ("Failed", str(failed))]
    cells = "".join(
        f'<div class="fact"><span class="k">{_e(k)}</span><span class="v">{_e(v or MISSING)}</span></div>'
        for k, v in head + facts
    )
    return f'<div class="facts">{cells}</div>'


def _render_rubric(primary: str | None, *, failed_count_as_one: bool) -> str:
    judge = f"<b>{_e(primary)}</b>" if primary else "the primary judge"
    failed = (" A sample that failed (editor or judge error) counts as 1 on every criterion in the tables, "
              "so crashing never beats answering badly." if failed_count_as_one else "")
    return (
        '<section class="rubric"><h2>How to read this report</h2>'
        "<p>Each sample is a source video plus an instruction whose result must be <em>reasoned</em> out. "
        "The editor produced the <b>Edit</b>; the <b>Target</b> (when the benchmark has one) is a correct answer. "
        "Judges score every edit on the <code>rve-judge-v1</code> rubric, each criterion from 1 (bad) "
        "to 5 (perfect):</p>"
        "<ul><li><b>Reasoning</b>: does the edit show what the instruction implies?</li>"
        "<li><b>Consistency</b>: is everything the instruction does not touch preserved?</li>"
        "<li><b>Quality</b>: is the video visually sound (no artefacts, flicker, broken motion)?</li></ul>"
        "<p><b>Overall</b> is the mean of the three; <b>Accuracy</b> is the share of samples with all three at 5. "
        f"Tables and charts use {judge}; <b>95% CI</b> is the confidence interval of the mean Overall "
        "and <b>n</b> the number of samples. Each sample's card shows every judge's scores as "
        f"<b>R</b>, <b>C</b>, <b>Q</b> and <b>O</b> (Overall), with its rationale.{failed}</p></section>"
    )


def _render_provenance_details(prov: dict) -> str:
    if not prov:
        return ""
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _flatten(prov))
    return (f'<details class="prov"><summary>Full provenance</summary>'
            f'<table class="kv"><tbody>{rows}</tbody></table></details>')


def _render_results(summary: dict, primary: str | None) -> str:
    """The primary judge's tables and charts, then every other rubric judge's tables, folded."""
    judge = f" (judge: {_e(primary)})" if primary else ""
    head = f'<h2 class="section">Results per dimension{judge}</h2>'
    if not _dict(summary.get("subsets")):
        return (f'<section class="results">{head}<p class="muted">No per-dimension summary: summary.json is '
                "missing or empty.</p></section>")
    others = [(name, _dict(section)) for name, section in _dict(summary.get("judges")).items()
              if name != primary and _dict(section).get("rubric") is not False and _dict(section).get("subsets")]
    folded = "".join(f'<details class="other-judge"><summary>Results by judge {_e(name)}</summary>'
                     f"{_render_subsets(section)}</details>" for name, section in others)
    return f'<section class="results">{head}{_render_subsets(summary)}{folded}</section>'


def _render_subsets(summary: dict) -> str:
    subsets = _dict(summary.get("subsets"))
    blocks = []
    for name in sorted(subsets, key=lambda s: _order_key(s, None)):
        data = _dict(subsets[name])
        dims = _dict(data.get("dimensions"))
        order = sorted(dims, key=lambda d: _order_key(name, d))
        metric_names = sorted({m for d in order for m in _dict(_dict(dims[d]).get("metrics"))})
        head = "".join(f"<th>{_e(h)}</th>" for h in ("Dimension", "Reasoning", "Consistency", "Quality", "Overall",
                                                     "Accuracy", "95% CI", "n", "failed"))
        head += "".join(f'<th class="metric">{_e(m)}</th>' for m in metric_names)
        body = "".join(_table_row(d, _dict(dims[d]), metric_names) for d in order)
        has_bars = any(_is_number(_dict(d).get("overall")) for d in dims.values())
        chart = _render_chart(name, order, dims) if has_bars else ""
        foot = _table_row("all", {k: v for k, v in data.items() if k != "metrics"}, metric_names, cls="total")
        blocks.append(
            f'<section class="subset" data-subset="{_e(name)}"><h2>{_e(str(name).upper())}</h2>'
            f'<div class="subset-body"><div class="table-wrap"><table class="dims"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody><tfoot>{foot}</tfoot></table></div>"
            f"{chart}</div></section>"
        )
    return "".join(blocks)


def _table_row(label: str, dim: dict, metric_names: list[str], cls: str = "") -> str:
    cells = [f"<th>{_e(label)}</th>"]
    for key in SCORE_KEYS:
        value = dim.get(key)
        cells.append(f'<td class="num {_score_class(value)}">{_e(_fmt(value))}</td>')
    cells.append(f'<td class="num">{_e(_fmt(dim.get("accuracy")))}</td>')
    cells.append(f'<td class="num">{_e(_fmt_ci(dim.get("ci95")))}</td>')
    cells.append(f'<td class="num">{_e(_fmt(dim.get("n")))}</td>')
    cells.append(f'<td class="num">{_e(_fmt(dim.get("n_failed")))}</td>')
    metrics = _dict(dim.get("metrics"))
    cells += [f'<td class="num metric">{_e(_fmt_metric(metrics.get(m)))}</td>' for m in metric_names]
    return f'<tr class="{cls}">' + "".join(cells) + "</tr>"


def _render_chart(subset: str, order: list[str], dims: dict) -> str:
    """Inline SVG: Overall (1..5 scale drawn from 0) per dimension, with the 95% CI as a whisker."""
    bar_w, gap, left, top, plot_h = 56, 22, 34, 18, 160
    width = left + max(1, len(order)) * (bar_w + gap) + gap
    height = top + plot_h + 42

    def y(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(5.0, v)) / 5)

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="Overall per dimension, {_e(subset)}"><title>Overall per dimension ({_e(subset)})</title>']
    for tick in range(6):
        out.append(f'<line class="grid" x1="{left}" x2="{width - 4}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
                   f'<text class="tick" x="{left - 6}" y="{y(tick) + 4:.1f}">{tick}</text>')
    for i, name in enumerate(order):
        dim = _dict(dims[name])
        x = left + gap + i * (bar_w + gap)
        cx = x + bar_w / 2
        value = dim.get("overall")
        label = f'<text class="xlabel" x="{cx:.1f}" y="{top + plot_h + 18}">{_e(name)}</text>'
        if _is_number(value):
            out.append(f'<rect class="bar {_score_class(value)}" x="{x}" y="{y(value):.1f}" width="{bar_w}" '
                       f'height="{top + plot_h - y(value):.1f}"><title>{_e(name)}: {_fmt(value)}</title></rect>')
            ci = dim.get("ci95")
            label_y = y(value) - 5
            if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_is_number(v) for v in ci):
                lo, hi = y(ci[0]), y(ci[1])
                out.append(f'<path class="whisker" d="M{cx:.1f} {lo:.1f}V{hi:.1f}M{cx - 9:.1f} {lo:.1f}h18'
                           f'M{cx - 9:.1f} {hi:.1f}h18"/>')
                label_y = min(label_y, hi - 5)
            out.append(f'<text class="value" x="{cx:.1f}" y="{max(11.0, label_y):.1f}">{_fmt(value)}</text>')
        else:
            out.append(f'<text class="value" x="{cx:.1f}" y="{top + plot_h - 5}">{MISSING}</text>')
        out.append(label)
    out.append("</svg>")
    return "".join(out)


def _render_failures(summary: dict, rows: list[dict]) -> str:
    failures = summary.get("failures")
    if not isinstance(failures, list):
        failures = [{"id": r.get("id"), "error": r.get("error")} for r in rows if r.get("status") != "ok"]
    anchors = {str(r.get("id")): f"s{i}" for i, r in enumerate(rows)}
    if not failures:
        return ('<section><h2 class="section">Failures</h2>'
                '<p class="muted">None: every sample was edited and judged.</p></section>')
    items = []
    for item in failures:
        item = _dict(item)
        sample = str(item.get("id", MISSING))
        link = (f'<a href="#{anchors[sample]}">{_e(sample)}</a>' if sample in anchors else _e(sample))
        items.append(f"<li>{link}: <span class=\"err\">{_e(_fmt(item.get('error')))}</span></li>")
    return (f'<section><h2 class="section">Failures ({len(failures)})</h2>'
            f'<ul class="failures">{"".join(items)}</ul></section>')


def _render_samples(rows: list[dict], videos: _VideoLinker, primary: str | None, notes: list[str]) -> str:
    def options(values: list[str]) -> str:
        return '<option value="">all</option>' + "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)

    subsets = sorted({str(r.get("subset")) for r in rows}, key=lambda s: _order_key(s, None))
    dims = sorted({str(r.get("dimension")) for r in rows}, key=lambda d: _order_key(None, d))
    statuses = sorted({str(r.get("status")) for r in rows})
    controls = (
        '<div class="filters" role="group" aria-label="Filter samples">'
        f'<label>Subset <select id="f-subset" data-key="subset">{options(subsets)}</select></label>'
        f'<label>Dimension <select id="f-dimension" data-key="dimension">{options(dims)}</select></label>'
        f'<label>Status <select id="f-status" data-key="status">{options(statuses)}</select></label>'
        '<button type="button" id="f-reset">Show all</button>'
        f'<span id="f-count" class="muted">{len(rows)} of {len(rows)} samples</span></div>'
    )
    cards = "".join(_render_card(i, row, videos, primary) for i, row in enumerate(rows))
    notes_html = "".join(f'<p class="muted">{_e(note)}</p>' for note in [videos.note, *notes])
    return (f'<section><h2 class="section">Samples</h2>{notes_html}{controls}'
            f'<div class="cards">{cards}</div></section>')


def _render_card(index: int, row: dict, videos: _VideoLinker, primary: str | None) -> str:
    status = str(row.get("status"))
    subset, dimension = str(row.get("subset")), str(row.get("dimension"))
    badges = (f'<span class="badge">{_e(subset)}</span><span class="badge">{_e(dimension)}</span>'
              f'<span class="badge st-{"ok" if status == "ok" else "failed"}">{_e(status)}</span>')
    meta = []
    if row.get("editor"):
        meta.append(f"editor {_e(row['editor'])}")
    if _is_number(row.get("seconds")):
        meta.append(f"{row['seconds']:.1f} s")
    parts = [
        f'<article class="card" id="s{index}" data-subset="{_e(subset)}" data-dimension="{_e(dimension)}" '
        f'data-status="{_e(status)}">',
        f'<header><h3>{_e(row.get("id", MISSING))}</h3><div class="badges">{badges}</div></header>',
        f'<p class="instruction"><span class="k">Instruction</span> {_e(row.get("instruction") or MISSING)}</p>',
    ]
    if row.get("reference_answer"):
        parts.append(f'<p class="reference"><span class="k">Reference answer</span> {_e(row["reference_answer"])}</p>')
    slots = "".join(_render_video(row, role, label, videos) for role, label in VIDEO_ROLES)
    parts.append(f'<div class="videos">{slots}</div>')
    if row.get("error"):
        parts.append(f'<p class="err"><span class="k">Error</span> {_e(row["error"])}</p>')
    parts.append(_render_judges(_dict(row.get("judges")), primary))
    flags = row.get("flags")
    if isinstance(flags, list) and flags:
        meta.append("flags: " + _e(", ".join(map(str, flags))))
    if meta:
        parts.append(f'<p class="meta muted">{" · ".join(meta)}</p>')
    parts.append("</article>")
    return "".join(parts)


def _render_video(row: dict, role: str, label: str, videos: _VideoLinker) -> str:
    src = videos.src(row, role)
    if src is not None:
        body = (f'<video src="{_e(src)}" muted loop autoplay playsinline controls preload="auto" '
                f'aria-label="{_e(label)}"></video>')
    else:
        value = row.get(role)
        if role == "target" and not value:
            why = "no target for this sample"
        elif role == "prediction" and not value:
            why = "no edit (the sample failed)" if row.get("status") != "ok" else "no edit recorded"
        else:
            why = f"video missing: {Path(str(value)).name}" if value else "no video recorded"
        body = f'<div class="novideo">{_e(why)}</div>'
    return f'<figure class="v-{role}">{body}<figcaption>{_e(label)}</figcaption></figure>'


def _render_judges(judges: dict, primary: str | None) -> str:
    if not judges:
        return '<p class="muted">No judge verdicts.</p>'
    names = sorted(judges, key=lambda n: (n != primary, str(n)))
    blocks = []
    for name in names:
        verdict = _dict(judges[name])
        if any(_is_number(verdict.get(key)) for key in SCORE_KEYS):
            chips = "".join(
                f'<span class="chip {_score_class(verdict.get(key))}" title="{key}">{key[0].upper()} '
                f"{_e(_fmt(verdict.get(key), 1 if key != 'overall' else 2))}</span>"
                for key in SCORE_KEYS
            )
            passed = verdict.get("passed")
            if isinstance(passed, bool):
                chips += ('<span class="chip pass">all 5</span>' if passed
                          else '<span class="chip nopass">not all 5</span>')
        else:
            chips = '<span class="muted">no rubric scores</span>'
        tag = ' <span class="muted">(primary)</span>' if name == primary else ""
        lines = [f'<div class="judge"><div class="jhead"><b>{_e(name)}</b>{tag}'
                 f'<span class="chips">{chips}</span></div>']
        if verdict.get("rationale"):
            lines.append(f'<p class="rationale">{_e(verdict["rationale"])}</p>')
        metrics = _dict(verdict.get("metrics"))
        if metrics:
            items = " · ".join(f"{_e(k)} {_e(_fmt_metric(v))}" for k, v in sorted(metrics.items()))
            lines.append(f'<p class="metrics muted">{items}</p>')
        if verdict.get("error"):
            lines.append(f'<p class="err">{_e(verdict["error"])}</p>')
        lines.append("</div>")
        blocks.append("".join(lines))
    return '<div class="judges">' + "".join(blocks) + "</div>"


# ----------------------------------------------------------------------------------------- static assets

_CSS = """
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;--accent:#3656d6;
--s1:#d92d20;--s2:#f0803c;--s3:#e8b400;--s4:#7cb342;--s5:#2e9d50;--na:#98a2b3}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--fg);background:var(--bg)}
header.top{background:#1d2330;color:#fff;padding:18px 28px}
header.top h1{margin:0 0 10px;font-size:22px;font-weight:600}
.facts{display:flex;flex-wrap:wrap;gap:6px 22px}
.fact{display:flex;flex-direction:column;min-width:70px;max-width:340px}
.fact .k{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#aab3c5}
.fact .v{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;overflow-wrap:anywhere}
main{max-width:1500px;margin:0 auto;padding:8px 28px 40px}
h2{font-size:18px;margin:22px 0 8px}
h2.section{border-bottom:1px solid var(--line);padding-bottom:4px}
.muted{color:var(--muted)}
.rubric{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:4px 18px;margin-top:18px}
.rubric h2{font-size:15px;margin:12px 0 4px}
.rubric ul{margin:4px 0;padding-left:20px}
details.prov,details.other-judge{margin:12px 0}
details summary{cursor:pointer;color:var(--accent)}
table{border-collapse:collapse}
table.kv th,table.kv td{text-align:left;padding:2px 10px 2px 0;vertical-align:top;font-size:12px}
table.kv th{font-weight:500;color:var(--muted);white-space:nowrap}
table.kv td{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
.subset{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:2px 18px 14px;margin:14px 0}
.subset h2{font-size:15px;letter-spacing:.04em}
.subset-body{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.table-wrap{overflow-x:auto;max-width:100%}
table.dims th,table.dims td{padding:5px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
table.dims thead th{font-size:12px;color:var(--muted);font-weight:600;text-align:right}
table.dims thead th:first-child,table.dims tbody th,table.dims tfoot th{text-align:left}
table.dims tbody th,table.dims tfoot th{font-weight:500}
table.dims tfoot th,table.dims tfoot td{font-weight:700;border-top:2px solid var(--fg);border-bottom:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.s1{background:#fde4e2}td.s2{background:#fdeadb}td.s3{background:#fdf4d3}td.s4{background:#edf6e1}
td.s5{background:#dff2e5}
th.metric,td.metric{color:#475467;background:#fafbfc}
svg.chart{max-width:100%;height:auto;font-size:11px}
svg.chart .grid{stroke:var(--line)}
svg.chart .tick{text-anchor:end;fill:var(--muted)}
svg.chart .xlabel{text-anchor:middle;fill:var(--fg)}
svg.chart .value{text-anchor:middle;fill:var(--fg);font-weight:600}
svg.chart .whisker{stroke:var(--fg);stroke-width:1.5;fill:none}
.bar.s1{fill:var(--s1)}.bar.s2{fill:var(--s2)}.bar.s3{fill:var(--s3)}.bar.s4{fill:var(--s4)}.bar.s5{fill:var(--s5)}
ul.failures{padding-left:20px}
.err{color:var(--s1);overflow-wrap:anywhere}
.filters{display:flex;flex-wrap:wrap;gap:10px 18px;align-items:center;background:var(--card);
border:1px solid var(--line);
border-radius:8px;padding:10px 14px;margin:10px 0 14px;position:sticky;top:0;z-index:2}
.filters select,.filters button{font:inherit;padding:3px 8px;margin-left:4px;border:1px solid #cfd4dc;
border-radius:6px;background:#fff}
.filters button{cursor:pointer;margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,520px),1fr));gap:14px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;min-width:0}
.card header{display:flex;justify-content:space-between;gap:10px;align-items:baseline;flex-wrap:wrap}
.card h3{margin:0;font-size:14px;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
.badges{display:flex;gap:4px}
.badge{font-size:11px;padding:1px 8px;border-radius:10px;background:#eef1f6;color:#344054}
.badge.st-ok{background:#e3f4e8;color:#1f7a3d}.badge.st-failed{background:#fde8e7;color:#b42318}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin-right:6px}
.instruction{font-size:15px;margin:8px 0 4px;overflow-wrap:anywhere}
.reference{margin:4px 0;overflow-wrap:anywhere}
.videos{display:grid;grid-template-columns:repeat(3,1fr);gap:8px;margin:10px 0}
.videos figure{margin:0;min-width:0}
.videos video,.novideo{width:100%;aspect-ratio:1/1;background:#0f1320;border-radius:6px;display:block;
object-fit:contain}
.novideo{display:flex;align-items:center;justify-content:center;text-align:center;color:#aab3c5;font-size:12px;
padding:8px}
.videos figcaption{text-align:center;font-size:12px;color:var(--muted);margin-top:2px}
.v-prediction figcaption{color:var(--accent);font-weight:600}
.judge{border-top:1px solid var(--line);padding:6px 0}
.jhead{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.chips{display:flex;flex-wrap:wrap;gap:4px;margin-left:auto}
.chip{font-size:12px;padding:1px 7px;border-radius:10px;color:#fff;font-variant-numeric:tabular-nums;
background:var(--na)}
.chip.s1{background:var(--s1)}.chip.s2{background:var(--s2)}.chip.s3{background:var(--s3);color:#1d2330}
.chip.s4{background:var(--s4)}.chip.s5{background:var(--s5)}
.chip.pass{background:#1f7a3d}.chip.nopass{background:#eef1f6;color:#475467}
.rationale{margin:4px 0;white-space:pre-wrap;overflow-wrap:anywhere}
.metrics{margin:2px 0;font-size:12px}
.meta{margin:6px 0 0;font-size:12px}
"""

# Filtering by subset / dimension / status. Static: the page's CSP allows exactly this script (by hash).
_SCRIPT = """
(function () {
  "use strict";
  var selects = Array.prototype.slice.call(document.querySelectorAll(".filters select"));
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var count = document.getElementById("f-count");
  function apply() {
    var shown = 0;
    cards.forEach(function (card) {
      var visible = selects.every(function (s) { return !s.value || card.dataset[s.dataset.key] === s.value; });
      if (card.hidden === visible) {
        card.hidden = !visible;
        card.querySelectorAll("video").forEach(function (v) {
          if (visible) { var p = v.play(); if (p) { p.catch(function () {}); } } else { v.pause(); }
        });
      }
      if (visible) { shown += 1; }
    });
    count.textContent = shown + " of " + cards.length + " samples";
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  document.getElementById("f-reset").addEventListener("click", function () {
    selects.forEach(function (s) { s.value = ""; });
    apply();
  });
  apply();
})();
"""
