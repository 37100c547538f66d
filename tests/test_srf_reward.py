"""``revise train srf``'s reward variants at toy sizes: the sampled reward of DRaFT-K (``--reward-sampler-steps``,
``--reward-grad-last``: the graph of the last K sampler steps only) and the clipped critic log-odds
(``--reward-clip``)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from revise.errors import ConfigError
from revise.model.flow import sample
from revise.model.unified import ReviseModel
from revise.train.srf import SRFConfig, reward_loss, train_srf
from toymodel import Crash

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(srf_init):
    return srf_init


def _inputs(model, batch=2):
    gen = model.generator
    t, h, w = gen.video_shape
    g = torch.Generator().manual_seed(0)
    source = torch.rand(batch, 3, t, h, w, generator=g) * 2 - 1
    ids = gen.pad_ids(model.text_ids("move the red ball"), batch)
    noise = torch.randn(source.shape, generator=g)
    return source, ids, noise


def test_sampler_keeps_the_graph_of_its_last_steps_only(setup):
    _, init = setup
    model = ReviseModel.from_pretrained(init)
    gen = model.generator.requires_grad_(True)  # loaded for inference: frozen
    source, ids, noise = _inputs(model)
    with torch.no_grad():
        plain = sample(gen, source, ids, steps=3, guidance=2.0, noise=noise)
    for k in (1, 2, 3):
        x0 = noise.clone().requires_grad_(True)
        out = sample(gen, source, ids, steps=3, guidance=2.0, noise=x0, grad_last=k)
        # the same maths whichever steps keep a graph (tolerance: the same kernels, run with and without autograd)
        assert torch.allclose(out, plain, atol=1e-5)
        gen.zero_grad(set_to_none=True)
        out.square().mean().backward()
        grads = [p.grad for p in gen.parameters() if p.grad is not None]
        assert grads and any(float(g.abs().sum()) > 0 for g in grads)
        # the noise enters through the first step, which keeps a graph only when every step does
        assert (x0.grad is not None) == (k == 3)
    with pytest.raises(ValueError, match=r"grad_last must be in \[0, steps=3\]"):
        sample(gen, source, ids, steps=3, noise=noise, grad_last=4)


def test_clipped_reward_stops_pushing_past_the_clip(setup):
    from revise.train.srf import to_unit_video

    _, init = setup
    model = ReviseModel.from_pretrained(init)
    vlm = model.vlm
    source, _, _ = _inputs(model, batch=1)
    texts = ["move the red ball"]
    with torch.no_grad():  # a head whose Yes-No direction gives this sample log-odds of exactly 5
        h = vlm.encode(to_unit_video(source), texts, to_unit_video(source))[0][0, -1]
    head = torch.stack([h * (5.0 / float(h @ h)), torch.zeros_like(h)])
    grads = {}
    for clip in (0.0, 10.0, 2.0):
        candidate = source.clone().requires_grad_(True)
        loss, logit = reward_loss(vlm, head, source, candidate, texts, clip)
        loss.backward()
        assert float(logit.detach()[0]) == pytest.approx(5.0, abs=1e-3)  # reported unclipped
        grads[clip] = (float(loss.detach()), candidate.grad)
    assert float(grads[0.0][1].abs().sum()) > 0
    # a clip above the log-odds changes nothing; one below them leaves no gradient and a constant loss
    assert grads[10.0][0] == pytest.approx(grads[0.0][0]) and torch.equal(grads[10.0][1], grads[0.0][1])
    assert float(grads[2.0][1].abs().sum()) == 0.0
    assert grads[2.0][0] == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(-2.0))))


def test_a_run_with_the_sampled_reward_trains_and_logs_it(setup, tmp_path):
    data, init = setup
    settings = dict(steps=3, batch_size=2, lr=1e-3, warmup=1, checkpoint_every=3, log_every=1)
    train_srf(init, data, tmp_path / "fm", SRFConfig(**settings, lam=0.0), progress=False)
    train_srf(init, data, tmp_path / "draft", SRFConfig(**settings, lam=0.5, reward_sampler_steps=3,
                                                        reward_grad_last=1, reward_guidance=1.0, reward_clip=4.0),
              progress=False)
    with (tmp_path / "draft" / "metrics.csv").open(newline="") as f:
        details = [json.loads(r["detail"]) for r in csv.DictReader(f)]
    assert len(details) == 3 and all(d["reward_rows"] == 2.0 and 0 <= d["critic_p_yes"] <= 1 for d in details)
    saved = json.loads((tmp_path / "draft" / "srf_config.json").read_text())
    assert saved["reward_sampler_steps"] == 3 and saved["reward_clip"] == 4.0
    a = ReviseModel.from_pretrained(tmp_path / "fm").generator.state_dict()
    b = ReviseModel.from_pretrained(tmp_path / "draft").generator.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)  # the reward moved the generator


def test_reward_settings_are_one_line_errors(setup, tmp_path, capsys):
    from revise.cli.main import main

    data, init = setup
    with pytest.raises(ConfigError, match=r"reward_grad_last must be in \[1, reward_sampler_steps=2\]"):
        SRFConfig(reward_sampler_steps=2, reward_grad_last=3)
    with pytest.raises(ConfigError, match="reward_clip must be >= 0"):
        SRFConfig(reward_clip=-1.0)
    with pytest.raises(ConfigError, match="reward_sampler_steps must be >= 0"):
        SRFConfig(reward_sampler_steps=-1)
    rc = main(["train", "srf", "--init", str(init), "--data", str(data), "--out", str(tmp_path / "o"),
               "--reward-sampler-steps", "2", "--reward-grad-last", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "reward_grad_last" in err, err


# ---- a critic that keeps learning (--critic-refresh-every) ------------------------------------------------------
def _refresh_settings(**overrides) -> SRFConfig:
    options = dict(steps=4, batch_size=2, lr=1e-3, warmup=1, checkpoint_every=2, log_every=1, lam=0.5,
                   reward_t_range=(0.0, 1.0), critic_refresh_every=2, refresh_edits=4, refresh_steps=3,
                   refresh_buffer=6)
    return SRFConfig(**{**options, **overrides})


def _details(out):
    with (out / "metrics.csv").open(newline="") as f:
        return [json.loads(r["detail"]) for r in csv.DictReader(f)]


def _head(out):
    from safetensors.torch import load_file

    return load_file(out / "vlm" / "critic_head.safetensors")["yes_no"]


def test_the_refreshed_critic_learns_from_labelled_edits_and_keeps_them(setup, tmp_path):
    from safetensors.torch import load_file

    data, init = setup
    out = tmp_path / "refresh"
    train_srf(init, data, out, _refresh_settings(), progress=False)
    details = _details(out)
    for step in (0, 2):  # refreshed at the start of steps 0 and 2, logged in their rows
        d = details[step]
        assert d["refresh_loss"] > 0 and 0.0 <= d["refresh_gt_pass"] <= 1.0 and 0.0 <= d["refresh_agreement"] <= 1.0
    assert "refresh_loss" not in details[1] and "refresh_loss" not in details[3]
    first = ReviseModel.from_pretrained(init).vlm.yes_no_rows().detach()
    assert not torch.allclose(_head(out), first)  # the head the checkpoint's critic now uses moved
    buffer = {k[len("model/critic_buffer/"):]: v for k, v in load_file(out / "state" / "state.safetensors").items()
              if k.startswith("model/critic_buffer/")}
    assert int(buffer["count"]) == 8 and buffer["edits"].shape[0] == 6  # two refreshes of 4, six kept
    assert set(buffer["label"].tolist()) <= {0.0, 1.0}


def test_the_reward_never_trains_a_refreshed_head(setup, tmp_path):
    """Refreshed once, before the first step, the head ends the same whatever lambda is: only labels move it."""
    data, init = setup
    for lam in (0.0, 0.5):
        train_srf(init, data, tmp_path / f"lam{lam}", _refresh_settings(lam=lam, critic_refresh_every=100),
                  progress=False)
    assert torch.equal(_head(tmp_path / "lam0.0"), _head(tmp_path / "lam0.5"))
    a = ReviseModel.from_pretrained(tmp_path / "lam0.0").generator.state_dict()
    b = ReviseModel.from_pretrained(tmp_path / "lam0.5").generator.state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a)  # while the reward did move the generator


def test_a_refreshing_run_resumes_exactly(setup, tmp_path, monkeypatch):
    """Killed in its second refresh (after the state of step 2), the resumed run restores the buffer, the draw
    and the head's moments, and ends with an uninterrupted run's losses, generator and head."""
    from revise.train.srf import _SRFTrainer

    data, init = setup
    train_srf(init, data, tmp_path / "full", _refresh_settings(), progress=False)
    original = _SRFTrainer.refresh_critic
    calls = []

    def refresh(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Crash()
        return original(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(_SRFTrainer, "refresh_critic", refresh)
        with pytest.raises(Crash):
            train_srf(init, data, tmp_path / "killed", _refresh_settings(), progress=False)
    train_srf(init, data, tmp_path / "killed", _refresh_settings(), resume=True, progress=False)
    with (tmp_path / "full" / "metrics.csv").open(newline="") as f, \
            (tmp_path / "killed" / "metrics.csv").open(newline="") as g:
        assert [(r["step"], r["loss"], r["detail"]) for r in csv.DictReader(f)] == \
            [(r["step"], r["loss"], r["detail"]) for r in csv.DictReader(g)]
    assert torch.equal(_head(tmp_path / "full"), _head(tmp_path / "killed"))
    a = ReviseModel.from_pretrained(tmp_path / "full").generator.state_dict()
    b = ReviseModel.from_pretrained(tmp_path / "killed").generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_refresh_settings_are_one_line_errors(setup, tmp_path, capsys):
    from revise.cli.main import main

    data, init = setup
    with pytest.raises(ConfigError, match="choose one"):
        SRFConfig(critic_refresh_every=2, unfreeze_critic_head=True)
    with pytest.raises(ConfigError, match="critic_refresh_every must be >= 0"):
        SRFConfig(critic_refresh_every=-2)
    rc = main(["train", "srf", "--init", str(init), "--data", str(data), "--out", str(tmp_path / "o"),
               "--critic-refresh-every", "2", "--labels", "no-such-judge", "--steps", "2"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "no-such-judge" in err, err
