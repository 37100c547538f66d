"""The self-reflection ablation, reproducible by one command (issue 5).

From the same SFT initialisation, on the same training data, for the same number of steps and the same
seeds: FM-only fine-tuning (``revise train srf --lambda 0``) against FM + self-reflection (``--lambda L``).
Every checkpoint (and the initialisation itself) then edits the same test split and is scored by the
exact ``gt`` judge and by the ``critic`` judge (the *initialisation's* VLM for every arm, so the critic
is the same yardstick everywhere). Written to ``WORK``:

* ``ablation.json``: per arm and dimension the mean gt Overall / Reasoning and the critic's p(Yes), with
  95% bootstrap intervals (resampling test samples; each sample's value is its mean over seeds); the
  paired difference self-reflection - FM-only per dimension with its interval and the relative Overall
  change; the reward-hacking check (did the critic's score and the exact score move together?);
* ``ablation.md``: the same as tables; ``ablation.svg``: Overall per dimension, both arms, with intervals.

Runs are resumable (finished checkpoints and bench runs are reused; a killed training resumes).
``--jobs 2`` trains / evaluates two runs at a time (one torch thread each).

    .venv/bin/python benchmarks/srf_ablation.py --init revise-tiny --data /tmp/sft/train --work /tmp/ablation
"""

from __future__ import annotations

import argparse
import html
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from revise.data import SUBSETS
from revise.model.unified import resolve_checkpoint
from revise.sim import generate_dataset

REVISE = [sys.executable, "-m", "revise.cli.main"]
DIMS = [f"{s}/{d}" for s, ds in SUBSETS.items() for d in ds]


def run(cmd: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if rc.returncode:
        raise SystemExit(f"failed ({rc.returncode}): {' '.join(cmd)}; see {log}")


def train(args, arm: str, seed: int) -> Path:
    out = args.work / "runs" / f"{arm}-s{seed}"
    if (out / "revise.json").is_file():
        return out
    lam = 0.0 if arm == "fm" else args.lam
    cmd = REVISE + ["train", "srf", "--init", str(args.init), "--data", str(args.data), "--out", str(out),
                    "--lambda", str(lam), "--reward-t-range", args.reward_t_range, "--steps", str(args.steps),
                    "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--seed", str(seed), "--threads", "1"]
    if args.unfreeze_critic_head and arm == "srf":
        cmd.append("--unfreeze-critic-head")
    if (out / "state" / "state.json").is_file():
        cmd.append("--resume")
    run(cmd, args.work / "logs" / f"train-{arm}-s{seed}.log")
    return out


def evaluate(args, name: str, model: Path, test: Path) -> Path:
    out = args.work / "eval" / name
    if (out / "summary.json").is_file():
        return out
    cmd = REVISE + ["bench", "run", "--bench", str(test), "--out", str(out), "--editor", "revise-tiny",
                    "--editor-option", f"model={model}", "--editor-option", "threads=1", "--judge", "gt,critic",
                    "--judge-option", f"critic.model={args.init}", "--seed", "0",
                    "--no-report", "--no-progress"]
    if (out / "run.json").is_file():
        cmd.append("--resume")
    run(cmd, args.work / "logs" / f"eval-{name}.log")
    return out


def read_rows(folder: Path) -> dict[str, dict]:
    rows = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        gt, critic = r["judges"].get("gt", {}), r["judges"].get("critic", {})
        rows[r["id"]] = {"dim": f"{r['subset']}/{r['dimension']}", "overall": gt.get("overall"),
                         "reasoning": gt.get("reasoning"),
                         "critic": (critic.get("metrics") or {}).get("critic_p_yes")}
    return rows


def bootstrap(values: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def per_sample(evals: dict[str, dict[str, dict]], names: list[str], key: str) -> dict[str, float]:
    """Each sample's ``key`` averaged over the runs ``names`` (the seeds of one arm)."""
    ids = set.intersection(*(set(evals[n]) for n in names))
    out = {}
    for i in sorted(ids):
        vals = [evals[n][i][key] for n in names]
        if all(v is not None for v in vals):
            out[i] = float(np.mean(vals))
    return out


def analyse(evals: dict[str, dict[str, dict]], seeds: list[int], rng_seed: int = 0) -> dict:
    rng = np.random.default_rng(rng_seed)
    arms = {"sft": ["sft"], "fm": [f"fm-s{s}" for s in seeds], "srf": [f"srf-s{s}" for s in seeds]}
    dims_of = {i: r["dim"] for i, r in evals["sft"].items()}
    table: dict = {"arms": {}, "difference": {}, "hacking": {}}
    samples = {arm: {k: per_sample(evals, names, k) for k in ("overall", "reasoning", "critic")}
               for arm, names in arms.items()}
    for arm in arms:
        table["arms"][arm] = {}
        for dim in DIMS + ["all"]:
            cell = {}
            for key in ("overall", "reasoning", "critic"):
                vals = [v for i, v in samples[arm][key].items() if dim == "all" or dims_of.get(i) == dim]
                cell[key] = bootstrap(np.array(vals), rng)
            table["arms"][arm][dim] = cell
    for dim in DIMS + ["all"]:
        cell = {}
        for key in ("overall", "reasoning", "critic"):
            a, b = samples["srf"][key], samples["fm"][key]
            ids = [i for i in a if i in b and (dim == "all" or dims_of.get(i) == dim)]
            diff = np.array([a[i] - b[i] for i in ids])
            cell[key] = bootstrap(diff, rng)
        base = table["arms"]["fm"][dim]["overall"][0]
        cell["relative_overall"] = [v / base if base else float("nan") for v in cell["overall"]]
        table["difference"][dim] = cell
    ids = [i for i in samples["srf"]["critic"] if i in samples["fm"]["critic"] and i in samples["srf"]["overall"]
           and i in samples["fm"]["overall"]]
    d_critic = np.array([samples["srf"]["critic"][i] - samples["fm"]["critic"][i] for i in ids])
    d_gt = np.array([samples["srf"]["overall"][i] - samples["fm"]["overall"][i] for i in ids])
    corr = float(np.corrcoef(d_critic, d_gt)[0, 1]) if len(ids) > 2 and d_critic.std() > 0 and d_gt.std() > 0 \
        else float("nan")
    dc, dg = table["difference"]["all"]["critic"], table["difference"]["all"]["overall"]
    critic_up, gt_up = dc[1] > 0, dg[1] > 0
    if critic_up and not gt_up:
        verdict = "critic score rose while the exact score did not: the generator learned to please the critic"
    elif critic_up and gt_up:
        verdict = "both rose: the critic's gain is backed by the exact judge"
    elif not critic_up and gt_up:
        verdict = "the exact score rose without a measurable critic gain"
    else:
        verdict = "neither rose measurably (both intervals include zero or are below it)"
    table["hacking"] = {"critic_change": dc, "gt_overall_change": dg, "per_sample_correlation": corr,
                        "n": len(ids), "verdict": verdict}
    return table


def fmt(c) -> str:
    return f"{c[0]:.3f} [{c[1]:.3f}, {c[2]:.3f}]"


def markdown(table: dict, args) -> str:
    lines = [f"Self-reflection ablation: init `{args.init}`, {args.steps} steps, batch {args.batch_size}, lr {args.lr}, "
             f"lambda {args.lam}, reward t-range {args.reward_t_range}, seeds {args.seeds}, test split seed "
             f"{args.test_seed} ({args.test_per_dimension} per dimension). Means with 95% bootstrap intervals.", "",
             "| dimension | SFT init Overall | FM-only Overall | FM + self-reflection Overall | difference | relative |"
             " FM-only critic p(Yes) | SRF critic p(Yes) |", "|---|---|---|---|---|---|---|---|"]
    for dim in DIMS + ["all"]:
        a = table["arms"]
        d = table["difference"][dim]
        lines.append(f"| {dim} | {fmt(a['sft'][dim]['overall'])} | {fmt(a['fm'][dim]['overall'])} | "
                     f"{fmt(a['srf'][dim]['overall'])} | {fmt(d['overall'])} | {d['relative_overall'][0]:+.1%} | "
                     f"{fmt(a['fm'][dim]['critic'])} | {fmt(a['srf'][dim]['critic'])} |")
    lines += ["", "| dimension | FM-only Reasoning | SRF Reasoning | difference |", "|---|---|---|---|"]
    for dim in DIMS + ["all"]:
        a = table["arms"]
        lines.append(f"| {dim} | {fmt(a['fm'][dim]['reasoning'])} | {fmt(a['srf'][dim]['reasoning'])} | "
                     f"{fmt(table['difference'][dim]['reasoning'])} |")
    h = table["hacking"]
    lines += ["", f"Reward-hacking check: critic p(Yes) change {fmt(h['critic_change'])}, gt Overall change "
              f"{fmt(h['gt_overall_change'])}, per-sample correlation of the two changes {h['per_sample_correlation']:.2f}"
              f" (n = {h['n']}): {h['verdict']}."]
    return "\n".join(lines) + "\n"


def svg(table: dict) -> str:
    w, h, left, top, bottom = 760, 300, 50, 20, 70
    plot_h = h - top - bottom
    lo, hi = 1.0, 5.0
    groups = DIMS + ["all"]
    gw = (w - left - 10) / len(groups)
    colours = {"fm": "#7f8c8d", "srf": "#2e86de"}
    y = lambda v: top + plot_h * (1 - (v - lo) / (hi - lo))  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="10">', f'<rect width="{w}" height="{h}" fill="white"/>']
    for v in (1, 2, 3, 4, 5):
        parts.append(f'<line x1="{left}" x2="{w - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(v) + 3:.1f}" text-anchor="end">{v}</text>')
    for g, dim in enumerate(groups):
        x0 = left + g * gw
        for k, arm in enumerate(("fm", "srf")):
            m, a, b = table["arms"][arm][dim]["overall"]
            if not np.isfinite(m):
                continue
            bx = x0 + 6 + k * (gw - 12) / 2
            bw = (gw - 12) / 2 - 2
            parts.append(f'<rect x="{bx:.1f}" y="{y(m):.1f}" width="{bw:.1f}" height="{y(lo) - y(m):.1f}" '
                         f'fill="{colours[arm]}"/>')
            cx = bx + bw / 2
            parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(a):.1f}" y2="{y(b):.1f}" stroke="black"/>')
        parts.append(f'<text x="{x0 + gw / 2:.1f}" y="{h - bottom + 14}" text-anchor="end" '
                     f'transform="rotate(-35 {x0 + gw / 2:.1f} {h - bottom + 14})">{html.escape(dim)}</text>')
    parts.append(f'<text x="{left}" y="12">gt Overall (1-5), 95% CI: '
                 f'<tspan fill="{colours["fm"]}">FM-only</tspan> vs '
                 f'<tspan fill="{colours["srf"]}">FM + self-reflection</tspan></text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--init", default="revise-tiny", help="SFT checkpoint (folder or shipped name)")
    p.add_argument("--data", type=Path, required=True, help="RVE-Sim train folder (the SFT's, or generated there)")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lambda", dest="lam", type=float, default=0.1)
    p.add_argument("--reward-t-range", default="0.0,0.6")
    p.add_argument("--unfreeze-critic-head", action="store_true")
    p.add_argument("--test-per-dimension", type=int, default=10)
    p.add_argument("--test-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    args.init = resolve_checkpoint(args.init)
    seeds = [int(s) for s in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    test = args.work / f"test-{args.test_per_dimension}-s{args.test_seed}" / "manifest.jsonl"
    if not test.is_file():
        generate_dataset(test.parent, per_dimension=args.test_per_dimension, seed=args.test_seed, split="test",
                         workers=2, overwrite=True)
    jobs = [(arm, s) for s in seeds for arm in ("fm", "srf")]
    with ThreadPoolExecutor(args.jobs) as pool:
        models = dict(zip([f"{a}-s{s}" for a, s in jobs], pool.map(lambda j: train(args, *j), jobs)))
        models["sft"] = args.init
        names = list(models)
        folders = dict(zip(names, pool.map(lambda n: evaluate(args, n, models[n], test), names)))
    evals = {n: read_rows(f) for n, f in folders.items()}
    table = analyse(evals, seeds)
    table["settings"] = {k: str(v) for k, v in vars(args).items()}
    (args.work / "ablation.json").write_text(json.dumps(table, indent=1) + "\n")
    (args.work / "ablation.md").write_text(markdown(table, args))
    (args.work / "ablation.svg").write_text(svg(table))
    print(markdown(table, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
