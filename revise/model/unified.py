"""The unified model: the internal VLM and the flow-matching generator, wired as in ReViSE.

The VLM reads the source clip and the instruction (its ``reason`` prompt); its last-layer hidden states
go through the generator's adapter into the cross-attention context, beside the source-video tokens and
the instruction's tokens (the VLM's tokenizer). One folder holds both parts::

    CKPT/
      revise.json        format, the part folders, the tokenizer note, training provenance
      vlm/               ReviseVLM.save_pretrained  (config.json, model.safetensors, tokenizer.json)
      generator/         ReviseGenerator.save_pretrained (config.json, diffusion_pytorch_model.safetensors)

``ReviseModel.from_pretrained("revise-tiny")`` loads the checkpoint shipped inside the package
(:data:`SHIPPED`); any other argument is a folder. Everything is safetensors + JSON; nothing is
unpickled. Problems raise one-line :class:`~revise.errors.ConfigError`.

Example::

    from revise.model.unified import ReviseModel
    model = ReviseModel.from_pretrained("revise-tiny")
    edited = model.edit(frames_uint8_t_h_w_3, "What if the red ball had never been there?", seed=0)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..jsonfile import load_json_object

FORMAT = "revise-unified/1"
MANIFEST_NAME = "revise.json"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = {"revise-tiny": SHIPPED_DIR / "revise-tiny"}


def resolve_checkpoint(name_or_path: str | os.PathLike) -> Path:
    """A shipped name (``revise-tiny``) or a folder -> the folder; one-line error when it is not there."""
    key = str(name_or_path)
    if key in SHIPPED:
        path = SHIPPED[key]
        if not (path / MANIFEST_NAME).is_file():
            raise ConfigError(f"the shipped checkpoint {key!r} is missing from this installation ({path})")
        return path
    path = Path(name_or_path)
    if not path.exists():
        known = ", ".join(sorted(SHIPPED))
        raise ConfigError(f"{path}: checkpoint not found (give a folder written by `revise train sft` or one of: "
                          f"{known})")
    if not path.is_dir():
        raise ConfigError(f"{path}: a checkpoint is a folder, not a file")
    return path


def encode_instruction(tokenizer, instruction: str, max_len: int) -> list[int]:
    """The generator's text ids: the VLM tokenizer's words, cut to ``max_len``."""
    return tokenizer.encode(instruction)[:max_len]


class ReviseModel:
    """The VLM + generator pair. Build from parts, or load with :meth:`from_pretrained`."""

    def __init__(self, vlm, generator, info: dict | None = None):
        from .generator import ReviseGenerator
        from .vlm import ReviseVLM

        if not isinstance(vlm, ReviseVLM) or not isinstance(generator, ReviseGenerator):
            raise TypeError("ReviseModel takes a ReviseVLM and a ReviseGenerator")
        if generator.config.vlm_dim != vlm.config.hidden_size:
            raise ConfigError(f"generator vlm_dim {generator.config.vlm_dim} != the VLM's hidden size "
                              f"{vlm.config.hidden_size}")
        if generator.config.vocab_size != vlm.tokenizer.vocab_size:
            raise ConfigError(f"generator vocab_size {generator.config.vocab_size} != the VLM tokenizer's "
                              f"{vlm.tokenizer.vocab_size}")
        self.vlm, self.generator, self.info = vlm, generator, dict(info or {})

    # ---- conditioning ------------------------------------------------------------------------------
    def text_ids(self, instruction: str) -> list[int]:
        return encode_instruction(self.vlm.tokenizer, instruction, int(self.generator.config.max_text_len))

    @torch.no_grad()
    def vlm_condition(self, source_frames, instruction: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The VLM's hidden states of the ``reason`` prompt and their mask (True = real token)."""
        hidden, mask = self.vlm.encode(source_frames, instruction)
        return hidden, mask.bool()

    # ---- inference -----------------------------------------------------------------------------------
    def edit(self, frames, instruction: str, *, steps: int | None = None, guidance: float | None = None,
             seed: int = 0, reflect: int = 1, detail: float | None = None) -> np.ndarray:
        """Edit a clip: uint8 ``(T, H, W, 3)`` in, uint8 of the same shape out.

        ``steps`` / ``guidance`` / ``detail`` (full-resolution detail transfer, see
        :func:`~revise.model.detail.transfer_detail`) default to the generator's config; the same ``seed``
        gives the same frames.
        ``reflect`` = N > 1 is inference-time self-reflection: N candidates (seeds ``seed .. seed+N-1``)
        and the internal VLM, as critic, keeps the one it gives the highest p(Yes) (:meth:`reflect_edit`).
        """
        return self.reflect_edit(frames, instruction, steps=steps, guidance=guidance, seed=seed, n=reflect,
                                 detail=detail)[0]

    def reflect_edit(self, frames, instruction: str, *, steps: int | None = None, guidance: float | None = None,
                     seed: int = 0, n: int = 1, detail: float | None = None) -> tuple[np.ndarray, list[float]]:
        """The chosen edit and every candidate's critic p(Yes) (empty for ``n`` = 1: nothing is judged)."""
        from .generator import as_uint8_frames

        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("the instruction is empty")
        if int(n) < 1:
            raise ValueError(f"reflect must be >= 1, got {n}")
        frames = as_uint8_frames(frames)
        self.vlm.eval()
        self.generator.eval()
        hidden, mask = self.vlm_condition(frames[None], instruction)
        ids = self.text_ids(instruction)
        candidates = [self.generator.generate(frames, ids, hidden, vlm_mask=mask, steps=steps, guidance=guidance,
                                              seed=seed + i, detail=detail) for i in range(int(n))]
        if len(candidates) == 1:
            return candidates[0], []
        with torch.no_grad():
            p_yes = self.vlm.judge_probability(np.stack([frames] * len(candidates)), [instruction] * len(candidates),
                                               np.stack(candidates)).tolist()
        return candidates[int(np.argmax(p_yes))], [float(p) for p in p_yes]

    # ---- checkpoints -----------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, info: dict | None = None) -> Path:
        """Write ``revise.json``, ``vlm/`` and ``generator/`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.vlm.save_pretrained(directory / "vlm")
        self.generator.save_pretrained(directory / "generator", safe_serialization=True)
        manifest = {"format": FORMAT, "vlm": "vlm", "generator": "generator",
                    "text": "the generator's instruction ids come from vlm/tokenizer.json",
                    **({**self.info, **(info or {})})}
        (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = "revise-tiny", *,
                        device: str | torch.device = "cpu") -> ReviseModel:
        """Load a shipped name or a folder written by :meth:`save_pretrained`."""
        from .vlm import ReviseVLM

        path = resolve_checkpoint(name_or_path)
        manifest_path = path / MANIFEST_NAME
        if not manifest_path.is_file():
            raise ConfigError(f"{path}: not a revise checkpoint ({MANIFEST_NAME} is missing)")
        manifest = load_json_object(manifest_path)
        if manifest.get("format") != FORMAT:
            raise ConfigError(f"{manifest_path}: format {manifest.get('format')!r} is not {FORMAT!r}")
        vlm = ReviseVLM.from_pretrained(path / str(manifest.get("vlm", "vlm")), device=device)
        generator = load_generator(path / str(manifest.get("generator", "generator")), device=device)
        info = {k: v for k, v in manifest.items() if k not in ("format", "vlm", "generator", "text")}
        try:
            return cls(vlm, generator, info)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def load_generator(directory: Path, *, device: str | torch.device = "cpu"):
    """``ReviseGenerator.from_pretrained`` with one-line errors for a missing or corrupt folder."""
    from .generator import ReviseGenerator

    directory = Path(directory)
    config_path = directory / "config.json"
    if not directory.is_dir():
        raise ConfigError(f"{directory}: generator checkpoint folder not found")
    if not config_path.is_file() or not (directory / "diffusion_pytorch_model.safetensors").is_file():
        raise ConfigError(f"{directory}: not a generator checkpoint (config.json or "
                          "diffusion_pytorch_model.safetensors is missing)")
    load_json_object(config_path)  # a corrupt config fails here, with the file named
    try:
        model = ReviseGenerator.from_pretrained(str(directory), use_safetensors=True)
    except ConfigError as exc:
        raise ConfigError(f"{directory}: {exc}") from None
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{directory}: cannot load the generator ({first})") from None
    return model.to(device).eval()


def edit_file(model: str | os.PathLike | ReviseModel, video: str | os.PathLike, instruction: str,
              out: str | os.PathLike, *, steps: int | None = None, guidance: float | None = None,
              seed: int = 0, reflect: int = 1, detail: float | None = None) -> Path:
    """Read ``video``, edit it with ``model`` (a :class:`ReviseModel`, a folder or a shipped name) and
    write the result to ``out`` (H.264 mp4 at the source's frame rate, length and size). Returns ``out``.
    ``reflect`` > 1: the critic picks the best of that many candidates (:meth:`ReviseModel.reflect_edit`);
    ``detail``: the full-resolution detail threshold (None: the checkpoint's, 0: off)."""
    from ..video import read_video, write_video

    if not isinstance(instruction, str) or not instruction.strip():
        raise ConfigError("the instruction is empty")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if reflect < 1:
        raise ConfigError(f"--reflect must be >= 1, got {reflect}")
    if guidance is not None and not (np.isfinite(guidance) and guidance >= 0):
        raise ConfigError(f"--guidance must be a finite number >= 0, got {guidance}")
    if detail is not None and not (np.isfinite(detail) and detail >= 0):
        raise ConfigError(f"--detail must be a finite number >= 0, got {detail}")
    source = read_video(video)
    if not isinstance(model, ReviseModel):
        model = ReviseModel.from_pretrained(model)
    frames = model.edit(source.frames, instruction, steps=steps, guidance=guidance, seed=seed, reflect=reflect,
                        detail=detail)
    return Path(write_video(out, frames, source.fps))
