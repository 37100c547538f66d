"""``revise bench``: run editors and judges over a benchmark, merge shards, summarise, compare runs.

Each command only parses options and calls :mod:`revise.bench`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError

bench_app = typer.Typer(
    help="RVE-Bench: run an editor (or score prediction videos) with judges, resumably and sharded; "
         "merge shards; re-aggregate; compare two runs.",
    no_args_is_help=True,
)

def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_pairs(items: list[str], option: str) -> dict:
    """``KEY=VALUE`` pairs; values are JSON when they parse (numbers, true, lists), else strings."""
    from ..bench.runner import SECRET_KEY

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item!r}: expected KEY=VALUE")
        key = key.strip()
        if SECRET_KEY.search(key):  # a flag lands in shell history and run.json
            raise ConfigError(f"{option} {key}: secrets do not go on the command line (they would be logged in "
                              "run.json); pass them through the environment")
        out[key] = _parse_value(value)
    return out


def _parse_judge_options(items: list[str]) -> dict:
    """``NAME.KEY=VALUE`` -> ``{NAME: {KEY: VALUE}}``."""
    out: dict = {}
    for item in items:
        name, dot, rest = item.partition(".")
        if not dot or "=" not in rest or "=" in name:
            raise ConfigError(f"--judge-option {item!r}: expected JUDGE.KEY=VALUE, e.g. openai.model=gpt-4o")
        out.setdefault(name.strip(), {}).update(_parse_pairs([rest], "--judge-option"))
    return out


def _console():
    """A rich console; when piped, wide enough that tables are not truncated."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def _print_summary(summary: dict, out_dir: Path) -> None:
    from rich.table import Table

    def fmt(x):
        return "-" if x is None else f"{x:.2f}"

    console = _console()
    judge = summary.get("primary_judge")
    table = Table(title=f"{out_dir}  (judge {judge}; failed samples count as 1)")
    for column in ("group", "n", "failed", "reasoning", "consistency", "quality", "overall", "95% CI", "accuracy"):
        table.add_column(column, justify="left" if column == "group" else "right", no_wrap=True)

    def add(name: str, stats: dict) -> None:
        ci = stats.get("ci95")
        table.add_row(name, str(stats.get("n")), str(stats.get("n_failed")), fmt(stats.get("reasoning")),
                      fmt(stats.get("consistency")), fmt(stats.get("quality")), fmt(stats.get("overall")),
                      "-" if not ci else f"{ci[0]:.2f}-{ci[1]:.2f}", fmt(stats.get("accuracy")))

    for subset, entry in (summary.get("subsets") or {}).items():
        for dim, stats in entry.get("dimensions", {}).items():
            add(f"{subset}/{dim}", stats)
        add(f"{subset} (all)", entry)
    add("overall", summary)
    console.print(table)
    if summary.get("failures"):
        console.print(f"{len(summary['failures'])} failed sample(s); first: "
                      f"{summary['failures'][0]['id']}: {summary['failures'][0]['error']}", markup=False)
    if not summary.get("complete"):
        console.print(f"incomplete: {summary.get('n_rows')} of {summary.get('n_planned')} samples", markup=False)


@bench_app.command("run")
def run(
    bench: str = typer.Option(..., "--bench", help="A manifest.jsonl, or rve-sim-mini[:SEED]: RVE-Sim's test split, "
                              "generated once into $REVISE_CACHE (default ~/.cache/revise); seed 0 unless given."),
    out: Path = typer.Option(..., "--out", help="Output folder: run.json, results.jsonl, videos/, summary.json, "
                             "leaderboard.csv, report.html."),
    editor: Optional[str] = typer.Option(None, "--editor", help="A registered editor (see `revise bench list`), "
                                         "e.g. copy, oracle, shuffle."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", help="Score videos made elsewhere: DIR/<id>.mp4 "
                                               "per sample, no editor. Missing or broken files fail their sample."),
    judge: str = typer.Option("gt", "--judge", help="Comma-separated judges, e.g. gt,openai,metrics. The first one "
                              "that gives rubric scores is the primary judge of summary.json."),
    editor_option: List[str] = typer.Option([], "--editor-option", help="KEY=VALUE passed to the editor (repeatable; "
                                            "VALUE parsed as JSON when it can be)."),
    judge_option: List[str] = typer.Option([], "--judge-option", help="JUDGE.KEY=VALUE passed to that judge "
                                           "(repeatable), e.g. openai.model=gpt-4o. Secrets go in the environment."),
    resume: bool = typer.Option(False, "--resume", help="Continue a run in OUT: finished samples are skipped, a torn "
                                "last line is redone. Refused if the editor, judges or bench differ from run.json."),
    shard: Optional[str] = typer.Option(None, "--shard", help="i/n: run only samples whose index % n == i (after "
                                        "--limit), into its own --out; join with `revise bench merge`. auto: the "
                                        "shard of this rank under torchrun / accelerate launch, into "
                                        "OUT/shards/rank<i>; rank 0 waits and merges them into OUT (no launcher: "
                                        "one shard)."),
    shard_timeout: float = typer.Option(24 * 3600.0, "--shard-timeout", help="With --shard auto: how many seconds "
                                        "rank 0 waits for the other shards to finish before giving up."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N samples of the manifest."),
    seed: int = typer.Option(0, "--seed", help="Seed handed to the editor (and recorded in run.json)."),
    frames_k: int = typer.Option(8, "--frames-k", help="Frames sampled per video by judges that sample frames."),
    workers: int = typer.Option(1, "--workers", help="Samples processed in parallel threads (the editor call itself "
                                "is serialised; helps API judges)."),
    length: str = typer.Option("fail", "--length", help="A prediction whose frame count differs from the source's "
                               "(or the target's): 'fail' the sample, or 'resample' it to the source length "
                               "(flagged in the row)."),
    leaderboard: Optional[Path] = typer.Option(None, "--leaderboard", help="A CSV shared across runs to append to "
                                               "(default OUT/leaderboard.csv)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write OUT/report.html at the end."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with the running Overall."),
) -> None:
    """Run an editor (or score --predictions) over a benchmark with judges; write OUT/results.jsonl and summary.json.

    A failed sample (editor error, bad or wrong-length video) is recorded and the run goes on.

    In summary.json a failed sample scores 1 on every sub-score; overall_scored leaves failures out.

    Rows are fsynced as they finish: a killed run continues with --resume.
    """
    from ..bench import run_bench

    if editor is None and predictions is None:
        raise ConfigError("give --editor NAME or --predictions DIR")
    judges = [j.strip() for j in judge.split(",") if j.strip()]
    cli_args = {"bench": bench, "out": str(out), "editor": editor, "predictions": str(predictions) if predictions else None,
                "judge": judges, "editor_option": list(editor_option), "judge_option": list(judge_option),
                "resume": resume, "shard": shard, "limit": limit, "seed": seed, "frames_k": frames_k,
                "workers": workers, "length": length, "leaderboard": str(leaderboard) if leaderboard else None}
    result = run_bench(bench, out, editor=editor, editor_options=_parse_pairs(editor_option, "--editor-option"),
                       predictions=predictions, judges=judges, judge_options=_parse_judge_options(judge_option),
                       resume=resume, shard=shard, limit=limit, seed=seed, frames_k=frames_k, workers=workers,
                       length_policy=length, leaderboard=leaderboard, report=report, progress=progress,
                       cli_args=cli_args, shard_timeout=shard_timeout)
    _print_summary(result.summary, result.out_dir)
    typer.echo(f"{result.n_run} sample(s) run, {result.n_skipped} already done, {result.n_failed} failed; "
               f"results in {result.results_path}" + (f", report {result.report}" if result.report else ""))


@bench_app.command("merge")
def merge(
    runs: List[Path] = typer.Argument(..., help="Output folders of the shards (--shard i/n) of one run."),
    out: Path = typer.Option(..., "--out", help="A fresh folder for the merged run."),
    leaderboard: Optional[Path] = typer.Option(None, "--leaderboard", help="A CSV to append the merged run to "
                                               "(default OUT/leaderboard.csv)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write OUT/report.html."),
) -> None:
    """Join shard folders into one run (refusing duplicate ids or different settings) and re-aggregate."""
    from ..bench import merge_runs

    cli_args = {"runs": [str(r) for r in runs], "out": str(out), "leaderboard": str(leaderboard) if leaderboard else None}
    result = merge_runs(runs, out, leaderboard=leaderboard, report=report, cli_args=cli_args)
    _print_summary(result.summary, result.out_dir)
    missing = result.summary.get("provenance", {}).get("shards_missing")
    if missing:
        typer.echo(f"warning: shard(s) {', '.join(missing)} missing from the merge", err=True)


@bench_app.command("summarize")
def summarize(
    out: Path = typer.Argument(..., help="A run folder (with results.jsonl)."),
    leaderboard: Optional[Path] = typer.Option(None, "--leaderboard", help="A CSV to append to (default "
                                               "OUT/leaderboard.csv; identical rows are not repeated)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Rewrite OUT/report.html."),
) -> None:
    """Re-aggregate a run folder from results.jsonl: summary.json, leaderboard rows, report."""
    from ..bench import append_leaderboard, leaderboard_rows, summarize_run
    from ..bench.runner import write_report_if_available

    summary = summarize_run(out)
    append_leaderboard(leaderboard or out / "leaderboard.csv", leaderboard_rows(summary, out))
    if report:
        write_report_if_available(out)
    _print_summary(summary, out)


@bench_app.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="Run A (the baseline)."),
    run_b: Path = typer.Argument(..., help="Run B; differences are B - A."),
    judge: Optional[str] = typer.Option(None, "--judge", help="Judge to compare on (default: A's primary judge)."),
) -> None:
    """Per-dimension differences of Reasoning, Consistency, Quality and Overall between two runs."""
    from ..bench import compare_runs, comparison_table

    comparison = compare_runs(run_a, run_b, judge=judge)
    console = _console()
    console.print(comparison_table(comparison))
    for note in comparison.notes:
        console.print(f"note: {note}", markup=False)


def _parse_editor_options(items: list[str]) -> dict:
    """``EDITOR.KEY=VALUE`` -> ``{EDITOR: {KEY: VALUE}}``."""
    out: dict = {}
    for item in items:
        name, dot, rest = item.partition(".")
        if not dot or "=" not in rest or "=" in name:
            raise ConfigError(f"--editor-option {item!r}: expected EDITOR.KEY=VALUE, "
                              "e.g. revise-tiny.model=runs/sft")
        out.setdefault(name.strip(), {}).update(_parse_pairs([rest], "--editor-option"))
    return out


def _print_agreement(agreement: dict, path: Path) -> None:
    from rich.table import Table

    def fmt(x):
        return "-" if x is None else f"{x:.3f}"

    judge, reference = agreement["judge"], agreement["reference"]
    console = _console()
    table = Table(title=f"{path}  ({judge} vs {reference}; pass = Reasoning >= {agreement['pass_reasoning']:g})")
    for column in ("editor", "n", "excluded", "agreement", "kappa", f"{judge} pass", f"{reference} pass",
                   "pearson R", "spearman R"):
        table.add_column(column, justify="left" if column == "editor" else "right", no_wrap=True)

    def add(name: str, stats: dict, excluded) -> None:
        corr = stats.get("correlations", {}).get("reasoning", {})
        table.add_row(name, str(stats.get("n")), str(excluded), fmt(stats.get("verdict_agreement")),
                      fmt(stats.get("cohen_kappa")), fmt(stats.get("judge_pass_rate")),
                      fmt(stats.get("reference_pass_rate")), fmt(corr.get("pearson")), fmt(corr.get("spearman")))

    for editor, stats in agreement.get("by_editor", {}).items():
        add(editor, stats, stats.get("n_excluded"))
    add("pooled", agreement, agreement.get("excluded", {}).get("n"))
    console.print(table)
    overall = agreement.get("correlations", {}).get("overall", {})
    console.print(f"Overall score correlation: pearson {fmt(overall.get('pearson'))}, spearman "
                  f"{fmt(overall.get('spearman'))}; confusion {agreement.get('confusion')}", markup=False)


@bench_app.command("agreement")
def agreement(
    bench: str = typer.Option(..., "--bench", help="A manifest.jsonl (with ground truth for --reference gt), or "
                              "rve-sim-mini[:SEED]."),
    out: Path = typer.Option(..., "--out", help="Output folder: runs/<editor>/ (one bench run each) and "
                             "agreement.json."),
    judge: str = typer.Option("critic", "--judge", help="The judge under test."),
    reference: str = typer.Option("gt", "--reference", help="The reference judge it is compared with."),
    editors: str = typer.Option(",".join(("oracle", "copy", "shuffle")), "--editors",
                                help="Comma-separated editors whose edits both judges score (a mix of right and "
                                     "wrong answers), e.g. oracle,copy,shuffle,revise-tiny."),
    judge_option: List[str] = typer.Option([], "--judge-option", help="JUDGE.KEY=VALUE (repeatable), e.g. "
                                           "critic.model=runs/sft."),
    editor_option: List[str] = typer.Option([], "--editor-option", help="EDITOR.KEY=VALUE (repeatable), e.g. "
                                            "revise-tiny.model=runs/sft."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N samples of the manifest."),
    seed: int = typer.Option(0, "--seed", help="Seed handed to the editors (the shuffle pick, revise-tiny's "
                             "sampling)."),
    frames_k: int = typer.Option(8, "--frames-k", help="Frames sampled per video by judges that take it (the critic "
                                 "uses its VLM's own count)."),
    workers: int = typer.Option(1, "--workers", help="Samples processed in parallel threads."),
    pass_reasoning: float = typer.Option(4.0, "--pass-reasoning", help="A sample passes for a judge when its "
                                         "Reasoning score is at least this (1-5)."),
    report: bool = typer.Option(False, "--report/--no-report", help="Write each run's report.html."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """How often a judge (the critic) gives the same pass/fail verdict as a reference judge (gt).

    Each editor runs over the bench with both judges into OUT/runs/<editor>; a rerun continues or reuses them.

    A sample passes for a judge when its Reasoning is at least --pass-reasoning (4; for the critic: p(Yes) >= 0.5).

    OUT/agreement.json: verdict agreement, kappa, confusion, correlations, per editor and dimension, provenance.
    """
    from ..bench.agreement import run_agreement

    cli_args = {"bench": bench, "out": str(out), "judge": judge, "reference": reference, "editors": editors,
                "judge_option": list(judge_option), "editor_option": list(editor_option), "limit": limit,
                "seed": seed, "frames_k": frames_k, "workers": workers, "pass_reasoning": pass_reasoning}
    result = run_agreement(bench, out, judge=judge, reference=reference, editors=editors,
                           judge_options=_parse_judge_options(judge_option),
                           editor_options=_parse_editor_options(editor_option), limit=limit, seed=seed,
                           frames_k=frames_k, workers=workers, pass_reasoning=pass_reasoning, report=report,
                           progress=progress, cli_args=cli_args)
    _print_agreement(result.agreement, result.path)
    ran = sum(r.n_run for r in result.runs.values())
    reused = sum(r.n_skipped for r in result.runs.values())
    typer.echo(f"{ran} sample(s) run, {reused} reused; agreement in {result.path}")


@bench_app.command("list")
def list_components() -> None:
    """The registered editors and judges."""
    from ..editors import available as editors
    from ..judges import available as judges

    typer.echo("editors: " + ", ".join(editors()))
    typer.echo("judges:  " + ", ".join(judges()))
