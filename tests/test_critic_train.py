"""``revise train critic`` at toy sizes: the model's own edits of train clips, labelled by the exact gt judge,
train the judge-only parts of the VLM and its Yes/No head; the generator and the reasoning path stay
bit-identical; exact resume; one-line errors."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from revise.errors import ConfigError
from revise.model.unified import ReviseModel
from revise.model.vlm_data import load_frames
from revise.sim import generate_dataset
from revise.train.critic import DATA_NAME, CriticConfig, _CriticTrainer, judge_only_parameters, train_critic
from revise.train.sft import train_sft
from revise.train.srf import critic_logit
from toymodel import Crash, crash_after_checkpoint, toy_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("critic-train")
    data = root / "train"
    generate_dataset(data, per_dimension=2, seed=6, split="train", size=32, frames=16)
    init = root / "init"
    train_sft(data, init, toy_config(vlm_steps=40, gen_steps=30, checkpoint_every=100), progress=False)
    return data, init


def config(**overrides) -> CriticConfig:
    options = dict(edits_per_dimension=2, edit_steps=3, steps=16, batch_size=8, lr=3e-3, head_lr=3e-3, warmup=2,
                   checkpoint_every=4, log_every=1)
    return CriticConfig(**{**options, **overrides})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(out: Path) -> list[dict]:
    with (out / "metrics.csv").open(newline="") as f:
        return [{k: r[k] for k in ("step", "lr", "loss", "detail")} for r in csv.DictReader(f)]


def _failure_logits(model: ReviseModel, bank, data: dict) -> torch.Tensor:
    src = torch.from_numpy(bank.source[data["index"]]).permute(0, 1, 4, 2, 3).float() / 255.0
    edits = torch.from_numpy(data["edits"]).permute(0, 1, 4, 2, 3).float() / 255.0
    texts = [bank.samples[int(i)].instruction for i in data["index"]]
    with torch.no_grad():
        return critic_logit(model.vlm, model.vlm.yes_no_rows(), src, edits, texts)


def test_the_judge_learns_the_generators_failures_and_nothing_else_changes(setup, tmp_path):
    data, init = setup
    out = tmp_path / "critic"
    result = train_critic(init, data, out, config(), progress=False)
    assert result.finished and result.steps == {"critic": 16}
    before, after = ReviseModel.from_pretrained(init), ReviseModel.from_pretrained(out)

    # the edits: two per dimension, the generator's own (not a copy of the source or target), gt-labelled
    with np.load(out / DATA_NAME, allow_pickle=False) as f:
        made = {k: f[k] for k in f.files}
    bank = load_frames(data / "manifest.jsonl", size=32, frames=16)
    assert len(made["index"]) == 16 and made["edits"].shape == (16, 16, 32, 32, 3)
    assert sorted({bank.samples[int(i)].group for i in made["index"]}) == sorted({s.group for s in bank.samples})
    assert made["passed"].dtype == bool and set(np.unique(made["reasoning"])) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert not any(np.array_equal(made["edits"][n], bank.source[i]) for n, i in enumerate(made["index"]))
    manifest = json.loads((out / "revise.json").read_text())
    assert manifest["training"]["recipe"] == "critic" and manifest["training"]["edits"] == 16
    assert manifest["training"]["edits_passed"] == int(made["passed"].sum())
    assert manifest["training"]["init_training"]["recipe"] == "sft"

    # what conditions the generator is untouched: the generator's files, the reason hidden states
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        assert _sha(out / "generator" / name) == _sha(init / "generator" / name)
    source = bank.source[:3]
    texts = [s.instruction for s in bank.samples[:3]]
    with torch.no_grad():
        h0, m0 = before.vlm.encode(source, texts)
        h1, m1 = after.vlm.encode(source, texts)
    assert torch.equal(h0, h1) and torch.equal(m0, m1)
    old, new = before.vlm.state_dict(), after.vlm.state_dict()
    judge_only = set(judge_only_parameters(after.vlm))
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and changed <= judge_only, sorted(changed - judge_only)[:5]
    assert (out / "vlm" / "critic_head.safetensors").is_file()
    assert not torch.equal(after.vlm.yes_no_rows(), before.vlm.yes_no_rows())

    # and the judge learned: its logits on the failures it trained on moved towards their labels
    labels = torch.from_numpy(made["passed"].astype(np.float32)) * 2 - 1
    gain = (_failure_logits(after, bank, made) - _failure_logits(before, bank, made)) * labels
    assert float(gain.mean()) > 0, gain


def test_critic_training_resumes_exactly(setup, tmp_path, monkeypatch):
    data, init = setup
    settings = config(steps=8, edits_per_dimension=1)
    full, broken = tmp_path / "full", tmp_path / "broken"
    train_critic(init, data, full, settings, progress=False)
    with monkeypatch.context() as m:
        crash_after_checkpoint(m, _CriticTrainer, 4)
        with pytest.raises(Crash):
            train_critic(init, data, broken, settings, progress=False)
    assert (broken / DATA_NAME).is_file() and not (broken / "revise.json").exists()
    train_critic(init, data, broken, settings, resume=True, progress=False)
    assert _rows(broken) == _rows(full) and len(_rows(full)) == 8
    # bit for bit: every run, fresh or resumed, trains on the edits as read back from critic_data.npz (the
    # in-memory array's memory layout differed, and the convolutions' last bits with it)
    a, b = ReviseModel.from_pretrained(full).vlm, ReviseModel.from_pretrained(broken).vlm
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert torch.equal(a.critic_head, b.critic_head)


def test_critic_bad_input(setup, tmp_path, capsys):
    from revise.cli.main import main

    data, _ = setup
    with pytest.raises(ConfigError, match="failure_share"):
        CriticConfig(failure_share=1.0)
    code = main(["train", "critic", "--init", str(tmp_path / "nowhere"), "--data", str(data), "--out",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "nowhere" in err and len(err.splitlines()) == 1, err


def test_a_run_killed_before_its_checkpoint_resumes_to_the_trained_judge(setup, tmp_path, monkeypatch):
    data, init = setup
    settings = config(steps=4, edits_per_dimension=1)
    train_critic(init, data, tmp_path / "full", settings, progress=False)

    def killed(self, *args, **kwargs):
        raise Crash()

    with monkeypatch.context() as m:
        m.setattr(_CriticTrainer, "write", killed)
        with pytest.raises(Crash):
            train_critic(init, data, tmp_path / "late", settings, progress=False)
    train_critic(init, data, tmp_path / "late", settings, resume=True, progress=False)
    a, b = ReviseModel.from_pretrained(tmp_path / "full").vlm, ReviseModel.from_pretrained(tmp_path / "late").vlm
    assert torch.equal(a.critic_head, b.critic_head)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
