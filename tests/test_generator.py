"""The flow-matching generator (revise.model.generator / conditioning / flow) at a toy config, on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from revise.errors import ConfigError
from revise.model.flow import (add_noise, clean_estimate, flow_matching_loss, make_scheduler, sample, sample_time,
                               shift_time)
from revise.model.generator import ReviseGenerator

TOY = dict(sample_size=(8, 8), num_frames=4, patch_size=(1, 2, 2), num_layers=2, num_attention_heads=2,
           attention_head_dim=12, ffn_dim=48, freq_dim=16, context_dim=16, source_patch_size=(2, 4, 4), vlm_dim=12,
           num_vlm_queries=2, vlm_heads=2, vocab_size=20, max_text_len=6, default_steps=4, default_guidance=1.0)


pytestmark = pytest.mark.usefixtures("one_thread")


def toy(trained: bool = True, **overrides) -> ReviseGenerator:
    """A toy generator; ``trained`` replaces the zero-initialised output layer (which makes a fresh model
    the copy editor) with random weights, as a trained model would have, so every condition matters."""
    torch.manual_seed(0)
    model = ReviseGenerator(**{**TOY, **overrides}).eval()
    if trained:
        torch.nn.init.normal_(model.transformer.proj_out.weight, std=0.1)
    return model


def video(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def clip(t: int = 5, h: int = 20, w: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_context_layout_and_cfg_drop():
    model = toy()
    src, ids, vlm = video(), torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.randn(2, 5, 12)
    ctx = model.encode_context(src, ids, vlm)
    n_src = model.conditioning.source.num_tokens
    assert ctx.shape == (2, n_src + 1 + 2 + 1 + 6, 16)
    seps = model.conditioning.separators
    assert torch.equal(ctx[0, n_src], seps[0]) and torch.equal(ctx[0, n_src + 3], seps[1])
    dropped = model.encode_context(src, ids, vlm, drop=torch.tensor([True, False]))
    assert torch.equal(dropped[1], ctx[1])
    assert torch.equal(dropped[0, : n_src + 1], ctx[0, : n_src + 1])  # the source is never dropped
    assert torch.equal(dropped[0, n_src + 1: n_src + 3], model.conditioning.null_vlm)
    assert torch.equal(dropped[0, n_src + 4:], model.conditioning.null_text)
    no_vlm = model.encode_context(src, ids, None)
    assert torch.equal(no_vlm[:, n_src + 1: n_src + 3], model.conditioning.null_vlm.expand(2, -1, -1))


@pytest.mark.numerics
def test_vlm_mask_hides_padding():
    model = toy()
    src, ids = video(1), torch.tensor([[3, 4]])
    vlm = torch.randn(1, 5, 12)
    mask = torch.tensor([[True, True, True, False, False]])
    changed = vlm.clone()
    changed[0, 3:] = 100.0
    a = model.encode_context(src, ids, vlm, mask)
    assert torch.allclose(a, model.encode_context(src, ids, changed, mask), atol=1e-6)
    assert not torch.allclose(a, model.encode_context(src, ids, changed))


@pytest.mark.numerics
def test_flow_math_and_time_sampling():
    x0, eps = video(), video(seed=1)
    t = torch.tensor([0.25, 0.9])
    x_t = add_noise(x0, eps, t)
    assert torch.allclose(clean_estimate(x_t, t, eps - x0), x0, atol=1e-6)
    g = torch.Generator().manual_seed(0)
    plain, shifted = sample_time(4000, generator=g), sample_time(4000, shift=3.0, generator=g)
    assert 0 < plain.min() and plain.max() < 1 and abs(plain.mean().item() - 0.5) < 0.02
    assert shifted.mean() > plain.mean() + 0.1
    assert torch.allclose(shift_time(torch.tensor([0.0, 0.5, 1.0]), 3.0), torch.tensor([0.0, 0.75, 1.0]))
    assert make_scheduler(toy()).config.shift == 3.0


class OracleVelocity(ReviseGenerator):
    """The exact velocity towards a known clean video: Euler on straight paths must land on it."""

    clean: torch.Tensor

    def forward(self, x_t, t, source, text_ids, vlm_hidden=None, vlm_mask=None, drop=None, context=None):
        tt = torch.as_tensor(t).reshape(-1, 1, 1, 1, 1)
        return (x_t - self.clean) / tt


@pytest.mark.numerics
def test_sampler_integrates_the_flow_exactly():
    model = OracleVelocity(**TOY)
    model.clean = video(1, seed=5)
    out = sample(model, video(1), torch.tensor([[1]]), steps=5, guidance=1.0,
                 generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, model.clean, atol=1e-4)


@pytest.mark.numerics
def test_training_steps_reduce_the_loss():
    model = toy().train()
    g = torch.Generator().manual_seed(0)
    source = video(4, seed=2)
    target = torch.roll(source, shifts=2, dims=-1)  # "move everything right"
    target[2:] = -source[2:]  # "invert the colours", asked with other words
    batch = {"source": source, "target": target, "text_ids": torch.tensor([[1, 2], [1, 2], [3, 4], [3, 4]])}

    def eval_loss() -> float:
        with torch.no_grad():
            losses = [flow_matching_loss(model, batch, torch.Generator().manual_seed(s), drop_prob=0.0)[0]
                      for s in range(4)]
            return float(torch.stack(losses).mean())

    before = eval_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss, _ = flow_matching_loss(model, batch, g, change_weight=2.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.7 * before, (before, after)


def test_gradient_flows_from_the_clean_estimate():
    model = toy().train()
    batch = {"source": video(), "target": video(seed=3), "text_ids": torch.tensor([[1, 2, 3], [4, 5, 6]]),
             "vlm_hidden": torch.randn(2, 3, 12)}
    _, extras = flow_matching_loss(model, batch, torch.Generator().manual_seed(0), drop_prob=0.0)
    assert extras.x0_hat.requires_grad and extras.x0_hat.shape == batch["target"].shape
    extras.x0_hat.square().mean().backward()
    for name in ("transformer.proj_out.weight", "transformer.blocks.0.attn1.to_q.weight",
                 "transformer.blocks.1.attn2.to_k.weight", "conditioning.text.tokens.weight",
                 "conditioning.vlm.queries", "conditioning.source.proj.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.numerics
def test_loss_spaces():
    model = toy()
    batch = {"source": video(), "target": video(seed=3), "text_ids": torch.tensor([[1], [2]])}
    loss_v, ex = flow_matching_loss(model, batch, torch.Generator().manual_seed(0), loss_space="velocity")
    loss_x, ex_x = flow_matching_loss(model, batch, torch.Generator().manual_seed(0), loss_space="x0")
    assert torch.allclose(loss_v, (ex.v_pred - ex.v_target).square().mean())
    assert torch.allclose(loss_x, (ex_x.x0_hat - batch["target"]).square().mean())
    with pytest.raises(ValueError, match="loss_space"):
        flow_matching_loss(model, batch, loss_space="eps")


@pytest.mark.numerics
def test_fresh_model_is_the_copy_editor():
    model = toy(trained=False)
    src = clip(t=4, h=8, w=8)
    out = model.generate(src, [3, 4], torch.randn(2, 12), guidance=3.0, seed=0)
    assert np.abs(out.astype(int) - src.astype(int)).max() <= 1


@pytest.mark.numerics
def test_anchor_frames_feed_the_source_ends_to_every_frame(tmp_path):
    model = toy(anchor_frames=True)
    assert model.transformer.config.in_channels == 12
    seen = []
    model.transformer.patch_embedding.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    x, src = video(), video(seed=5)
    with torch.no_grad():
        model(x, torch.tensor([0.3, 0.8]), src, torch.tensor([[1], [2]]))
    hidden = seen[0]
    assert hidden.shape[1] == 12
    assert torch.equal(hidden[:, 3:6], src)
    for frame in range(src.shape[2]):  # the first and the last source frame at every time step
        assert torch.equal(hidden[:, 6:9, frame], src[:, :, 0])
        assert torch.equal(hidden[:, 9:12, frame], src[:, :, -1])
    # the last source frame now reaches the first output frame: changing it changes the prediction there
    moved = src.clone()
    moved[:, :, -1] = -moved[:, :, -1]
    with torch.no_grad():
        a = model(x, torch.tensor([0.3, 0.8]), src, torch.tensor([[1], [2]]))
        b = model(x, torch.tensor([0.3, 0.8]), moved, torch.tensor([[1], [2]]))
    assert not torch.allclose(a[:, :, 0], b[:, :, 0])
    # a fresh anchored model is still the copy editor, and the option travels with the checkpoint
    fresh = toy(trained=False, anchor_frames=True)
    src_clip = clip(t=4, h=8, w=8)
    assert np.abs(fresh.generate(src_clip, [3, 4], seed=0).astype(int) - src_clip.astype(int)).max() <= 1
    model.save_pretrained(tmp_path / "gen")
    loaded = ReviseGenerator.from_pretrained(tmp_path / "gen").eval()
    assert loaded.config.anchor_frames is True
    with torch.no_grad():
        assert torch.equal(loaded(x, torch.tensor([0.3, 0.8]), src, torch.tensor([[1], [2]])), a)


@pytest.mark.numerics
def test_gated_skip_blends_the_source_with_its_held_ends(tmp_path):
    model = toy(trained=False, anchor_frames=True, gated_skip=True)
    proj = model.transformer.proj_out
    assert proj.out_features == 5 * 1 * 2 * 2  # 3 colour + 2 gate channels per patch element
    src, x, t = video(seed=5), video(), torch.tensor([0.3, 0.8])
    ids = torch.tensor([[1], [2]])

    def x0_hat(m):
        with torch.no_grad():
            return x - t.reshape(-1, 1, 1, 1, 1) * m(x, t, src, ids)

    # fresh: every gate logit is 0, so each held end weighs sigmoid(-4) and the rest is the source
    g = torch.sigmoid(torch.tensor(-4.0))
    expected = src + g * (src[:, :, :1] - src) + g * (src[:, :, -1:] - src)
    assert torch.allclose(x0_hat(model), expected, atol=1e-5)
    # close the first-frame gate and open the last-frame one (their biases): the clean estimate is the last
    # source frame held still
    with torch.no_grad():
        bias = proj.bias.view(-1, 5)  # the output layer's features are (patch element, channel)
        bias[:, 3], bias[:, 4] = -40.0, 40.0
    assert torch.allclose(x0_hat(model), src[:, :, -1:].expand_as(src), atol=1e-5)
    # both gates open: they are normalised to sum to 1, the source drops out
    with torch.no_grad():
        bias[:, 3] = 40.0
    assert torch.allclose(x0_hat(model), (src[:, :, :1] + src[:, :, -1:]).expand_as(src) / 2, atol=1e-5)
    model.save_pretrained(tmp_path / "gen")
    loaded = ReviseGenerator.from_pretrained(tmp_path / "gen").eval()
    assert loaded.config.gated_skip is True
    assert torch.equal(x0_hat(loaded), x0_hat(model))
    with pytest.raises(ConfigError, match="gated_skip needs source_skip"):
        ReviseGenerator(**{**TOY, "gated_skip": True, "source_skip": False, "prediction": "velocity"})


@pytest.mark.numerics
def test_detail_transfer_restores_what_the_edit_left_alone():
    from revise.model.detail import transfer_detail
    from revise.video import resize_frames

    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (4, 32, 40, 3), dtype=np.uint8)  # all fine detail: lost by shrinking to 8x10
    small = resize_frames(src.astype(np.float32) / 255, 8, 10)
    plain = transfer_detail(small, src, 0.0)
    # exact on any CPU: the same resize_frames call, then one float32 multiply and round-half-even per value
    # (IEEE, correctly rounded everywhere); no reduction whose order a kernel could change
    assert np.array_equal(plain, (np.clip(np.rint(resize_frames(small, 32, 40) * 255), 0, 255)).astype(np.uint8))
    assert np.abs(plain.astype(int) - src.astype(int)).mean() > 30
    # the edit is the source: the source comes back at full resolution
    assert np.abs(transfer_detail(small, src, 0.2).astype(int) - src.astype(int)).max() <= 1
    # the edit holds the last frame still (a continuation): the last frame's detail comes back in every frame
    held = np.repeat(small[-1:], 4, axis=0)
    assert np.abs(transfer_detail(held, src, 0.2).astype(int) - src[-1:].astype(int)).max() <= 1
    # where the edit changed the picture beyond the threshold, it is the plain upsampled edit
    dark = (np.kron(rng.integers(10, 50, (4, 8, 10, 3)), np.ones((1, 4, 4, 1))) + rng.integers(-10, 10, src.shape))
    dark = dark.astype(np.uint8)  # coarse dark colours (< 0.25) plus fine detail
    edit = resize_frames(dark.astype(np.float32) / 255, 8, 10)
    edit[:, :4] = 0.8  # the top half turned light grey: no candidate is within 0.5 of it
    out, up = transfer_detail(edit, dark, 0.05), transfer_detail(edit, dark, 0.0)
    assert np.array_equal(out[:, :16], up[:, :16])  # the changed half, and no source edge bleeds into it
    assert not np.array_equal(out[:, 24:], up[:, 24:])
    # the untouched half is the source, but for a band of one model pixel (4 rows here) along the border
    assert np.abs(out[:, 24:].astype(int) - dark[:, 24:].astype(int)).max() <= 1
    with pytest.raises(ValueError, match="same T"):
        transfer_detail(small[:3], src, 0.2)


@pytest.mark.numerics
def test_generate_with_detail_gives_a_fresh_model_the_full_resolution_source():
    model = toy(trained=False)
    src = clip(t=4, h=24, w=32)
    blurred = model.generate(src, [3, 4], seed=0)  # default_detail 0: plain upsampling from 8x8
    assert np.abs(blurred.astype(int) - src.astype(int)).mean() > 30
    sharp = model.generate(src, [3, 4], seed=0, detail=0.5)
    err = np.abs(sharp.astype(int) - src.astype(int))  # the sampler's float error stays: a few levels at most
    assert sharp.shape == src.shape and err.max() <= 2 and err.mean() < 0.5
    with pytest.raises(ValueError, match="detail must be >= 0"):
        model.generate(src, [3, 4], detail=-1.0)


@pytest.mark.numerics
def test_velocity_prediction_variant():
    model = toy(trained=False, prediction="velocity", source_skip=False)
    assert model.generate(clip(), [3]).shape == clip().shape
    batch = {"source": video(), "target": video(seed=3), "text_ids": torch.tensor([[1], [2]])}
    loss, extras = flow_matching_loss(model, batch, torch.Generator().manual_seed(0))
    assert torch.allclose(extras.x0_hat, extras.x_t - extras.t.reshape(-1, 1, 1, 1, 1) * extras.v_pred)


@pytest.mark.numerics
def test_generate_shape_dtype_and_determinism():
    model = toy()
    src = clip()
    a = model.generate(src, [3, 4, 5], seed=1)
    assert a.shape == src.shape and a.dtype == np.uint8
    assert np.array_equal(a, model.generate(src, [3, 4, 5], seed=1))
    assert not np.array_equal(a, model.generate(src, [3, 4, 5], seed=2))
    floats = model.generate(torch.from_numpy(src).float() / 255, [3, 4, 5], seed=1)
    assert floats.shape == src.shape and floats.dtype == np.uint8


@pytest.mark.numerics
def test_guidance_uses_the_dropped_context():
    model = toy()
    src = clip()
    vlm = torch.randn(4, 12)
    # guidance 0 is the fully dropped (null) branch: the instruction and VLM cannot matter
    null_only = model.generate(src, [3, 4], vlm, guidance=0.0)
    assert np.array_equal(null_only, model.generate(src, [9, 9, 9], None, guidance=0.0))
    plain = model.generate(src, [3, 4], vlm, guidance=1.0)
    guided = model.generate(src, [3, 4], vlm, guidance=3.0)
    assert not np.array_equal(plain, guided)
    assert not np.array_equal(plain, model.generate(src, [9, 9, 9], vlm, guidance=1.0))


@pytest.mark.numerics
def test_save_and_load_round_trip(tmp_path):
    model = toy()
    model.save_pretrained(tmp_path / "gen")
    files = sorted(p.name for p in (tmp_path / "gen").iterdir())
    assert files == ["config.json", "diffusion_pytorch_model.safetensors"]
    loaded = ReviseGenerator.from_pretrained(tmp_path / "gen").eval()
    assert tuple(loaded.config.patch_size) == TOY["patch_size"]
    x, t, ids, vlm = video(), torch.tensor([0.3, 0.8]), torch.tensor([[1, 2], [3, 4]]), torch.randn(2, 3, 12)
    with torch.no_grad():
        assert torch.equal(model(x, t, video(seed=4), ids, vlm), loaded(x, t, video(seed=4), ids, vlm))
    src = clip()
    assert np.array_equal(model.generate(src, [1, 2], seed=3, guidance=2.0),
                          loaded.generate(src, [1, 2], seed=3, guidance=2.0))


@pytest.mark.parametrize("frames, message", [
    (np.zeros((0, 8, 8, 3), np.uint8), "empty"),
    (np.zeros((8, 8, 3), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((4, 8, 8, 4), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((4, 8, 8, 3), np.int32), "uint8 or float"),
])
def test_bad_frames_raise_clear_errors(frames, message):
    with pytest.raises(ValueError, match=message):
        toy().generate(frames, [1])


def test_bad_conditions_raise_clear_errors():
    model = toy()
    src = clip()
    with pytest.raises(ValueError, match="at most 6"):
        model.generate(src, list(range(1, 9)))
    with pytest.raises(ValueError, match=r"in \[0, 20\)"):
        model.generate(src, [25])
    with pytest.raises(ValueError, match="integers"):
        model.generate(src, [1.5])
    with pytest.raises(ValueError, match="vlm_hidden"):
        model.generate(src, [1], torch.randn(3, 7))
    with pytest.raises(ValueError, match="vlm_mask"):
        model.generate(src, [1], torch.randn(3, 12), vlm_mask=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="steps"):
        model.generate(src, [1], steps=0)
    with pytest.raises(ValueError, match="guidance"):
        model.generate(src, [1], guidance=float("nan"))
    with pytest.raises(ValueError, match="works at"):
        model(torch.zeros(1, 3, 4, 16, 16), torch.tensor([0.5]), torch.zeros(1, 3, 4, 16, 16), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="lacks target"):
        flow_matching_loss(model, {"source": video(), "text_ids": torch.tensor([[1], [2]])})


@pytest.mark.parametrize("overrides, message", [
    ({"sample_size": (10, 8)}, "not divisible"),
    ({"num_frames": 3}, "not divisible"),
    ({"vlm_heads": 3}, "vlm_heads"),
    ({"pad_token_id": 20}, "pad_token_id"),
    ({"cfg_drop_prob": 1.0}, "cfg_drop_prob"),
    ({"prediction": "eps"}, "prediction"),
    ({"prediction": "velocity"}, "source_skip"),
    ({"min_time": 0.0}, "min_time"),
    ({"anchor_frames": True, "concat_source": False}, "anchor_frames needs concat_source"),
])
def test_inconsistent_configs_raise_config_error(overrides, message):
    with pytest.raises(ConfigError, match=message):
        toy(**overrides)
