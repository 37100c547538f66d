"""Self-reflective training (``revise train srf``) and inference-time reflection at toy sizes: the reward's
gradient path, lambda = 0 as FM-only, exact resume after SIGKILL, the trained critic head, ``--reflect``."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from revise.errors import ConfigError
from revise.model.flow import flow_matching_loss
from revise.model.unified import ReviseModel
from revise.model.vlm_data import load_frames
from revise.sim import generate_dataset
from revise.train.sft import train_sft
from revise.train.srf import SRFConfig, reward_loss, train_srf
from toymodel import Crash, crash_before_write, toy_config


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("srf")
    data = root / "train"
    generate_dataset(data, per_dimension=1, seed=4, split="train", size=32, frames=16)
    init = root / "init"
    train_sft(data, init, toy_config(vlm_steps=40, gen_steps=30, checkpoint_every=100), progress=False)
    return data, init


def srf_config(**overrides) -> SRFConfig:
    options = dict(steps=12, batch_size=4, lr=1e-3, warmup=2, lam=0.5, reward_t_range=(0.0, 1.0),
                   checkpoint_every=4, log_every=1)
    return SRFConfig(**{**options, **overrides})


def _losses(out: Path) -> list[tuple[str, str]]:
    with (out / "metrics.csv").open(newline="") as f:
        return [(r["step"], r["loss"], r["detail"]) for r in csv.DictReader(f)]


@pytest.mark.numerics
def test_reward_gradient_reaches_the_generator_not_the_critic(setup):
    data, init = setup
    model = ReviseModel.from_pretrained(init)
    vlm, gen = model.vlm, model.generator
    for p in vlm.parameters():
        p.requires_grad_(False)
    bank = load_frames(data / "manifest.jsonl", size=32, frames=16)
    src = torch.from_numpy(bank.source[:3]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    tgt = torch.from_numpy(bank.target[:3]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1
    ids = torch.stack([gen.pad_ids(model.text_ids(s.instruction))[0] for s in bank.samples[:3]])
    hidden, mask = model.vlm_condition(bank.source[:3], [s.instruction for s in bank.samples[:3]])
    gen.train()
    _, extras = flow_matching_loss(gen, {"source": src, "target": tgt, "text_ids": ids, "vlm_hidden": hidden,
                                         "vlm_mask": mask}, torch.Generator().manual_seed(0), drop_prob=0.0)
    head = vlm.yes_no_rows().detach().clone()
    before = {k: v.clone() for k, v in vlm.state_dict().items()}
    loss, logit = reward_loss(vlm, head, src, extras.x0_hat, [s.instruction for s in bank.samples[:3]])
    assert loss.requires_grad and logit.shape == (3,)
    assert torch.allclose(loss, torch.nn.functional.softplus(-logit).mean())
    # the logit is the VLM's own judge logit on the decoded clean estimate
    with torch.no_grad():
        decoded = ((extras.x0_hat.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4)
        reference = vlm.judge_logit(((src + 1) / 2).permute(0, 2, 1, 3, 4), [s.instruction for s in bank.samples[:3]],
                                    decoded)
    assert torch.allclose(logit.detach(), reference, atol=1e-5)
    loss.backward()
    grads = [p.grad for p in gen.parameters() if p.requires_grad]
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0, "no gradient reached the generator"
    assert all(p.grad is None for p in vlm.parameters()), "the frozen critic received gradients"
    assert all(torch.equal(before[k], v) for k, v in vlm.state_dict().items())


@pytest.mark.numerics
def test_lambda_zero_is_exactly_fm_only_fine_tuning(setup, tmp_path):
    """lambda = 0 against an independent plain loop: the same batches, noise and AdamW updates (up to rounding)."""
    data, init = setup
    cfg = srf_config(lam=0.0, steps=6)
    train_srf(init, data, tmp_path / "zero", cfg, progress=False)
    trained = ReviseModel.from_pretrained(tmp_path / "zero").generator

    model = ReviseModel.from_pretrained(init)
    gen = model.generator
    bank = load_frames(data / "manifest.jsonl", size=32, frames=16)
    hidden, mask = _features(model, bank)
    ids = torch.stack([gen.pad_ids(model.text_ids(s.instruction))[0] for s in bank.samples])
    source = torch.from_numpy(bank.source).permute(0, 4, 1, 2, 3)
    target = torch.from_numpy(bank.target).permute(0, 4, 1, 2, 3)
    opt = torch.optim.AdamW(gen.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.99))
    rng = torch.Generator().manual_seed(cfg.seed * 7919 + 29)
    gen.train()
    for i in range(cfg.steps):
        scale = (i + 1) / cfg.warmup if i < cfg.warmup else \
            0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (i - cfg.warmup) / max(1, cfg.steps - cfg.warmup))))
        for g in opt.param_groups:
            g["lr"] = cfg.lr * scale
        idx = torch.randint(0, len(source), (cfg.batch_size,), generator=rng)
        batch = {"source": source[idx].float() / 127.5 - 1, "target": target[idx].float() / 127.5 - 1,
                 "text_ids": ids[idx], "vlm_hidden": hidden[idx], "vlm_mask": mask[idx]}
        loss, _ = flow_matching_loss(gen, batch, rng, loss_space="x0")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 1.0)
        opt.step()
    # Two implementations of the same maths, so not bit-equal: the trainer's step (accelerate's prepare and
    # clip_grad_norm_) and this loop round differently, and the kernels differ between CPUs
    # (ATEN_CPU_CAPABILITY). Measured after these 6 AdamW steps: at most 1.2e-7 apart (one float32 ulp at 1.0)
    # under default, avx2 and avx512; each step moves a weight by ~lr = 1e-3, so a different lr schedule,
    # weight decay or batch order is off by >= 1e-5 and fails.
    for (k, a), (_, b) in zip(gen.state_dict().items(), trained.state_dict().items()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")


def _features(model, bank):
    with torch.no_grad():
        h, m = model.vlm.encode(bank.source, [s.instruction for s in bank.samples])
    return h, m.bool()


def test_self_reflection_changes_the_generator_and_logs_the_reward(setup, tmp_path):
    data, init = setup
    train_srf(init, data, tmp_path / "fm", srf_config(lam=0.0), progress=False)
    train_srf(init, data, tmp_path / "srf", srf_config(lam=0.5), progress=False)
    a = ReviseModel.from_pretrained(tmp_path / "fm").generator.state_dict()
    b = ReviseModel.from_pretrained(tmp_path / "srf").generator.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    details = [json.loads(d) for _, _, d in _losses(tmp_path / "srf")]
    assert all("reward_loss" in d and 0 < d["critic_p_yes"] < 1 for d in details if "reward_rows" in d)
    assert sum("reward_loss" in d for d in details) >= 6
    manifest = json.loads((tmp_path / "srf" / "revise.json").read_text())
    assert manifest["training"]["recipe"] == "srf" and manifest["training"]["init_training"]["recipe"] == "sft"
    # the critic is untouched unless asked: the same VLM files as the init
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert (tmp_path / "srf" / "vlm" / name).read_bytes() == (init / "vlm" / name).read_bytes()
    assert not (tmp_path / "srf" / "vlm" / "critic_head.safetensors").exists()


def test_unfrozen_critic_head_is_saved_and_used(setup, tmp_path):
    data, init = setup
    train_srf(init, data, tmp_path / "head", srf_config(unfreeze_critic_head=True, head_lr=1e-2), progress=False)
    assert (tmp_path / "head" / "vlm" / "critic_head.safetensors").is_file()
    before, after = ReviseModel.from_pretrained(init).vlm, ReviseModel.from_pretrained(tmp_path / "head").vlm
    assert not torch.equal(before.yes_no_rows(), after.yes_no_rows())
    # only the head differs: the LM's own weights (and so text generation) are the init's
    assert all(torch.equal(before.state_dict()[k], v) for k, v in after.state_dict().items())
    clip = np.zeros((1, 16, 32, 32, 3), np.uint8)
    assert not torch.allclose(before.judge_logit(clip, "x", clip), after.judge_logit(clip, "x", clip))


def test_srf_resume_after_sigkill_matches(setup, tmp_path):
    data, init = setup
    common = ["--init", str(init), "--data", str(data), "--steps", "40", "--batch-size", "4", "--lr", "1e-3",
              "--warmup", "2", "--lambda", "0.5", "--reward-t-range", "0,1", "--checkpoint-every", "5",
              "--log-every", "1", "--threads", "1"]
    train_srf(init, data, tmp_path / "ref", srf_config(steps=40, checkpoint_every=5), progress=False)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "revise.cli.main", "train", "srf", "--out", str(out), *common]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = out / "state" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.is_file() and json.loads(state.read_text())["meta"]["stage_steps"].get("srf", 0) >= 5:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()[-500:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rc = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr[-800:]
    assert _losses(out) == _losses(tmp_path / "ref")
    a = ReviseModel.from_pretrained(tmp_path / "ref").generator.state_dict()
    b = ReviseModel.from_pretrained(out).generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_srf_bad_settings_are_one_line_errors(setup, tmp_path, capsys):
    from revise.cli.main import main

    data, init = setup
    for argv, expected in (
        (["--reward-t-range", "0.7,0.2"], "reward_t_range must be two numbers"),
        (["--reward-t-range", "nope"], "expected two numbers like 0.0,0.6"),
        (["--lambda", "-1"], "lambda must be >= 0"),
        (["--init", str(tmp_path / "missing")], "checkpoint not found"),
    ):
        base = {"--init": str(init), "--data": str(data), "--out": str(tmp_path / "o")}
        base.update(dict(zip(argv[::2], argv[1::2])))
        rc = main(["train", "srf", *[x for kv in base.items() for x in kv]])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert expected in err, err
    with pytest.raises(ConfigError, match="not empty"):
        train_srf(init, data, init, srf_config(), progress=False)


def test_reflect_keeps_the_candidate_the_critic_prefers(setup):
    data, init = setup
    model = ReviseModel.from_pretrained(init)
    bank = load_frames(data / "manifest.jsonl", size=32, frames=16)
    frames, instruction = bank.source[0], bank.samples[0].instruction
    chosen, p_yes = model.reflect_edit(frames, instruction, seed=5, n=4, steps=2)
    assert len(p_yes) == 4 and all(0 <= p <= 1 for p in p_yes)
    best = int(np.argmax(p_yes))
    assert np.array_equal(chosen, model.edit(frames, instruction, seed=5 + best, steps=2))
    single, none = model.reflect_edit(frames, instruction, seed=5, n=1, steps=2)
    assert none == [] and np.array_equal(single, model.edit(frames, instruction, seed=5, steps=2))
    with pytest.raises(ValueError, match="reflect must be >= 1"):
        model.edit(frames, instruction, reflect=0)


def test_a_run_killed_between_its_last_state_and_its_checkpoint_resumes_to_the_trained_model(setup, tmp_path,
                                                                                             monkeypatch):
    """Killed after the final state save but before the checkpoint was written, ``--resume`` must write the
    trained generator (restored from the state), not the init's."""
    from revise.train.srf import _SRFTrainer

    data, init = setup
    settings = srf_config(steps=4, checkpoint_every=2)
    train_srf(init, data, tmp_path / "full", settings, progress=False)

    with monkeypatch.context() as m:
        crash_before_write(m, _SRFTrainer)
        with pytest.raises(Crash):
            train_srf(init, data, tmp_path / "late", settings, progress=False)
    assert not (tmp_path / "late" / "revise.json").exists()
    train_srf(init, data, tmp_path / "late", settings, resume=True, progress=False)
    full, late = ReviseModel.from_pretrained(tmp_path / "full"), ReviseModel.from_pretrained(tmp_path / "late")
    first = ReviseModel.from_pretrained(init)
    sf, sl, si = (m.generator.state_dict() for m in (full, late, first))
    assert all(torch.equal(sf[k], sl[k]) for k in sf)
    assert not all(torch.equal(sf[k], si[k]) for k in sf)
