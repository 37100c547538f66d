"""The ``hf-vlm`` judge: ``rve-judge-v1`` scored by a local transformers VLM (Qwen2.5-VL, Qwen2-VL, Qwen3-VL).

The same protocol as the ``openai`` judge - :func:`~revise.judges.protocol.build_prompt` (versioned
prompt, ``k`` frames sampled uniformly from the source and from the edit, labelled with their
timestamps) and :func:`~revise.judges.protocol.parse_answer` (strict JSON, never guessed) - with the
model in this process instead of behind a server. Each video's ``k`` frames go to the model as one
*video* input (the Qwen processors' video path: frames paired in time by the vision tower's temporal
patch, 3D rotary positions spaced by the sampled frame rate); the labels of the frames ride along as a
text line before each video. Decoding is greedy (``do_sample=False``, one beam), so a verdict is a
function of the inputs, the weights and the numerics of the device.

**Offline.** ``model`` is a local folder or a Hugging Face repo id resolved only from the local cache
(see :func:`revise.editors.diffusers_wan.resolve_local_model`); missing weights stop the run before it
starts with one line naming the repo and ``revise prefetch REPO``. Nothing is downloaded, ever.

**Video input** (``video_input``). ``builtin`` (the default for Qwen2-VL and Qwen2.5-VL) builds the
processor's video tensors here: frames resized (bicubic) to :func:`smart_resize`'s size for the
model's patch x merge factor within ``min_pixels``..``max_pixels``, scaled to [0, 1], normalised with
the checkpoint's ``image_mean``/``image_std``, cut into ``temporal_patch_size x patch_size^2`` patches
in the Qwen2-VL video processor's order, ``<|video_pad|>`` repeated ``t*h*w / merge^2`` times per video,
``second_per_grid_ts = temporal_patch_size / sampled fps`` and ``mm_token_type_ids``. It needs no
torchvision: transformers 5 cannot construct any Qwen-VL processor without torchvision (its processor
check looks the video-processor class up even when none is given), and this project does not install
torchvision. ``transformers`` uses ``AutoProcessor`` (needs torchvision; the only choice for Qwen3-VL,
whose video prompt also carries per-frame timestamps); frames are resized here the same way first, so
both paths see the same pixels. The path in use is part of ``info()``.

**Failures.** A reply that is not a valid ``rve-judge-v1`` object (a random or badly prompted model)
makes :meth:`HFVLMJudge.score` raise a one-line :class:`~revise.errors.JudgeError` naming the sample;
the runner records it and goes on. Unparseable replies are logged in the cache's ``failures`` table.

**Cache.** With ``cache=`` (the runner passes ``OUT/judge_cache.sqlite``) valid answers are stored in the
same :class:`~revise.judges.cache.JudgeCache` as the ``openai`` judge's, keyed by sample id, prediction
sha256, the model identity (reference, snapshot commit, config hash, weights fingerprint) and a hash of
every setting that shapes the request; a rerun makes no model call.

**Critic API.** :meth:`HFVLMJudge.p_yes` gives ``p(Yes)`` of a fixed yes/no question
(:data:`P_YES_QUESTION`) about a candidate edit, from one forward pass: the same number the internal
``critic`` judge computes for the tiny model, for self-reflection with a pretrained VLM at scale.

Options (``--judge-option hf-vlm.KEY=VALUE``): ``model`` (default ``Qwen/Qwen2.5-VL-7B-Instruct``),
``revision``, ``hub_cache``, ``k`` (the run's ``--frames-k``), ``min_pixels``/``max_pixels`` per frame
(defaults 16 and 256 tokens' worth: ``16*28*28``, ``256*28*28``), ``max_new_tokens`` (512),
``with_reference`` (true), ``dtype`` (``auto``: bfloat16 on a GPU, float32 on the CPU), ``device``
(``auto``/``cpu``/``cuda``/``cuda:N``), ``attn_implementation`` (e.g. ``sdpa``, ``flash_attention_2``),
``video_input`` (``auto``/``builtin``/``transformers``), ``threads``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..hub import (
    as_bool,
    config_files_sha256,
    resolve_local_model,
    resolve_torch_device,
    weights_fingerprint,
)
from ..errors import ConfigError, JudgeError
from ..provenance import text_hash
from ..video import Video
from .base import Judge, JudgeInput, JudgeResult, register_judge
from .cache import CacheKey, JudgeCache
from .protocol import (
    DEFAULT_K,
    PROTOCOL_VERSION,
    JudgePrompt,
    LabelledFrame,
    build_prompt,
    labelled_frames,
    parse_answer,
    prompt_hash,
)

VERSION = "hf-vlm-1"  # bump when the input assembly (video path, labels, chat rendering) changes
DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
PATCH_PIXELS = 28 * 28
DEFAULT_MIN_PIXELS = 16 * PATCH_PIXELS
DEFAULT_MAX_PIXELS = 256 * PATCH_PIXELS
MODEL_TYPES = {"qwen2_vl": "builtin", "qwen2_5_vl": "builtin", "qwen3_vl": "transformers",
               "qwen3_vl_moe": "transformers"}  # supported model types -> the default video input path
VIDEO_INPUTS = ("auto", "builtin", "transformers")
DTYPES = ("auto", "float32", "bfloat16", "float16")
MODEL_INPUTS = ("input_ids", "attention_mask", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts",
                "mm_token_type_ids")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_ERROR_CHARS = 300

P_YES_VERSION = "hf-vlm-p-yes-1"
P_YES_SYSTEM = ("You are a strict judge of reason-informed video editing. The instruction is implicit: work out "
                "the change it implies, then judge the output video against that change.")
P_YES_QUESTION = ("Does the output video show what the instruction implies, applied to the source video, with "
                  "everything the instruction does not imply unchanged? Answer Yes or No.")


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's frame size rule: both sides multiples of ``factor``, area within ``min_pixels``..
    ``max_pixels``, aspect ratio kept as closely as possible (same arithmetic as transformers')."""
    if max(height, width) / min(height, width) > 200:
        raise JudgeError(f"aspect ratio {height}x{width} is above 200")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def patchify_video(frames: np.ndarray, patch_size: int, temporal_patch_size: int, merge_size: int):
    """Normalised frames ``(T, H, W, C)`` float32 -> ``(t*h*w, C*tps*ps*ps)`` patches and ``(t, h, w)``,
    in the Qwen2-VL video processor's layout (the last frame repeated to a multiple of ``tps``)."""
    import torch

    video = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).permute(0, 3, 1, 2)  # T, C, H, W
    pad = -video.shape[0] % temporal_patch_size
    if pad:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)], dim=0)
    t, c, h, w = video.shape
    gt, gh, gw = t // temporal_patch_size, h // patch_size, w // patch_size
    if gh % merge_size or gw % merge_size:
        raise JudgeError(f"frame size {h}x{w} is not a multiple of patch {patch_size} x merge {merge_size}")
    patches = video.reshape(gt, temporal_patch_size, c, gh // merge_size, merge_size, patch_size,
                            gw // merge_size, merge_size, patch_size)
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(gt * gh * gw, c * temporal_patch_size * patch_size * patch_size), (gt, gh, gw)


@dataclass
class Clip:
    """One video as the VLM sees it: the sampled frames, their indices and the source's length and rate."""

    frames: np.ndarray  # (k, H, W, 3) uint8
    indices: list[int]
    total: int
    fps: float
    labels: list[str]

    @property
    def sampled_fps(self) -> float:
        """Frames per second of the sampled frames (``k / n * fps``, transformers' ``VideoMetadata``)."""
        fps = self.fps if self.fps and self.fps > 0 else 24.0
        return len(self.indices) / self.total * fps


def chat_messages(prompt: JudgePrompt, videos: list[Video]) -> tuple[list[dict], list[Clip]]:
    """Chat messages for a :class:`JudgePrompt`: each run of labelled frames becomes one video item (the
    frames of ``videos[i]`` for the i-th run), preceded by a text line with the frames' labels."""
    content: list[dict] = []
    clips: list[Clip] = []
    run: list[LabelledFrame] = []

    def flush() -> None:
        if not run:
            return
        if len(clips) >= len(videos):
            raise JudgeError("more frame runs in the prompt than videos")
        video = videos[len(clips)]
        clips.append(Clip(np.stack([f.frame for f in run]), [f.index for f in run], video.num_frames,
                          float(video.fps or 0.0), [f.label for f in run]))
        content.append({"type": "text", "text": "; ".join(f.label for f in run) + ":\n"})
        content.append({"type": "video"})
        content.append({"type": "text", "text": "\n"})
        run.clear()

    for part in prompt.parts:
        if isinstance(part, LabelledFrame):
            run.append(part)
        else:
            flush()
            content.append({"type": "text", "text": part + "\n"})
    flush()
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}], clips


def _chatml(messages: list[dict], vision: str) -> str:
    """ChatML (the Qwen format) for checkpoints that ship no chat template."""
    out = []
    for message in messages:
        body = message["content"]
        if not isinstance(body, str):
            body = "".join(vision if item["type"] == "video" else item.get("text", "") for item in body)
        out.append(f"<|im_start|>{message['role']}\n{body}<|im_end|>\n")
    return "".join(out) + "<|im_start|>assistant\n"


def _one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _ERROR_CHARS else flat[:_ERROR_CHARS - 3] + "..."


@register_judge("hf-vlm")
class HFVLMJudge(Judge):
    """``rve-judge-v1`` with a local transformers Qwen-VL model (see the module docstring)."""

    name = "hf-vlm"

    def __init__(self, *, model: str = DEFAULT_MODEL, revision: str | None = None, hub_cache: str | None = None,
                 cache: str | Path | JudgeCache | None = None, k: int = DEFAULT_K,
                 min_pixels: int = DEFAULT_MIN_PIXELS, max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_new_tokens: int = 512, with_reference: bool = True, dtype: str = "auto", device: str = "auto",
                 attn_implementation: str | None = None, video_input: str = "auto", threads: int | None = None,
                 **unknown):
        what = "hf-vlm judge"
        if unknown:
            known = sorted(p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "unknown"))
            raise ConfigError(f"{what}: unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
        try:
            self.k, self.min_pixels, self.max_pixels = int(k), int(min_pixels), int(max_pixels)
            self.max_new_tokens = int(max_new_tokens)
            self.threads = None if threads is None else int(threads)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: k, min_pixels, max_pixels, max_new_tokens and threads must be integers") from None
        if self.k < 1 or self.max_new_tokens < 1 or (self.threads is not None and self.threads < 1):
            raise ConfigError(f"{what}: need k >= 1, max_new_tokens >= 1 and threads >= 1")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError(f"{what}: need 0 < min_pixels <= max_pixels, got {min_pixels} and {max_pixels}")
        self.with_reference = as_bool(with_reference, f"{what}: with_reference")
        self.device = resolve_torch_device(str(device), what)
        if str(dtype) not in DTYPES:
            raise ConfigError(f"{what}: dtype must be one of {list(DTYPES)}, got {dtype!r}")
        self.dtype = ("bfloat16" if self.device.startswith("cuda") else "float32") if dtype == "auto" else str(dtype)
        self.attn_implementation = None if attn_implementation in (None, "") else str(attn_implementation)
        self.model_ref, self.revision = str(model), (None if revision is None else str(revision))
        self.hub_cache = None if hub_cache is None else str(hub_cache)
        self.local = resolve_local_model(self.model_ref, what=what, revision=self.revision, hub_cache=self.hub_cache)
        self.model_config = self._read_config()
        self.model_type = str(self.model_config.get("model_type"))
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f"{what}: {self.local.path}: model type {self.model_type!r} is not supported "
                              f"(supported: {', '.join(MODEL_TYPES)})")
        if str(video_input) not in VIDEO_INPUTS:
            raise ConfigError(f"{what}: video_input must be one of {list(VIDEO_INPUTS)}, got {video_input!r}")
        self.video_input = MODEL_TYPES[self.model_type] if video_input == "auto" else str(video_input)
        if self.video_input == "builtin" and MODEL_TYPES[self.model_type] != "builtin":
            raise ConfigError(f"{what}: {self.model_type} needs video_input=transformers (its video prompt carries "
                              "timestamps that only transformers' processor writes; that needs torchvision)")
        if self.video_input == "transformers" and importlib.util.find_spec("torchvision") is None:
            raise ConfigError(f"{what}: video_input=transformers needs torchvision (transformers' video processors "
                              "use it); install the torchvision that matches torch, or use video_input=builtin")
        self.vision = self._vision_settings()
        self.config_sha256 = config_files_sha256(self.local.path)
        self.weights_fingerprint = weights_fingerprint(self.local.path)
        self.prompt_hash = prompt_hash()
        self.request_hash = text_hash(json.dumps({
            "version": VERSION, "protocol": PROTOCOL_VERSION, "prompt_hash": self.prompt_hash, "k": self.k,
            "min_pixels": self.min_pixels, "max_pixels": self.max_pixels, "max_new_tokens": self.max_new_tokens,
            "with_reference": self.with_reference, "dtype": self.dtype, "video_input": self.video_input,
            "decoding": "greedy",
        }, sort_keys=True))
        self.model_id = "|".join([self.model_ref, self.local.commit or "-", self.config_sha256[:16],
                                  self.weights_fingerprint[:16]])
        self._owns_cache = not isinstance(cache, JudgeCache)
        self.cache = cache if isinstance(cache, JudgeCache) else (JudgeCache(cache) if cache is not None else None)
        self._loaded: tuple | None = None
        self._load_error: str | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    # -- configuration read without loading the model ----------------------------------------------

    def _read_json(self, name: str) -> dict | None:
        path = self.local.path / name
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"hf-vlm judge: {path}: unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"hf-vlm judge: {path}: not a JSON object")
        return data

    def _read_config(self) -> dict:
        config = self._read_json("config.json")
        if config is None:
            raise ConfigError(f"hf-vlm judge: {self.local.path}: not a transformers model folder (no config.json)")
        return config

    def _vision_settings(self) -> dict:
        """Patch sizes from the model config; normalisation from the (video) preprocessor config."""
        vision = self.model_config.get("vision_config") or {}
        pre = self._read_json("video_preprocessor_config.json") or self._read_json("preprocessor_config.json") or {}
        settings = {
            "patch_size": int(vision.get("patch_size", pre.get("patch_size", 14))),
            "temporal_patch_size": int(vision.get("temporal_patch_size", pre.get("temporal_patch_size", 2))),
            "merge_size": int(vision.get("spatial_merge_size", pre.get("merge_size", 2))),
            "image_mean": [float(x) for x in pre.get("image_mean", CLIP_MEAN)],
            "image_std": [float(x) for x in pre.get("image_std", CLIP_STD)],
        }
        for key in ("video_token_id", "image_token_id"):
            value = self.model_config.get(key, (self.model_config.get("text_config") or {}).get(key))
            if value is None:
                raise ConfigError(f"hf-vlm judge: {self.local.path}/config.json: no {key}")
            settings[key] = int(value)
        return settings

    def _chat_template(self, tokenizer, processor) -> str | None:
        if processor is not None and getattr(processor, "chat_template", None):
            return processor.chat_template
        data = self._read_json("chat_template.json")
        if data and isinstance(data.get("chat_template"), str):
            return data["chat_template"]
        jinja = self.local.path / "chat_template.jinja"
        if jinja.is_file():
            return jinja.read_text(encoding="utf-8")
        return getattr(tokenizer, "chat_template", None) or None

    # -- loading -------------------------------------------------------------------------------------

    def _load(self) -> tuple:
        import torch
        import transformers
        from transformers import AutoTokenizer, GenerationConfig

        common = {"local_files_only": True}
        tokenizer = AutoTokenizer.from_pretrained(self.local.path, **common)
        processor = None
        if self.video_input == "transformers":
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(self.local.path, **common)
        try:
            from transformers import AutoModelForImageTextToText as auto_cls
        except ImportError:  # pragma: no cover - transformers < 4.46
            from transformers import AutoModelForVision2Seq as auto_cls
        dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        kwargs = {**common, "use_safetensors": True, dtype_key: getattr(torch, self.dtype)}
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        if self.device.startswith("cuda"):
            kwargs["device_map"] = self.device  # load the weights straight onto the GPU
        model = auto_cls.from_pretrained(self.local.path, **kwargs).to(self.device).eval()
        eos = model.generation_config.eos_token_id
        pad = model.generation_config.pad_token_id
        if pad is None:
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if isinstance(eos, list) else eos)
        generation = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=self.max_new_tokens,
                                      eos_token_id=eos, pad_token_id=pad)
        yes = tokenizer.encode("Yes", add_special_tokens=False)
        no = tokenizer.encode("No", add_special_tokens=False)
        if not yes or not no or yes[0] == no[0]:
            raise ConfigError(f"hf-vlm judge: {self.local.path}: the tokenizer cannot tell 'Yes' from 'No'")
        template = self._chat_template(tokenizer, processor)
        forward = inspect.signature(model.forward).parameters
        extras = {"mm_token_type_ids": "mm_token_type_ids" in forward, "logits_to_keep": "logits_to_keep" in forward}
        return model, tokenizer, processor, generation, template, (yes[0], no[0]), extras

    @property
    def loaded(self) -> tuple:
        """``(model, tokenizer, processor, generation config, chat template, (yes id, no id), extras)``,
        loaded once on first use (thread-safe); a load failure is remembered and re-raised."""
        with self._load_lock:
            if self._loaded is None:
                if self._load_error is not None:
                    raise ConfigError(self._load_error)
                try:
                    self._loaded = self._load()
                except ConfigError as exc:
                    self._load_error = str(exc)
                    raise
                except Exception as exc:  # corrupt weights, out of memory, bad tokenizer files, ...
                    first = " ".join(str(exc).split())[:240]
                    self._load_error = f"hf-vlm judge: {self.local.path}: cannot load the model ({type(exc).__name__}: {first})"
                    raise ConfigError(self._load_error) from None
            return self._loaded

    @property
    def model(self):
        return self.loaded[0]

    @property
    def tokenizer(self):
        return self.loaded[1]

    # -- inputs --------------------------------------------------------------------------------------

    def _resize(self, frames: np.ndarray) -> np.ndarray:
        from PIL import Image

        factor = self.vision["patch_size"] * self.vision["merge_size"]
        h, w = smart_resize(frames.shape[1], frames.shape[2], factor, self.min_pixels, self.max_pixels)
        if (h, w) == frames.shape[1:3]:
            return frames
        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(f)).resize((w, h), Image.BICUBIC))
                         for f in frames])

    def render(self, messages: list[dict]) -> str:
        """The chat text with one ``<|vision_start|><|video_pad|><|vision_end|>`` per video item."""
        _, tokenizer, _, _, template, _, _ = self.loaded
        if template:
            return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                 add_generation_prompt=True)
        pad = tokenizer.convert_ids_to_tokens(self.vision["video_token_id"])
        return _chatml(messages, f"<|vision_start|>{pad}<|vision_end|>")

    def model_inputs(self, messages: list[dict], clips: list[Clip]) -> dict:
        """Tensors for ``model.generate`` / ``model(...)`` (on the judge's device)."""
        import torch

        model, tokenizer, processor, _, _, _, extras = self.loaded
        text = self.render(messages)
        frames = [self._resize(clip.frames) for clip in clips]
        if processor is not None:
            from transformers.video_utils import VideoMetadata

            metadata = [VideoMetadata(total_num_frames=c.total, fps=c.fps or None, frames_indices=c.indices)
                        for c in clips]
            inputs = dict(processor(text=[text], videos=frames, video_metadata=metadata, do_sample_frames=False,
                                    do_resize=False, return_tensors="pt"))
        else:
            inputs = self._builtin_inputs(text, frames, clips, tokenizer)
        keep = set(MODEL_INPUTS) - (set() if extras["mm_token_type_ids"] else {"mm_token_type_ids"})
        dtype = getattr(torch, self.dtype)
        out = {}
        for key, value in inputs.items():
            if key not in keep:
                continue  # e.g. the processor's video_metadata: not a model input
            if key == "second_per_grid_ts" and not isinstance(value, torch.Tensor):
                value = torch.as_tensor(value, dtype=torch.float32)
            out[key] = value.to(self.device, dtype=dtype) if key.startswith("pixel_values") else value.to(self.device)
        return out

    def _builtin_inputs(self, text: str, frames: list[np.ndarray], clips: list[Clip], tokenizer) -> dict:
        import torch

        v = self.vision
        pad = tokenizer.convert_ids_to_tokens(v["video_token_id"])
        pieces = text.split(pad)
        if len(pieces) - 1 != len(clips):
            raise JudgeError(f"the chat text has {len(pieces) - 1} video placeholder(s) for {len(clips)} video(s)")
        mean = np.asarray(v["image_mean"], np.float32)
        std = np.asarray(v["image_std"], np.float32)
        patches, grids, seconds = [], [], []
        for clip, video in zip(clips, frames):
            normalised = (video.astype(np.float32) / np.float32(255.0) - mean) / std
            flat, grid = patchify_video(normalised, v["patch_size"], v["temporal_patch_size"], v["merge_size"])
            patches.append(flat)
            grids.append(grid)
            seconds.append(v["temporal_patch_size"] / clip.sampled_fps)
        expanded = pieces[0] + "".join(pad * (t * h * w // v["merge_size"] ** 2) + rest
                                       for (t, h, w), rest in zip(grids, pieces[1:]))
        encoded = tokenizer([expanded], return_tensors="pt")
        ids = encoded["input_ids"]
        types = torch.zeros_like(ids)
        types[ids == v["image_token_id"]] = 1
        types[ids == v["video_token_id"]] = 2
        return {"input_ids": ids, "attention_mask": encoded["attention_mask"],
                "pixel_values_videos": torch.cat(patches), "video_grid_thw": torch.tensor(grids, dtype=torch.long),
                "second_per_grid_ts": torch.tensor(seconds, dtype=torch.float32), "mm_token_type_ids": types}

    def judge_inputs(self, item: JudgeInput) -> tuple[list[dict], list[Clip]]:
        """The ``rve-judge-v1`` chat for one sample and its two clips (source, then edit)."""
        prompt = build_prompt(item, self.k, with_reference=self.with_reference)
        return chat_messages(prompt, [item.source, item.edited])

    # -- scoring -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _threads(self):
        """torch's CPU thread count set to ``threads`` (if given) for the duration."""
        import torch

        previous = torch.get_num_threads()
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            yield
        finally:
            torch.set_num_threads(previous)

    def generate(self, item: JudgeInput) -> str:
        """The model's raw reply to the ``rve-judge-v1`` prompt for one sample (greedy)."""
        import torch

        model, tokenizer, _, generation, _, _, _ = self.loaded
        messages, clips = self.judge_inputs(item)
        with self._run_lock, self._threads(), torch.inference_mode():
            inputs = self.model_inputs(messages, clips)
            out = model.generate(**inputs, generation_config=generation)
        new = out[0, inputs["input_ids"].shape[1]:]
        return tokenizer.decode(new, skip_special_tokens=True)

    def cache_key(self, item: JudgeInput) -> CacheKey:
        return CacheKey(item.sample.id, item.edited_sha256, self.model_id, self.request_hash)

    def score(self, item: JudgeInput) -> JudgeResult:
        """Score one sample (thread-safe): a cache hit, or one greedy generation parsed strictly.

        Raises JudgeError (one line, naming the sample) when the reply is not a valid ``rve-judge-v1``
        object, or the model cannot be loaded or run."""
        key = self.cache_key(item)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:  # re-parsed: only an answer valid under today's parser is served
                try:
                    return parse_answer(hit.raw).to_result(self.name)
                except JudgeError:
                    pass
        prefix = f"hf-vlm judge: sample {item.sample.id}:"
        try:
            raw = self.generate(item)
        except (ConfigError, JudgeError) as exc:
            raise JudgeError(_one_line(f"{prefix} {exc}")) from None
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise JudgeError(_one_line(f"{prefix} {type(exc).__name__}: {exc}")) from None
        try:
            verdict = parse_answer(raw)
        except JudgeError as exc:
            error = _one_line(f"{prefix} {exc}")
            if self.cache is not None:
                self.cache.record_failure(key, raw, error)
            raise JudgeError(error) from None
        if self.cache is not None:
            self.cache.put(key, raw, verdict.to_dict())
        return verdict.to_result(self.name)

    def p_yes(self, source: Video, instruction: str, candidate: Video) -> float:
        """``p(Yes)`` of :data:`P_YES_QUESTION` about ``candidate`` as an edit of ``source``: the softmax of
        the next-token logits of "Yes" and "No" (first token of each) after the question, one forward
        pass, ``k`` frames per video as in :meth:`score`. A critic for self-reflection at scale."""
        import torch

        if source.num_frames == 0 or candidate.num_frames == 0:
            raise JudgeError("p_yes: a video has no frames")
        model, _, _, _, _, (yes, no), extras = self.loaded
        parts: list = [f"Instruction: {instruction}", "Source video:"]
        parts += labelled_frames(source, self.k, "source")
        parts.append("Output video:")
        parts += labelled_frames(candidate, self.k, "edited")
        parts.append(P_YES_QUESTION)
        messages, clips = chat_messages(JudgePrompt(P_YES_SYSTEM, parts), [source, candidate])
        with self._run_lock, self._threads(), torch.inference_mode():
            inputs = self.model_inputs(messages, clips)
            if extras["logits_to_keep"]:
                inputs["logits_to_keep"] = 1
            logits = model(**inputs).logits[0, -1].float()
        return float(torch.sigmoid(logits[yes] - logits[no]))

    def info(self) -> dict:
        from importlib.metadata import version

        return {
            "judge": self.name, "version": VERSION, "protocol": PROTOCOL_VERSION, "prompt_hash": self.prompt_hash,
            "request_hash": self.request_hash, "model": self.model_ref, "path": str(self.local.path),
            "repo_id": self.local.repo_id, "revision": self.revision, "commit": self.local.commit,
            "config_sha256": self.config_sha256, "weights_fingerprint": self.weights_fingerprint,
            "model_type": self.model_type, "transformers": version("transformers"), "k": self.k,
            "min_pixels": self.min_pixels, "max_pixels": self.max_pixels, "max_new_tokens": self.max_new_tokens,
            "decoding": "greedy", "with_reference": self.with_reference, "dtype": self.dtype,
            "video_input": self.video_input,
            "p_yes": {"version": P_YES_VERSION, "prompt_hash": text_hash(P_YES_SYSTEM + "\n" + P_YES_QUESTION)},
            "runtime": {"device": self.device, "threads": self.threads, "attn_implementation": self.attn_implementation,
                        "hub_cache": self.hub_cache, "cache": self.cache is not None},
        }

    def close(self) -> None:
        if self.cache is not None and self._owns_cache:
            self.cache.close()
