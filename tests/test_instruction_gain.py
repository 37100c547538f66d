"""benchmarks/bench_instruction_gain.py's building blocks and the hand-written paraphrase set it reads.

The paraphrases are checked against the simulator's own phrase templates (none may be produced by one,
nor share a 5-word frame with one) and against a small freshly generated test split (ids and stored
instructions agree). The wrong-instruction pairing, the derived manifests and the gain statistics are
checked on small synthetic inputs whose answers are known.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from revise.data import Sample, load_manifest
from revise.sim import generate_dataset
from revise.sim.scene import PALETTE
from revise.sim.scenarios.base import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
PARAPHRASES = ROOT / "tests" / "data" / "paraphrases.jsonl"
DIMENSIONS = [f"{s}-{d}" for s, d in (("rave", "causal"), ("rave", "spatial"), ("rave", "temporal"),
                                      ("rave", "commonsense"), ("icvg", "camera"), ("icvg", "causal"),
                                      ("icvg", "emotional"), ("icvg", "commonsense"))]
ID = re.compile(r"^(?P<dim>(rave|icvg)-[a-z]+)-test-s0-(?P<index>\d{4})$")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_instruction_gain",
                                                  ROOT / "benchmarks" / "bench_instruction_gain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows():
    lines = [line for line in PARAPHRASES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def small_split(tmp_path_factory):
    """Two test samples per dimension, seed 0: the first ids of the per-dimension-10 and -30 splits (~3 s)."""
    folder = tmp_path_factory.mktemp("ig") / "test-2-s0"
    return load_manifest(generate_dataset(folder, per_dimension=2, seed=0, split="test", workers=1, overwrite=True))


def norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def templates() -> set[str]:
    """Every phrase template of every scenario family (``templates`` and its sub-tuples)."""
    found = set()
    for name in SCENARIOS.available():
        cls = type(SCENARIOS.create(name))
        for attr in dir(cls):
            value = getattr(cls, attr)
            if attr.startswith("templates") and isinstance(value, tuple) and all(isinstance(t, str) for t in value):
                found |= set(value)
    return found


def template_regex(template: str) -> re.Pattern:
    """A template as a pattern over normalised text: each ``{field}`` matches one or more words."""
    words = norm(re.sub(r"\{[^}]*\}", " zzfieldzz ", template)).split()
    parts = [r"[a-z0-9]+(?: [a-z0-9]+)*?" if w == "zzfieldzz" else re.escape(w) for w in words]
    return re.compile(" ".join(parts))


def frames(template: str, n: int = 5) -> set[str]:
    """The template's literal word n-grams (none crossing a ``{field}``)."""
    out = set()
    for part in re.split(r"\{[^}]*\}", template):
        words = norm(part).split()
        out |= {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}
    return out


def facts(text: str) -> dict[str, set[str]]:
    words = re.findall(r"[a-z]+", text.lower())
    return {"colours": {w for w in words if w in PALETTE},
            "male": {w for w in words if w in ("he", "him", "his")},
            "female": {w for w in words if w in ("she", "her", "hers")},
            "sides": set(re.findall(r"\bthe (left|right)\b", text.lower())),  # "to the left"; not "right under"
            "numbers": {w for w in words if w in ("one", "two", "three", "four", "five", "half")}}


def sample(i: str, instruction: str, scenario: str | None = "a", subset: str = "rave",
           dimension: str = "causal") -> Sample:
    return Sample(id=i, subset=subset, dimension=dimension, instruction=instruction, source=Path(f"/x/{i}.mp4"),
                  metadata={} if scenario is None else {"scenario": scenario})


# --------------------------------------------------------------------------------------- the data set

def test_paraphrase_file_shape(rows):
    assert len(rows) >= 80
    assert all(set(r) == {"id", "instruction", "paraphrase"} for r in rows)
    assert all(isinstance(r[k], str) and r[k].strip() == r[k] and r[k] for r in rows for k in r)
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    matches = [ID.match(i) for i in ids]
    assert all(matches), [i for i, m in zip(ids, matches) if not m]
    per_dim = Counter(m["dim"] for m in matches)
    assert set(per_dim) == set(DIMENSIONS) and min(per_dim.values()) >= 10, per_dim
    # the per-dimension-10 split (the first ten ids of each dimension) holds at least 80 of them
    in_ten = Counter(m["dim"] for m in matches if int(m["index"]) < 10)
    assert sum(in_ten.values()) >= 80 and min(in_ten.values()) >= 10, in_ten


def test_paraphrases_keep_the_facts(rows):
    for r in rows:
        src, para = r["instruction"], r["paraphrase"]
        assert norm(para) != norm(src), r["id"]
        fs, fp = facts(src), facts(para)
        assert fs["colours"] == fp["colours"], (r["id"], fs["colours"], fp["colours"])  # none lost, none added
        assert bool(fs["male"]) == bool(fp["male"]) and bool(fs["female"]) == bool(fp["female"]), r["id"]
        for side in fs["sides"]:  # "to the left" may become "leftwards"
            assert re.search(rf"\b{side}(wards)?\b", para.lower()), (r["id"], side)
        assert fs["numbers"] - {"half"} <= fp["numbers"], (r["id"], fs["numbers"], fp["numbers"])  # "half" -> "50%"


def test_no_paraphrase_comes_from_a_template(rows):
    found = templates()
    assert len(found) > 100  # every family's templates were found
    patterns = [(t, template_regex(t)) for t in found]
    grams = {g: t for t in found for g in frames(t)}
    for r in rows:
        text = norm(r["paraphrase"])
        made = [t for t, p in patterns if p.fullmatch(text)]
        assert not made, (r["id"], made)
        words = text.split()
        shared = [" ".join(words[i:i + 5]) for i in range(len(words) - 4) if " ".join(words[i:i + 5]) in grams]
        assert not shared, (r["id"], shared)
    # the check itself: every stored instruction *is* matched by some template
    assert all(any(p.fullmatch(norm(r["instruction"])) for _, p in patterns) for r in rows)


def test_paraphrase_ids_and_instructions_match_a_generated_split(rows, small_split, bench):
    by_id = {r["id"]: r for r in rows}
    present = [s for s in small_split if s.id in by_id]
    assert len(present) == 16  # the first two samples of every dimension are paraphrased
    assert all(by_id[s.id]["instruction"] == s.instruction for s in present)
    found, mismatched = bench.match_paraphrases(small_split, rows)
    assert len(found) == 16 and not mismatched
    changed = [dict(r, instruction=r["instruction"] + " Now.") for r in rows]
    found, mismatched = bench.match_paraphrases(small_split, changed)
    assert not found and len(mismatched) == 16


# ------------------------------------------------------------------------------------- the benchmark

def test_derived_manifest_points_at_the_same_files(small_split, bench):
    chosen = {s.id: f"Paint the {i} thing." for i, s in enumerate(small_split) if i % 3 == 0}
    path = bench.write_variant_manifest(small_split, "unit", chosen)
    assert path.parent == small_split.path.parent and path.name == "manifest.variant-unit.jsonl"
    loaded = load_manifest(path)
    assert [s.id for s in loaded] == [s.id for s in small_split if s.id in chosen]
    original = small_split.by_id()
    for s in loaded:
        assert s.instruction == chosen[s.id]
        assert (s.source, s.target, s.state, s.metadata) == (original[s.id].source, original[s.id].target,
                                                             original[s.id].state, original[s.id].metadata)
    with pytest.raises(ValueError):
        bench.write_variant_manifest(small_split, "empty", {})


def test_pairing_never_self_same_scene_type_deterministic(bench):
    colours = list(PALETTE)
    samples = [sample(f"a{i}", f"What if the {colours[i]} ball had been pushed harder?", "push") for i in range(6)]
    samples += [sample(f"b{i}", f"Imagine the {colours[i]} ball had never been there.", "remove") for i in range(3)]
    samples += [sample("c0", "Slow it down.", "slow")]  # alone in its family
    samples += [sample(f"d{i}", "Show it from behind.", "reverse", "icvg", "camera") for i in range(2)]
    samples += [sample("e0", "Follow the red ball.", "pan", "icvg", "camera")]
    samples += [sample(f"f{i}", "Turn the ramp.", None, "rave", "spatial") for i in range(3)]  # no scenario
    by_id = {s.id: s for s in samples}
    pairing = bench.pair_wrong_instructions(samples, seed=0)
    assert list(pairing) == [s.id for s in samples]
    for i, m in pairing.items():
        s, partner = by_id[i], by_id[m["partner"]]
        assert partner.id != i and m["instruction"] == partner.instruction
        assert (s.subset, s.dimension) == (partner.subset, partner.dimension)
        if not m["fallback"]:
            assert bench.scene_type(s) == bench.scene_type(partner), (i, partner.id)
    for i in [f"a{k}" for k in range(6)] + [f"b{k}" for k in range(3)]:  # distinct colours: stay in the family
        assert not pairing[i]["fallback"] and not pairing[i]["equivalent"]
    a_partners = [pairing[f"a{k}"]["partner"] for k in range(6)]
    assert sorted(a_partners) == [f"a{k}" for k in range(6)]  # a derangement of the family
    assert pairing["c0"]["fallback"] and pairing["c0"]["partner"].startswith(("a", "b"))
    # the two identical "reverse" instructions ask the same edit: each takes the other family's sample
    assert pairing["d0"]["partner"] == "e0" and pairing["d1"]["partner"] == "e0" and pairing["d0"]["fallback"]
    assert pairing["e0"]["fallback"] and pairing["e0"]["partner"] in ("d0", "d1")
    # nothing else in the dimension: the same text is kept but marked (the benchmark leaves these out)
    assert all(pairing[f"f{k}"]["identical"] and pairing[f"f{k}"]["equivalent"] for k in range(3))

    assert bench.pair_wrong_instructions(samples, seed=0) == pairing
    assert bench.pair_wrong_instructions(list(reversed(samples)), seed=0) == pairing  # order does not matter
    draws = {tuple(m["partner"] for m in bench.pair_wrong_instructions(samples, seed=k).values()) for k in range(8)}
    assert len(draws) > 1  # the seed drives the draw

    across = bench.pair_wrong_instructions(samples, seed=0, scope="dimension")
    for i, m in across.items():
        if i.startswith(("a", "b", "c")):
            assert bench.scene_type(by_id[m["partner"]])[2] != bench.scene_type(by_id[i])[2]
    with pytest.raises(ValueError):
        bench.pair_wrong_instructions(samples, scope="nope")


def test_equivalent_instructions(bench):
    a = sample("x", "Suppose someone turned the ramp around before the red ball was let go.", "mirror")
    assert bench.equivalent(a, sample("y", "What if the ramp faced the other way?", "mirror"))
    assert not bench.equivalent(a, sample("y", "Turn the ramp before the green ball rolls.", "mirror"))
    assert not bench.equivalent(a, sample("y", "What if the ramp faced the other way?", "move"))
    left = sample("x", "What if the red crate had been standing a little further to the left?", "support")
    assert not bench.equivalent(left, sample("y", "Slide the red crate to the right.", "support"))
    assert bench.equivalent(left, sample("y", "What if the red crate had been standing right under it?", "support"))
    assert bench.equivalent(sample("x", "Same.", "p"), sample("y", "same", "q"))  # same text, any family


def test_paired_gain_is_paired_and_seeded(bench):
    rng = np.random.default_rng(1)
    base = rng.uniform(0.0, 0.9, 40)
    true = {f"s{i}": float(v) + 0.1 for i, v in enumerate(base)}
    free = {f"s{i}": float(v) for i, v in enumerate(base)}
    free["extra"] = 0.5  # not in ``true``: left out of the pairs
    g = bench.paired_gain(true, free)
    assert g["n"] == 40 and g["gain"] == pytest.approx(0.1, abs=1e-4)
    assert g["ci95"][0] == pytest.approx(0.1, abs=1e-4) and g["ci95"][1] == pytest.approx(0.1, abs=1e-4)
    noisy = {k: v + float(rng.normal(0, 0.05)) for k, v in free.items()}
    g1, g2 = bench.paired_gain(true, noisy, seed=3), bench.paired_gain(true, noisy, seed=3)
    assert g1 == g2 and g1["ci95"][0] < g1["gain"] < g1["ci95"][1] and g1["ci95"][0] > 0
    assert bench.paired_gain(true, noisy, seed=4)["ci95"] != g1["ci95"]
    assert bench.paired_gain(true, {})["gain"] is None


def test_keep_ratio(bench):
    ids = [f"s{i}" for i in range(30)]
    rng = np.random.default_rng(2)
    free = {i: float(rng.uniform(0.1, 0.4)) for i in ids}
    true = {i: free[i] + float(rng.uniform(0.2, 0.6)) for i in ids}
    para = {i: free[i] + 0.8 * (true[i] - free[i]) for i in ids[:20]}  # keeps 80% on every paraphrased sample
    k = bench.keep_ratio(para, true, free)
    assert k["n"] == 20 and k["keep"] == pytest.approx(0.8, abs=1e-3)
    assert k["ci95"][0] == pytest.approx(0.8, abs=1e-3) and k["ci95"][1] == pytest.approx(0.8, abs=1e-3)
    assert k["true"] == pytest.approx(np.mean([true[i] for i in ids[:20]]), abs=1e-4)
    flat = bench.keep_ratio(para, free, free)  # no true gain: nothing to keep
    assert flat["keep"] is None and flat["ci95"] is None
    noisy = {i: true[i] + float(rng.normal(0, 0.01)) for i in ids}
    near_zero = bench.keep_ratio(para, noisy, true)  # a true gain around 0: the interval is unbounded
    assert near_zero["ci95"] is None


def test_gain_table_per_group(bench):
    true = {"a1": 0.9, "a2": 0.7, "b1": 0.4, "b2": 0.6}
    free = {"a1": 0.3, "a2": 0.3, "b1": 0.4, "b2": 0.4}
    wrong = {"a1": 0.5, "b1": 0.2}
    para = {"a1": 0.6, "b2": 0.5}
    groups = {"a1": "rave/causal", "a2": "rave/causal", "b1": "icvg/camera", "b2": "icvg/camera"}
    table = bench.gain_table({"true": true, "content_free": free, "wrong": wrong, "paraphrase": para}, groups)
    assert set(table) == {"all", "rave/causal", "icvg/camera"}
    assert table["all"]["true_minus_content_free"]["gain"] == pytest.approx(0.3)
    assert table["rave/causal"]["true_minus_content_free"]["gain"] == pytest.approx(0.5)
    assert table["icvg/camera"]["true_minus_content_free"]["gain"] == pytest.approx(0.1)
    assert table["all"]["true_minus_wrong"]["n"] == 2
    assert table["all"]["true_minus_wrong"]["gain"] == pytest.approx(0.3)
    assert table["rave/causal"]["paraphrase_keep"]["keep"] == pytest.approx(0.5)  # (0.6-0.3)/(0.9-0.3)
    assert table["icvg/camera"]["paraphrase_keep"]["keep"] == pytest.approx(0.5)  # (0.5-0.4)/(0.6-0.4)
    assert table["all"]["means"]["true"] == {"n": 4, "share": pytest.approx(0.65)}
    assert bench.gain_table({"true": true, "content_free": free}, groups)["all"]["means"]["wrong"]["n"] == 0


def test_read_shares(tmp_path, bench):
    rows = [{"id": "a", "status": "ok", "judges": {"gt": {"metrics": {"gt_reasoning_s": 0.25}}}},
            {"id": "b", "status": "failed", "error": "editor crashed", "judges": {}},
            {"id": "c", "status": "ok", "judges": {"gt": {"error": "no state", "metrics": {}}}}]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shares, failed = bench.read_shares(tmp_path)
    assert shares == {"a": 0.25} and failed == ["b", "c"]
