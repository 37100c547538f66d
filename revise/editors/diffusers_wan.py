"""Pretrained Wan 2.1 editors through diffusers: ``wan-vace`` and ``wan-v2v`` (issue 6, the scale path).

Both edit one sample with a local copy of a Wan checkpoint in diffusers format; nothing is downloaded
at run time (fetch weights beforehand with ``revise prefetch REPO``, see docs/gpu.md).

* ``wan-vace`` - :class:`diffusers.WanVACEPipeline` (default ``Wan-AI/Wan2.1-VACE-1.3B-diffusers``).
  Video-to-video through the VACE conditioning: the source frames are passed as ``video`` with a
  mask for every frame. ``mask=zero`` (the default) is VACE's "keep" mask: every pixel of the source
  is context the model conditions on and the instruction steers the generation through the text
  attention only, so edits stay close to the source (high Consistency, small changes).
  ``mask=one`` marks every pixel for regeneration; the source then goes to the model as its
  "reactive" stream, the way VACE takes a control video, so layout and motion are followed but the
  content may change more. ``reference=true`` also hands the first source frame to VACE as a
  reference image (identity anchoring); ``conditioning_scale`` weights the VACE stream.
* ``wan-v2v`` - :class:`diffusers.WanVideoToVideoPipeline` (default ``Wan-AI/Wan2.1-T2V-1.3B-diffusers``;
  any Wan 2.1 text-to-video checkpoint, ``WanPipeline`` or ``WanVideoToVideoPipeline`` in its
  ``model_index.json``): SDEdit-style, the source latents are noised to ``strength`` (0-1] and
  denoised with the instruction as prompt; ``int(steps * strength)`` steps actually run.

Options (``--editor-option KEY=VALUE``):

``model``
    A local folder (``model_index.json`` inside) or a Hugging Face repo id ``org/name``, resolved
    **only** from the local Hugging Face cache (``huggingface_hub.snapshot_download(...,
    local_files_only=True)``; ``HF_HUB_CACHE``/``HF_HOME`` or ``hub_cache`` say where). An existing
    folder wins over a repo id of the same spelling. Missing weights stop the run before it starts
    with one line naming the repo and the command that fetches it (``revise prefetch REPO``). No
    network call is ever made, whether or not ``HF_HUB_OFFLINE`` is set. ``revision`` picks a cached
    branch, tag or commit; ``hub_cache`` overrides the cache folder.
``num_frames``
    Frames generated. Wan's VAE compresses time 4x, so the count must be ``4k + 1``. Rule: the
    largest ``4k + 1`` not above the request, and at least 5 (16 -> 13, 17 -> 17, 3 -> 5). The
    request defaults to the source's frame count, capped at ``max_frames`` (81, what Wan 2.1 was
    trained on). The source is resampled in time (nearest frame, uniform) to that count.
``height``, ``width``
    Generation size, multiples of 16 (Wan 2.1: VAE stride 8 x patch 2). Default: the source's size,
    each side rounded to the nearest multiple of 16 (at least 16).
``steps`` (30), ``guidance`` (5.0; <= 1 turns classifier-free guidance off), ``negative_prompt``
(``""``), ``prompt`` (a template with ``{instruction}``, default ``"{instruction}"``), ``strength``
(``wan-v2v`` only, 0.7), ``flow_shift`` (optional: rebuilds the scheduler with this shift; Wan suggests
3.0 for 480p, 5.0 for 720p), ``dtype`` (``auto``: bfloat16 on a GPU, float32 on the CPU; or
``float32``/``bfloat16``/``float16``; the VAE always runs in float32), ``device`` (``auto``, ``cpu``,
``cuda``, ``cuda:N``), ``cpu_offload`` (``enable_model_cpu_offload``: each component on the GPU only
while it runs; needs a CUDA GPU, else a one-line error), ``threads`` (torch CPU threads while editing).

The output is the generated clip resampled back to the source's frame count (nearest frame) and
resized to the source's height and width, so it always has the source's shape.

Seeds: the sampling seed is ``sha256("<run seed>|<sample id>")`` (first 4 bytes), as for
``revise-tiny``: a rerun or a resumed run gives the same videos. The pipeline is loaded once, lazily
(first edit) and thread-safely; one edit runs at a time. A load failure is remembered, so a broken
checkpoint fails each sample at once with the same one-line error instead of reloading.

The text prompt is encoded here (same steps as diffusers' ``WanPipeline._get_t5_prompt_embeds``:
html-unescape, ``ftfy`` when installed, whitespace clean-up, 512 tokens, padding zeroed) and handed to
the pipeline as ``prompt_embeds``: diffusers' own prompt cleaning needs ``ftfy``, which this project
does not install. The negative prompt is encoded once.

The helpers for local Hugging Face models (shared with the ``hf-vlm`` judge and ``revise prefetch``)
live in :mod:`revise.hub`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import warnings

import numpy as np

from ..errors import ConfigError, EditorError
from ..video import Video, match_length, resize_frames, to_uint8
from .base import EditContext, Editor, register_editor

from ..hub import _one_line, as_bool, config_files_sha256, resolve_local_model, resolve_torch_device, weights_fingerprint

TEMPORAL_FACTOR = 4  # Wan 2.1 VAE: 4x in time -> clips of 4k + 1 frames
SIZE_MULTIPLE = 16  # Wan 2.1: VAE stride 8 x transformer patch 2
MIN_FRAMES = 5
DTYPES = ("auto", "float32", "bfloat16", "float16")
MAX_SEQUENCE_LENGTH = 512
VACE_MASKS = ("zero", "one")


def normalise_num_frames(n: int) -> int:
    """The largest ``4k + 1`` not above ``n``, and at least 5 (Wan's VAE compresses time 4x)."""
    n = int(n)
    return max(MIN_FRAMES, (max(n, 1) - 1) // TEMPORAL_FACTOR * TEMPORAL_FACTOR + 1)


def round_size(x: int, multiple: int = SIZE_MULTIPLE) -> int:
    """``x`` rounded to the nearest multiple of ``multiple`` (halves up), at least ``multiple``."""
    return max(multiple, int(math.floor(x / multiple + 0.5)) * multiple)


def sample_seed(run_seed: int, sample_id: str) -> int:
    """The sampling seed of one sample: first 4 bytes of ``sha256("<run seed>|<sample id>")``."""
    return int.from_bytes(hashlib.sha256(f"{run_seed}|{sample_id}".encode()).digest()[:4], "little")


def _clean_prompt(text: str) -> str:
    """diffusers' Wan ``prompt_clean``: ftfy (when installed), html-unescape twice, collapse whitespace."""
    import html

    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:
        pass
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


class _WanEditor(Editor):
    """Shared option handling, lazy loading, prompt encoding and frame plumbing of the Wan editors."""

    name = "wan"
    pipeline_class = ""
    accepted_pipelines: tuple[str, ...] = ()
    default_model = ""
    extra_options: tuple[str, ...] = ()

    def __init__(self, model: str | None = None, *, revision: str | None = None, hub_cache: str | None = None,
                 num_frames: int | None = None, max_frames: int = 81, height: int | None = None,
                 width: int | None = None, steps: int = 30, guidance: float = 5.0, negative_prompt: str = "",
                 prompt: str = "{instruction}", flow_shift: float | None = None, dtype: str = "auto",
                 device: str = "auto", cpu_offload: bool = False, threads: int | None = None, **options):
        unknown = sorted(options)  # a subclass takes its own options (extra_options) before this
        if unknown:
            known = sorted([*self._base_options(), *self.extra_options])
            raise ConfigError(f"editor {self.name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        what = f"editor {self.name}"

        def positive_int(key, value, minimum=1):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{what}: {key} must be an integer, got {value!r}") from None
            if value < minimum:
                raise ConfigError(f"{what}: {key} must be >= {minimum}, got {value}")
            return value

        self.num_frames = None if num_frames is None else positive_int("num_frames", num_frames)
        self.max_frames = positive_int("max_frames", max_frames, MIN_FRAMES)
        for key, value in (("height", height), ("width", width)):
            if value is not None and (positive_int(key, value) % SIZE_MULTIPLE):
                raise ConfigError(f"{what}: {key} must be a multiple of {SIZE_MULTIPLE}, got {value}")
        self.height = None if height is None else int(height)
        self.width = None if width is None else int(width)
        self.steps = positive_int("steps", steps)
        try:
            self.guidance = float(guidance)
            self.flow_shift = None if flow_shift is None else float(flow_shift)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: guidance and flow_shift must be numbers") from None
        if not math.isfinite(self.guidance) or self.guidance < 0:
            raise ConfigError(f"{what}: guidance must be >= 0, got {guidance}")
        if self.flow_shift is not None and not self.flow_shift > 0:
            raise ConfigError(f"{what}: flow_shift must be > 0, got {flow_shift}")
        self.negative_prompt = str(negative_prompt)
        self.prompt = str(prompt)
        if "{instruction}" not in self.prompt:
            raise ConfigError(f"{what}: prompt must contain {{instruction}}, got {self.prompt!r}")
        try:
            self.prompt.format(instruction="")
        except (IndexError, KeyError, ValueError) as exc:
            raise ConfigError(f"{what}: prompt template {self.prompt!r}: {exc}") from None
        self.threads = None if threads is None else positive_int("threads", threads)
        self.cpu_offload = as_bool(cpu_offload, f"{what}: cpu_offload")
        self.device = resolve_torch_device(str(device), what, need_cuda=self.cpu_offload and "cpu_offload")
        if self.cpu_offload and self.device == "cpu":
            raise ConfigError(f"{what}: cpu_offload moves components to a GPU; it cannot go with device=cpu")
        if str(dtype) not in DTYPES:
            raise ConfigError(f"{what}: dtype must be one of {list(DTYPES)}, got {dtype!r}")
        self.dtype = ("bfloat16" if self.device.startswith("cuda") else "float32") if dtype == "auto" else str(dtype)
        self.revision = None if revision is None else str(revision)
        self.hub_cache = None if hub_cache is None else str(hub_cache)
        self.model_ref = str(model) if model is not None else self.default_model
        self.local = resolve_local_model(self.model_ref, what=what, revision=self.revision, hub_cache=self.hub_cache)
        self._check_folder()
        self.config_sha256 = config_files_sha256(self.local.path)
        self._pipe = None
        self._load_error: str | None = None
        self._negative: object = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @staticmethod
    def _base_options() -> tuple[str, ...]:
        return ("model", "revision", "hub_cache", "num_frames", "max_frames", "height", "width", "steps", "guidance",
                "negative_prompt", "prompt", "flow_shift", "dtype", "device", "cpu_offload", "threads")

    def _check_folder(self) -> None:
        """Fail before the run starts when the folder is not a diffusers Wan checkpoint of the right kind."""
        what = f"editor {self.name}"
        index = self.local.path / "model_index.json"
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            raise ConfigError(f"{what}: {self.local.path}: not a diffusers pipeline folder (no model_index.json)") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{what}: {index}: unreadable ({exc})") from None
        cls = data.get("_class_name")
        if cls not in self.accepted_pipelines:
            raise ConfigError(f"{what}: {self.local.path}: a {cls} checkpoint; {self.name} needs "
                              f"{' or '.join(self.accepted_pipelines)}")
        if isinstance(data.get("transformer_2"), list) and any(data["transformer_2"]):
            raise ConfigError(f"{what}: {self.local.path}: two-transformer (Wan 2.2 A14B) checkpoints are not supported")
        missing = [part for part in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
                   if not (self.local.path / part).is_dir()]
        if missing:
            raise ConfigError(f"{what}: {self.local.path}: incomplete checkpoint ({', '.join(missing)} missing)")

    # -- loading ---------------------------------------------------------------------------------

    @property
    def pipeline(self):
        """The loaded diffusers pipeline (loaded once, on first use; thread-safe)."""
        with self._load_lock:
            if self._pipe is None:
                if self._load_error is not None:
                    raise ConfigError(self._load_error)
                try:
                    self._pipe = self._load()
                except ConfigError as exc:
                    self._load_error = str(exc)
                    raise
                except Exception as exc:  # corrupt weights, out of memory, missing component, ...
                    self._load_error = (f"{self.local.path}: cannot load the {self.pipeline_class} pipeline "
                                        f"({_one_line(exc)})")
                    raise ConfigError(self._load_error) from None
            return self._pipe

    def _pipeline_cls(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _load(self):
        import torch
        from diffusers import AutoencoderKLWan

        dtype = getattr(torch, self.dtype)
        common = {"local_files_only": True, "use_safetensors": True}
        with warnings.catch_warnings():  # newer diffusers call it dtype=; torch_dtype= works in every version
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            vae = AutoencoderKLWan.from_pretrained(self.local.path, subfolder="vae", torch_dtype=torch.float32, **common)
            pipe = self._pipeline_cls().from_pretrained(self.local.path, vae=vae, torch_dtype=dtype, **common)
        if self.flow_shift is not None:
            config = dict(pipe.scheduler.config)
            key = "flow_shift" if "flow_shift" in config else "shift"
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **{key: self.flow_shift})
        if self.cpu_offload:
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    # -- editing ---------------------------------------------------------------------------------

    def plan(self, source: Video) -> dict:
        """What one source becomes before generation: ``num_frames`` (4k + 1), ``height``, ``width``."""
        request = self.num_frames if self.num_frames is not None else min(source.num_frames, self.max_frames)
        return {"num_frames": normalise_num_frames(request),
                "height": self.height or round_size(source.height), "width": self.width or round_size(source.width)}

    def encode_text(self, pipe, text: str):
        """T5 embeddings of one prompt, as diffusers' Wan pipelines compute them: ``(1, 512, dim)``."""
        import torch

        inputs = pipe.tokenizer([_clean_prompt(text)], padding="max_length", max_length=MAX_SEQUENCE_LENGTH,
                                truncation=True, add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        device = pipe._execution_device
        with torch.inference_mode():
            hidden = pipe.text_encoder(inputs.input_ids.to(device), inputs.attention_mask.to(device)).last_hidden_state
        length = int(inputs.attention_mask.gt(0).sum())
        out = torch.zeros_like(hidden)
        out[:, :length] = hidden[:, :length]
        return out.to(dtype=pipe.transformer.dtype, device=device)

    def _call(self, pipe, frames: list, plan: dict, prompt_embeds, negative_embeds, generator):  # pragma: no cover
        raise NotImplementedError

    def edit(self, source: Video, instruction: str, context: EditContext) -> Video:
        import torch
        from PIL import Image

        pipe = self.pipeline
        plan = self.plan(source)
        frames = resize_frames(match_length(source.frames, plan["num_frames"]), plan["height"], plan["width"])
        images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
        generator = torch.Generator(device="cpu").manual_seed(sample_seed(context.seed, context.sample.id))
        previous = torch.get_num_threads()
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            with self._run_lock:
                prompt_embeds = self.encode_text(pipe, self.prompt.format(instruction=instruction))
                negative = None
                if self.guidance > 1.0:
                    if self._negative is None:
                        self._negative = self.encode_text(pipe, self.negative_prompt)
                    negative = self._negative
                with torch.inference_mode():
                    out = self._call(pipe, images, plan, prompt_embeds, negative, generator)
        except ConfigError:
            raise
        except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
            raise EditorError(f"sample {context.sample.id}: {_one_line(exc)}") from None
        finally:
            torch.set_num_threads(previous)
        video = np.asarray(out.frames[0] if hasattr(out, "frames") else out[0])
        if video.ndim != 4 or video.shape[-1] != 3:
            raise EditorError(f"sample {context.sample.id}: unexpected output shape {video.shape}")
        video = to_uint8(video) if video.dtype != np.uint8 else video
        video = resize_frames(match_length(video, source.num_frames), source.height, source.width)
        return Video(np.ascontiguousarray(video), source.fps)

    def info(self) -> dict:
        from importlib.metadata import version

        return {
            "editor": self.name, "pipeline": self.pipeline_class, "model": self.model_ref,
            "path": str(self.local.path), "repo_id": self.local.repo_id, "revision": self.revision,
            "commit": self.local.commit, "config_sha256": self.config_sha256,
            "weights_fingerprint": weights_fingerprint(self.local.path), "diffusers": version("diffusers"),
            "seed": "sha256(run seed | sample id)",
            "num_frames_rule": "largest 4k+1 <= requested (default min(source frames, max_frames)), at least 5",
            "options": self.options(),
            "runtime": {"device": self.device, "cpu_offload": self.cpu_offload, "threads": self.threads,
                        "hub_cache": self.hub_cache},
        }

    def options(self) -> dict:
        """Every option that changes the output, resolved (defaults filled in); how it runs (device, CPU
        offload, threads, the cache folder) is under ``info()["runtime"]``, which ``--resume`` ignores."""
        return {"num_frames": self.num_frames, "max_frames": self.max_frames, "height": self.height,
                "width": self.width, "steps": self.steps, "guidance": self.guidance,
                "negative_prompt": self.negative_prompt, "prompt": self.prompt, "flow_shift": self.flow_shift,
                "dtype": self.dtype}


@register_editor("wan-vace")
class WanVACEEditor(_WanEditor):
    """Wan 2.1 VACE: the source as VACE's conditioning video (see the module docstring)."""

    name = "wan-vace"
    pipeline_class = "WanVACEPipeline"
    accepted_pipelines = ("WanVACEPipeline",)
    default_model = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
    extra_options = ("mask", "reference", "conditioning_scale")

    def __init__(self, model: str | None = None, *, mask: str = "zero", reference: bool = False,
                 conditioning_scale: float = 1.0, **options):
        if str(mask) not in VACE_MASKS:
            raise ConfigError(f"editor {self.name}: mask must be one of {list(VACE_MASKS)}, got {mask!r}")
        try:
            scale = float(conditioning_scale)
        except (TypeError, ValueError):
            scale = float("nan")
        if not math.isfinite(scale) or scale < 0:
            raise ConfigError(f"editor {self.name}: conditioning_scale must be a number >= 0, got {conditioning_scale!r}")
        self.mask = str(mask)
        self.reference = as_bool(reference, f"editor {self.name}: reference")
        self.conditioning_scale = scale
        super().__init__(model, **options)

    def _pipeline_cls(self):
        from diffusers import WanVACEPipeline

        return WanVACEPipeline

    def _call(self, pipe, frames, plan, prompt_embeds, negative_embeds, generator):
        from PIL import Image

        h, w = plan["height"], plan["width"]
        mask = [Image.new("L", (w, h), 0 if self.mask == "zero" else 255)] * len(frames)
        return pipe(video=frames, mask=mask, reference_images=[frames[0]] if self.reference else None,
                    conditioning_scale=self.conditioning_scale, prompt_embeds=prompt_embeds,
                    negative_prompt_embeds=negative_embeds, height=h, width=w, num_frames=plan["num_frames"],
                    num_inference_steps=self.steps, guidance_scale=self.guidance, generator=generator,
                    output_type="np", max_sequence_length=MAX_SEQUENCE_LENGTH)

    def options(self) -> dict:
        return {**super().options(), "mask": self.mask, "reference": self.reference,
                "conditioning_scale": self.conditioning_scale}


@register_editor("wan-v2v")
class WanV2VEditor(_WanEditor):
    """Wan 2.1 text-to-video weights as SDEdit video-to-video with ``strength`` (see the module docstring)."""

    name = "wan-v2v"
    pipeline_class = "WanVideoToVideoPipeline"
    accepted_pipelines = ("WanPipeline", "WanVideoToVideoPipeline")
    default_model = "Wan-AI/Wan2.1-T2V-1.3B-diffusers"
    extra_options = ("strength",)

    def __init__(self, model: str | None = None, *, strength: float = 0.7, **options):
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            strength = float("nan")
        if not (0.0 < strength <= 1.0):
            raise ConfigError(f"editor {self.name}: strength must be in (0, 1], got {strength}")
        self.strength = strength
        super().__init__(model, **options)
        if int(self.steps * self.strength) < 1:
            raise ConfigError(f"editor {self.name}: steps x strength must be >= 1 (int({self.steps} x {self.strength}) "
                              "denoising steps would run)")

    def _pipeline_cls(self):
        from diffusers import WanVideoToVideoPipeline

        return WanVideoToVideoPipeline

    def _call(self, pipe, frames, plan, prompt_embeds, negative_embeds, generator):
        return pipe(video=frames, prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds,
                    height=plan["height"], width=plan["width"], num_inference_steps=self.steps,
                    guidance_scale=self.guidance, strength=self.strength, generator=generator, output_type="np",
                    max_sequence_length=MAX_SEQUENCE_LENGTH)

    def options(self) -> dict:
        return {**super().options(), "strength": self.strength}
