"""The unified model at scale (revise.model.scaled) on tiny random Wan / AutoencoderKLWan / Qwen2.5-VL
built here (real classes, tiny configs, saved to tmp folders); nothing is downloaded."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from revise.errors import ConfigError
from revise.judges.hf_vlm import patchify_video
from revise.model.scaled import ScaledUnifiedModel, lora_options, patchify_video_torch

from test_hf_vlm_judge import build_tiny_qwen25vl
from toymodel import Crash, crash_after_checkpoint

Z = 4
WAN = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=2 * Z, out_channels=Z,
           text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
           qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
HAS_PEFT = importlib.util.find_spec("peft") is not None


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Path:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    root = tmp_path_factory.mktemp("scaled")
    torch.manual_seed(0)
    WanTransformer3DModel(**WAN).save_pretrained(root / "wan" / "transformer", safe_serialization=True)
    WanTransformer3DModel(**{**WAN, "in_channels": Z}).save_pretrained(root / "wan-t2v", safe_serialization=True)
    AutoencoderKLWan(base_dim=3, z_dim=Z, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                     temperal_downsample=[False, True, True], latents_mean=[0.1, -0.2, 0.0, 0.3],
                     latents_std=[1.5, 2.0, 0.8, 1.2]).save_pretrained(root / "wan" / "vae", safe_serialization=True)
    build_tiny_qwen25vl(root / "qwen")
    return root


def write_config(root: Path, name: str, **options) -> Path:
    base = dict(num_vlm_queries=4, vlm_heads=2, max_text_len=8, vlm_k=2, critic_k=2, min_pixels=784,
                max_pixels=784, cfg_drop_prob=0.0, srf_lambda=0.5)
    config = {"transformer": {"model": "wan", "subfolder": "transformer"},
              "vae": {"model": str(root / "wan"), "subfolder": "vae"}, "vlm": "qwen",
              "options": {**base, **options}}
    path = root / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def make_batch(b: int = 2) -> dict:
    g = torch.Generator().manual_seed(1)
    source = torch.rand(b, 3, 5, 16, 16, generator=g) * 2 - 1
    target = (source + 0.3 * torch.randn(b, 3, 5, 16, 16, generator=g)).clamp(-1, 1)
    return {"source": source, "target": target, "instructions": ["what if the ball had been blocked", "swap"][:b]}


def grads(model) -> dict:
    return {n: (p.grad.detach().clone() if p.grad is not None else None)
            for n, p in model.trainable_parameters().items()}


def frozen_snapshot(model) -> dict:
    out = {f"vlm.{n}": p.detach().clone() for n, p in model.vlm.named_parameters()}
    out.update({f"vae.{n}": p.detach().clone() for n, p in model.vae.named_parameters()})
    return out


def step(model, lam, seed=0):
    model.zero_grad(set_to_none=True)
    loss, parts = model.training_step(make_batch(), srf_lambda=lam, generator=torch.Generator().manual_seed(seed))
    loss.backward()
    return loss, parts


def check_frozen(model):
    for p in list(model.vlm.parameters()) + list(model.vae.parameters()):
        assert not p.requires_grad and p.grad is None


@pytest.mark.numerics
def test_patchify_torch_matches_the_judge():
    frames = np.random.default_rng(0).random((3, 28, 56, 3)).astype(np.float32)
    ref, grid = patchify_video(frames, 14, 2, 2)
    out, grid2 = patchify_video_torch(torch.from_numpy(frames).permute(0, 3, 1, 2), 14, 2, 2)
    # exact on any CPU although two implementations: both are the same reshape/permute, no arithmetic
    assert grid == grid2 and torch.equal(ref, out)


@pytest.mark.numerics
def test_full_model_fm_and_self_reflective_steps(parts):
    model = ScaledUnifiedModel.from_config(write_config(parts, "full"))
    assert model.torch_dtype == torch.float32 and not model.widened
    trainable = model.trainable_parameters()
    assert any(n.startswith("transformer.") for n in trainable) and any(n.startswith("context.") for n in trainable)
    assert not any(n.startswith(("vlm.", "vae.", "judge.")) for n in trainable)
    before = frozen_snapshot(model)

    fm_loss, fm_parts = step(model, 0.0)
    assert torch.isfinite(fm_loss) and fm_parts["reward"] is None
    fm_grads = grads(model)
    check_frozen(model)

    loss, srf = step(model, 0.5)
    assert torch.isfinite(loss) and torch.isfinite(srf["reward"])
    assert torch.allclose(loss, srf["fm"] + 0.5 * srf["reward"])
    assert torch.equal(srf["fm"], fm_loss)
    assert (srf["log_p_yes"] < 0).all()
    srf_grads = grads(model)
    check_frozen(model)
    nonzero = [n for n, g in srf_grads.items() if g is not None and g.abs().sum() > 0]
    assert any(n.startswith("transformer.") for n in nonzero) and any(n.startswith("context.vlm") for n in nonzero)
    assert any(not torch.equal(srf_grads[n], fm_grads[n]) for n in nonzero if fm_grads[n] is not None)

    # lambda = 0 gives exactly the FM gradient: backward of the FM part of the SRF step alone
    model.zero_grad(set_to_none=True)
    _, again = model.training_step(make_batch(), srf_lambda=0.5, generator=torch.Generator().manual_seed(0))
    again["fm"].backward()
    for n, g in grads(model).items():
        assert (g is None and fm_grads[n] is None) or torch.equal(g, fm_grads[n]), n

    optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-2)
    step(model, 0.5)
    optimizer.step()
    after = frozen_snapshot(model)
    assert all(torch.equal(before[n], after[n]) for n in before)

    # sampling in latent space runs and decodes to the source's shape
    out = model.generate(make_batch(1)["source"], ["swap"], steps=2, guidance=2.0)
    assert out.shape == (1, 3, 5, 16, 16) and torch.isfinite(out).all()


@pytest.mark.skipif(not HAS_PEFT, reason="peft is not installed")
def test_lora_only_lora_and_adapters_train_and_save(parts, tmp_path):
    model = ScaledUnifiedModel.from_config(write_config(parts, "lora", lora=lora_options(rank=4)))
    trainable = model.trainable_parameters()
    for name in trainable:
        assert "lora_" in name or name.startswith("context."), name
    assert any("lora_" in n for n in trainable)
    loss, _ = step(model, 0.5)
    assert torch.isfinite(loss)
    check_frozen(model)
    g = grads(model)
    assert any(v is not None and v.abs().sum() > 0 for n, v in g.items() if "lora_B" in n)
    for n, p in model.transformer.named_parameters():
        if "lora_" not in n:
            assert p.grad is None, n
    path = model.save_trainable(tmp_path / "trainable.safetensors")
    fresh = ScaledUnifiedModel.from_config(write_config(parts, "lora7", lora=lora_options(rank=4), init_seed=7))
    name = next(n for n in trainable if n.startswith("context."))
    assert not torch.equal(fresh.trainable_parameters()[name], trainable[name])
    fresh.load_trainable(path)
    for n, p in fresh.trainable_parameters().items():
        assert torch.equal(p, trainable[n].detach()), n


def test_t2v_transformer_gets_a_widened_zero_initialised_patch_embedding(parts):
    path = write_config(parts, "t2v")
    data = json.loads(path.read_text())
    data["transformer"] = "wan-t2v"
    path.write_text(json.dumps(data))
    model = ScaledUnifiedModel.from_config(path)
    assert model.widened and model.transformer.config.in_channels == 2 * Z
    weight = model.transformer.patch_embedding.weight
    assert weight.requires_grad and torch.count_nonzero(weight[:, Z:]) == 0


@pytest.mark.numerics
def test_gradient_checkpointing_matches(parts):
    results = []
    for ckpt in (False, True):
        model = ScaledUnifiedModel.from_config(write_config(parts, f"ckpt{ckpt}"),
                                               gradient_checkpointing_generator=ckpt, gradient_checkpointing_vlm=ckpt)
        model.train()
        if ckpt:
            assert model.transformer.gradient_checkpointing and model._vlm_checkpointing()
        loss, _ = step(model, 0.5)
        results.append((loss.detach(), grads(model)))
    (l0, g0), (l1, g1) = results
    assert torch.allclose(l0, l1, atol=1e-5, rtol=0)
    for n in g0:
        assert (g0[n] is None) == (g1[n] is None), n
        if g0[n] is not None:
            assert torch.allclose(g0[n], g1[n], atol=1e-5, rtol=1e-4), n


def test_config_errors(parts, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"transformer": "nowhere/none", "vae": "x", "vlm": "y", "options": {"bogus": 1}}))
    with pytest.raises(ConfigError, match="bogus"):
        ScaledUnifiedModel.from_config(bad)
    bad.write_text(json.dumps({"transformer": str(tmp_path / "missing"), "vae": "x", "vlm": "y"}))
    with pytest.raises(ConfigError, match="no such folder"):
        ScaledUnifiedModel.from_config(bad)


@pytest.mark.skipif(importlib.util.find_spec("yaml") is None, reason="PyYAML is not installed")
def test_yaml_config(parts):
    import yaml

    data = json.loads(write_config(parts, "y").read_text())
    path = parts / "model.yaml"
    path.write_text(yaml.safe_dump(data))
    model = ScaledUnifiedModel.from_config(path)
    assert model.options.max_text_len == 8


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    from revise.sim import generate_dataset

    root = tmp_path_factory.mktemp("scaled-sim")
    return generate_dataset(root / "train", per_dimension=1, seed=0, split="train", size=32, frames=8,
                            dimensions=["rave/causal", "icvg/camera"]).parent


CLIP = ["--frames", "5", "--size", "16", "--log-every", "1", "--threads", "1"]


def _cli(*args: str) -> None:
    from revise.cli.main import main

    assert main(list(args)) == 0


def _metrics(out: Path) -> list[dict]:
    import csv

    with (out / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.numerics
def test_train_sft_and_srf_take_a_config_of_pretrained_parts(parts, sim, tmp_path):
    """`revise train sft --config` (flow matching) then `revise train srf --config --init` (self-reflection
    through the Qwen critic) on the trainer the tiny model uses: state, metrics, a loadable result."""
    from safetensors.torch import load_file

    from revise.train.scaled import load_trained

    config = write_config(parts, "cli")
    sft_out, srf_out = tmp_path / "sft", tmp_path / "srf"
    _cli("train", "sft", "--config", str(config), "--data", str(sim), "--out", str(sft_out), "--gen-steps", "3",
         "--gen-lr", "1e-3", "--gen-warmup", "1", "--checkpoint-every", "2", *CLIP)
    rows = _metrics(sft_out)
    assert [int(r["step"]) for r in rows] == [1, 2, 3] and {r["stage"] for r in rows} == {"scaled"}
    assert all(np.isfinite(float(r["loss"])) and "reward_loss" not in r["detail"] for r in rows)
    for name in ("trainable.safetensors", "scaled_model.json", "scaled_train.json", "scaled_run.json",
                 "state/state.safetensors", "state/state.json"):
        assert (sft_out / name).is_file(), name
    assert list((sft_out / "tensorboard").rglob("events.out.tfevents.*"))
    run = json.loads((sft_out / "scaled_run.json").read_text())
    assert run["recipe"] == "sft" and run["steps"] == {"scaled": 3} and run["provenance"]["git_commit"]
    sft_weights = load_file(str(sft_out / "trainable.safetensors"))
    assert sft_weights and all(k.startswith(("transformer.", "context.")) for k in sft_weights)
    # the state holds only the trainable weights: the pretrained parts are read from the config again
    from safetensors import safe_open

    with safe_open(str(sft_out / "state" / "state.safetensors"), "pt") as f:
        model_keys = [k for k in f.keys() if k.startswith("model/")]
    assert len(model_keys) == len(sft_weights)
    # the run folder alone rebuilds the trained model (absolute folders in scaled_model.json)
    model = load_trained(sft_out)
    for name, value in model.trainable_state_dict().items():
        assert torch.equal(value, sft_weights[name]), name
    edited = model.generate(make_batch(1)["source"], ["swap"], steps=2, guidance=1.0)
    assert edited.shape == (1, 3, 5, 16, 16)

    _cli("train", "srf", "--config", str(config), "--init", str(sft_out), "--data", str(sim), "--out", str(srf_out),
         "--steps", "2", "--lambda", "0.5", "--reward-t-range", "0,1", "--lr", "1e-3", "--warmup", "1", *CLIP)
    rows = _metrics(srf_out)
    details = [json.loads(r["detail"]) for r in rows]
    assert len(rows) == 2 and all("reward_loss" in d and 0 < d["critic_p_yes"] < 1 for d in details), details
    for r, d in zip(rows, details):  # L = L_FM + lambda * R, averaged over the step's micro-batches
        assert float(r["loss"]) == pytest.approx(d["loss_fm"] + 0.5 * d["reward_loss"], rel=1e-4)
    run = json.loads((srf_out / "scaled_run.json").read_text())
    assert run["recipe"] == "srf" and run["init"] == str(sft_out.resolve())
    srf_weights = load_file(str(srf_out / "trainable.safetensors"))
    assert set(srf_weights) == set(sft_weights)
    assert any(not torch.equal(srf_weights[k], sft_weights[k]) for k in sft_weights), "srf trained nothing"


def test_scaled_training_resumes_exactly(parts, sim, tmp_path, monkeypatch):
    """A run stopped by a crash right after its step-2 state save, then resumed, ends exactly like an
    uninterrupted run: the same metrics rows (losses, learning rates) and bit-identical weights."""
    from safetensors.torch import load_file

    from revise.train.scaled import ScaledTrainConfig, _ScaledTrainer, train_scaled

    config = write_config(parts, "resume", cfg_drop_prob=0.3)
    settings = ScaledTrainConfig(recipe="srf", steps=4, batch_size=1, grad_accum=2, lr=1e-3, warmup=1, lam=0.5,
                                 frames=5, size=16, checkpoint_every=2, log_every=1)
    full, broken = tmp_path / "full", tmp_path / "broken"
    train_scaled(config, sim, full, settings, progress=False, threads=1)

    with monkeypatch.context() as m:
        crash_after_checkpoint(m, _ScaledTrainer, 2)
        with pytest.raises(Crash):
            train_scaled(config, sim, broken, settings, progress=False, threads=1)
    assert not (broken / "trainable.safetensors").exists()
    with pytest.raises(ConfigError, match=r"changed settings \['lr'\]"):
        train_scaled(config, sim, broken, ScaledTrainConfig(**{**settings.to_dict(), "lr": 2e-3}), resume=True,
                     progress=False)
    train_scaled(config, sim, broken, settings, resume=True, progress=False, threads=1)

    def rows(out):
        return [{k: r[k] for k in ("step", "lr", "loss", "detail")} for r in _metrics(out)]

    assert rows(broken) == rows(full) and len(rows(full)) == 4
    a, b = load_file(str(full / "trainable.safetensors")), load_file(str(broken / "trainable.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_scaled_training_bad_input_gives_one_line_errors(parts, sim, tmp_path, capsys):
    from revise.cli.main import main
    from revise.train.scaled import ScaledTrainConfig, train_scaled

    config = write_config(parts, "errors")
    cases = [
        (["train", "sft", "--config", str(config), "--vlm-steps", "5"], "--vlm-steps: not used with --config"),
        (["train", "srf", "--config", str(config), "--unfreeze-critic-head"], "--unfreeze-critic-head: not used"),
        (["train", "sft", "--frames", "9"], "--frames: not used without --config"),
        (["train", "srf"], "--init is required"),
        (["train", "sft", "--config", str(config), "--frames", "6"], "frames must be 1 + 4k"),
        (["train", "srf", "--config", str(config), "--init", str(tmp_path)], "no trainable.safetensors"),
        (["train", "sft", "--config", str(tmp_path / "none.yaml")], "no such file"),
    ]
    for args, message in cases:
        code = main(args + ["--data", str(sim), "--out", str(tmp_path / "never")])
        err = capsys.readouterr().err.strip()
        assert code != 0 and message in err and len(err.splitlines()) == 1, (args, err)
    assert not (tmp_path / "never").exists()
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        train_scaled(broken, sim, tmp_path / "x", ScaledTrainConfig(steps=1))
    with pytest.raises(ConfigError, match="sft is flow matching only"):
        ScaledTrainConfig(recipe="sft", lam=0.1)


DDP_ARGS = ["--steps", "3", "--lambda", "0.5", "--lr", "1e-3", "--warmup", "1", "--checkpoint-every", "1"]


@pytest.fixture(scope="module")
def ddp_run(parts, sim, tmp_path_factory):
    from test_distributed import WORKER, _env, _launch, _run

    root = tmp_path_factory.mktemp("scaled-ddp")
    worker, hashes, out = root / "revise_worker.py", root / "hashes", root / "run"
    worker.write_text(WORKER)
    hashes.mkdir()
    _run(_launch(str(worker), "train", "srf", "--config", str(write_config(parts, "ddp", cfg_drop_prob=0.3)),
                 "--data", str(sim), "--out", str(out), *DDP_ARGS, *CLIP), _env(REVISE_TEST_HASHES=str(hashes)))
    return out, hashes


def test_scaled_srf_on_two_processes(ddp_run):
    """`accelerate launch` with 2 CPU processes (gloo): DDP averages the trainable weights' gradients, so
    every rank holds the same weights at every state save; the state keeps both ranks' data RNGs."""
    from test_distributed import _same_on_every_rank, _state

    out, hashes = ddp_run
    saves = _same_on_every_rank(hashes)
    assert [s["step"] for s in saves] == [1, 2, 3, 3]
    assert len({s["sha256"] for s in saves}) == 3, "the weights did not change between saves"
    meta, rng = _state(out)
    assert meta["world_size"] == 2 and rng == ["rng/data/rank0", "rng/data/rank1"]
    run = json.loads((out / "scaled_run.json").read_text())
    assert run["processes"] == 2 and run["steps"] == {"scaled": 3}



@pytest.fixture(scope="module")
def sharded_runs(parts, sim, tmp_path_factory):
    """``sharded_runs(strategy)``: the DDP run's settings under fsdp.yaml or deepspeed_zero2.yaml (made once)."""
    from test_distributed import _env, _run
    from test_sharded import WORKER, _launch

    made = {}

    def run(strategy: str):
        if strategy not in made:
            root = tmp_path_factory.mktemp(f"scaled-{strategy}")
            worker, hashes, out = root / "revise_sharded_worker.py", root / "hashes", root / "run"
            worker.write_text(WORKER)
            hashes.mkdir()
            _run(_launch(strategy, str(worker), "train", "srf", "--config",
                         str(write_config(parts, "ddp", cfg_drop_prob=0.3)), "--data", str(sim), "--out", str(out),
                         *DDP_ARGS, *CLIP), _env(REVISE_TEST_HASHES=str(hashes)))
            made[strategy] = (out, hashes)
        return made[strategy]

    return run


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed"])
def test_scaled_srf_under_fsdp_and_deepspeed(strategy, sharded_runs, ddp_run):
    """The same 2-process run under configs/accelerate/fsdp.yaml and deepspeed_zero2.yaml: only the trainable
    core (transformer + context) is wrapped; FSDP really holds shards; the result loads and matches DDP's."""
    from safetensors.torch import load_file

    from test_distributed import _state
    from test_sharded import _saves
    from revise.train.scaled import load_trained

    out, hashes = sharded_runs(strategy)
    meta, rng = _state(out)
    assert meta["world_size"] == 2 and meta["strategy"] == strategy and rng == ["rng/data/rank0", "rng/data/rank1"]
    ranks = _saves(hashes)
    held = ranks[0][-1]["held"]
    assert all(name.startswith(("trainable/transformer/", "trainable/context/")) for name in held)
    if strategy == "fsdp":  # each rank holds a shard of the large weights, not the whole
        assert any(shard and local != full for shard, full, local, _ in held.values())
    else:  # ZeRO-2 keeps the weights whole and identical on every rank
        assert [r["held"] for r in ranks[0]] == [r["held"] for r in ranks[1]]
    ddp_out, _ = ddp_run
    a, b = load_file(str(ddp_out / "trainable.safetensors")), load_file(str(out / "trainable.safetensors"))
    assert set(a) == set(b) and all(torch.allclose(a[k], b[k], rtol=0, atol=1e-4) for k in a)
    losses = [[float(r["loss"]) for r in _metrics(o)] for o in (ddp_out, out)]
    assert np.allclose(losses[0], losses[1], rtol=1e-3), losses
    model = load_trained(out)
    assert model.generate(make_batch(1)["source"], ["swap"], steps=1, guidance=1.0).shape == (1, 3, 5, 16, 16)


# Pauses every rank for a minute after the training-state save of step $REVISE_TEST_PAUSE_AT, so that the test
# can SIGKILL the run at a known point.
PAUSING_WORKER = r'''
import os, sys, time

from revise.train import sft

original = sft._Trainer.checkpoint


def checkpoint(self, stage, modules, optimizer, generators, step):
    original(self, stage, modules, optimizer, generators, step)
    if step == int(os.environ["REVISE_TEST_PAUSE_AT"]):
        time.sleep(60)


sft._Trainer.checkpoint = checkpoint
from revise.cli.main import main

sys.exit(main(sys.argv[1:]))
'''


def test_killed_fsdp_scaled_run_resumes_exactly(parts, sim, sharded_runs, tmp_path):
    """SIGKILL of every process of a 2-process FSDP `train srf --config` after its step-1 state save, then
    `--resume`: the same metrics rows and bit-identical trainable weights as the uninterrupted FSDP run."""
    from safetensors.torch import load_file

    from test_distributed import _env, _launch_and_kill, _run
    from test_sharded import _launch

    reference, _ = sharded_runs("fsdp")
    worker, out = tmp_path / "revise_pausing_worker.py", tmp_path / "killed"
    worker.write_text(PAUSING_WORKER)
    args = ["train", "srf", "--config", str(write_config(parts, "ddp", cfg_drop_prob=0.3)), "--data", str(sim),
            "--out", str(out), *DDP_ARGS, *CLIP]
    _launch_and_kill(_launch("fsdp", str(worker), *args), _env(REVISE_TEST_PAUSE_AT="1"), out, "scaled", 1)
    assert not (out / "trainable.safetensors").exists()
    _run(_launch("fsdp", "-m", "revise.cli.main", *args, "--resume"), _env())

    def rows(o):
        return [{k: r[k] for k in ("step", "lr", "loss", "detail")} for r in _metrics(o)]

    assert rows(out) == rows(reference) and len(rows(out)) == 3
    a, b = load_file(str(reference / "trainable.safetensors")), load_file(str(out / "trainable.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_bfloat16_self_reflective_step(parts):
    """dtype bfloat16 (what `auto` picks on a GPU) runs a full FM + self-reflective step here too: the VLM,
    the VAE and the transformer's bulk in bf16 (diffusers keeps Wan's fp32-sensitive modules in fp32)."""
    model = ScaledUnifiedModel.from_config(write_config(parts, "bf16", dtype="bfloat16"))
    assert model.torch_dtype == torch.bfloat16 and next(model.vlm.parameters()).dtype == torch.bfloat16
    assert any(p.dtype == torch.bfloat16 for p in model.transformer.parameters())
    loss, parts_ = step(model, 0.5)
    assert torch.isfinite(loss) and parts_["reward"] is not None
    fm, reward = float(parts_["fm"].detach()), float(parts_["reward"].detach())
    assert float(loss.detach()) == pytest.approx(fm + 0.5 * reward, rel=1e-2)
    got = [p.grad for p in model.trainable_parameters().values()]
    assert any(g is not None and float(g.float().abs().sum()) > 0 for g in got)
    check_frozen(model)
