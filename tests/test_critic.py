"""The ``critic`` judge (the internal VLM's p(Yes) on the rve-judge-v1 rubric) and ``revise bench agreement``,
on a toy VLM trained for a few steps on a tiny RVE-Sim dataset. The real code paths, toy sizes."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import benchtools  # noqa: F401  (registers the bt-crash editor)
import numpy as np
import pytest
import torch
from scipy import stats

from revise.bench.agreement import AGREEMENT_FILE, cohen_kappa, compute_agreement, rankdata
from revise.cli.main import main
from revise.data import load_manifest
from revise.errors import ConfigError, JudgeError
from revise.judges import JudgeInput, available, create_judge
from revise.judges.critic import BANDS, resolve_vlm_dir, to_rubric
from revise.model.vlm import ReviseVLM
from revise.sim import generate_dataset
from revise.train.vlm import train_vlm
from revise.video import Video, read_video

TOY = dict(image_size=16, grid=2, vision_channels=[8, 16, 16], frames=4, tubelet=2, hidden_size=32, num_layers=2,
           num_heads=2, intermediate_size=64, max_text_tokens=24, max_answer_tokens=24)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    # two samples per dimension, so the shuffle editor has a donor
    return generate_dataset(tmp_path_factory.mktemp("critic") / "bench", per_dimension=2, seed=0, split="test",
                            size=32, frames=16)


@pytest.fixture(scope="module")
def vlm_dir(bench, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("critic-vlm")
    train_vlm(bench, root / "vlm", steps=8, batch_size=8, lr=3e-3, warmup=2, seed=0, model_config=TOY, threads=1,
              progress=False, cache_dir=root / "cache")
    return root / "vlm"


@pytest.fixture(scope="module")
def unified(vlm_dir, tmp_path_factory) -> Path:
    """A unified-checkpoint layout (revise.json + vlm/); the critic needs only the VLM part."""
    root = tmp_path_factory.mktemp("critic-unified") / "ckpt"
    shutil.copytree(vlm_dir, root / "vlm", ignore=shutil.ignore_patterns("*.jsonl", "metrics.json"))
    manifest = {"format": "revise-unified/1", "vlm": "vlm", "generator": "generator"}
    (root / "revise.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def samples(bench):
    return list(load_manifest(bench))


def _item(sample, edited: Video | None = None) -> JudgeInput:
    source, target = read_video(sample.source), read_video(sample.target)
    return JudgeInput(sample, source, edited if edited is not None else target, target, "sha")


# ------------------------------------------------------------------------------------------- mapping


def test_mapping_bands_at_fixed_p():
    cases = {0.0: 1, 0.05: 1, 0.0999: 1, 0.1: 2, 0.29: 2, 0.3: 3, 0.4999: 3, 0.5: 4, 0.75: 4, 0.8999: 4, 0.9: 5,
             0.99: 5, 1.0: 5}
    assert {p: to_rubric(p) for p in cases} == cases
    assert BANDS == ((0.9, 5), (0.5, 4), (0.3, 3), (0.1, 2))
    # the pass verdict (Reasoning >= 4) is exactly the VLM's own Yes (p >= 0.5)
    assert all((to_rubric(p) >= 4) == (p >= 0.5) for p in np.linspace(0, 1, 1001))
    with pytest.raises(ValueError):
        to_rubric(float("nan"))


def test_mapping_is_monotone_and_covers_the_rubric():
    ps = np.linspace(0.0, 1.0, 2001)
    scores = [to_rubric(p) for p in ps]
    assert all(a <= b for a, b in zip(scores, scores[1:]))
    assert sorted(set(scores)) == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------------------------------- judge


def test_critic_is_registered_and_resolves_both_layouts(vlm_dir, unified, tmp_path):
    assert "critic" in available()
    assert resolve_vlm_dir(str(vlm_dir)) == vlm_dir
    assert resolve_vlm_dir(str(unified)) == unified / "vlm"
    only_vlm = tmp_path / "sft"
    shutil.copytree(unified / "vlm", only_vlm / "vlm")  # a folder with vlm/ but no revise.json
    assert resolve_vlm_dir(str(only_vlm)) == only_vlm / "vlm"
    for bad, match in ((tmp_path / "none", "not found"), (tmp_path, "not a revise checkpoint")):
        with pytest.raises(ConfigError, match=match) as info:
            create_judge("critic", model=str(bad))
        assert "\n" not in str(info.value) and str(bad) in str(info.value)


@pytest.mark.numerics
def test_critic_scores_a_sample_as_documented(unified, vlm_dir, samples):
    judge = create_judge("critic", model=str(unified))
    assert judge._vlm is None  # lazy: nothing loaded before first use
    sample = samples[0]
    item = _item(sample)
    result = judge.score(item)
    p, logit = result.metrics["critic_p_yes"], result.metrics["critic_logit"]
    expected = to_rubric(p)
    assert (result.reasoning, result.consistency, result.quality) == (expected, expected, expected)
    assert result.overall == expected and result.passed == (p >= 0.9)
    assert math.isclose(p, 1.0 / (1.0 + math.exp(-logit)), rel_tol=1e-5)
    assert "not measured separately" in result.rationale and result.error is None
    # the same number as the VLM's public API, loaded independently
    vlm = ReviseVLM.from_pretrained(vlm_dir)
    with torch.no_grad():
        direct = float(vlm.judge_probability(item.source.frames, sample.instruction, item.edited.frames)[0])
    assert math.isclose(p, direct, abs_tol=1e-5)

    info = judge.info()
    weights = (unified / "vlm" / "model.safetensors").read_bytes()
    assert info["judge"] == "critic" and info["version"] and info["path"] == str(unified / "vlm")
    assert info["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert info["frames"] == TOY["frames"] and info["mapping"]["bands"] == [list(b) for b in BANDS]
    assert "same as reasoning" in info["mapping"]["consistency"]
    assert judge.vlm is judge.vlm  # loaded once


def test_one_bad_sample_is_that_samples_judge_error_only(vlm_dir, samples):
    judge = create_judge("critic", model=str(vlm_dir))
    good = _item(samples[1])
    broken = Video(np.zeros((16, 32, 32, 4), np.uint8), 8.0)  # four channels: not a video the VLM reads
    with pytest.raises(JudgeError, match=samples[0].id) as info:
        judge.score(_item(samples[0], broken))
    assert "\n" not in str(info.value)
    assert judge.score(good).error is None


def test_concurrent_scoring_matches_sequential(vlm_dir, samples):
    judge = create_judge("critic", model=str(vlm_dir))
    items = [_item(s) for s in samples[:4]]
    sequential = [judge.score(i).metrics["critic_p_yes"] for i in items]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = [r.metrics["critic_p_yes"] for r in pool.map(judge.score, items)]
    assert parallel == sequential


# ------------------------------------------------------------------------------------------- CLI errors


@pytest.mark.parametrize("kind", ["missing", "corrupt", "empty"])
def test_bad_checkpoint_is_a_one_line_cli_error(kind, vlm_dir, bench, tmp_path, capsys):
    model = tmp_path / "model"
    if kind == "corrupt":
        shutil.copytree(vlm_dir, model / "vlm")
        (model / "vlm" / "model.safetensors").write_bytes(b"not safetensors at all")
    elif kind == "empty":
        model.mkdir()
    code = main(["bench", "agreement", "--bench", str(bench), "--out", str(tmp_path / "out"), "--limit", "1",
                 "--editors", "copy", "--judge-option", f"critic.model={model}", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and str(model) in err[0], err


# ------------------------------------------------------------------------------------------- agreement


def _recompute(out: Path, editors: list[str], threshold: float = 4.0) -> dict:
    """Agreement numbers straight from the runs' results.jsonl, without revise.bench.agreement."""
    pairs, excluded = [], 0
    for editor in editors:
        for line in (out / "runs" / editor / "results.jsonl").read_text().splitlines():
            row = json.loads(line)
            results = row["judges"]
            scored = all(not results.get(j, {}).get("error") and results.get(j, {}).get("reasoning") is not None
                         for j in ("critic", "gt"))
            if row["status"] != "ok" or not scored:
                excluded += 1
                continue
            pairs.append((editor, f"{row['subset']}/{row['dimension']}", results["critic"], results["gt"]))

    def block(ps):
        j = [c["reasoning"] >= threshold for _, _, c, _ in ps]
        r = [g["reasoning"] >= threshold for _, _, _, g in ps]
        confusion = {"judge_pass_reference_pass": sum(a and b for a, b in zip(j, r)),
                     "judge_pass_reference_fail": sum(a and not b for a, b in zip(j, r)),
                     "judge_fail_reference_pass": sum(b and not a for a, b in zip(j, r)),
                     "judge_fail_reference_fail": sum(not a and not b for a, b in zip(j, r))}
        return {"n": len(ps), "agreement": np.mean([a == b for a, b in zip(j, r)]) if ps else None,
                "confusion": confusion}

    def corr(ps, key):
        x = [c[key] for _, _, c, _ in ps]
        y = [g[key] for _, _, _, g in ps]
        if len(ps) < 2 or np.std(x) == 0 or np.std(y) == 0:
            return None, None
        return stats.pearsonr(x, y)[0], stats.spearmanr(x, y)[0]

    return {"all": block(pairs), "excluded": excluded,
            "editors": {e: block([p for p in pairs if p[0] == e]) for e in editors},
            "groups": {g: block([p for p in pairs if p[1] == g]) for g in {p[1] for p in pairs}},
            "corr": {k: corr(pairs, k) for k in ("reasoning", "overall")}}


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, abs_tol=1e-3)


def test_agreement_writes_numbers_that_recompute_and_resumes(vlm_dir, bench, tmp_path, capsys):
    out = tmp_path / "agree"
    editors = ["oracle", "copy", "shuffle", "bt-crash"]
    argv = ["bench", "agreement", "--bench", str(bench), "--out", str(out), "--judge", "critic", "--reference", "gt",
            "--editors", ",".join(editors), "--judge-option", f"critic.model={vlm_dir}",
            "--editor-option", 'bt-crash.crash_ids=["rave-causal-test-s0-0001"]', "--limit", "4", "--seed", "3",
            "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "pooled" in printed and "agreement" in printed
    report = json.loads((out / AGREEMENT_FILE).read_text())
    mine = _recompute(out, editors)

    assert report["judge"] == "critic" and report["reference"] == "gt" and report["pass_reasoning"] == 4.0
    assert report["n"] == mine["all"]["n"] == 4 * len(editors) - 1
    assert report["excluded"]["n"] == mine["excluded"] == 1
    assert report["excluded"]["samples"][0]["id"] == "rave-causal-test-s0-0001"
    assert _close(report["verdict_agreement"], mine["all"]["agreement"])
    assert report["confusion"] == mine["all"]["confusion"]
    for editor in editors:
        assert report["by_editor"][editor]["n"] == mine["editors"][editor]["n"]
        assert _close(report["by_editor"][editor]["verdict_agreement"], mine["editors"][editor]["agreement"])
        assert report["by_editor"][editor]["confusion"] == mine["editors"][editor]["confusion"]
    assert set(report["by_dimension"]) == set(mine["groups"]) == {"rave/causal", "rave/spatial"}
    for group, numbers in mine["groups"].items():
        assert _close(report["by_dimension"][group]["verdict_agreement"], numbers["agreement"])
        assert report["by_dimension"][group]["confusion"] == numbers["confusion"]
    for key in ("reasoning", "overall"):
        pearson, spearman = mine["corr"][key]
        assert _close(report["correlations"][key]["pearson"], pearson), key
        assert _close(report["correlations"][key]["spearman"], spearman), key
    # the reference passes the oracle somewhere and the copy nowhere: both verdicts occur
    oracle, copy = mine["editors"]["oracle"]["confusion"], mine["editors"]["copy"]["confusion"]
    assert oracle["judge_pass_reference_pass"] + oracle["judge_fail_reference_pass"] >= 1
    assert copy["judge_pass_reference_pass"] + copy["judge_fail_reference_pass"] == 0
    # definitions and provenance
    assert "Reasoning score >= 4" in report["verdict"]["definition"]
    assert report["verdict"]["judge"]["passes_when"] == "Reasoning >= 4, i.e. p(Yes) >= 0.5"
    prov = report["provenance"]
    assert prov["judges"]["critic"]["path"] == str(vlm_dir) and prov["judges"]["gt"]["judge"] == "gt"
    assert set(prov["editors"]) == set(editors) and prov["seed"] == 3 and prov["limit"] == 4
    assert prov["editors"]["bt-crash"]["crash_ids"] == ["rave-causal-test-s0-0001"]
    assert compute_agreement({e: out / "runs" / e for e in editors}, "critic", "gt")["confusion"] == report["confusion"]

    # resume: drop one finished row and leave a torn line, as a kill would; the rerun redoes only that
    copy_results = out / "runs" / "copy" / "results.jsonl"
    lines = copy_results.read_text().splitlines(keepends=True)
    copy_results.write_text("".join(lines[:-1]) + lines[-1][:40])
    assert main(argv) == 0
    assert "1 sample(s) run, 15 reused" in capsys.readouterr().out
    for editor in editors:
        ids = [json.loads(line)["id"] for line in (out / "runs" / editor / "results.jsonl").read_text().splitlines()]
        assert len(ids) == len(set(ids)) == 4, (editor, ids)
    again = json.loads((out / AGREEMENT_FILE).read_text())
    def numbers(d):
        return {k: v for k, v in d.items() if k != "provenance"}

    assert numbers(again) == numbers(report)
    # a different setting over the same folder is refused by run_bench's resume check, in one line
    assert main([*argv[:-1], "--seed", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume" in err[0]


def test_statistics_helpers():
    assert list(rankdata([3, 1, 3, 2])) == list(stats.rankdata([3, 1, 3, 2]))
    assert cohen_kappa([True, True], [True, True]) is None
    assert math.isclose(cohen_kappa([True, False, True, False], [True, False, False, False]), 0.5)
    with pytest.raises(ConfigError, match="both 'gt'"):
        compute_agreement({}, "gt", "gt")
