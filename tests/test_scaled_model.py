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


def test_patchify_torch_matches_the_judge():
    frames = np.random.default_rng(0).random((3, 28, 56, 3)).astype(np.float32)
    ref, grid = patchify_video(frames, 14, 2, 2)
    out, grid2 = patchify_video_torch(torch.from_numpy(frames).permute(0, 3, 1, 2), 14, 2, 2)
    assert grid == grid2 and torch.equal(ref, out)


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


def test_train_scaled_command(parts, tmp_path):
    import typer
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from revise.cli.scaled_cmd import register
    from revise.sim import generate_dataset

    data = generate_dataset(tmp_path / "sim", per_dimension=1, seed=0, split="train", size=32, frames=8,
                            dimensions=["rave/causal"]).parent
    app = typer.Typer()
    register(app)

    @app.callback()
    def _group() -> None:  # keep "scaled" a sub-command
        pass

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["scaled", "--config", str(write_config(parts, "cli")), "--data", str(data),
                                      "--out", str(out), "--steps", "2", "--lambda", "0.5", "--frames", "5",
                                      "--size", "16", "--lr", "1e-3"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(np.isfinite(r["loss"]) and r["reward"] is not None for r in rows)
    state = load_file(str(out / "trainable.safetensors"))
    assert state and all(k.startswith(("transformer.", "context.")) for k in state)
    assert json.loads((out / "scaled_run.json").read_text())["steps"] == 2
