"""RVE-Bench harness: run an editor (or score prediction files) with judges, resumably and sharded.

``run_bench`` writes ``OUT/run.json`` (provenance) and ``OUT/results.jsonl`` (one fsynced row per
sample); ``summary.json``, ``leaderboard.csv`` and the HTML report are derived from those alone.
"""

from .aggregate import bootstrap_ci, judge_outcome, summarize, summarize_run
from .compare import Comparison, compare_runs, comparison_table, load_summary
from .leaderboard import COLUMNS as LEADERBOARD_COLUMNS
from .leaderboard import append_leaderboard, leaderboard_rows, read_leaderboard
from .merge import merge_runs
from .results import ResultsWriter, load_results, read_results, repair_torn_tail
from .runner import RunResult, parse_shard, resolve_bench, run_bench, rve_sim_mini, select_samples

__all__ = [
    "Comparison", "LEADERBOARD_COLUMNS", "ResultsWriter", "RunResult", "append_leaderboard", "bootstrap_ci",
    "compare_runs", "comparison_table", "judge_outcome", "leaderboard_rows", "load_results", "load_summary",
    "merge_runs", "parse_shard", "read_leaderboard", "read_results", "repair_torn_tail", "resolve_bench",
    "run_bench", "rve_sim_mini", "select_samples", "summarize", "summarize_run",
]
