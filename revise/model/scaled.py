"""The unified model at scale: ReViSE / Omni-Video wiring over pretrained diffusers + transformers classes.

Parts (each a local folder or a Hugging Face repo id resolved offline by
:func:`revise.hub.resolve_local_model`; nothing is downloaded):

- **generator**: a diffusers ``WanTransformer3DModel`` working in the latent space of a diffusers
  ``AutoencoderKLWan`` (the VAE is frozen: encode and decode only);
- **VLM**: a transformers Qwen2.5-VL-class model (frozen), loaded through
  :class:`revise.judges.hf_vlm.HFVLMJudge` so that the *same* weights are the understanding module
  (its hidden states condition the generator) and the critic (its ``p(Yes)`` in self-reflection).

Wiring (the choices, documented in docs/gpu.md "Training at scale"):

- **source video**: encoded to normalised latents ``(z - latents_mean) / latents_std`` and
  concatenated *channel-wise* to the noisy latents, so the Wan patch embedding takes ``2 * z_dim``
  channels. A checkpoint whose ``in_channels`` is ``z_dim`` (a text-to-video Wan) gets its patch
  embedding widened on load, the source half zero-initialised (the pretrained model's output is
  unchanged at step 0); the widened patch embedding is then trainable, LoRA or not. The source latents
  also enter the context as tokens (a Conv3d patch projection with learned factorised positions).
- **context** (Wan's cross-attention ``encoder_hidden_states``, width = the transformer's ``text_dim``):
  ``[source-latent tokens; sep; VLM tokens; sep; text tokens]``. VLM tokens: the last hidden states of
  the VLM over a chat with the source video and the instruction, read by
  :class:`revise.model.conditioning.VLMAdapter` (MLP + learned queries). Text tokens: the VLM's own
  (frozen) input embeddings of the instruction tokens, through a trainable projection and learned
  positions, padded positions zeroed as Wan zero-pads T5 outputs (no second text encoder to load).
- **classifier-free guidance**: VLM and text parts replaced by learned null tokens (the source stays),
  the same rule as :mod:`revise.model.conditioning`.
- **flow matching**: the forward ``model(x_t, t, source, text_ids, vlm_hidden, vlm_mask, drop=...)`` has
  the signature and conventions of :func:`revise.model.flow.flow_matching_loss` (``x_t = (1-t) x0 + t eps``,
  ``v = eps - x0``, ``x0_hat = x_t - t v``), on latents; the Wan timestep is ``1000 t``.
  ``prediction="velocity"`` (Wan's own parametrisation) or ``"x0"`` (``v = (x_t - x0) / max(t, min_time)``).
- **self-reflection**: ``x0_hat`` latents -> VAE decode (differentiable) -> the VLM's ``log p(Yes)`` for
  (source frames, instruction, decoded candidate) through the judge's video-input path, with the
  candidate's patches rebuilt here in torch so the gradient reaches the pixels;
  ``L = L_FM + lambda * -log p(Yes)``. VLM and VAE are frozen (``requires_grad=False``), so gradients
  pass through them to the generator but none accumulate on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..hub import resolve_local_model, resolve_torch_device
from ..jsonfile import parse_json_object
from .conditioning import VLMAdapter
from .flow import flow_matching_loss, sample

TIME_SCALE = 1000.0
PREDICTIONS = ("velocity", "x0")
DEFAULT_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
COND_SYSTEM = ("You are the understanding module of a video editor. Read the source video and the instruction; "
               "work out the change the instruction implies.")
COND_QUESTION = "Describe the edited video."


@dataclass
class LoraOptions:
    rank: int = 16
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))


@dataclass
class ScaledOptions:
    """Options of :class:`ScaledUnifiedModel` (the ``options`` object of the config file)."""

    dtype: str = "auto"  # auto: bfloat16 on a GPU, float32 on the CPU
    device: str = "auto"
    gradient_checkpointing_generator: bool = False
    gradient_checkpointing_vlm: bool = False
    lora: LoraOptions | None = None  # None: the whole transformer trains (plus the adapters)
    prediction: str = "velocity"
    min_time: float = 0.05
    source_patch_size: tuple[int, int, int] = (1, 2, 2)
    max_source_grid: tuple[int, int, int] = (64, 128, 128)
    num_vlm_queries: int = 32
    vlm_heads: int = 8
    max_text_len: int = 64
    vlm_k: int = 4  # frames of the source shown to the VLM for conditioning
    critic_k: int = 4  # frames per video shown to the critic
    min_pixels: int = 16 * 28 * 28
    max_pixels: int = 256 * 28 * 28
    cfg_drop_prob: float = 0.1
    flow_shift: float = 3.0
    logit_mean: float = 0.0
    logit_std: float = 1.0
    default_steps: int = 30
    default_guidance: float = 5.0
    srf_lambda: float = 0.1
    fps: float = 16.0  # frame rate given to the VLM when a batch has none
    init_seed: int = 0  # the new weights (adapters, LoRA) are initialised from this seed: loads are reproducible

    @classmethod
    def from_dict(cls, data: dict) -> "ScaledOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"scaled model config: unknown option(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}")
        data = dict(data)
        lora = data.get("lora")
        if lora is not None and not isinstance(lora, LoraOptions):
            if not isinstance(lora, dict):
                raise ConfigError("scaled model config: options.lora must be an object or null")
            bad = sorted(set(lora) - {f.name for f in fields(LoraOptions)})
            if bad:
                raise ConfigError(f"scaled model config: unknown lora option(s) {', '.join(bad)}")
            data["lora"] = LoraOptions(**lora)
        for key in ("source_patch_size", "max_source_grid"):
            if key in data:
                data[key] = tuple(int(v) for v in data[key])
        options = cls(**data)
        if options.prediction not in PREDICTIONS:
            raise ConfigError(f"scaled model config: prediction must be one of {PREDICTIONS}")
        if not 0.0 <= options.cfg_drop_prob < 1.0:
            raise ConfigError("scaled model config: cfg_drop_prob must be in [0, 1)")
        return options


def load_config_file(path: str | Path) -> dict:
    """A config file (``.json``, or ``.yaml``/``.yml`` when PyYAML is installed) as a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"scaled model config: {path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"scaled model config: {path}: YAML needs PyYAML (pip install pyyaml), or use JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"scaled model config: {path}: not valid YAML ({' '.join(str(exc).split())})") from None
    else:
        data = parse_json_object(text, f"scaled model config: {path}")
    if not isinstance(data, dict):
        raise ConfigError(f"scaled model config: {path}: the top level must be an object")
    return data


def _part(data: dict, key: str, base: Path) -> dict:
    """A part reference: ``"path-or-repo"`` or ``{"model": ..., "subfolder": ..., "revision": ...}``."""
    value = data.get(key)
    if value is None:
        raise ConfigError(f"scaled model config: no {key!r} (a local folder or a Hugging Face repo id)")
    part = {"model": value} if isinstance(value, str) else dict(value)
    if "model" not in part:
        raise ConfigError(f"scaled model config: {key}.model is missing")
    bad = sorted(set(part) - {"model", "subfolder", "revision"})
    if bad:
        raise ConfigError(f"scaled model config: unknown key(s) in {key}: {', '.join(bad)}")
    model = str(part["model"])
    local = base / model
    if not Path(model).is_absolute() and local.exists():  # a folder relative to the config file
        part["model"] = str(local)
    return part


# ---------------------------------------------------------------------------------------------- pieces
class SourceLatentTokens(nn.Module):
    """Source latents ``(B, z, t, h, w)`` -> ``(B, N, dim)``: Conv3d patches + learned factorised positions."""

    def __init__(self, z_dim: int, dim: int, patch: tuple[int, int, int], max_grid: tuple[int, int, int]):
        super().__init__()
        self.proj = nn.Conv3d(z_dim, dim, kernel_size=patch, stride=patch)
        self.pos_t = nn.Parameter(torch.randn(max_grid[0], dim) * 0.02)
        self.pos_h = nn.Parameter(torch.randn(max_grid[1], dim) * 0.02)
        self.pos_w = nn.Parameter(torch.randn(max_grid[2], dim) * 0.02)
        self.norm = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.proj(z)
        gt, gh, gw = x.shape[2:]
        if gt > self.pos_t.shape[0] or gh > self.pos_h.shape[0] or gw > self.pos_w.shape[0]:
            raise ValueError(f"source latent grid {(gt, gh, gw)} exceeds max_source_grid")
        pos = self.pos_t[:gt, None, None] + self.pos_h[None, :gh, None] + self.pos_w[None, None, :gw]
        return self.norm(x.flatten(2).transpose(1, 2) + pos.reshape(1, -1, pos.shape[-1]))


class ScaledContext(nn.Module):
    """The trainable conditioning: source tokens, the VLM adapter, the text projection, separators, nulls."""

    def __init__(self, *, z_dim: int, dim: int, vlm_dim: int, options: ScaledOptions):
        super().__init__()
        self.source = SourceLatentTokens(z_dim, dim, options.source_patch_size, options.max_source_grid)
        self.vlm = VLMAdapter(vlm_dim, dim, options.num_vlm_queries, options.vlm_heads)
        self.text_proj = nn.Sequential(nn.LayerNorm(vlm_dim), nn.Linear(vlm_dim, dim))
        self.text_pos = nn.Parameter(torch.randn(options.max_text_len, dim) * 0.02)
        self.separators = nn.Parameter(torch.randn(2, dim) * 0.02)
        self.null_vlm = nn.Parameter(torch.randn(options.num_vlm_queries, dim) * 0.02)
        self.null_text = nn.Parameter(torch.randn(options.max_text_len, dim) * 0.02)

    def forward(self, source_latents, text_embeds, text_mask, vlm_hidden=None, vlm_mask=None, drop=None):
        b = source_latents.shape[0]
        src = self.source(source_latents)
        null_vlm = self.null_vlm.unsqueeze(0).expand(b, -1, -1)
        vlm = null_vlm if vlm_hidden is None else self.vlm(vlm_hidden.to(src.dtype), vlm_mask)
        length = text_embeds.shape[1]
        text = (self.text_proj(text_embeds.to(src.dtype)) + self.text_pos[:length]) * text_mask.to(src.dtype)[..., None]
        if drop is not None:
            keep = (~drop.bool()).to(src.dtype).view(b, 1, 1)
            vlm = keep * vlm + (1 - keep) * null_vlm
            text = keep * text + (1 - keep) * self.null_text[:length].unsqueeze(0)
        sep = self.separators.unsqueeze(0).expand(b, -1, -1)
        return torch.cat([src, sep[:, :1], vlm, sep[:, 1:], text], dim=1)


def patchify_video_torch(frames: torch.Tensor, patch_size: int, temporal_patch_size: int, merge_size: int):
    """Differentiable twin of :func:`revise.judges.hf_vlm.patchify_video`: ``(T, C, H, W)`` -> patches, grid."""
    pad = -frames.shape[0] % temporal_patch_size
    if pad:
        frames = torch.cat([frames, frames[-1:].expand(pad, -1, -1, -1)], dim=0)
    t, c, h, w = frames.shape
    gt, gh, gw = t // temporal_patch_size, h // patch_size, w // patch_size
    patches = frames.reshape(gt, temporal_patch_size, c, gh // merge_size, merge_size, patch_size,
                             gw // merge_size, merge_size, patch_size)
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(gt * gh * gw, c * temporal_patch_size * patch_size * patch_size), (gt, gh, gw)


@dataclass
class ScaledConfig:
    """What :func:`flow_matching_loss` and :func:`sample` read from ``model.config``."""

    flow_shift: float
    logit_mean: float
    logit_std: float
    cfg_drop_prob: float
    default_steps: int
    default_guidance: float


# ---------------------------------------------------------------------------------------------- the model
class ScaledUnifiedModel(nn.Module):
    """Wan generator + Wan VAE + Qwen-VL understanding/critic, wired as ReViSE (see the module docstring)."""

    def __init__(self, transformer, vae, judge, options: ScaledOptions | None = None):
        super().__init__()
        self.options = options = options or ScaledOptions()
        self.judge = judge
        self.device_str = judge.device
        self.torch_dtype = getattr(torch, judge.dtype)
        self.vlm = judge.model  # the judge's loaded model: one copy serves both roles
        # loaded in ``dtype`` by from_pretrained (which keeps Wan's fp32-sensitive modules in float32): move only
        self.vae = vae.to(self.device_str)
        self.transformer = transformer.to(self.device_str)
        self.config = ScaledConfig(options.flow_shift, options.logit_mean, options.logit_std, options.cfg_drop_prob,
                                   options.default_steps, options.default_guidance)
        self.z_dim = int(vae.config.z_dim)
        self.widened = self._match_in_channels()
        text_cfg = getattr(self.vlm.config, "text_config", None) or self.vlm.config
        self.vlm_dim = int(text_cfg.hidden_size)
        dim = int(self.transformer.config.text_dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(options.init_seed))
            self.context = ScaledContext(z_dim=self.z_dim, dim=dim, vlm_dim=self.vlm_dim, options=options).to(
                self.device_str, self.torch_dtype)
        tokenizer = judge.tokenizer
        self.pad_token_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.register_buffer("latents_mean", mean.to(self.device_str), persistent=False)
        self.register_buffer("latents_std", std.to(self.device_str), persistent=False)
        # frozen parts
        self.vae.requires_grad_(False).eval()
        self.vlm.requires_grad_(False).eval()
        if options.lora is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(options.init_seed) + 1)
                self._add_lora(options.lora)
        if self.widened:
            self.transformer.patch_embedding.requires_grad_(True)
        self.set_gradient_checkpointing(options.gradient_checkpointing_generator, options.gradient_checkpointing_vlm)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, path: str | Path, **overrides) -> "ScaledUnifiedModel":
        """Load the parts a config file names (JSON, or YAML with PyYAML), with its ``options``.

        Format::

            {"transformer": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" | {"model": ..., "subfolder": "transformer",
                                                                    "revision": ...},
             "vae": {"model": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "subfolder": "vae"},
             "vlm": "Qwen/Qwen2.5-VL-7B-Instruct",
             "hub_cache": null,
             "options": {"dtype": "auto", "lora": {"rank": 16, "alpha": 16}, ...}}

        Relative folders are read relative to the config file. ``overrides`` replace options.
        """
        from diffusers import AutoencoderKLWan, WanTransformer3DModel

        from ..judges.hf_vlm import HFVLMJudge

        path = Path(path)
        data = load_config_file(path)
        bad = sorted(set(data) - {"transformer", "vae", "vlm", "hub_cache", "options"})
        if bad:
            raise ConfigError(f"scaled model config: unknown key(s) {', '.join(bad)}")
        options = ScaledOptions.from_dict({**(data.get("options") or {}), **overrides})
        hub_cache = data.get("hub_cache")
        device = resolve_torch_device(str(options.device), "scaled model")
        dtype = ("bfloat16" if device.startswith("cuda") else "float32") if options.dtype == "auto" else options.dtype
        parts = {key: _part(data, key, path.parent) for key in ("transformer", "vae", "vlm")}

        def folder(key: str) -> Path:
            part = parts[key]
            local = resolve_local_model(part["model"], what=f"scaled model {key}", revision=part.get("revision"),
                                        hub_cache=hub_cache)
            return local.path / part["subfolder"] if part.get("subfolder") else local.path

        common = {"local_files_only": True, "use_safetensors": True, "torch_dtype": getattr(torch, dtype)}
        transformer = WanTransformer3DModel.from_pretrained(folder("transformer"), **common)
        vae = AutoencoderKLWan.from_pretrained(folder("vae"), **common)
        vlm = parts["vlm"]
        judge = HFVLMJudge(model=vlm["model"], revision=vlm.get("revision"), hub_cache=hub_cache,
                           k=options.critic_k, min_pixels=options.min_pixels, max_pixels=options.max_pixels,
                           dtype=dtype, device=device, video_input="builtin")
        return cls(transformer, vae, judge, options)

    def _match_in_channels(self) -> bool:
        """Wan's patch embedding must take ``2 * z_dim`` channels (noisy latents + source latents)."""
        cin = int(self.transformer.config.in_channels)
        if cin == 2 * self.z_dim:
            return False
        if cin != self.z_dim:
            raise ConfigError(f"scaled model: the transformer takes {cin} input channels; the VAE's z_dim is "
                              f"{self.z_dim}: need {self.z_dim} (widened here) or {2 * self.z_dim}")
        old = self.transformer.patch_embedding
        new = nn.Conv3d(2 * cin, old.out_channels, kernel_size=old.kernel_size, stride=old.stride).to(
            old.weight.device, old.weight.dtype)
        with torch.no_grad():
            new.weight.zero_()
            new.weight[:, :cin] = old.weight
            new.bias.copy_(old.bias)
        self.transformer.patch_embedding = new
        self.transformer.register_to_config(in_channels=2 * cin)
        return True

    def _add_lora(self, lora: LoraOptions) -> None:
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError:
            raise ConfigError("scaled model: options.lora needs peft (pip install peft)") from None
        self.transformer.requires_grad_(False)
        config = LoraConfig(r=int(lora.rank), lora_alpha=float(lora.alpha), lora_dropout=float(lora.dropout),
                            target_modules=list(lora.target_modules), init_lora_weights=True)
        inject_adapter_in_model(config, self.transformer, adapter_name="default")
        found = False
        for name, param in self.transformer.named_parameters():
            if "lora_" in name:
                param.requires_grad_(True)
                found = True
        if not found:
            raise ConfigError(f"scaled model: LoRA target modules {lora.target_modules} match nothing in the transformer")
        self.transformer.to(self.device_str)

    def set_gradient_checkpointing(self, generator: bool, vlm: bool) -> None:
        """Activation checkpointing for the Wan blocks and the VLM's layers. transformers only checkpoints a
        module in training mode: the VLM is then put in ``train()`` (Qwen-VL has no dropout: same outputs)."""
        if generator:
            self.transformer.enable_gradient_checkpointing()
        else:
            self.transformer.disable_gradient_checkpointing()
        new_api = hasattr(self.vlm, "activation_checkpointing_enable")  # transformers >= 5.x
        disable = self.vlm.activation_checkpointing_disable if new_api else self.vlm.gradient_checkpointing_disable
        if vlm:
            if new_api:
                self.vlm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        elif self._vlm_checkpointing():
            disable()
        self.vlm.train(self._vlm_checkpointing())

    def _vlm_checkpointing(self) -> bool:
        flag = getattr(type(self.vlm), "is_activation_checkpointing", None)
        name = "is_activation_checkpointing" if flag is not None else "is_gradient_checkpointing"
        return bool(getattr(self.vlm, name, False))

    def train(self, mode: bool = True):  # the frozen parts keep their modes
        super().train(mode)
        self.vae.eval()
        self.vlm.train(self._vlm_checkpointing())
        return self

    def trainable_parameters(self) -> dict[str, torch.Tensor]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The trainable weights (LoRA or the transformer, the adapters), detached, contiguous, on the CPU."""
        return {n: p.detach().to("cpu").contiguous() for n, p in self.trainable_parameters().items()}

    def save_trainable(self, path: str | Path, state: dict[str, torch.Tensor] | None = None) -> Path:
        """Write the trainable weights (or ``state``, the same names gathered elsewhere) as safetensors."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(self.trainable_state_dict() if state is None else state, str(path),
                  metadata={"format": "pt", "revise": "scaled-unified-1"})
        return path

    def load_trainable(self, path: str | Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path))
        params = self.trainable_parameters()
        missing = sorted(set(params) - set(state))
        if missing:
            raise ConfigError(f"scaled model: {path} lacks {len(missing)} trainable tensor(s), e.g. {missing[0]}")
        with torch.no_grad():
            for name, param in params.items():
                param.copy_(state[name].to(param.device, param.dtype))

    # ------------------------------------------------------------------ VAE
    @torch.no_grad()
    def encode_video(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` in [-1, 1] (``T = 1 + 4k``) -> normalised latents (no gradient)."""
        z = self.vae.encode(pixels.to(self.device_str, self.torch_dtype)).latent_dist.mode()
        return ((z.float() - self.latents_mean) / self.latents_std).to(self.torch_dtype)

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> ``(B, 3, T, H, W)`` pixels (differentiable in ``z``; the VAE stays frozen)."""
        z = z.float() * self.latents_std + self.latents_mean
        return self.vae.decode(z.to(self.torch_dtype), return_dict=False)[0]

    # ------------------------------------------------------------------ VLM
    def tokenize(self, instructions: list[str]) -> torch.Tensor:
        """Instructions -> ``(B, max_text_len)`` VLM token ids, truncated and right-padded."""
        n = int(self.options.max_text_len)
        rows = []
        for text in instructions:
            ids = self.judge.tokenizer.encode(str(text), add_special_tokens=False)[:n]
            rows.append(ids + [self.pad_token_id] * (n - len(ids)))
        return torch.tensor(rows, dtype=torch.long, device=self.device_str)

    def pad_ids(self, text_ids, batch: int | None = None) -> torch.Tensor:  # for revise.model.flow.sample
        ids = torch.as_tensor(text_ids, device=self.device_str).long()
        ids = ids.unsqueeze(0) if ids.ndim == 1 else ids
        if batch is not None and ids.shape[0] == 1 and batch > 1:
            ids = ids.expand(batch, -1)
        return ids

    def _text_embeds(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            embeds = self.vlm.get_input_embeddings()(ids.to(self.device_str))
        return embeds, ids != self.pad_token_id

    @torch.no_grad()
    def vlm_condition(self, sources: list, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The VLM's last hidden states over (source video, instruction): ``(B, L, vlm_dim)`` and a bool mask.

        ``sources``: :class:`revise.video.Video` (or uint8 ``(T, H, W, 3)`` arrays, at ``options.fps``)."""
        from ..judges.hf_vlm import chat_messages
        from ..judges.protocol import JudgePrompt, labelled_frames

        states = []
        for source, instruction in zip(sources, instructions):
            video = self._as_video(source)
            parts: list = [f"Instruction: {instruction}", "Source video:"]
            parts += labelled_frames(video, int(self.options.vlm_k), "source")
            parts.append(COND_QUESTION)
            messages, clips = chat_messages(JudgePrompt(COND_SYSTEM, parts), [video])
            inputs = self.judge.model_inputs(messages, clips)
            out = self.vlm(**inputs, output_hidden_states=True, **self._keep_one())
            states.append(out.hidden_states[-1][0])
        length = max(s.shape[0] for s in states)
        hidden = torch.zeros(len(states), length, self.vlm_dim, dtype=states[0].dtype, device=states[0].device)
        mask = torch.zeros(len(states), length, dtype=torch.bool, device=states[0].device)
        for i, s in enumerate(states):
            hidden[i, : s.shape[0]] = s
            mask[i, : s.shape[0]] = True
        return hidden, mask

    def _keep_one(self) -> dict:
        return {"logits_to_keep": 1} if self.judge.loaded[6]["logits_to_keep"] else {}

    def _as_video(self, source):
        from ..video import Video

        if isinstance(source, Video):
            return source
        if isinstance(source, torch.Tensor):  # (3, T, H, W) in [-1, 1]
            source = ((source.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            source = source.permute(1, 2, 3, 0).cpu().numpy()
        return Video(np.ascontiguousarray(source, dtype=np.uint8), float(self.options.fps))

    def critic_log_p_yes(self, source, instruction: str, candidate: torch.Tensor) -> torch.Tensor:
        """``log p(Yes)`` (a 0-d tensor with gradient in ``candidate``) of the judge's p(Yes) question.

        ``candidate``: ``(3, T, H, W)`` pixels in [-1, 1]. The prompt, the token ids and the source's
        patches come from :meth:`HFVLMJudge.model_inputs` (the builtin video path); the candidate's patches
        are rebuilt here from the tensor (frames at the same indices, bicubic resize to the same size,
        the checkpoint's mean/std) so that the gradient reaches the generator."""
        from ..judges.hf_vlm import P_YES_QUESTION, P_YES_SYSTEM, chat_messages
        from ..judges.protocol import JudgePrompt, labelled_frames

        judge = self.judge
        src_video = self._as_video(source)
        cand_video = self._as_video(candidate)
        k = int(self.options.critic_k)
        parts: list = [f"Instruction: {instruction}", "Source video:"]
        parts += labelled_frames(src_video, k, "source")
        parts.append("Output video:")
        cand_frames = labelled_frames(cand_video, k, "edited")
        parts += cand_frames
        parts.append(P_YES_QUESTION)
        messages, clips = chat_messages(JudgePrompt(P_YES_SYSTEM, parts), [src_video, cand_video])
        inputs = judge.model_inputs(messages, clips)
        v = judge.vision
        grids = inputs["video_grid_thw"]
        n_src = int(grids[0].prod())
        h, w = judge._resize(clips[1].frames[:1]).shape[1:3]
        index = torch.tensor([f.index for f in cand_frames], device=candidate.device)
        frames = ((candidate.float().index_select(1, index).transpose(0, 1) + 1) / 2)  # (k, 3, H, W) in [0, 1]
        if tuple(frames.shape[-2:]) != (h, w):
            frames = F.interpolate(frames, size=(h, w), mode="bicubic", align_corners=False)
        frames = frames.clamp(0, 1)
        mean = torch.tensor(v["image_mean"], device=frames.device).view(1, -1, 1, 1)
        std = torch.tensor(v["image_std"], device=frames.device).view(1, -1, 1, 1)
        patches, grid = patchify_video_torch((frames - mean) / std, v["patch_size"], v["temporal_patch_size"],
                                             v["merge_size"])
        if tuple(grid) != tuple(int(g) for g in grids[1]):
            raise RuntimeError(f"critic: candidate grid {grid} differs from the judge's {tuple(grids[1].tolist())}")
        pixels = inputs["pixel_values_videos"]
        inputs["pixel_values_videos"] = torch.cat([pixels[:n_src], patches.to(pixels.dtype)], dim=0)
        yes, no = judge.loaded[5]
        logits = self.vlm(**inputs, **self._keep_one()).logits[0, -1].float()
        return F.logsigmoid(logits[yes] - logits[no])

    # ------------------------------------------------------------------ denoiser
    def encode_context(self, source, text_ids, vlm_hidden=None, vlm_mask=None, drop=None) -> torch.Tensor:
        embeds, mask = self._text_embeds(self.pad_ids(text_ids, source.shape[0]))
        return self.context(source.to(self.torch_dtype), embeds, mask, vlm_hidden, vlm_mask, drop)

    def forward(self, x_t, t, source, text_ids, vlm_hidden=None, vlm_mask=None, drop=None, context=None):
        """Predicted velocity ``v = eps - x0`` on normalised latents ``(B, z_dim, t, h, w)``."""
        if context is None:
            context = self.encode_context(source, text_ids, vlm_hidden, vlm_mask, drop)
        return self.denoise(self.transformer, x_t, t, source, context)

    def denoise(self, transformer, x_t, t, source, context):
        """``transformer`` on ``[x_t; source]`` with the cross-attention ``context`` (:func:`denoise`)."""
        return denoise(transformer, x_t, t, source, context, dtype=self.torch_dtype,
                       prediction=self.options.prediction, min_time=float(self.options.min_time))

    def trainable_core(self) -> "TrainableCore":
        """The trainable part (transformer + context) as one module, for a distributed wrapper."""
        return TrainableCore(self)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict, *, srf_lambda: float | None = None, generator: torch.Generator | None = None,
                      drop_prob: float | None = None, loss_space: str = "velocity", net=None,
                      reward_t_range: tuple[float, float] = (0.0, 1.0)) -> tuple[torch.Tensor, dict]:
        """One step's loss ``L_FM + lambda * mean(-log p(Yes))`` and its parts.

        ``batch``: ``source``, ``target`` pixels ``(B, 3, T, H, W)`` in [-1, 1], ``instructions`` (list of
        str). ``srf_lambda`` (default ``options.srf_lambda``) 0 skips the critic: the step is plain flow
        matching. The critic judges the samples whose VLM + text were not dropped (CFG) and whose flow time
        lies in ``reward_t_range``. ``net``: the module the flow-matching forward goes through, this model
        wrapped by DDP / FSDP / DeepSpeed (``accelerator.prepare``) so that their gradient hooks see it."""
        lam = float(self.options.srf_lambda if srf_lambda is None else srf_lambda)
        source = batch["source"].to(self.device_str, self.torch_dtype)
        instructions = list(batch["instructions"])
        z_src, z_tgt = self.encode_video(source), self.encode_video(batch["target"])
        sources = [self._as_video(s) for s in source]
        vlm_hidden, vlm_mask = self.vlm_condition(sources, instructions)
        fm_batch = {"source": z_src, "target": z_tgt, "text_ids": self.tokenize(instructions),
                    "vlm_hidden": vlm_hidden, "vlm_mask": vlm_mask}
        fm, extras = flow_matching_loss(self if net is None else net, fm_batch, generator, drop_prob=drop_prob,
                                        loss_space=loss_space)
        parts = {"fm": fm, "extras": extras, "reward": None, "log_p_yes": []}
        if lam == 0.0:
            return fm, parts
        lo, hi = (float(v) for v in reward_t_range)
        t = extras.t.flatten()
        keep = (~extras.drop & (t >= lo) & (t <= hi)).nonzero().flatten().tolist()
        if not keep:
            return fm, parts
        decoded = self.decode_latents(extras.x0_hat[keep])
        logp = torch.stack([self.critic_log_p_yes(sources[i], instructions[i], decoded[j])
                            for j, i in enumerate(keep)])
        reward = -logp.mean()
        parts.update(reward=reward, log_p_yes=logp.detach())
        return fm + lam * reward, parts

    @torch.no_grad()
    def generate(self, source: torch.Tensor, instructions: list[str], *, steps: int | None = None,
                 guidance: float | None = None, seed: int = 0) -> torch.Tensor:
        """Edit ``(B, 3, T, H, W)`` pixels in [-1, 1]: flow sampling in latent space, then decode."""
        source = source.to(self.device_str, self.torch_dtype)
        z_src = self.encode_video(source)
        hidden, mask = self.vlm_condition([self._as_video(s) for s in source], instructions)
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        z = sample(self, z_src, self.tokenize(instructions), hidden, mask, steps=steps, guidance=guidance, generator=g)
        return self.decode_latents(z).float().clamp(-1, 1)


def denoise(transformer, x_t, t, source, context, *, dtype, prediction: str, min_time: float):
    """The Wan transformer on the noisy latents concatenated with the source latents, with the
    cross-attention ``context``; the output as velocity (``prediction`` "velocity") or converted from an x0
    prediction."""
    if x_t.shape != source.shape:
        raise ValueError(f"x_t {tuple(x_t.shape)} and source {tuple(source.shape)} must have the same shape")
    x_t = x_t.to(dtype)
    t = torch.as_tensor(t, device=x_t.device).to(x_t.dtype).reshape(-1).expand(x_t.shape[0])
    hidden = torch.cat([x_t, source.to(dtype)], dim=1)
    out = transformer(hidden, t * TIME_SCALE, context, return_dict=False)[0]
    if prediction == "velocity":
        return out
    return (x_t - out) / t.clamp_min(min_time).reshape(-1, 1, 1, 1, 1)


class TrainableCore(nn.Module):
    """A :class:`ScaledUnifiedModel`'s transformer and context modules (shared, not copied) as one module whose
    ``forward`` is the denoiser given text embeddings: what DDP / FSDP2 / DeepSpeed wrap for training, so
    the frozen VLM and VAE stay outside (unsharded, unreplicated by the wrapper). Its parameter names are
    the model's (``transformer.*``, ``context.*``)."""

    def __init__(self, model: "ScaledUnifiedModel"):
        super().__init__()
        self.transformer = model.transformer
        self.context = model.context
        # plain settings, no reference to the model: a copy of this module must not copy the VLM and VAE
        self.dtype, self.prediction, self.min_time = model.torch_dtype, model.options.prediction, model.options.min_time

    def forward(self, x_t, t, source, text_embeds, text_mask, vlm_hidden=None, vlm_mask=None, drop=None):
        context = self.context(source.to(self.dtype), text_embeds, text_mask, vlm_hidden, vlm_mask, drop)
        return denoise(self.transformer, x_t, t, source, context, dtype=self.dtype, prediction=self.prediction,
                       min_time=float(self.min_time))


class CoreNet:
    """``model(x_t, t, source, text_ids, ...)`` (the call :func:`revise.model.flow.flow_matching_loss` makes)
    routed through ``wrapped``, a distributed wrapper of the model's :class:`TrainableCore`: the frozen text
    embeddings are looked up outside it."""

    def __init__(self, model: "ScaledUnifiedModel", wrapped):
        self.model, self.wrapped, self.config = model, wrapped, model.config

    def __call__(self, x_t, t, source, text_ids, vlm_hidden=None, vlm_mask=None, drop=None):
        embeds, mask = self.model._text_embeds(self.model.pad_ids(text_ids, source.shape[0]))
        return self.wrapped(x_t, t, source, embeds, mask, vlm_hidden, vlm_mask, drop)


def lora_options(rank: int = 16, alpha: float | None = None, **kwargs) -> dict:
    """A JSON-ready ``options.lora`` object."""
    return asdict(LoraOptions(rank=rank, alpha=float(rank if alpha is None else alpha), **kwargs))


__all__ = ["ScaledUnifiedModel", "TrainableCore", "CoreNet", "ScaledOptions", "LoraOptions", "load_config_file",
           "patchify_video_torch", "lora_options"]
