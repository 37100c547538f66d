"""``revise train sft`` / ``revise train srf`` on 2 CPU processes (gloo) under the sharded launch configs:
``configs/accelerate/fsdp.yaml`` (FSDP2) and ``configs/accelerate/deepspeed_zero2.yaml`` (DeepSpeed ZeRO-2).

Each run records, on every rank and at every state save, what that rank holds of each weight (its FSDP
shard, or the whole tensor): DeepSpeed ZeRO-2 must keep the weights identical on every rank, FSDP must
really shard them and keep the critic head (outside the sharded module, averaged by hand) identical. The
two strategies must give the same losses and weights (up to reduction order), the checkpoints must load and
edit, and a run killed with SIGKILL and ``--resume``d must give the same metrics rows and bit-identical
weights as the uninterrupted run of the same strategy. The helpers come from ``test_distributed``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from toymodel import TOY_VLM
from test_distributed import (SFT_ARGS, SRF_STEPS, STEPS, _env, _falls, _free_port, _launch_and_kill, _rows,
                              _run, _state, _tool)
from revise.errors import ConfigError
from revise.model.unified import ReviseModel
from revise.sim import generate_dataset

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"
STRATEGIES = {"fsdp": "fsdp.yaml", "deepspeed": "deepspeed_zero2.yaml"}
SRF_ARGS = ["--steps", str(SRF_STEPS), "--batch-size", "4", "--lr", "1e-3", "--warmup", "2", "--lambda", "0.5",
            "--reward-t-range", "0,1", "--unfreeze-critic-head", "--checkpoint-every", "4", "--log-every", "1"]

# Runs the revise CLI like `-m revise.cli.main` and records, at every training-state save, what each rank holds
# of every weight (in $REVISE_TEST_HASHES/rank<r>.jsonl): its shape and a hash, and whether it is an FSDP shard.
WORKER = r'''
import hashlib, json, os, sys

from revise.train import sft
from revise.train.state import unique_entries

original = sft._Trainer.checkpoint


def checkpoint(self, stage, modules, optimizer, generators, step):
    from torch.distributed.tensor import DTensor

    held = {}
    for name in sorted(modules):
        for key, value in unique_entries(modules[name]).items():
            shard = isinstance(value, DTensor)
            local = (value.to_local() if shard else value).detach().cpu().contiguous()
            held[f"{name}/{key}"] = [shard, list(value.shape), list(local.shape),
                                     hashlib.sha256(local.numpy().tobytes()).hexdigest()]
    path = os.path.join(os.environ["REVISE_TEST_HASHES"], f"rank{self.accelerator.process_index}.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({"stage": stage, "step": step, "strategy": self.strategy, "held": held}) + "\n")
    return original(self, stage, modules, optimizer, generators, step)


sft._Trainer.checkpoint = checkpoint
from revise.cli.main import main

sys.exit(main(sys.argv[1:]))
'''


def _launch(strategy: str, *program: str) -> list[str]:
    """``accelerate launch`` with the strategy's config, two CPU processes, no mixed precision."""
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        pytest.fail("deepspeed is missing: it is part of the test environment (pip install -e '.[test]')")
    return [_tool("accelerate"), "launch", "--config_file", str(CONFIGS / STRATEGIES[strategy]), "--num_processes", "2",
            "--mixed_precision", "no", "--main_process_port", str(_free_port()), *program]


def _saves(hashes: Path) -> list[list[dict]]:
    """Each rank's records, one per state save."""
    return [[json.loads(line) for line in (hashes / f"rank{r}.jsonl").read_text().splitlines()] for r in range(2)]


def _check_held(strategy: str, hashes: Path) -> int:
    """DeepSpeed ZeRO-2: every weight whole and identical on both ranks. FSDP: the model's weights are shards
    whose sizes add up to the whole; what is not sharded (the critic head outside the sharded module, buffers)
    is identical on both ranks. Returns the number of saves."""
    ranks = _saves(hashes)
    assert ranks[0] and len(ranks[0]) == len(ranks[1])
    for a, b in zip(*ranks):
        assert (a["stage"], a["step"], a["strategy"]) == (b["stage"], b["step"], strategy)
        assert a["held"].keys() == b["held"].keys()
        shards = 0
        for key, (shard, shape, local, digest) in a["held"].items():
            other = b["held"][key]
            if shard:
                shards += 1
                assert other[0] and shape == other[1] and len(shape) >= 1, (a["step"], key)
                assert local[0] + other[2][0] == shape[0] and local[1:] == shape[1:], (key, local, other[2])
            else:
                assert local == shape and [shard, shape, local, digest] == other, (a["stage"], a["step"], key)
        assert shards > 0 if strategy == "fsdp" else shards == 0, (a["stage"], a["step"], shards)
    return len(ranks[0])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sharded") / "train"  # as test_distributed's
    generate_dataset(folder, per_dimension=1, seed=3, split="train", size=32, frames=16)
    return folder


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("worker") / "revise_sharded_worker.py"
    path.write_text(WORKER)
    return path


@pytest.fixture(scope="module")
def sft_runs(data, worker, tmp_path_factory):
    """``get(strategy)``: the (output folder, hashes folder) of a 2-process ``train sft`` (run once, on demand)."""
    runs: dict = {}

    def get(strategy: str):
        if strategy not in runs:
            root = tmp_path_factory.mktemp(f"sft-{strategy}")
            out, hashes = root / "ckpt", root / "hashes"
            hashes.mkdir()
            _run(_launch(strategy, str(worker), "train", "sft", "--data", str(data), "--out", str(out), *SFT_ARGS),
                 _env(REVISE_TEST_HASHES=str(hashes)))
            runs[strategy] = out, hashes
        return runs[strategy]

    return get


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_sft_on_two_sharded_processes(strategy, sft_runs):
    out, hashes = sft_runs(strategy)
    meta, rng = _state(out)
    assert (meta["strategy"], meta["world_size"]) == (strategy, 2) and rng == ["rng/data/rank0", "rng/data/rank1"]
    assert meta["meta"]["stage_steps"] == STEPS
    assert sorted(p.name for p in out.iterdir()) == ["cache", "generator", "metrics.csv", "revise.json",
                                                     "sft_config.json", "state", "tensorboard", "vlm"]
    model = ReviseModel.from_pretrained(out)
    edited = model.edit(np.zeros((16, 32, 32, 3), np.uint8), "What if the ball were blue?", steps=2)
    assert edited.shape == (16, 32, 32, 3)
    # the state holds the full weights and moments: the checkpoint's weights are the state's, and every AdamW
    # moment of the generator has its parameter's full shape
    from safetensors import safe_open

    with safe_open(str(out / "state" / "state.safetensors"), "pt") as f:
        saved = {k: f.get_tensor(k) for k in f.keys()}
    generator = model.generator.state_dict()
    assert all(torch.equal(saved[f"model/generator/{k}"], v) for k, v in generator.items())
    shapes = [tuple(v.shape) for v in generator.values()]
    moments = [tuple(saved[f"optim/{i}/exp_avg"].shape) for i in range(len(shapes))]
    assert moments == shapes and float(saved["optim/0/step"]) == STEPS["generator"]
    for stage in ("vlm", "generator"):
        rows = _rows(out, stage)
        assert [int(r["step"]) for r in rows] == list(range(1, STEPS[stage] + 1)), stage
        losses = [float(r["loss"]) for r in rows]
        assert all(np.isfinite(losses))
        ok, first, last = _falls(losses, 10)
        assert ok, (stage, first, last)
    assert _check_held(strategy, hashes) >= 10


def test_fsdp_and_deepspeed_agree(sft_runs):
    """Both average the same per-rank gradients: the same losses and weights up to floating-point order."""
    (fsdp, _), (ds, _) = sft_runs("fsdp"), sft_runs("deepspeed")
    a, b = [float(r["loss"]) for r in _rows(fsdp)], [float(r["loss"]) for r in _rows(ds)]
    assert len(a) == len(b) == sum(STEPS.values())
    assert np.allclose(a, b, rtol=1e-3, atol=1e-5), max(abs(x - y) for x, y in zip(a, b))
    ma, mb = ReviseModel.from_pretrained(fsdp), ReviseModel.from_pretrained(ds)
    for part in ("vlm", "generator"):
        sa, sb = getattr(ma, part).state_dict(), getattr(mb, part).state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.allclose(sa[k], sb[k], atol=2e-3) for k in sa), part


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_vlm_batches_without_judge_rows_under_sharding(strategy, data, worker, tmp_path):
    """One-sample VLM batches: on some steps a rank has no judge row and leaves the judge-only parameters
    unused. FSDP2 reduce-scatters zero gradients for them; DeepSpeed (no find_unused_parameters) gets them tied
    to the output with zero weight. Without either, gloo aborts: "Is there a distributed collective mismatch"."""
    out, hashes = tmp_path / "vlm", tmp_path / "hashes"
    hashes.mkdir()
    _run(_launch(strategy, str(worker), "train", "sft", "--data", str(data), "--out", str(out), "--stages", "vlm",
                 "--vlm-steps", "8", "--vlm-batch-size", "1", "--checkpoint-every", "2", "--log-every", "1",
                 "--vlm-config", json.dumps(TOY_VLM)), _env(REVISE_TEST_HASHES=str(hashes)))
    details = [json.loads(r["detail"]) for r in _rows(out)]
    assert len(details) == 8 and any("judge_train_acc" not in d for d in details), "no batch without judge rows"
    assert all(np.isfinite([float(r["loss"]) for r in _rows(out)]))
    assert _check_held(strategy, hashes) >= 4


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_srf_with_the_critic_head_on_two_sharded_processes(strategy, sft_runs, data, worker, tmp_path):
    """The critic head sits outside the generator: FSDP leaves it whole (its gradient averaged by hand),
    DeepSpeed's engine holds it too (ZeRO averages and clips it with the generator's)."""
    init, _ = sft_runs(strategy)
    out, hashes = tmp_path / "srf", tmp_path / "hashes"
    hashes.mkdir()
    _run(_launch(strategy, str(worker), "train", "srf", "--init", str(init), "--data", str(data), "--out", str(out),
                 *SRF_ARGS), _env(REVISE_TEST_HASHES=str(hashes)))
    meta, rng = _state(out)
    assert (meta["strategy"], meta["world_size"]) == (strategy, 2) and rng == ["rng/data/rank0", "rng/data/rank1"]
    manifest = json.loads((out / "revise.json").read_text())
    assert manifest["training"]["recipe"] == "srf" and manifest["training"]["steps"] == {"srf": SRF_STEPS}
    assert (out / "vlm" / "critic_head.safetensors").is_file()
    model, before = ReviseModel.from_pretrained(out), ReviseModel.from_pretrained(init)
    assert any(not torch.equal(a, b) for a, b in zip(model.generator.state_dict().values(),
                                                      before.generator.state_dict().values()))
    assert not torch.equal(model.vlm.critic_head, before.vlm.yes_no_rows())
    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == list(range(1, SRF_STEPS + 1))
    losses = [float(r["loss"]) for r in rows]
    assert all(np.isfinite(losses)) and np.mean(losses[-4:]) < np.mean(losses[:4]), losses
    rewards = [d["reward_loss"] for d in map(json.loads, (r["detail"] for r in rows)) if "reward_loss" in d]
    assert np.mean(rewards[-4:]) < np.mean(rewards[:4]), rewards
    assert _check_held(strategy, hashes) == SRF_STEPS // 4 + 1
    # the trained head is in every save, and it moved
    heads = {r["held"]["critic_head/yes_no"][3] for r in _saves(hashes)[0]}
    assert len(heads) == SRF_STEPS // 4


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_killed_sharded_run_resumes_exactly(strategy, sft_runs, data, tmp_path):
    """SIGKILL of every process after the VLM's first state save (the stage with two param groups, tied
    embeddings and judge-only parameters), then ``--resume`` with the same config: the same metrics rows
    and bit-identical weights as the uninterrupted run of the same strategy; resuming as DDP is refused."""
    reference, _ = sft_runs(strategy)
    out = tmp_path / "killed"
    args = ["train", "sft", "--data", str(data), "--out", str(out), *SFT_ARGS]
    _launch_and_kill(_launch(strategy, "-m", "revise.cli.main", *args), _env(), out, "vlm", 10)
    state = out / "state" / "state.json"
    assert not (out / "revise.json").exists()
    saved = json.loads(state.read_text())
    assert saved["strategy"] == strategy and saved["meta"]["stage_steps"]["vlm"] < STEPS["vlm"]
    # the VLM's full weights under their own names (the tied output matrix once, as the embeddings)
    from safetensors import safe_open

    with safe_open(str(out / "state" / "state.safetensors"), "pt") as f:
        keys = {k[len("model/vlm/"):] for k in f.keys() if k.startswith("model/vlm/")}
    vlm = ReviseModel.from_pretrained(reference).vlm.state_dict()
    assert keys == set(vlm) - {"lm.lm_head.weight"}
    from revise.train.state import check_state_strategy

    with pytest.raises(ConfigError, match="written by a .* run, this run is ddp"):
        check_state_strategy(out / "state", "ddp")
    _run(_launch(strategy, "-m", "revise.cli.main", *args, "--resume"), _env())
    key = [(r["stage"], r["step"], r["loss"], r["detail"]) for r in _rows(out)]
    assert key == [(r["stage"], r["step"], r["loss"], r["detail"]) for r in _rows(reference)]
    a, b = ReviseModel.from_pretrained(reference), ReviseModel.from_pretrained(out)
    for part in ("vlm", "generator"):
        sa, sb = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), part


def test_unsupported_deepspeed_setting_is_one_line(data, tmp_path):
    """ZeRO stage 3 (it partitions the weights the trainers also use outside the engine) is refused on every
    rank with one line, before any training."""
    done = subprocess.run(_launch("deepspeed", "--zero_stage", "3", "-m", "revise.cli.main", "train", "sft", "--data",
                                  str(data), "--out", str(tmp_path / "z3"), *SFT_ARGS),
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2 and all("DeepSpeed ZeRO stage 3" in e for e in errors), done.stderr[-2000:]
    assert not (tmp_path / "z3" / "state").exists()
