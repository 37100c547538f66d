"""Several processes on 2 CPU cores (gloo): ``revise train sft`` / ``revise train srf`` under ``accelerate
launch`` (DDP), exact resume of a 2-process run after SIGKILL of every process, and ``revise bench run
--shard auto`` under ``torchrun`` against an unsharded run.

``accelerate launch --cpu --num_processes 2`` starts ONE process in accelerate 1.15 (its multi-CPU mode
needs mpirun), so the launches here use ``--multi_gpu``: on a machine without a GPU that is torchrun with
two processes, which the trainers run on the CPU (``DistributedType.MULTI_CPU``, gloo).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from toymodel import TOY_GEN, TOY_VLM
from revise.bench import load_results, run_bench
from revise.cli.main import main as cli_main
from revise.model.unified import ReviseModel
from revise.sim import generate_dataset

BIN = Path(sys.executable).parent
STEPS = {"vlm": 40, "generator": 60}
SRF_STEPS = 16
SFT_ARGS = ["--vlm-steps", str(STEPS["vlm"]), "--gen-steps", str(STEPS["generator"]), "--vlm-batch-size", "8",
            "--gen-batch-size", "4", "--vlm-lr", "3e-3", "--gen-lr", "2e-3", "--vlm-warmup", "5", "--gen-warmup", "5",
            "--checkpoint-every", "10", "--log-every", "1", "--vlm-config", json.dumps(TOY_VLM),
            "--generator-config", json.dumps(TOY_GEN)]

# Runs the revise CLI like `-m revise.cli.main`, and records a hash of the weights every rank holds at each
# training-state save (in $REVISE_TEST_HASHES/rank<r>.jsonl): DDP must keep them identical.
WORKER = r'''
import hashlib, json, os, sys

from revise.train import sft

original = sft._Trainer.checkpoint


def checkpoint(self, stage, modules, optimizer, generators, step):
    digest = hashlib.sha256()
    for name in sorted(modules):
        for key, value in sorted(modules[name].state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    path = os.path.join(os.environ["REVISE_TEST_HASHES"], f"rank{self.accelerator.process_index}.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({"stage": stage, "step": step, "sha256": digest.hexdigest()}) + "\n")
    return original(self, stage, modules, optimizer, generators, step)


sft._Trainer.checkpoint = checkpoint
from revise.cli.main import main

sys.exit(main(sys.argv[1:]))
'''


def _tool(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: the launcher is part of the environment (pip install accelerate)")
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def _launch(*program: str) -> list[str]:
    """``accelerate launch`` with two CPU processes (see the module docstring for ``--multi_gpu``)."""
    return [_tool("accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *program]


def _run(cmd: list[str], env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _rows(out: Path, stage: str | None = None) -> list[dict]:
    with (out / "metrics.csv").open(newline="") as f:
        return [r for r in csv.DictReader(f) if stage in (None, r["stage"])]


def _falls(losses: list[float], k: int) -> tuple[bool, float, float]:
    first, last = float(np.mean(losses[:k])), float(np.mean(losses[-k:]))
    return last < 0.85 * first, first, last


def _same_on_every_rank(hashes: Path) -> list[dict]:
    ranks = [[json.loads(line) for line in (hashes / f"rank{r}.jsonl").read_text().splitlines()] for r in range(2)]
    assert ranks[0] and ranks[0] == ranks[1], "the ranks' weights differ: gradients are not averaged"
    return ranks[0]


def _state(out: Path) -> tuple[dict, list[str]]:
    from safetensors import safe_open

    meta = json.loads((out / "state" / "state.json").read_text())
    with safe_open(str(out / "state" / "state.safetensors"), "pt") as f:
        return meta, sorted(k for k in f.keys() if k.startswith("rng/"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dist") / "train"
    generate_dataset(folder, per_dimension=1, seed=3, split="train", size=32, frames=16)
    return folder


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("worker") / "revise_worker.py"
    path.write_text(WORKER)
    return path


@pytest.fixture(scope="module")
def sft_run(data, worker, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft2")
    out, hashes = root / "ckpt", root / "hashes"
    hashes.mkdir()
    _run(_launch(str(worker), "train", "sft", "--data", str(data), "--out", str(out), *SFT_ARGS),
         _env(REVISE_TEST_HASHES=str(hashes)))
    return out, hashes


def test_sft_on_two_processes(sft_run):
    out, hashes = sft_run
    meta, rng = _state(out)
    assert meta["world_size"] == 2 and rng == ["rng/data/rank0", "rng/data/rank1"]
    assert meta["meta"]["stage_steps"] == STEPS
    # one checkpoint, written once (by rank 0)
    assert sorted(p.name for p in out.iterdir()) == ["cache", "generator", "metrics.csv", "revise.json",
                                                     "sft_config.json", "state", "tensorboard", "vlm"]
    manifest = json.loads((out / "revise.json").read_text())
    assert manifest["training"]["steps"] == STEPS
    model = ReviseModel.from_pretrained(out)
    edited = model.edit(np.zeros((16, 32, 32, 3), np.uint8), "What if the ball were blue?", steps=2)
    assert edited.shape == (16, 32, 32, 3)
    for stage in ("vlm", "generator"):
        rows = _rows(out, stage)
        assert [int(r["step"]) for r in rows] == list(range(1, STEPS[stage] + 1)), stage
        ok, first, last = _falls([float(r["loss"]) for r in rows], 10)
        assert ok, (stage, first, last)
    saves = _same_on_every_rank(hashes)
    assert {(s["stage"], s["step"]) for s in saves} >= {("vlm", 10), ("vlm", STEPS["vlm"]),
                                                        ("generator", STEPS["generator"])}


def test_vlm_batches_without_judge_rows_keep_the_ranks_identical(data, worker, tmp_path):
    """The VLM's judge-only parts (change and summary projections) sit out a batch without judge rows:
    DDP runs the VLM stage with find_unused_parameters (without it the ranks' collectives mismatch)."""
    out, hashes = tmp_path / "vlm", tmp_path / "hashes"
    hashes.mkdir()
    _run(_launch(str(worker), "train", "sft", "--data", str(data), "--out", str(out), "--stages", "vlm",
                 "--vlm-steps", "8", "--vlm-batch-size", "1", "--checkpoint-every", "2", "--log-every", "1",
                 "--vlm-config", json.dumps(TOY_VLM)), _env(REVISE_TEST_HASHES=str(hashes)))
    details = [json.loads(r["detail"]) for r in _rows(out)]
    assert len(details) == 8 and any("judge_train_acc" not in d for d in details), "no batch without judge rows"
    assert len(_same_on_every_rank(hashes)) >= 4


def test_srf_on_two_processes(sft_run, data, worker, tmp_path):
    init, _ = sft_run
    out, hashes = tmp_path / "srf", tmp_path / "hashes"
    hashes.mkdir()
    _run(_launch(str(worker), "train", "srf", "--init", str(init), "--data", str(data), "--out", str(out),
                 "--steps", str(SRF_STEPS), "--batch-size", "4", "--lr", "1e-3", "--warmup", "2", "--lambda", "0.5",
                 "--reward-t-range", "0,1", "--unfreeze-critic-head", "--checkpoint-every", "4", "--log-every", "1"),
         _env(REVISE_TEST_HASHES=str(hashes)))
    meta, rng = _state(out)
    assert meta["world_size"] == 2 and rng == ["rng/data/rank0", "rng/data/rank1"]
    manifest = json.loads((out / "revise.json").read_text())
    assert manifest["training"]["recipe"] == "srf" and manifest["training"]["steps"] == {"srf": SRF_STEPS}
    assert (out / "vlm" / "critic_head.safetensors").is_file()
    model = ReviseModel.from_pretrained(out)
    before = ReviseModel.from_pretrained(init)
    assert any(not torch.equal(a, b) for a, b in zip(model.generator.state_dict().values(),
                                                      before.generator.state_dict().values()))
    rows = _rows(out)
    assert [int(r["step"]) for r in rows] == list(range(1, SRF_STEPS + 1))
    # the loss (FM + lambda * reward + the head's anchor, about 0.69 and slow to move) and the critic's
    # -log p(Yes) both fall
    losses = [float(r["loss"]) for r in rows]
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses
    rewards = [d["reward_loss"] for d in map(json.loads, (r["detail"] for r in rows)) if "reward_loss" in d]
    assert np.mean(rewards[-4:]) < np.mean(rewards[:4]), rewards
    # the generator and the critic head (averaged by hand: it is outside the DDP module) stay identical
    _same_on_every_rank(hashes)


def _launch_and_kill(cmd: list[str], env: dict, out: Path, stage: str, at_least: int, timeout: float = 240) -> None:
    """Start ``cmd`` (a launcher) and SIGKILL it with all its workers once the training state in ``out`` has
    ``stage`` at step ``at_least`` or later; fails if the run ends first."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    state = out / "state" / "state.json"
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                if json.loads(state.read_text())["meta"]["stage_steps"].get(stage, 0) >= at_least:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.01)
        assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()[-1500:]
    finally:
        _kill_tree(proc)


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and every process under it, group by group (torchrun starts each worker in a
    session of its own, so killing the launcher's group alone would leave the workers training)."""
    import psutil

    procs = [psutil.Process(proc.pid)]
    try:
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        pass
    groups = []
    for p in procs:
        try:
            groups.append(os.getpgid(p.pid))
        except ProcessLookupError:
            pass
    for group in reversed(dict.fromkeys(groups)):  # the workers first, the launcher last
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    psutil.wait_procs(procs, timeout=10)


def test_killed_two_process_run_resumes_exactly(sft_run, data, tmp_path, capsys):
    reference, _ = sft_run
    out = tmp_path / "killed"
    cmd = _launch("-m", "revise.cli.main", "train", "sft", "--data", str(data), "--out", str(out), *SFT_ARGS)
    _launch_and_kill(cmd, _env(), out, "generator", 10)
    assert not (out / "revise.json").exists()
    # one process cannot take over the state of two
    args = ["train", "sft", "--data", str(data), "--out", str(out), *SFT_ARGS, "--resume"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "written by 2 process(es)" in err, err
    _run(_launch("-m", "revise.cli.main", *args), _env())
    key = [(r["stage"], r["step"], r["loss"]) for r in _rows(out)]
    assert key == [(r["stage"], r["step"], r["loss"]) for r in _rows(reference)]
    a, b = ReviseModel.from_pretrained(reference), ReviseModel.from_pretrained(out)
    for part in ("vlm", "generator"):
        sa, sb = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), part


def test_bench_shard_auto_under_torchrun_matches_an_unsharded_run(tmp_path):
    bench = generate_dataset(tmp_path / "bench", per_dimension=1, seed=5, split="test", size=32, frames=16)
    plain = run_bench(bench, tmp_path / "plain", editor="copy", judges=["gt"], progress=False, report=False)
    out = tmp_path / "sharded"
    _run([_tool("torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "revise.cli.main", "bench", "run",
          "--bench", str(bench), "--editor", "copy", "--judge", "gt", "--shard", "auto", "--out", str(out),
          "--no-progress", "--no-report"], _env())
    for rank in range(2):
        shard = json.loads((out / "shards" / f"rank{rank}" / "run.json").read_text())
        assert shard["shard"] == [rank, 2]
        assert (out / "shards" / f"rank{rank}" / "shard.done.json").is_file()
    merged = json.loads((out / "run.json").read_text())
    assert merged["shard"] is None and len(merged["merged_from"]) == 2 and not merged["shards_missing"]

    def scores(path: Path) -> dict:
        return {r["id"]: (r["status"], r["prediction_sha256"],
                          {k: v for k, v in r["judges"]["gt"].items() if k != "seconds"})
                for r in load_results(path / "results.jsonl")}

    assert scores(out) == scores(plain.out_dir) and len(scores(out)) == 8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["overall"] == plain.summary["overall"]
    # without launcher variables --shard auto is one plain run
    single = tmp_path / "single"
    assert cli_main(["bench", "run", "--bench", str(bench), "--editor", "copy", "--judge", "gt", "--shard", "auto",
                     "--out", str(single), "--no-progress", "--no-report"]) == 0
    assert json.loads((single / "run.json").read_text())["shard"] is None and scores(single) == scores(plain.out_dir)
