"""Issue 19's generator ablation: which lever moves revise-tiny's Reasoning share, and what limits it.

Every variant trains a generator with the shipped recipe (64 px, anchor frames, gated skip, bf16 forward
passes, rave/commonsense and icvg/emotional drawn twice as often) conditioned on the **shipped VLM**
(``revise train sft --stages generator --init-vlm revise-tiny``), seed 0, and changes one thing:

    control      1,200 clips (150 per dimension), 1,500 steps
    steps-500    the same with 500 steps                      (compute curve)
    data-40      320 clips (40 per dimension), 1,500 steps     (data curve)
    data-600     4,800 clips (600 per dimension), 1,500 steps  (data curve)
    adaln        control + the instruction through adaLN ("adaln_condition": true)
    vlm-facts    control conditioned on a VLM of its own instead of the shipped one: the shipped VLM recipe
                 (3,000 steps, seed 0) with the simulator's objects as an extra task (``--vlm-facts``);
                 its describe/reason/facts scores on val are printed next to the shipped VLM's
    long         4,800 clips, fp32, a 20,000-step cosine schedule fitted to a 95-minute budget
                 (``--max-minutes 95``): the longest run one session holds, and the shipped generator
    latent       control in the latent space of a tiny Wan VAE trained first on the same clips
                 (``revise train vae --steps 1200``, ``--gen-vae``): a (8, 5, 8, 8) latent per clip, patches
                 of 1 x 1 x 1 (320 tokens against 512) and source tokens of 1 x 2 x 2

Every run keeps an EMA of its weights (``--ema 0.999``), which does not change training, so each run gives
two rows: ``NAME`` (the last raw weights, ``generator-raw/``) and ``NAME+ema``. ``shipped`` is the shipped
checkpoint (its clips and steps read from its ``revise.json``); ``--previous CKPT`` adds the checkpoint
shipped before it as ``previous`` (1,200 clips, 5,145 steps, the same VLM: the compute curve's third point)
and each row's paired difference to it.

Each checkpoint is scored by the exact ``gt`` judge on the val split (choose) and the test split (report),
``--per-dimension`` samples per dimension each, seed 0. Printed: the Reasoning share (mean of the
per-sample ``gt_reasoning_s``), Reasoning, Overall and accuracy, and the paired share difference to
``control`` on the same samples with a bootstrap 95% interval; the ``copy`` editor (the source returned
unchanged) is the floor. Everything is resumable: a killed run
resumes its training (``--resume``) and its bench runs (per sample), and finished steps are skipped.

    .venv/bin/python benchmarks/ablation_generator.py --work /work/ablation
    .venv/bin/python benchmarks/ablation_generator.py --work /work/ablation --variants control,adaln
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from revise.bench import bootstrap_ci, load_results, run_bench
from revise.data import SUBSETS
from revise.model.unified import resolve_checkpoint
from revise.sim import generate_dataset

SHIPPED_GEN = {"anchor_frames": True, "gated_skip": True, "sample_size": [64, 64], "patch_size": [2, 8, 8],
               "source_patch_size": [2, 16, 16]}
SHIPPED_WEIGHTS = {"rave/commonsense": 2, "icvg/emotional": 2}
VARIANTS = {
    "control": {"per_dimension": 150, "steps": 1500},
    "steps-500": {"per_dimension": 150, "steps": 500},
    "data-40": {"per_dimension": 40, "steps": 1500},
    "data-600": {"per_dimension": 600, "steps": 1500},
    "adaln": {"per_dimension": 150, "steps": 1500, "generator": {"adaln_condition": True}},
    "vlm-facts": {"per_dimension": 150, "steps": 1500, "vlm": {"facts": True, "steps": 3000}},
    "long": {"per_dimension": 600, "steps": 20000, "max_minutes": 95, "bf16": False},
    "latent": {"per_dimension": 150, "steps": 1500, "vae": {"steps": 1200},
               "generator": {"patch_size": [1, 1, 1], "source_patch_size": [1, 2, 2]}},
}
DIMENSIONS = [f"{s}/{d}" for s, dims in SUBSETS.items() for d in dims]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_split(work: Path, per_dimension: int, seed: int, *, biggest: int | None = None, size: int = 128) -> Path:
    """``work/train-N-sS``: the first N per dimension of the largest split (``biggest`` per dimension, by
    default the largest any variant uses), as hard links. The train split of N per dimension is a prefix of
    every larger one, so this is exactly what ``sim generate -n N`` writes (tested)."""
    folder = work / f"train-{per_dimension}-s{seed}"
    if (folder / "manifest.jsonl").is_file():
        return folder
    biggest = biggest or max(v["per_dimension"] for v in VARIANTS.values())
    full = work / f"train-{biggest}-s{seed}"
    if not (full / "manifest.jsonl").is_file():
        log(f"generating the train split ({biggest} per dimension) in {full}")
        generate_dataset(full, per_dimension=biggest, seed=seed, split="train", size=size, workers=2,
                         overwrite=True, progress=True)
    if per_dimension == biggest:
        return full
    tmp = work / f".train-{per_dimension}-s{seed}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    lines = []
    for line in (full / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        if int(row["id"].rsplit("-", 1)[1]) < per_dimension:
            lines.append(line)
            for key in ("source", "target", "state"):
                value = row.get(key)
                if isinstance(value, str) and value:
                    (tmp / value).parent.mkdir(parents=True, exist_ok=True)
                    os.link(full / value, tmp / value)
    if len(lines) != per_dimension * len(DIMENSIONS):
        raise SystemExit(f"{full}: expected {per_dimension * len(DIMENSIONS)} samples below index {per_dimension}, "
                         f"found {len(lines)}")
    (tmp / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    os.replace(tmp, folder)
    return folder


def eval_split(work: Path, split: str, per_dimension: int, seed: int) -> Path:
    folder = work / f"{split}-{per_dimension}-s{seed}"
    if not (folder / "manifest.jsonl").is_file():
        generate_dataset(folder, per_dimension=per_dimension, seed=seed, split=split, workers=2, overwrite=True,
                         progress=True)
    return folder / "manifest.jsonl"


def train(work: Path, name: str, spec: dict, threads: int) -> Path:
    """Train (or resume, or skip when finished) the variant's run; returns its checkpoint folder."""
    out = work / "runs" / name
    if (out / "revise.json").is_file():
        return out
    data = train_split(work, spec["per_dimension"], 0)
    vlm = str(train_vlm(work, name, spec["vlm"], data, threads)) if spec.get("vlm") else "revise-tiny"
    cmd = [sys.executable, "-m", "revise.cli.main", "train", "sft", "--data", str(data), "--out", str(out),
           "--stages", "generator", "--init-vlm", vlm, "--seed", "0",
           "--per-dimension", str(spec["per_dimension"]), "--gen-steps", str(spec["steps"]),
           "--ema", "0.999", "--threads", str(threads),
           "--generator-config", json.dumps({**SHIPPED_GEN, **spec.get("generator", {})}),
           "--dimension-weights", json.dumps(SHIPPED_WEIGHTS)]
    if spec.get("bf16", True):
        cmd += ["--bf16", "generator"]
    if spec.get("max_minutes"):
        cmd += ["--max-minutes", str(spec["max_minutes"])]
    if spec.get("vae"):
        cmd += ["--gen-vae", str(train_vae_run(work, name, spec["vae"], data, threads))]
    run_training(name, cmd, out)
    return out


def run_training(what: str, cmd: list[str], run: Path) -> None:
    """Run a `revise train` command line into ``run``, resuming the state a killed run left there."""
    if (run / "state" / "state.json").is_file():
        cmd = [*cmd, "--resume"]
    log(f"training {what}: {' '.join(cmd[1:])}")
    subprocess.run(cmd, check=True)


def own_vlm(work: Path, name: str) -> Path:
    """The run folder of variant ``name``'s own VLM."""
    return work / "runs" / f"{name}-vlm"


def vlm_done(run: Path, steps: int) -> bool:
    state = run / "state" / "state.json"
    if not (run / "vlm" / "model.safetensors").is_file() or not state.is_file():
        return False
    meta = json.loads(state.read_text()).get("meta", {})
    return "vlm" in meta.get("done", []) and int(meta.get("stage_steps", {}).get("vlm", 0)) >= steps


def train_vlm(work: Path, name: str, spec: dict, data: Path, threads: int) -> Path:
    """The variant's own VLM (``work/runs/NAME-vlm``, the shipped VLM recipe plus ``spec``'s changes), trained or
    resumed; returns its VLM folder."""
    run = own_vlm(work, name)
    if not vlm_done(run, spec["steps"]):
        cmd = [sys.executable, "-m", "revise.cli.main", "train", "sft", "--data", str(data), "--out", str(run),
               "--stages", "vlm", "--seed", "0", "--vlm-steps", str(spec["steps"]), "--threads", str(threads)]
        if spec.get("facts"):
            cmd.append("--vlm-facts")
        run_training(f"{name}'s VLM", cmd, run)
    return run / "vlm"


def train_vae_run(work: Path, name: str, spec: dict, data: Path, threads: int) -> Path:
    """The variant's VAE (``work/runs/NAME-vae``, ``revise train vae`` with its defaults and ``spec["steps"]``),
    trained or resumed; returns its VAE folder."""
    run = work / "runs" / f"{name}-vae"
    if not (run / "vae.json").is_file():
        run_training(f"{name}'s VAE", [sys.executable, "-m", "revise.cli.main", "train", "vae", "--data", str(data),
                                       "--out", str(run), "--seed", "0", "--steps", str(spec["steps"]),
                                       "--threads", str(threads)], run)
    return run / "vae"


def raw_checkpoint(out: Path) -> Path:
    """``out-raw``: the run's checkpoint with its last raw weights (``generator-raw/``) as the generator."""
    raw = out.with_name(out.name + "-raw")
    if (raw / "revise.json").is_file():
        return raw
    tmp = out.with_name(out.name + "-raw.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    shutil.copy2(out / "revise.json", tmp / "revise.json")
    shutil.copytree(out / "vlm", tmp / "vlm")
    shutil.copytree(out / "generator-raw", tmp / "generator")
    os.replace(tmp, raw)
    return raw


def vlm_scores(work: Path, name: str, vlm: Path | None, manifest: Path) -> dict:
    """The VLM's val scores (``revise.train.vlm.evaluate_vlm``: judge accuracy, reasoning answers' word F1 and
    colour match, facts answers' colour/object match), cached in ``work/vlm-NAME.json``."""
    path = work / f"vlm-{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    from revise.model.unified import ReviseModel
    from revise.model.vlm import ReviseVLM
    from revise.train.vlm import evaluate_vlm

    model = (ReviseVLM.from_pretrained(vlm) if vlm is not None
             else ReviseModel.from_pretrained(resolve_checkpoint("revise-tiny")).vlm)
    log(f"evaluating {name}'s VLM on {manifest}")
    r = evaluate_vlm(model, manifest, cache_dir=work / "vlm-cache")
    row = {"judge_accuracy": r["judge_accuracy"], "reason_word_f1": r["reason"]["word_f1"],
           "reason_colour_match": r["reason"]["colour_match"], "facts_colour_match": r["facts"]["colour_match"],
           "facts_object_match": r["facts"]["object_match"], "facts_colour_recall": r["facts"]["colour_recall"],
           "describe_word_f1": r["describe"]["word_f1"], "describe_colour_match": r["describe"]["colour_match"],
           "facts_examples": r["facts"]["examples"][:3], "reason_examples": r["reason"]["examples"][:3]}
    path.write_text(json.dumps(row, indent=1) + "\n")
    return row


def shares(run_dir: Path) -> dict[str, tuple[str, float, float, bool, float]]:
    """``id -> (dimension, gt_reasoning_s, overall, passed, reasoning)``; a failed sample counts 0 / 1 / not
    passed / 1, as the bench's own summary does."""
    out = {}
    for row in load_results(run_dir / "results.jsonl"):
        gt = (row.get("judges") or {}).get("gt") or {}
        dim = f"{row.get('subset')}/{row.get('dimension')}"
        value = (gt.get("metrics") or {}).get("gt_reasoning_s")
        scores = [gt.get(k) for k in ("reasoning", "consistency", "quality")]
        if row.get("status") == "ok" and not gt.get("error") and isinstance(value, (int, float)) and all(
                isinstance(s, (int, float)) for s in scores):
            out[row["id"]] = (dim, float(value), float(np.mean(scores)), all(s == 5 for s in scores),
                              float(scores[0]))
        else:
            out[row["id"]] = (dim, 0.0, 1.0, False, 1.0)
    return out


def score(work: Path, ckpt: Path | None, label: str, manifest: Path, split: str, threads: int) -> dict:
    """The gt judge's per-sample shares of ``ckpt`` (``None``: the ``copy`` editor) on ``manifest``."""
    out = work / "bench" / f"{label}-{split}"
    editor, options = ("copy", {}) if ckpt is None else ("revise-tiny", {"model": str(ckpt), "threads": threads})
    run_bench(manifest, out, editor=editor, editor_options=options, judges=["gt"], seed=0,
              resume=(out / "run.json").is_file(), report=False, progress=True)
    return shares(out)


def paired(per: dict, base: dict) -> tuple[float, list[float]]:
    """The mean paired share difference ``per - base`` over their (identical) samples, with its 95% CI."""
    ids = sorted(per)
    diff = np.array([per[i][1] - base[i][1] for i in ids])
    return round(float(diff.mean()), 4), bootstrap_ci(diff)


def spec_of(ckpt: Path) -> dict:
    """A checkpoint's clips per dimension and generator steps, from its ``revise.json`` (through the records of
    the recipes run on top of the generator's training, such as ``train critic``)."""
    training = json.loads((ckpt / "revise.json").read_text()).get("training", {})
    while "generator" not in (training.get("steps") or {}) and training.get("init_training"):
        training = training["init_training"]  # a recipe on top (the critic step): the generator's own record
    return {"per_dimension": int(training.get("train_samples", 0)) // len(DIMENSIONS),
            "steps": int((training.get("steps") or {}).get("generator", 0))}


def row_of(per: dict, control: dict | None, previous: dict | None = None) -> dict:
    ids = sorted(per)
    values = np.array([per[i][1] for i in ids])
    row = {"share": round(float(values.mean()), 4), "ci95": bootstrap_ci(values),
           "reasoning": round(float(np.mean([per[i][4] for i in ids])), 3),
           "overall": round(float(np.mean([per[i][2] for i in ids])), 3),
           "accuracy": round(float(np.mean([per[i][3] for i in ids])), 4), "n": len(ids),
           "dimensions": {d: round(float(np.mean([per[i][1] for i in ids if per[i][0] == d])), 4)
                          for d in DIMENSIONS if any(per[i][0] == d for i in ids)}}
    if control is not None and set(control) == set(per):
        row["vs_control"], row["vs_control_ci95"] = paired(per, control)
    if previous is not None and set(previous) == set(per):
        row["vs_previous"], row["vs_previous_ci95"] = paired(per, previous)
    return row


CURVES = (("compute", "generator steps (1,200 clips; the last 4,800)", "generator_steps",
           ("steps-500", "control", "previous", "long")),
          ("data", "train clips (1,500 steps)", "train_clips", ("data-40", "control", "data-600")))


def scaling_svg(variants: dict) -> str:
    """Two panels, test share against generator steps and against train clips (log x), the last raw weights
    and the EMA as two lines, each point with its bootstrap 95% interval; val share dotted."""
    import math
    from html import escape

    w, h, pad, gap = 760, 300, 52, 40
    pw = (w - 2 * pad - gap) / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="11"><rect width="{w}" height="{h}" fill="white"/>']
    for p_i, (_, title, key, names) in enumerate(CURVES):
        x0 = pad + p_i * (pw + gap)
        series = {}
        for suffix, colour in (("", "#1f77b4"), ("+ema", "#d62728")):
            pts = [(variants[n + suffix][key], variants[n + suffix]) for n in names if n + suffix in variants]
            if pts:
                series[suffix] = (colour, sorted(pts, key=lambda t: t[0]))
        xs = [x for _, pts in series.values() for x, _ in pts]
        if not xs:
            continue
        lx, hx = math.log(min(xs)) - 0.2, math.log(max(xs)) + 0.2
        vals = [e[s]["share"] for _, pts in series.values() for _, e in pts for s in ("val", "test")]
        cis = [c for _, pts in series.values() for _, e in pts for c in (e["test"].get("ci95") or [])]
        lo_y, hi_y = min(vals + cis) - 0.02, max(vals + cis) + 0.02

        def X(v):
            return x0 + (math.log(v) - lx) / (hx - lx) * pw

        def Y(v):
            return h - pad - (v - lo_y) / (hi_y - lo_y) * (h - 2 * pad)

        parts.append(f'<rect x="{x0:.1f}" y="{pad}" width="{pw:.1f}" height="{h - 2 * pad}" fill="none" stroke="#999"/>')
        parts.append(f'<text x="{x0 + pw / 2:.1f}" y="{pad - 10}" text-anchor="middle" font-size="12">test share vs '
                     f'{escape(title)}</text>')
        for t in range(5):
            v = lo_y + (hi_y - lo_y) * t / 4
            parts.append(f'<text x="{x0 - 4:.1f}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        for x in sorted(set(xs)):
            parts.append(f'<text x="{X(x):.1f}" y="{h - pad + 14}" text-anchor="middle">{x:,}</text>')
        for suffix, (colour, pts) in series.items():
            line = " ".join(f"{X(x):.1f},{Y(e['test']['share']):.1f}" for x, e in pts)
            parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
            val = " ".join(f"{X(x):.1f},{Y(e['val']['share']):.1f}" for x, e in pts)
            parts.append(f'<polyline points="{val}" fill="none" stroke="{colour}" stroke-dasharray="3,3"/>')
            for x, e in pts:
                ci = e["test"].get("ci95")
                if ci:
                    parts.append(f'<line x1="{X(x):.1f}" x2="{X(x):.1f}" y1="{Y(ci[0]):.1f}" y2="{Y(ci[1]):.1f}" '
                                 f'stroke="{colour}" stroke-opacity="0.5"/>')
                parts.append(f'<circle cx="{X(x):.1f}" cy="{Y(e["test"]["share"]):.1f}" r="3" fill="{colour}"/>')
    parts.append(f'<text x="{pad}" y="{h - 12}" fill="#1f77b4">— last raw weights</text>'
                 f'<text x="{pad + 140}" y="{h - 12}" fill="#d62728">— EMA 0.999</text>'
                 f'<text x="{pad + 250}" y="{h - 12}" fill="#555">solid: test, dotted: val; bars: test 95% CI</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="folder for the data, the runs and the bench runs")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {list(VARIANTS)}")
    p.add_argument("--per-dimension", type=int, default=10, help="val and test samples per dimension")
    p.add_argument("--threads", type=int, default=2, help="torch threads of training and editing")
    p.add_argument("--no-shipped", action="store_true", help="leave out the shipped checkpoint's row")
    p.add_argument("--previous", type=Path, default=None,
                   help="the checkpoint shipped before this one (a row of its own, and every row's paired "
                        "difference to it)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    splits = {s: eval_split(args.work, s, args.per_dimension, 0) for s in ("val", "test")}

    checkpoints: dict[str, tuple[Path, dict]] = {}
    if not args.no_shipped:
        shipped = resolve_checkpoint("revise-tiny")
        checkpoints["shipped"] = (shipped, spec_of(shipped))
    if args.previous is not None:
        checkpoints["previous"] = (args.previous, spec_of(args.previous))
    for name in names:
        out = train(args.work, name, VARIANTS[name], args.threads)
        checkpoints[name] = (raw_checkpoint(out), VARIANTS[name])
        checkpoints[name + "+ema"] = (out, VARIANTS[name])

    results: dict = {"per_dimension": args.per_dimension, "seed": 0, "variants": {}}
    path = args.work / "ablation.json"
    if path.is_file():
        results["variants"] = json.loads(path.read_text()).get("variants", {})
    scored: dict[str, dict[str, dict]] = {}
    for label, (ckpt, spec) in checkpoints.items():
        scored[label] = {}
        for split, manifest in splits.items():
            log(f"scoring {label} on {split}")
            scored[label][split] = score(args.work, ckpt, label, manifest, split, args.threads)
    scored["copy"] = {split: score(args.work, None, "copy", manifest, split, args.threads)
                      for split, manifest in splits.items()}
    results["copy"] = {split: row_of(scored["copy"][split], scored.get("control", {}).get(split))
                       for split in splits}
    for label, (ckpt, spec) in checkpoints.items():
        training = json.loads((ckpt / "revise.json").read_text()).get("training", {})
        entry = {"train_clips": spec["per_dimension"] * len(DIMENSIONS),
                 "generator_steps": int((training.get("steps") or {}).get("generator", spec["steps"])),
                 "generator": spec.get("generator", {}), "ema": label.endswith("+ema"), "checkpoint": str(ckpt),
                 "train_seconds": training.get("seconds")}
        for split in splits:
            base = None if label == "control" else scored.get("control", {}).get(split)
            before = None if label == "previous" else scored.get("previous", {}).get(split)
            entry[split] = row_of(scored[label][split], base, before)
        results["variants"][label] = entry
    path.write_text(json.dumps(results, indent=1) + "\n")
    (args.work / "scaling.svg").write_text(scaling_svg(results["variants"]))

    print(f"\n{'variant':<16}{'clips':>7}{'steps':>7}{'val share':>11}{'test share':>12}{'test R':>8}{'test O':>8}"
          f"{'acc':>6}  test share - control [95% CI]   - previous [95% CI]")
    for label, e in results["variants"].items():
        t, v = e["test"], e["val"]
        vs = (f"{t['vs_control']:+.3f} [{t['vs_control_ci95'][0]:+.3f}, {t['vs_control_ci95'][1]:+.3f}]"
              if "vs_control" in t else " " * 23)
        if "vs_previous" in t:
            vs += f"   {t['vs_previous']:+.3f} [{t['vs_previous_ci95'][0]:+.3f}, {t['vs_previous_ci95'][1]:+.3f}]"
        print(f"{label:<16}{e['train_clips']:>7}{e['generator_steps']:>7}{v['share']:>11.3f}{t['share']:>12.3f}"
              f"{t['reasoning']:>8.2f}{t['overall']:>8.2f}{t['accuracy']:>6.2f}  {vs}")
    c = results["copy"]
    print(f"{'copy (floor)':<16}{'':>7}{'':>7}{c['val']['share']:>11.3f}{c['test']['share']:>12.3f}"
          f"{c['test']['reasoning']:>8.2f}{c['test']['overall']:>8.2f}{c['test']['accuracy']:>6.2f}")
    print(f"\nper-dimension test share:\n{'variant':<16}" + "".join(f"{d.split('/')[1][:9]:>10}" for d in DIMENSIONS))
    for label, e in results["variants"].items():
        print(f"{label:<16}" + "".join(f"{e['test']['dimensions'].get(d, float('nan')):>10.3f}" for d in DIMENSIONS))
    with_vlm = [n for n in names if VARIANTS[n].get("vlm")]
    if with_vlm:
        results["vlm"] = {"shipped": vlm_scores(args.work, "shipped", None, splits["val"])}
        for n in with_vlm:
            results["vlm"][n] = vlm_scores(args.work, n, own_vlm(args.work, n) / "vlm", splits["val"])
        path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nVLM on val:\n{'vlm':<16}{'judge acc':>10}{'reason F1':>10}{'reason col':>11}{'desc col':>9}"
              f"{'facts col':>10}{'facts obj':>10}{'col recall':>11}")
        for n, v in results["vlm"].items():
            print(f"{n:<16}{v['judge_accuracy']:>10.3f}{v['reason_word_f1']:>10.3f}{v['reason_colour_match']:>11.3f}"
                  f"{v['describe_colour_match']:>9.3f}{v['facts_colour_match']:>10.3f}{v['facts_object_match']:>10.3f}"
                  f"{v['facts_colour_recall']:>11.3f}")
    print(f"\nwritten {path} and {args.work / 'scaling.svg'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
