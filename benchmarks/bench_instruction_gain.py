"""Instruction gain: how much of a checkpoint's Reasoning share comes from reading its instruction.

On an RVE-Sim test split, with the exact ``gt`` judge, the same model edits the same samples four times;
only the instruction changes (issue 19):

* ``true``: the sample's own instruction;
* ``content_free``: ``"Edit this video."`` for every sample;
* ``wrong``: another sample's instruction from the same scene type (same subset/dimension and same
  scenario family, ``metadata.scenario``), drawn as a seeded derangement, so never the sample's own, and
  never one that asks for the same edit (:func:`equivalent`: the same text, or the same family with no
  contradicting colour, side, duration or pronoun; e.g. every temporal_slow template means "half speed").
  A sample with no such partner in its family takes one from another scenario of its dimension
  (counted as ``fallback``; the gain is also printed for the two kinds apart); ``--wrong-scope dimension``
  always draws from another scenario of the dimension;
* ``paraphrase``: the hand-written paraphrases of ``tests/data/paraphrases.jsonl`` (no simulator template
  produces them), on the samples that have one and whose instruction there matches the split's.

Each variant is a derived manifest next to the split's (``manifest.variant-<name>.jsonl``: the same
samples and files, the instruction replaced) run with ``revise.bench.run_bench`` (editor ``revise-tiny``,
one torch thread, run seed 0: a sample's sampling noise is the same in every variant). Per-sample
``gt_reasoning_s`` comes from each run's ``results.jsonl``; failed rows are left out of the pairs and counted.
Printed: the mean share of every variant and the true instruction's share on the same samples; the gains
true - content_free and true - wrong, and "paraphrase keeps X% of the gain" = (para - free) / (true - free)
on the paraphrased samples, all with paired, seeded bootstrap 95% intervals; the same per dimension.
Targets (issue 19): gains >= 0.30, paraphrases keep >= 80%. Everything (per-sample shares and partners
too), with provenance, goes to ``WORK/bench_instruction_gain-test-<N>-s<seed>.json``; runs go to
``WORK/runs-instruction-gain/<model>-<weights hash>/<variant>-<manifest hash>`` and are resumed when rerun
(a rerun with the same settings only recomputes the statistics). About 1.2 s per edit on one thread:
4 x 80 edits take ~7 minutes at ``--per-dimension 10``, ~20 minutes at the default 30.

    .venv/bin/python benchmarks/bench_instruction_gain.py --work /tmp/ig
    .venv/bin/python benchmarks/bench_instruction_gain.py --work /tmp/ig --per-dimension 10
    .venv/bin/python benchmarks/bench_instruction_gain.py --work /tmp/ig --model /tmp/sft/revise-tiny
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from revise.bench import bootstrap_ci, load_results, run_bench
from revise.data import Manifest, Sample, load_manifest, write_manifest
from revise.provenance import file_hash
from revise.sim import generate_dataset
from revise.sim.scene import PALETTE

CONTENT_FREE = "Edit this video."
PARAPHRASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "paraphrases.jsonl"
VARIANTS = ("true", "content_free", "wrong", "paraphrase")
TARGET_GAIN = 0.30
TARGET_KEEP = 0.80
RESAMPLES = 2000
BOOTSTRAP_SEED = 0
WRONG_SCOPES = ("scenario", "dimension")


# --------------------------------------------------------------------------------------------- data

def make_test_split(work: Path, per_dimension: int, seed: int) -> Path:
    """``WORK/test-<N>-s<seed>/manifest.jsonl``, generated once (as ``bench_revise_tiny.py`` does)."""
    folder = Path(work) / f"test-{per_dimension}-s{seed}"
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        generate_dataset(folder, per_dimension=per_dimension, seed=seed, split="test", workers=1, overwrite=True,
                         progress=True)
    return manifest


def normalise(text: str) -> str:
    """Lower case, words only, single spaces: what "textually identical" compares."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def scene_type(sample: Sample) -> tuple[str, str, str | None]:
    """``(subset, dimension, scenario)``; the scenario family is ``metadata.scenario`` (None if absent)."""
    scenario = (sample.metadata or {}).get("scenario")
    return sample.subset, sample.dimension, scenario if isinstance(scenario, str) else None


NUMBER_WORDS = frozenset({"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"})
GENDER = {"he": "m", "him": "m", "his": "m", "she": "f", "her": "f", "hers": "f"}


def instruction_facts(text: str) -> dict[str, frozenset[str]]:
    """What varies between the templates of one scenario family, by kind: ``colour`` (palette names),
    ``side`` ("to the left"), ``number`` (durations such as "two seconds") and ``gender`` (pronouns)."""
    low = text.lower()
    words = re.findall(r"[a-z]+|[0-9]+(?:\.[0-9]+)?", low)
    return {"colour": frozenset(w for w in words if w in PALETTE),
            "side": frozenset(re.findall(r"\bthe (left|right)\b", low)),
            "number": frozenset(w for w in words if w in NUMBER_WORDS or w[0].isdigit()),
            "gender": frozenset(GENDER[w] for w in words if w in GENDER)}


def equivalent(a: Sample, b: Sample) -> bool:
    """Whether ``b``'s instruction asks for ``a``'s edit: the same text (after :func:`normalise`), or the
    same scene type with no fact that contradicts (a family's templates are paraphrases of each other,
    and one that leaves a fact out, e.g. "What if the ramp faced the other way?", agrees with every one)."""
    if normalise(a.instruction) == normalise(b.instruction):
        return True
    if scene_type(a) != scene_type(b):
        return False
    fa, fb = instruction_facts(a.instruction), instruction_facts(b.instruction)
    return all(not fa[k] or not fb[k] or fa[k] == fb[k] for k in fa)


def _derangement(rng: random.Random, members: list[Sample], tries: int) -> list[int]:
    """A permutation of ``range(len(members))`` without fixed points; of up to ``tries`` random ones, the
    first that pairs the fewest :func:`equivalent` instructions."""
    n = len(members)
    best, best_same, found, attempts = None, None, 0, 0
    while found < tries and attempts < 100 * tries:
        attempts += 1
        perm = list(range(n))
        rng.shuffle(perm)
        if any(i == j for i, j in enumerate(perm)):
            continue
        found += 1
        same = sum(equivalent(members[i], members[j]) for i, j in enumerate(perm))
        if best is None or same < best_same:
            best, best_same = perm, same
        if same == 0:
            break
    if best is None:  # not reached for n >= 2 in practice; a cyclic shift is a derangement
        best = [(i + 1) % n for i in range(n)]
    return best


def pair_wrong_instructions(samples: Sequence[Sample], seed: int = 0, *, scope: str = "scenario",
                            tries: int = 64) -> dict[str, dict]:
    """For every sample, another sample's instruction from the same scene type that asks another edit.

    ``scope="scenario"``: a seeded derangement inside each (subset, dimension, scenario) group, so a
    sample never gets its own instruction, drawn to pair as few :func:`equivalent` instructions as it
    can. A sample left with an equivalent partner (or alone in its group) takes a random non-equivalent
    sample of its own scenario if there is one, else of another scenario of its dimension
    (``fallback: True``: several families, e.g. temporal_slow or icvg_glass, have templates without any
    varying fact, so every partner in the family asks the same edit). ``scope="dimension"``: a random
    sample of another scenario of the same dimension. The draw of each group depends only on ``seed``
    and the group's ids. Returns ``id -> {"partner", "instruction", "scenario", "identical",
    "equivalent", "fallback", "group"}``; ``partner`` is None when no other sample of the dimension
    exists, ``equivalent`` is true only where no non-equivalent partner exists (``identical``: the very
    same text, after :func:`normalise`).
    """
    if scope not in WRONG_SCOPES:
        raise ValueError(f"scope {scope!r}: expected one of {list(WRONG_SCOPES)}")
    samples = list(samples)
    by_dim: dict[tuple, list[Sample]] = {}
    by_type: dict[tuple, list[Sample]] = {}
    for s in samples:
        by_dim.setdefault(scene_type(s)[:2], []).append(s)
        by_type.setdefault(scene_type(s), []).append(s)
    chosen: dict[str, tuple[Sample | None, str, bool]] = {}

    def pick(s: Sample, pools: list[list[Sample]], rng: random.Random) -> tuple[Sample | None, int]:
        """A random non-equivalent other sample from the first pool that has one (and its pool's index);
        else any other sample of the last pool."""
        for k, pool in enumerate(pools):
            good = [o for o in pool if o.id != s.id and not equivalent(s, o)]
            if good:
                return rng.choice(good), k
        others = [o for o in pools[-1] if o.id != s.id]
        return (rng.choice(others), len(pools) - 1) if others else (None, len(pools) - 1)

    def ordered(group: list[Sample]) -> list[Sample]:
        return sorted(group, key=lambda s: s.id)

    for key, group in sorted(by_type.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        name = "/".join(str(k) for k in key)
        members = ordered(group)
        rng = random.Random(f"{seed}|{scope}|{name}|" + ",".join(s.id for s in members))
        dim = ordered(by_dim[key[:2]])
        other_scenarios = [o for o in dim if scene_type(o) != key]
        if scope == "dimension":
            for s in members:
                partner, k = pick(s, [other_scenarios, dim], rng)
                chosen[s.id] = (partner, name, k > 0)
            continue
        perm = _derangement(rng, members, tries) if len(members) > 1 else [0]
        for i, j in enumerate(perm):
            s, partner = members[i], members[j]
            if partner.id == s.id or equivalent(s, partner):
                partner, k = pick(s, [members, other_scenarios, dim], rng)
                chosen[s.id] = (partner, name, k > 0)
            else:
                chosen[s.id] = (partner, name, False)
    out = {}
    for s in samples:
        partner, name, fallback = chosen[s.id]
        out[s.id] = {"partner": None if partner is None else partner.id,
                     "instruction": None if partner is None else partner.instruction,
                     "scenario": None if partner is None else scene_type(partner)[2],
                     "identical": partner is not None and normalise(partner.instruction) == normalise(s.instruction),
                     "equivalent": partner is not None and equivalent(s, partner),
                     "fallback": fallback, "group": name}
    return out


def variant_path(manifest_path: Path, name: str) -> Path:
    """``<folder>/manifest.variant-<name>.jsonl``: next to the split's manifest, so its relative paths
    (``videos/...``, ``states/...``) resolve to the same files and never leave the benchmark folder."""
    manifest_path = Path(manifest_path)
    return manifest_path.with_name(f"{manifest_path.stem}.variant-{name}.jsonl")


def write_variant_manifest(manifest: Manifest, name: str, instructions: Mapping[str, str]) -> Path:
    """A manifest of the samples of ``manifest`` that ``instructions`` names (in manifest order), each
    with its instruction replaced; every other field and file is the original's. Loaded back to check."""
    samples = [dataclasses.replace(s, instruction=instructions[s.id]) for s in manifest if s.id in instructions]
    if not samples:
        raise ValueError(f"variant {name!r}: no sample of {manifest.path} has an instruction")
    path = write_manifest(samples, variant_path(manifest.path, name))
    loaded = load_manifest(path)
    if [s.id for s in loaded] != [s.id for s in samples] or any(
            a.source != b.source or a.state != b.state for a, b in zip(loaded, samples)):
        raise RuntimeError(f"{path}: the derived manifest does not point at the split's files")
    return path


def load_paraphrases(path: Path = PARAPHRASES) -> list[dict]:
    """The rows of a paraphrase file: ``{"id", "instruction", "paraphrase"}`` per line."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not all(isinstance(row.get(k), str) and row[k].strip() for k in ("id", "instruction", "paraphrase")):
            raise ValueError(f"{path}: line {lineno}: needs non-empty 'id', 'instruction' and 'paraphrase'")
        rows.append(row)
    return rows


def match_paraphrases(samples: Iterable[Sample], rows: list[dict]) -> tuple[dict[str, str], list[str]]:
    """``(id -> paraphrase, ids whose stored instruction differs from the split's)`` for the samples
    that have a paraphrase row; a row for an id the split does not hold is ignored."""
    by_id = {r["id"]: r for r in rows}
    found, mismatched = {}, []
    for s in samples:
        row = by_id.get(s.id)
        if row is None:
            continue
        if normalise(row["instruction"]) != normalise(s.instruction):
            mismatched.append(s.id)
        else:
            found[s.id] = row["paraphrase"]
    return found, mismatched


def read_shares(run_dir: Path) -> tuple[dict[str, float], list[str]]:
    """``(id -> gt_reasoning_s, failed ids)`` from ``run_dir/results.jsonl``."""
    shares, failed = {}, []
    for row in load_results(Path(run_dir) / "results.jsonl"):
        gt = (row.get("judges") or {}).get("gt") or {}
        value = (gt.get("metrics") or {}).get("gt_reasoning_s")
        if row.get("status") == "ok" and not gt.get("error") and isinstance(value, (int, float)):
            shares[row["id"]] = float(value)
        else:
            failed.append(row["id"])
    return shares, failed


# ----------------------------------------------------------------------------------------- statistics

def _r(x) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def paired_gain(a: Mapping[str, float], b: Mapping[str, float], *, resamples: int = RESAMPLES,
                seed: int = BOOTSTRAP_SEED) -> dict:
    """Mean of ``a - b`` over the ids both hold, with a paired percentile-bootstrap 95% interval
    (the ids resampled together; sorted ids and ``seed`` make it reproducible)."""
    ids = sorted(set(a) & set(b))
    if not ids:
        return {"n": 0, "a": None, "b": None, "gain": None, "ci95": None}
    va = np.array([a[i] for i in ids], dtype=np.float64)
    vb = np.array([b[i] for i in ids], dtype=np.float64)
    ci = bootstrap_ci(va - vb, resamples=resamples, seed=seed) if len(ids) > 1 else None
    return {"n": len(ids), "a": _r(va.mean()), "b": _r(vb.mean()), "gain": _r((va - vb).mean()), "ci95": ci}


def keep_ratio(para: Mapping[str, float], true: Mapping[str, float], free: Mapping[str, float], *,
               resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """How much of the true instruction's gain a paraphrase keeps, on the ids all three hold:
    ``(mean para - mean free) / (mean true - mean free)``.

    None when the true gain is not positive (nothing to keep). The 95% interval resamples the ids
    jointly; it is None (unbounded) when more than 2.5% of the resamples have a true gain <= 0.
    """
    ids = sorted(set(para) & set(true) & set(free))
    out = {"n": len(ids), "para": None, "true": None, "free": None, "true_gain": None, "para_gain": None,
           "keep": None, "ci95": None}
    if not ids:
        return out
    p, t, f = (np.array([m[i] for i in ids], dtype=np.float64) for m in (para, true, free))
    den = t.mean() - f.mean()
    out.update(para=_r(p.mean()), true=_r(t.mean()), free=_r(f.mean()), true_gain=_r(den),
               para_gain=_r(p.mean() - f.mean()))
    if den > 0:
        out["keep"] = _r((p.mean() - f.mean()) / den)
    if len(ids) > 1:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(ids), size=(resamples, len(ids)))
        dens = t[idx].mean(1) - f[idx].mean(1)
        nums = p[idx].mean(1) - f[idx].mean(1)
        if (dens <= 0).mean() <= 0.025:
            ok = dens > 0
            lo, hi = np.quantile(nums[ok] / dens[ok], [0.025, 0.975])
            out["ci95"] = [_r(lo), _r(hi)]
    return out


def gain_stats(shares: Mapping[str, Mapping[str, float]], *, resamples: int = RESAMPLES,
               seed: int = BOOTSTRAP_SEED) -> dict:
    """Every number of the benchmark from per-variant ``id -> share`` maps (``true`` and
    ``content_free`` required; ``wrong`` and ``paraphrase`` optional)."""
    true, free = shares["true"], shares["content_free"]
    wrong, para = shares.get("wrong", {}), shares.get("paraphrase", {})
    means = {name: {"n": len(v), "share": _r(np.mean(list(v.values()))) if v else None}
             for name, v in ((n, shares.get(n, {})) for n in VARIANTS)}
    return {
        "means": means,
        "true_minus_content_free": paired_gain(true, free, resamples=resamples, seed=seed),
        "true_minus_wrong": paired_gain(true, wrong, resamples=resamples, seed=seed),
        "paraphrase_minus_true": paired_gain(para, true, resamples=resamples, seed=seed),
        "paraphrase_keep": keep_ratio(para, true, free, resamples=resamples, seed=seed),
    }


def gain_table(shares: Mapping[str, Mapping[str, float]], groups: Mapping[str, str], *,
               resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict:
    """:func:`gain_stats` over all samples (``"all"``) and per group (``groups``: id -> group name)."""
    table = {"all": gain_stats(shares, resamples=resamples, seed=seed)}
    for group in sorted(set(groups.values())):
        sub = {name: {i: v for i, v in m.items() if groups.get(i) == group} for name, m in shares.items()}
        table[group] = gain_stats(sub, resamples=resamples, seed=seed)
    return table


# ----------------------------------------------------------------------------------------------- main

def _fmt(x, spec="+.3f") -> str:
    if x is None:
        return "-"
    text = format(x, spec)
    return text[1:] if text[0] in "+-" and not text.strip("+-0.") else text  # "0", not "-0"


def _ci(ci, spec="+.3f") -> str:
    return "-" if not ci else f"[{format(ci[0], spec)}, {format(ci[1], spec)}]"


def _meets(x, target) -> str:
    return "-" if x is None else ("yes" if x >= target else "no")


def print_report(report: dict) -> None:
    p, t = report["provenance"], report["table"]["all"]
    print(f"\ninstruction gain of {p['model']} on {p['split']} ({p['n_samples']} samples, sim seed {p['seed']}, "
          f"{p['per_dimension']} per dimension; gt judge, run seed 0)")
    w = p["wrong"]
    where = ("from another scenario of their dimension, for want of a partner in their own that asks another edit"
             if p["wrong_scope"] == "scenario" else "from their own scenario, for want of another scenario")
    print(f"wrong instructions: scope {p['wrong_scope']}, {w['n']} samples ({w['fallback']} {where}; "
          f"{w['skipped_equivalent'] + w['skipped_no_partner']} left out); paraphrases: {p['paraphrases']['n']} samples "
          f"of {p['paraphrases']['rows']} rows ({len(p['paraphrases']['mismatched'])} mismatched)")
    failed = {k: len(v) for k, v in report["failed"].items() if v}
    if failed:
        print(f"failed rows (left out of the pairs): {failed}")
    print(f"\n{'variant':<14}{'n':>5}{'share':>8}{'true, same samples':>20}")
    true_free, true_wrong = t["true_minus_content_free"], t["true_minus_wrong"]
    keep = t["paraphrase_keep"]
    print(f"{'true':<14}{t['means']['true']['n']:>5}{_fmt(t['means']['true']['share'], '.3f'):>8}")
    print(f"{'content_free':<14}{true_free['n']:>5}{_fmt(true_free['b'], '.3f'):>8}{_fmt(true_free['a'], '.3f'):>20}")
    print(f"{'wrong':<14}{true_wrong['n']:>5}{_fmt(true_wrong['b'], '.3f'):>8}{_fmt(true_wrong['a'], '.3f'):>20}")
    print(f"{'paraphrase':<14}{keep['n']:>5}{_fmt(keep['para'], '.3f'):>8}{_fmt(keep['true'], '.3f'):>20}"
          f"   (content_free on them {_fmt(keep['free'], '.3f')})")
    print(f"\n{'':<26}{'n':>5}{'value':>9}{'95% CI':>20}{'target':>10}  met")
    print(f"{'gain true - content_free':<26}{true_free['n']:>5}{_fmt(true_free['gain']):>9}{_ci(true_free['ci95']):>20}"
          f"{'>= 0.30':>10}  {_meets(true_free['gain'], TARGET_GAIN)}")
    print(f"{'gain true - wrong':<26}{true_wrong['n']:>5}{_fmt(true_wrong['gain']):>9}{_ci(true_wrong['ci95']):>20}"
          f"{'>= 0.30':>10}  {_meets(true_wrong['gain'], TARGET_GAIN)}")
    for key, label in (("true_minus_wrong_same_scenario", "  partner same scenario"),
                       ("true_minus_wrong_other_scenario", "  partner other scenario")):
        g = t.get(key)
        if g and g["n"]:
            print(f"{label:<26}{g['n']:>5}{_fmt(g['gain']):>9}{_ci(g['ci95']):>20}")
    pm = t["paraphrase_minus_true"]
    print(f"{'paraphrase - true':<26}{pm['n']:>5}{_fmt(pm['gain']):>9}{_ci(pm['ci95']):>20}{'':>10}")
    kp = None if keep["keep"] is None else 100 * keep["keep"]
    kci = None if not keep["ci95"] else [100 * keep["ci95"][0], 100 * keep["ci95"][1]]
    print(f"{'paraphrase keeps (%)':<26}{keep['n']:>5}{_fmt(kp, '.0f'):>9}{_ci(kci, '.0f'):>20}{'>= 80%':>10}  "
          f"{_meets(keep['keep'], TARGET_KEEP)}"
          + ("   (undefined: no positive true gain)" if keep["keep"] is None
             else "   (CI unbounded: the true gain's own interval reaches 0)" if not keep["ci95"] else ""))
    print(f"\n{'dimension':<19}{'n':>4}{'true':>7}{'free':>7}{'wrong':>7}{'t-f':>8}{'t-w':>8}{'n_p':>5}"
          f"{'para':>7}{'true_p':>8}{'keep%':>7}")
    for group, g in report["table"].items():
        if group == "all":
            continue
        k = g["paraphrase_keep"]
        print(f"{group:<19}{g['means']['true']['n']:>4}{_fmt(g['means']['true']['share'], '.3f'):>7}"
              f"{_fmt(g['means']['content_free']['share'], '.3f'):>7}{_fmt(g['means']['wrong']['share'], '.3f'):>7}"
              f"{_fmt(g['true_minus_content_free']['gain']):>8}{_fmt(g['true_minus_wrong']['gain']):>8}"
              f"{k['n']:>5}{_fmt(k['para'], '.3f'):>7}{_fmt(k['true'], '.3f'):>8}"
              f"{_fmt(None if k['keep'] is None else 100 * k['keep'], '.0f'):>7}")
    print(f"\n(t-f, t-w: paired gains; keep% = (para - free) / (true - free) on the paraphrased samples, '-' where the "
          f"true gain is <= 0; 95% CIs per dimension in the JSON)\nwall time {report['wall_seconds']:.0f} s; "
          f"written {report['json']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="folder for the test split, the runs and the JSON")
    p.add_argument("--model", default="revise-tiny", help="checkpoint folder or shipped name")
    p.add_argument("--per-dimension", type=int, default=30, help="test samples per dimension")
    p.add_argument("--seed", type=int, default=0, help="test-split seed (and the wrong-instruction pairing's)")
    p.add_argument("--paraphrases", type=Path, default=PARAPHRASES, help="JSONL of {id, instruction, paraphrase}")
    p.add_argument("--wrong-scope", choices=WRONG_SCOPES, default="scenario",
                   help="where the wrong instruction comes from: the same scenario family, or another "
                        "scenario of the same dimension")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    p.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not {"true", "content_free"} <= set(variants):
        p.error(f"--variants: must include true and content_free, known: {list(VARIANTS)} (got {unknown or variants})")

    from revise.model.unified import resolve_checkpoint

    path = resolve_checkpoint(args.model).resolve()
    weights = file_hash(path / "generator" / "diffusion_pytorch_model.safetensors")
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(make_test_split(args.work, args.per_dimension, args.seed))
    samples = list(manifest)

    pairing = pair_wrong_instructions(samples, args.seed, scope=args.wrong_scope)
    rows = load_paraphrases(args.paraphrases)
    paraphrases, mismatched = match_paraphrases(samples, rows)
    if mismatched:
        print(f"warning: {len(mismatched)} paraphrase row(s) name an instruction the split does not hold "
              f"(left out): {mismatched[:5]}")
    instructions = {
        "true": {s.id: s.instruction for s in samples},
        "content_free": {s.id: CONTENT_FREE for s in samples},
        "wrong": {i: m["instruction"] for i, m in pairing.items() if m["partner"] and not m["equivalent"]},
        "paraphrase": paraphrases,
    }
    runs_root = args.work / "runs-instruction-gain" / f"{path.name}-{weights[:10]}"
    shares, failed, runs = {}, {}, {}
    for name in variants:
        if not instructions[name]:
            print(f"variant {name}: no sample; skipped")
            continue
        label = name if name != "wrong" or args.wrong_scope == "scenario" else "wrong-dimension"
        variant_manifest = (manifest.path if name == "true"
                            else write_variant_manifest(manifest, label, instructions[name]))
        out = runs_root / f"{label}-{file_hash(variant_manifest)[:10]}"
        print(f"variant {name}: {len(instructions[name])} samples -> {out}")
        result = run_bench(variant_manifest, out, editor="revise-tiny",
                           editor_options={"model": str(path), "threads": 1}, judges=["gt"], seed=0,
                           resume=(out / "run.json").is_file(), progress=True)
        shares[name], failed[name] = read_shares(out)
        runs[name] = {"manifest": str(variant_manifest), "run": str(out), "n": len(instructions[name]),
                      "edited_now": result.n_run, "resumed": result.n_skipped}  # wall_seconds counts edited_now

    groups = {s.id: s.group for s in samples}
    table = gain_table(shares, groups, resamples=args.resamples, seed=BOOTSTRAP_SEED)
    if "wrong" in shares:  # the wrong-instruction gain split by where the partner came from
        own = {s.id: scene_type(s)[2] for s in samples}
        for key, same in (("true_minus_wrong_same_scenario", True), ("true_minus_wrong_other_scenario", False)):
            sub = {i: v for i, v in shares["wrong"].items() if (pairing[i]["scenario"] == own[i]) == same}
            table["all"][key] = paired_gain(shares["true"], sub, resamples=args.resamples, seed=BOOTSTRAP_SEED)
    scope = "" if args.wrong_scope == "scenario" else f"-wrong-{args.wrong_scope}"
    out_json = args.work / f"bench_instruction_gain-{manifest.root.name}{scope}.json"
    report = {
        "provenance": {
            "model": str(path), "model_arg": args.model, "generator_weights_sha256": weights,
            "split": str(manifest.path), "seed": args.seed, "per_dimension": args.per_dimension,
            "n_samples": len(samples), "content_free": CONTENT_FREE, "wrong_scope": args.wrong_scope,
            "wrong": {"n": len(instructions["wrong"]),
                      "skipped_equivalent": sum(bool(m["partner"]) and m["equivalent"] for m in pairing.values()),
                      "skipped_no_partner": sum(m["partner"] is None for m in pairing.values()),
                      "fallback": sum(m["fallback"] for m in pairing.values())},
            "paraphrases": {"file": str(args.paraphrases), "sha256": file_hash(args.paraphrases), "rows": len(rows),
                            "n": len(paraphrases), "mismatched": mismatched},
            "bootstrap": {"resamples": args.resamples, "seed": BOOTSTRAP_SEED, "level": 0.95, "paired": True},
            "editor_options": {"model": str(path), "threads": 1}, "run_seed": 0, "judge": "gt",
        },
        "targets": {"gain": TARGET_GAIN, "paraphrase_keep": TARGET_KEEP},
        "runs": runs, "failed": failed, "table": table,
        "pairing": pairing,
        "shares": shares,
    }
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    report["json"] = str(out_json)
    out_json.write_text(json.dumps(report, indent=1) + "\n")
    print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
