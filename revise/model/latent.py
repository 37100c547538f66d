"""A tiny Wan VAE (diffusers ``AutoencoderKLWan``) for RVE-Sim clips: the latent space of issue 19.

Wan's own design at toy width: a causal 3D convolutional VAE that compresses 8x in space and 4x in time
(``dim_mult`` of 4 levels, ``temperal_downsample`` twice), so a 16-frame 64 px clip becomes a
``(z_dim, 5, 8, 8)`` latent: 320 latent positions where the pixel-space generator sees 512 tokens of
``2 x 8 x 8`` patches (and 65,536 pixels).

**Clip layout.** The VAE is causal in time: a clip of ``1 + 4k`` frames encodes to ``1 + k`` latent frames
(the first frame alone, then 4 frames per latent frame) and decodes to ``1 + 4k`` frames; other lengths
lose their last frames. :func:`encode_clips` therefore puts copies of the first frame in front until the
length is ``1 + 4k`` (16 frames: one copy, 17 frames) and :func:`decode_latents` drops them again.

**Normalisation.** ``encode_clips`` returns ``(z - latents_mean) / latents_std`` with the per-channel
statistics stored in the VAE's ``config.json`` (``revise train vae`` measures them on its train split
after training), as diffusers' Wan pipelines and :mod:`revise.model.scaled` use them.

Example::

    from revise.model.latent import load_vae, encode_clips, decode_latents
    vae = load_vae("runs/vae/vae")                          # config.json + diffusion_pytorch_model.safetensors
    z = encode_clips(vae, clips)                            # (B, 3, 16, 64, 64) in [-1, 1] -> (B, 8, 5, 8, 8)
    back = decode_latents(vae, z, frames=16)                # (B, 3, 16, 64, 64) in [-1, 1]
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import ConfigError

#: the tiny VAE's defaults (``revise train vae``): Wan's level structure at a 16-channel base width
TINY_VAE = {"base_dim": 16, "z_dim": 8, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 1,
            "temperal_downsample": [False, True, True]}


def vae_parameters() -> set[str]:
    """The names ``AutoencoderKLWan``'s constructor takes."""
    import inspect

    from diffusers import AutoencoderKLWan

    return set(inspect.signature(AutoencoderKLWan.__init__).parameters) - {"self"}


def option_factors(options) -> tuple[int, int]:
    """``(temporal, spatial)`` compression of a VAE with these constructor options (a dict or a VAE's
    config); a one-line error when ``temperal_downsample`` does not have one entry per level below the first."""
    levels, downs = list(options["dim_mult"]), list(options["temperal_downsample"])
    if len(downs) != len(levels) - 1:
        raise ConfigError(f"vae config: temperal_downsample needs {len(levels) - 1} entries (one per level below "
                          f"the first of dim_mult {levels}), got {downs}")
    return 2 ** sum(bool(v) for v in downs), 2 ** (len(levels) - 1)


def tiny_vae(**overrides):
    """A freshly initialised ``AutoencoderKLWan`` with :data:`TINY_VAE` and ``overrides`` (its own
    constructor's names), unit latent statistics (``revise train vae`` measures the real ones)."""
    from diffusers import AutoencoderKLWan

    options = {**TINY_VAE, **overrides}
    option_factors(options)
    z = int(options["z_dim"])
    options.setdefault("latents_mean", [0.0] * z)
    options.setdefault("latents_std", [1.0] * z)
    return AutoencoderKLWan(**options)


def load_vae(path: str | os.PathLike):
    """An ``AutoencoderKLWan`` folder (``config.json`` + ``diffusion_pytorch_model.safetensors``), in eval
    mode; a one-line error when it is not one."""
    from diffusers import AutoencoderKLWan

    folder = Path(path)
    if not (folder / "config.json").is_file() or not (folder / "diffusion_pytorch_model.safetensors").is_file():
        raise ConfigError(f"{folder}: not a VAE folder (config.json + diffusion_pytorch_model.safetensors); "
                          "`revise train vae` writes one in OUT/vae")
    return AutoencoderKLWan.from_pretrained(folder, use_safetensors=True).eval()


def scale_factors(vae) -> tuple[int, int]:
    """``(temporal, spatial)`` compression of ``vae``."""
    return option_factors(vae.config)


def latent_grid(vae, video: tuple[int, int, int]) -> tuple[int, int, int]:
    """The latent ``(t, h, w)`` of a ``(T, H, W)`` clip (after :func:`front_padding`); a one-line error when the
    frame size is not divisible by the spatial factor."""
    temporal, spatial = scale_factors(vae)
    frames, height, width = (int(v) for v in video)
    if height % spatial or width % spatial:
        raise ConfigError(f"frame size {(height, width)} is not divisible by the VAE's spatial factor {spatial}")
    return (1 + (frames + front_padding(vae, frames) - 1) // temporal, height // spatial, width // spatial)


def vae_options(vae) -> dict:
    """The constructor options of a loaded ``AutoencoderKLWan`` (JSON values): what
    ``ReviseGenerator(latent_vae=...)`` stores to rebuild it."""
    names = vae_parameters()
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(vae.config).items() if k in names}


def front_padding(vae, frames: int) -> int:
    """Copies of the first frame that make ``frames`` a length the causal VAE keeps whole (``1 + k * temporal``)."""
    temporal, _ = scale_factors(vae)
    return (-(int(frames) - 1)) % temporal


def _stats(vae, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, -1, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean, dtype=z.dtype, device=z.device).view(shape)
    std = torch.tensor(vae.config.latents_std, dtype=z.dtype, device=z.device).view(shape)
    if mean.shape[1] != z.shape[1] or std.shape[1] != z.shape[1]:
        raise ConfigError(f"vae config: latents_mean/latents_std have {mean.shape[1]}/{std.shape[1]} entries for "
                          f"z_dim {z.shape[1]}")
    return mean, std


def encode_clips(vae, clips: torch.Tensor, *, sample: bool = False, generator: torch.Generator | None = None,
                 normalise: bool = True) -> torch.Tensor:
    """``(B, 3, T, H, W)`` in [-1, 1] -> latents ``(B, z_dim, 1 + ceil((T - 1) / temporal), H / s, W / s)``:
    the posterior's mode (``sample=False``) or a draw from it; normalised with the config's statistics."""
    if clips.ndim != 5 or clips.shape[1] != 3:
        raise ConfigError(f"encode_clips: expected (B, 3, T, H, W) clips, got {tuple(clips.shape)}")
    _, spatial = scale_factors(vae)
    if clips.shape[-1] % spatial or clips.shape[-2] % spatial:
        raise ConfigError(f"encode_clips: frame size {tuple(clips.shape[-2:])} is not divisible by the VAE's "
                          f"spatial factor {spatial}")
    pad = front_padding(vae, clips.shape[2])
    if pad:
        clips = torch.cat([clips[:, :, :1].expand(-1, -1, pad, -1, -1), clips], 2)
    posterior = vae.encode(clips).latent_dist
    z = posterior.sample(generator) if sample else posterior.mode()
    if not normalise:
        return z
    mean, std = _stats(vae, z)
    return (z - mean) / std


def decode_latents(vae, latents: torch.Tensor, frames: int, *, normalised: bool = True) -> torch.Tensor:
    """Latents from :func:`encode_clips` -> ``(B, 3, frames, H, W)`` in [-1, 1] (the front padding dropped)."""
    if normalised:
        mean, std = _stats(vae, latents)
        latents = latents * std + mean
    out = vae.decode(latents).sample
    pad = front_padding(vae, frames)
    if out.shape[2] != pad + frames:
        raise ConfigError(f"decode_latents: {latents.shape[2]} latent frames decode to {out.shape[2]} frames, not "
                          f"{pad + frames} ({frames} asked, {pad} padding)")
    return out[:, :, pad:].clamp(-1.0, 1.0)


def reconstruct_uint8(vae, frames_uint8, *, batch_size: int = 4):
    """Encode and decode ``(N, T, H, W, 3)`` uint8 clips (numpy) -> the same shape, uint8: the VAE's
    round trip, what a latent-space generator could at best return."""
    import numpy as np

    out = []
    with torch.no_grad():
        for start in range(0, len(frames_uint8), batch_size):
            x = torch.from_numpy(np.array(frames_uint8[start:start + batch_size]))
            x = x.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
            y = decode_latents(vae, encode_clips(vae, x), x.shape[2])
            out.append(((y + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 4, 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, *frames_uint8.shape[1:]), np.uint8)
