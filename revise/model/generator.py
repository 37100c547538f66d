"""The unified model's video generator: a flow-matching Wan-style DiT conditioned as in ReViSE.

``ReviseGenerator`` holds a diffusers ``WanTransformer3DModel`` (the denoiser, at a toy config by
default) and a :class:`~revise.model.conditioning.ConditioningEncoder` (source patch adapter, VLM adapter,
text embedding, separators, CFG null tokens). It works in pixel space at a small model resolution
(``sample_size``, ``num_frames``); :meth:`ReviseGenerator.generate` resizes any source to it and the
result back to the source's size and length.

The denoiser's input is the noisy target ``x_t`` concatenated channel-wise with the clean source
(``concat_source=True``: 6 input channels), and its cross-attention context is
``[source tokens; sep; VLM tokens; sep; text tokens]``. The channel concat makes "copy the source, change
what the instruction implies" a local computation; the source tokens in the context carry it globally
(the ICVG next shot is not pixel-aligned with its source).

Example::

    from revise.model.generator import ReviseGenerator
    model = ReviseGenerator(vocab_size=512, vlm_dim=256)  # every other field at its default (32 px)
    frames = model.generate(source_uint8_t_h_w_3, [5, 17, 42], steps=12, guidance=2.0, seed=0)
    model.save_pretrained("ckpt/generator")           # config.json + diffusion_pytorch_model.safetensors
    model = ReviseGenerator.from_pretrained("ckpt/generator")
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import ModelMixin, WanTransformer3DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from ..errors import ConfigError
from ..video import match_length, resize_frames, to_uint8
from .conditioning import ConditioningEncoder
from .flow import sample

TIME_SCALE = 1000.0  # the Wan time embedding expects timesteps in [0, 1000]; flow time t lives in [0, 1]
PREDICTIONS = ("x0", "velocity")
GATE_OFFSET = 4.0  # gated_skip: a zero gate logit opens each held-frame gate to sigmoid(-4) = 1.8%


def _check_divisible(what: str, size, patch) -> None:
    for s, p in zip(size, patch):
        if p <= 0 or s % p:
            raise ConfigError(f"generator config: {what} {tuple(size)} is not divisible by the patch size "
                              f"{tuple(patch)}")


class ReviseGenerator(ModelMixin, ConfigMixin):
    """Flow-matching video denoiser ``v_theta(x_t, t, source, instruction ids, VLM hidden states)``.

    Tensor conventions: videos are ``(B, 3, T, H, W)`` float in [-1, 1] at ``(num_frames, *sample_size)``;
    ``t`` is ``(B,)`` in [0, 1] (0 = clean, 1 = noise); text ids ``(B, L)`` int, ``L <= max_text_len``
    (right-padded with ``pad_token_id`` to ``max_text_len`` inside); VLM hidden states
    ``(B, L_vlm, vlm_dim)`` with an optional ``(B, L_vlm)`` bool mask, or None (null VLM tokens).

    Config (the defaults are a 32 px model sized for a 2-core CPU; the shipped ``revise-tiny`` turns on
    ``anchor_frames`` and ``gated_skip`` and sets ``sample_size``, ``patch_size`` and ``source_patch_size``
    for 64 px; see docs/model-generator.md):

    - denoiser: ``sample_size`` (H, W) and ``num_frames`` it works at; Wan's ``patch_size``, ``num_layers``,
      ``num_attention_heads`` x ``attention_head_dim``, ``ffn_dim``, ``freq_dim``;
    - parametrisation: ``concat_source`` (source as 3 extra input channels), ``anchor_frames`` (6 more:
      the source's first and last frames repeated over time; needs ``concat_source``), ``prediction`` ("x0": the
      transformer predicts the clean video and the velocity is derived; "velocity"), ``source_skip``
      (x0 = source + output, output layer zero-initialised: a fresh model copies), ``gated_skip`` (the skip's
      base is a per-pixel blend of the source and its first and last frames held still, the blend weights two
      more output channels; needs ``source_skip``), ``scale_noisy_input``
      (the denoiser sees ``(1 - t) x_t``), ``min_time`` (floor of ``t`` when deriving the velocity);
    - context: ``context_dim``, ``source_patch_size``, ``vlm_dim`` / ``num_vlm_queries`` / ``vlm_heads``
      (the VLM adapter), ``vocab_size`` / ``max_text_len`` / ``pad_token_id`` (the instruction);
      ``adaln_condition`` (also add a summary of the VLM and text tokens to Wan's time embedding, which
      drives every block's adaLN modulation: :class:`InstructionSummary`);
    - space: ``latent_vae`` (None: pixel space) is the constructor dict of a tiny Wan VAE
      (:func:`revise.model.latent.vae_options`; ``revise train sft --gen-vae VAE`` fills it from a
      ``revise train vae`` run and copies its weights): the VAE, frozen, is part of the generator and the
      denoiser works on its normalised latents (``model_shape``; ``patch_size`` and ``source_patch_size``
      then divide the latent grid, e.g. ``(5, 8, 8)`` for 16 frames at 64 px). Everything outside takes and
      returns pixel clips (:meth:`sample_clean`, :meth:`clean_estimate`, :meth:`generate`); the skip, the
      gates and the anchor frames act on latent frames;
    - training and sampling: ``cfg_drop_prob``, ``flow_shift``, ``logit_mean`` / ``logit_std`` (training
      times), ``default_steps`` / ``default_guidance`` / ``default_detail`` / ``default_restore`` (``generate``,
      :mod:`revise.model.detail`). They travel with the
      checkpoint.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, sample_size=(32, 32), num_frames=16, patch_size=(2, 4, 4), num_layers=4, num_attention_heads=4,
                 attention_head_dim=32, ffn_dim=512, freq_dim=64, concat_source=True, prediction="x0",
                 source_skip=True, scale_noisy_input=True, min_time=0.05, context_dim=128, source_patch_size=(2, 8, 8),
                 vlm_dim=256, num_vlm_queries=8, vlm_heads=4, vocab_size=1024, max_text_len=32, pad_token_id=0,
                 cfg_drop_prob=0.1, flow_shift=3.0, logit_mean=0.0, logit_std=1.0, default_steps=12,
                 default_guidance=2.0, anchor_frames=False, gated_skip=False, default_detail=0.0,
                 default_restore=0.0, adaln_condition=False, latent_vae=None):
        super().__init__()
        video = (int(num_frames), *(int(s) for s in sample_size))
        self.vae = None
        channels, grid_what = 3, "video size (T, H, W)"
        if latent_vae:  # the denoiser works in the latent space of a frozen tiny Wan VAE (revise.model.latent)
            from .latent import latent_grid, tiny_vae

            try:
                self.vae = tiny_vae(**latent_vae).requires_grad_(False).eval()
            except (TypeError, ConfigError) as exc:
                raise ConfigError(f"generator config: latent_vae: {exc}") from None
            channels, grid_what = int(self.vae.config.z_dim), "latent grid (t, h, w)"
            video = latent_grid(self.vae, video)
        self.channels = channels
        _check_divisible(grid_what, video, patch_size)
        _check_divisible(grid_what, video, source_patch_size)
        if context_dim % vlm_heads:
            raise ConfigError(f"generator config: context_dim {context_dim} is not divisible by vlm_heads {vlm_heads}")
        if not 0 <= pad_token_id < vocab_size:
            raise ConfigError(f"generator config: pad_token_id {pad_token_id} is outside the vocabulary "
                              f"(size {vocab_size})")
        if prediction not in PREDICTIONS:
            raise ConfigError(f"generator config: prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if source_skip and prediction != "x0":
            raise ConfigError("generator config: source_skip needs prediction='x0' (it adds the source to the clean "
                              "estimate)")
        if not 0.0 < min_time < 1.0:
            raise ConfigError(f"generator config: min_time must be in (0, 1), got {min_time}")
        if not 0.0 <= cfg_drop_prob < 1.0:
            raise ConfigError(f"generator config: cfg_drop_prob must be in [0, 1), got {cfg_drop_prob}")
        if anchor_frames and not concat_source:
            raise ConfigError("generator config: anchor_frames needs concat_source (they are extra source channels)")
        if gated_skip and not source_skip:
            raise ConfigError("generator config: gated_skip needs source_skip (it gates the skip's base)")
        in_channels = channels * (1 + (1 if concat_source else 0) + (2 if anchor_frames else 0))
        self.transformer = WanTransformer3DModel(
            patch_size=tuple(patch_size), num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim, in_channels=in_channels,
            out_channels=channels + (2 if gated_skip else 0),
            text_dim=context_dim, freq_dim=freq_dim, ffn_dim=ffn_dim, num_layers=num_layers,
            rope_max_seq_len=max(64, *video))
        if source_skip:  # start as the copy editor: the transformer learns only the change
            nn.init.zeros_(self.transformer.proj_out.weight)
            nn.init.zeros_(self.transformer.proj_out.bias)
        grid = tuple(v // p for v, p in zip(video, source_patch_size))
        self.conditioning = ConditioningEncoder(
            dim=context_dim, source_patch_size=tuple(source_patch_size), source_grid=grid, vlm_dim=vlm_dim,
            num_vlm_queries=num_vlm_queries, vlm_heads=vlm_heads, vocab_size=vocab_size, max_text_len=max_text_len,
            source_channels=channels)
        self.model_grid = video
        self.instruction_summary = None
        self._temb_extra = None
        if adaln_condition:  # the instruction through the time embedding too, so every block's adaLN sees it
            self.instruction_summary = InstructionSummary(context_dim, num_attention_heads * attention_head_dim,
                                                          vlm_heads)
            self.transformer.condition_embedder.time_embedder.register_forward_hook(self._add_summary)

    @property
    def video_shape(self) -> tuple[int, int, int]:
        """``(T, H, W)`` of the pixel clips the generator takes and returns (its model resolution)."""
        return (int(self.config.num_frames), *(int(s) for s in self.config.sample_size))

    @property
    def model_shape(self) -> tuple[int, ...]:
        """``(C, T, H, W)`` of what the denoiser works on: ``(3, *video_shape)`` in pixel space, the VAE's
        ``(z_dim, t, h, w)`` latent grid with ``latent_vae``."""
        return (self.channels, *self.model_grid)

    @torch.no_grad()
    def to_model_space(self, video: torch.Tensor) -> torch.Tensor:
        """Pixel clips ``(B, 3, *video_shape)`` in [-1, 1] -> the denoiser's space: themselves, or with
        ``latent_vae`` the VAE's normalised posterior modes (:func:`revise.model.latent.encode_clips`)."""
        if self.vae is None:
            return video
        from .latent import encode_clips

        return encode_clips(self.vae, video.to(next(self.vae.parameters()).dtype)).to(video.dtype)

    def from_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_model_space`: ``(B, *model_shape)`` -> pixel clips ``(B, 3, *video_shape)``
        in [-1, 1] (with ``latent_vae`` the VAE decode, differentiable)."""
        if self.vae is None:
            return x
        from .latent import decode_latents

        return decode_latents(self.vae, x.to(next(self.vae.parameters()).dtype), self.video_shape[0]).to(x.dtype)

    # ------------------------------------------------------------------ denoiser
    def encode_context(self, source: torch.Tensor, text_ids: torch.Tensor, vlm_hidden: torch.Tensor | None = None,
                       vlm_mask: torch.Tensor | None = None, drop: torch.Tensor | None = None) -> torch.Tensor:
        """The cross-attention context ``(B, N, context_dim)``; ``drop`` ``(B,)`` bool nulls VLM + text."""
        self._check_video("source", source)
        ids = self.pad_ids(text_ids, source.shape[0])
        if vlm_hidden is not None:
            self._check_vlm(vlm_hidden, vlm_mask, source.shape[0])
        return self.conditioning(source, ids, vlm_hidden, vlm_mask, drop)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, source: torch.Tensor, text_ids: torch.Tensor,
                vlm_hidden: torch.Tensor | None = None, vlm_mask: torch.Tensor | None = None,
                drop: torch.Tensor | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted velocity ``v = eps - x0`` ``(B, 3, T, H, W)``. ``context`` skips re-encoding the conditions.

        With ``prediction="x0"`` the transformer outputs the clean video (plus the source with
        ``source_skip``: it then outputs only the change) and the velocity is derived,
        ``v = (x_t - x0) / max(t, min_time)``, so ``x_t - t v`` gives the network's own clean estimate.
        """
        self._check_video("x_t", x_t)
        if x_t.shape != source.shape:
            raise ValueError(f"x_t {tuple(x_t.shape)} and source {tuple(source.shape)} must have the same shape")
        t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device).reshape(-1).expand(x_t.shape[0])
        if context is None:
            context = self.encode_context(source, text_ids, vlm_hidden, vlm_mask, drop)
        x_in = x_t * (1 - t).reshape(-1, 1, 1, 1, 1) if self.config.scale_noisy_input else x_t
        hidden = torch.cat([x_in, *self.source_channels(source)], dim=1) if self.config.concat_source else x_in
        if self.instruction_summary is not None:
            self._temb_extra = self.instruction_summary(context[:, self.conditioning.source.num_tokens + 1:])
        try:
            out = self.transformer(hidden, t * TIME_SCALE, context, return_dict=False)[0]
        finally:
            self._temb_extra = None
        if self.config.prediction == "velocity":
            return out
        if self.config.source_skip:
            c = self.channels
            out = self.skip_base(source, out[:, c:]) + out[:, :c] if self.config.gated_skip else source + out
        return (x_t - out) / t.clamp_min(float(self.config.min_time)).reshape(-1, 1, 1, 1, 1)

    def _add_summary(self, module, args, temb):
        """Forward hook on Wan's time embedder: ``temb + summary`` (Wan derives every block's adaLN shift,
        scale and gate, and the output norm's, from ``temb``)."""
        extra = self._temb_extra
        return temb if extra is None else temb + extra.to(temb.dtype)

    def skip_gates(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, 2, T, H, W)`` gate logits -> the weights of the first and the last source frame held still,
        each in (0, 1) and together at most 1 (the source keeps the rest). A zero logit (the zero-initialised
        output layer) gives ``sigmoid(-GATE_OFFSET)``, 1.8% each: a fresh model nearly copies, and Adam's
        normalised steps open a gate as fast as they move any other weight."""
        gates = torch.sigmoid(logits - GATE_OFFSET)
        return gates / gates.sum(dim=1, keepdim=True).clamp_min(1.0)

    def skip_base(self, source: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The gated skip's base: per pixel, ``source + g_first (first - source) + g_last (last - source)``.

        Continuations ("the next shot") start where the source ends, and "what came before" edits end where it
        starts: for them the source replayed is a worse starting point than its end (or start) frame held
        still, and moving every pixel of the clip there through the additive output alone is a large,
        sample-specific change. A gate is one number per pixel."""
        gates = self.skip_gates(logits)
        first, last = source[:, :, :1], source[:, :, -1:]
        return source + gates[:, :1] * (first - source) + gates[:, 1:2] * (last - source)

    def source_channels(self, source: torch.Tensor) -> list[torch.Tensor]:
        """The pixel-aligned source inputs concatenated to ``x_t``: the source, and with ``anchor_frames``
        its first and last frames repeated over time (so every output frame sees where the clip starts
        and ends at full model resolution: continuations and "what came before" edits start or end there)."""
        if not self.config.anchor_frames:
            return [source]
        frames = source.shape[2]
        return [source, source[:, :, :1].expand(-1, -1, frames, -1, -1),
                source[:, :, -1:].expand(-1, -1, frames, -1, -1)]

    # ------------------------------------------------------------------ input checks and conversions
    def _check_video(self, name: str, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 5 or x.shape[1] != self.channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a (B, {self.channels}, T, H, W) tensor, got {shape}")
        if tuple(x.shape[2:]) != self.model_grid:
            hint = "ReviseGenerator.frames_to_tensor" + (", then to_model_space" if self.vae is not None else "")
            raise ValueError(f"{name} is {tuple(x.shape[2:])} (T, H, W); the denoiser works at {self.model_grid}: "
                             f"use {hint}")

    def _check_vlm(self, hidden: torch.Tensor, mask: torch.Tensor | None, batch: int) -> None:
        expected = hidden.ndim == 3 and hidden.shape[0] == batch and hidden.shape[2] == self.config.vlm_dim
        if not expected or hidden.shape[1] < 1:
            raise ValueError(f"vlm_hidden must be ({batch}, L >= 1, {self.config.vlm_dim}), got {tuple(hidden.shape)}")
        if mask is not None and tuple(mask.shape) != tuple(hidden.shape[:2]):
            raise ValueError(f"vlm_mask must be {tuple(hidden.shape[:2])}, got {tuple(mask.shape)}")

    def pad_ids(self, text_ids, batch: int | None = None) -> torch.Tensor:
        """Instruction ids (a list, ``(L,)`` or ``(B, L)``) -> ``(B, max_text_len)`` long, right-padded."""
        ids = torch.as_tensor(text_ids, device=self.device)
        if ids.ndim == 1:
            ids = ids.unsqueeze(0)
        if ids.ndim != 2 or ids.is_floating_point() or ids.is_complex():
            raise ValueError(f"text ids must be integers shaped (L,) or (B, L), got {ids.dtype} {tuple(ids.shape)}")
        if batch is not None and ids.shape[0] == 1 and batch > 1:
            ids = ids.expand(batch, -1)
        if batch is not None and ids.shape[0] != batch:
            raise ValueError(f"text ids have batch {ids.shape[0]}, the video batch is {batch}")
        max_len, vocab = int(self.config.max_text_len), int(self.config.vocab_size)
        if ids.shape[1] > max_len:
            raise ValueError(f"instruction has {ids.shape[1]} tokens, the generator takes at most {max_len} "
                             "(truncate in the tokenizer)")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            raise ValueError(f"text ids must be in [0, {vocab}), got [{int(ids.min())}, {int(ids.max())}]")
        pad = torch.full((ids.shape[0], max_len - ids.shape[1]), int(self.config.pad_token_id), dtype=torch.long,
                         device=ids.device)
        return torch.cat([ids.long(), pad], dim=1)

    def frames_to_tensor(self, frames) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` (numpy or torch), or float in [0, 1] -> ``(1, 3, *video_shape)`` in [-1, 1].

        Time is resampled to ``num_frames`` (nearest frame), space area-averaged to ``sample_size``.
        """
        frames = as_uint8_frames(frames)
        t, h, w = self.video_shape
        small = resize_frames(match_length(frames, t), h, w)
        x = torch.from_numpy(np.ascontiguousarray(small)).to(self.device, torch.float32)
        x = x.permute(3, 0, 1, 2).unsqueeze(0) / 127.5 - 1.0
        return x.to(self.dtype)

    @staticmethod
    def tensor_to_frames(video: torch.Tensor, num_frames: int, height: int, width: int) -> np.ndarray:
        """``(3, T, h, w)`` in [-1, 1] -> uint8 ``(num_frames, height, width, 3)`` (nearest in time, bilinear up)."""
        x = ((video.detach().float().clamp(-1, 1) + 1) / 2).permute(1, 2, 3, 0).cpu().numpy()
        return np.ascontiguousarray(resize_frames(match_length(to_uint8(x), num_frames), height, width))

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def generate(self, source_frames, instruction_ids, vlm_hidden: torch.Tensor | None = None, *,
                 vlm_mask: torch.Tensor | None = None, steps: int | None = None, guidance: float | None = None,
                 seed: int = 0, detail: float | None = None, restore: float | None = None) -> np.ndarray:
        """Edit one video: uint8 ``(T, H, W, 3)`` at the source's length and size.

        ``source_frames``: uint8 ``(T, H, W, 3)`` or float in [0, 1] of that shape. ``instruction_ids``:
        token ids ``(L,)``. ``vlm_hidden``: ``(L_vlm, vlm_dim)`` or ``(1, L_vlm, vlm_dim)``, or None;
        ``vlm_mask``: ``(L_vlm,)`` or ``(1, L_vlm)`` bool, True for real tokens.
        ``guidance`` > 1 runs classifier-free guidance against the VLM+text-dropped context. ``detail`` > 0
        (default: the config's ``default_detail``) restores the source's full-resolution detail where the
        edit agrees with the source or its held first or last frame (:func:`~revise.model.detail.transfer_detail`;
        0: plain bilinear upsampling). The same ``seed`` gives the same frames.
        """
        frames = as_uint8_frames(source_frames)
        x0 = self.clean_estimate(self.frames_to_tensor(frames), instruction_ids, vlm_hidden, vlm_mask=vlm_mask,
                                 steps=steps, guidance=guidance, seed=seed)
        return self.output_frames(x0, frames, detail, restore)

    @torch.no_grad()
    def clean_estimate(self, source: torch.Tensor, instruction_ids, vlm_hidden: torch.Tensor | None = None, *,
                       vlm_mask: torch.Tensor | None = None, steps: int | None = None, guidance: float | None = None,
                       seed: int = 0) -> torch.Tensor:
        """The sampler's clean video ``(3, *video_shape)`` in [-1, 1] for a source from :meth:`frames_to_tensor`
        (the arguments as in :meth:`generate`); :meth:`output_frames` or
        :class:`~revise.model.stream.EditRenderer` turn it into frames at the source's size."""
        ids = self.pad_ids(instruction_ids, 1)
        if vlm_hidden is not None:
            vlm_hidden = torch.as_tensor(vlm_hidden, device=self.device, dtype=self.dtype)
            if vlm_hidden.ndim == 2:
                vlm_hidden = vlm_hidden.unsqueeze(0)
            if vlm_mask is not None:
                vlm_mask = torch.as_tensor(vlm_mask, device=self.device).bool()
                vlm_mask = vlm_mask.unsqueeze(0) if vlm_mask.ndim == 1 else vlm_mask
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        return self.sample_clean(source, ids, vlm_hidden, vlm_mask, steps=steps, guidance=guidance,
                                 generator=generator)[0]

    @torch.no_grad()
    def sample_clean(self, source: torch.Tensor, text_ids: torch.Tensor, vlm_hidden: torch.Tensor | None = None,
                     vlm_mask: torch.Tensor | None = None, *, steps: int | None = None, guidance: float | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """A batch of pixel sources ``(B, 3, *video_shape)`` in [-1, 1] -> the sampler's clean pixel clips of the
        same shape: :func:`~revise.model.flow.sample` in the denoiser's space (latents with ``latent_vae``:
        the source encoded first, the result decoded)."""
        x = sample(self, self.to_model_space(source), text_ids, vlm_hidden, vlm_mask, steps=steps, guidance=guidance,
                   generator=generator)
        return self.from_model_space(x)

    def renderer(self, video: torch.Tensor, num_frames: int, height: int, width: int, first=None, last=None,
                 detail: float | None = None, restore: float | None = None):
        """An :class:`~revise.model.stream.EditRenderer` of a clean estimate (``detail`` / ``restore`` None: the
        config's ``default_detail`` / ``default_restore``)."""
        from .stream import EditRenderer

        detail = float(self.config.default_detail if detail is None else detail)
        restore = float(getattr(self.config, "default_restore", 0.0) if restore is None else restore)
        if not detail >= 0:
            raise ValueError(f"detail must be >= 0, got {detail}")
        if not restore >= 0:
            raise ValueError(f"restore must be >= 0, got {restore}")
        return EditRenderer(video, num_frames, height, width, first, last, detail, restore)

    def output_frames(self, video: torch.Tensor, source_frames: np.ndarray, detail: float | None = None,
                      restore: float | None = None) -> np.ndarray:
        """A clean estimate ``(3, T, h, w)`` in [-1, 1] at the model's size -> uint8 at the source's length and
        size, as :meth:`generate` returns it: nearest in time, bilinear in space, then, with ``detail`` > 0
        (default: the config's ``default_detail``), :func:`~revise.model.detail.transfer_detail`. Rendered
        chunk by chunk (:class:`~revise.model.stream.EditRenderer`)."""
        from .stream import ArrayFrames

        renderer = self.renderer(video, *source_frames.shape[:3], source_frames[0], source_frames[-1], detail, restore)
        out = np.empty((renderer.num_frames, renderer.height, renderer.width, 3), np.uint8)
        for start, frames in renderer.frames(ArrayFrames(source_frames)):
            out[start:start + len(frames)] = frames
        return out


class InstructionSummary(nn.Module):
    """One learned query reads the context's VLM and text tokens -> a ``(B, inner_dim)`` vector that
    :class:`ReviseGenerator` (``adaln_condition``) adds to Wan's time embedding, so the instruction
    modulates every block (adaLN shift, scale and gate) instead of reaching the denoiser only through
    cross-attention, which a model can learn to ignore. The output layer starts at zero: a fresh summary
    changes nothing. Classifier-free guidance's dropped context gives the null tokens' summary."""

    def __init__(self, context_dim: int, inner_dim: int, heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, context_dim) * 0.02)
        self.attn = nn.MultiheadAttention(context_dim, heads, batch_first=True)
        self.out = nn.Sequential(nn.LayerNorm(context_dim), nn.Linear(context_dim, inner_dim), nn.SiLU(),
                                 nn.Linear(inner_dim, inner_dim))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q = self.query.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        pooled, _ = self.attn(q, tokens, tokens, need_weights=False)
        return self.out(pooled[:, 0])


def as_uint8_frames(frames) -> np.ndarray:
    """Validate a clip and return it as uint8 ``(T, H, W, 3)``; floats are read as [0, 1]."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"source frames must be shaped (T, H, W, 3), got {frames.shape}")
    if min(frames.shape[:3]) == 0:
        raise ValueError(f"source frames are empty: shape {frames.shape}")
    if frames.dtype == np.uint8:
        return frames
    if np.issubdtype(frames.dtype, np.floating):
        return to_uint8(frames)
    raise ValueError(f"source frames must be uint8 or float in [0, 1], got {frames.dtype}")
