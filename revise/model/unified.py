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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..jsonfile import load_json_object

FORMAT = "revise-unified/1"
MANIFEST_NAME = "revise.json"
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = {"revise-tiny": SHIPPED_DIR / "revise-tiny"}


@dataclass
class EditPlan:
    """What :meth:`ReviseModel.plan_edit` decided: the output's renderer, the critic's p(Yes) of each candidate
    (empty without reflection) and the domain check of the frames the model read
    (:func:`~revise.model.domain.assess_domain`)."""

    renderer: object
    p_yes: list[float]
    domain: object


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
             seed: int = 0, reflect: int = 1, detail: float | None = None, restore: float | None = None) -> np.ndarray:
        """Edit a clip: uint8 ``(T, H, W, 3)`` in, uint8 of the same shape out.

        ``steps`` / ``guidance`` / ``detail`` (full-resolution detail transfer, see
        :func:`~revise.model.detail.transfer_detail`) default to the generator's config; the same ``seed``
        gives the same frames.
        ``reflect`` = N > 1 is inference-time self-reflection: N candidates (seeds ``seed .. seed+N-1``)
        and the internal VLM, as critic, keeps the one it gives the highest p(Yes) (:meth:`reflect_edit`).
        """
        return self.reflect_edit(frames, instruction, steps=steps, guidance=guidance, seed=seed, n=reflect,
                                 detail=detail, restore=restore)[0]

    def reflect_edit(self, frames, instruction: str, *, steps: int | None = None, guidance: float | None = None,
                     seed: int = 0, n: int = 1, detail: float | None = None,
                     restore: float | None = None) -> tuple[np.ndarray, list[float]]:
        """The chosen edit and every candidate's critic p(Yes) (empty for ``n`` = 1: nothing is judged)."""
        from .generator import as_uint8_frames
        from .stream import ArrayFrames

        source = ArrayFrames(as_uint8_frames(frames))
        plan = self.plan_edit(source, instruction, steps=steps, guidance=guidance, seed=seed, n=n, detail=detail,
                              restore=restore)
        out = np.empty((source.num_frames, source.height, source.width, 3), np.uint8)
        for start, chunk in plan.renderer.frames(source):
            out[start:start + len(chunk)] = chunk
        return out, plan.p_yes

    @torch.no_grad()
    def plan_edit(self, source, instruction: str, *, steps: int | None = None, guidance: float | None = None,
                  seed: int = 0, n: int = 1, detail: float | None = None, restore: float | None = None) -> EditPlan:
        """The model's part of an edit of a *frame source* (:mod:`revise.model.stream`: a
        :class:`~revise.video.VideoReader` or :class:`~revise.model.stream.ArrayFrames`), reading only the
        frames the VLM and the generator see: the chosen candidate's renderer, every candidate's p(Yes) (for
        ``n`` > 1) and the domain check of those frames. ``plan.renderer.frames(source)`` then gives the output
        chunk by chunk; the frames are those :meth:`edit` returns for the whole clip in memory."""
        from .domain import assess_domain
        from .stream import needed_indices

        if not isinstance(instruction, str) or not instruction.strip():
            raise ValueError("the instruction is empty")
        if int(n) < 1:
            raise ValueError(f"reflect must be >= 1, got {n}")
        kept, total = {}, -1
        while total != source.num_frames:  # a file that holds more frames than its container declares
            total = source.num_frames
            if total < 1:
                raise ValueError("the source has no frames")
            gen_idx, vlm_idx, needed = needed_indices(total, self.generator.config.num_frames,
                                                      self.vlm.config.frames)
            kept = source.take(needed)
        missing = [i for i in needed if i not in kept]
        if missing:
            raise ValueError(f"the source has no frame {missing[0]} although it has {total} frames")
        self.vlm.eval()
        self.generator.eval()
        vlm_frames = np.stack([kept[i] for i in vlm_idx])
        gen_frames = np.stack([kept[i] for i in gen_idx])
        hidden, mask = self.vlm_condition(vlm_frames[None], instruction)
        ids = self.text_ids(instruction)
        source_tensor = self.generator.frames_to_tensor(gen_frames)
        shape = (total, source.height, source.width)
        renderers = [self.generator.renderer(
            self.generator.clean_estimate(source_tensor, ids, hidden, vlm_mask=mask, steps=steps, guidance=guidance,
                                          seed=seed + i), *shape, kept[0], kept[total - 1], detail, restore)
            for i in range(int(n))]
        p_yes: list[float] = []
        chosen = renderers[0]
        if len(renderers) > 1:  # the critic sees each candidate at the VLM's frames only
            candidates = np.stack([r.render(vlm_idx, vlm_frames) for r in renderers])
            p_yes = [float(p) for p in self.vlm.judge_probability(np.stack([vlm_frames] * len(renderers)),
                                                                  [instruction] * len(renderers),
                                                                  candidates).tolist()]
            chosen = renderers[int(np.argmax(p_yes))]
        return EditPlan(renderer=chosen, p_yes=p_yes, domain=assess_domain(gen_frames))

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


class DomainWarning(UserWarning):
    """The clip looks nothing like the world the model was trained on; its edit is likely damage."""


def check_output_path(video: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse an output that is the input (the same path or the same file through a link) and, unless
    ``overwrite``, one that exists; one-line :class:`ConfigError`. Returns ``out`` as a Path."""
    out, video = Path(out), Path(video)
    same = out.resolve() == video.resolve()
    if not same and out.exists() and video.exists():
        try:
            same = os.path.samefile(out, video)
        except OSError:
            same = False
    if same:
        raise ConfigError(f"{out}: the output is the input video ({video}); write the edit somewhere else")
    if out.is_dir():
        raise ConfigError(f"{out}: the output is a folder; give a file name such as {out / 'edit.mp4'}")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out}: already exists; pass --overwrite (-y) to replace it")
    return out


def domain_message(report) -> str:
    """The one-line warning for a clip outside RVE-Sim's world."""
    reason = report.reason.split(" (")[0]
    return (f"outside RVE-Sim's world ({reason}; domain score {report.score:.1f}, in-domain < 1): revise-tiny only "
            "knows RVE-Sim's synthetic 2D scenes and will likely damage this clip; for real footage use wan-vace "
            "or wan-v2v with real pretrained weights (docs/gpu.md)")


def edit_file(model: str | os.PathLike | ReviseModel, video: str | os.PathLike, instruction: str,
              out: str | os.PathLike, *, steps: int | None = None, guidance: float | None = None,
              seed: int = 0, reflect: int = 1, detail: float | None = None, overwrite: bool = False,
              progress: bool = False, threads: int | None = 1, restore: float | None = None) -> Path:
    """Read ``video``, edit it with ``model`` (a :class:`ReviseModel`, a folder or a shipped name) and
    write the result to ``out`` (H.264 mp4 at the source's frame rate, length and size). Returns ``out``.
    ``reflect`` > 1: the critic picks the best of that many candidates (:meth:`ReviseModel.reflect_edit`);
    ``detail``: the full-resolution detail threshold (None: the checkpoint's, 0: off); ``restore``: the
    low-frequency restore threshold (:mod:`revise.model.detail`; None: the checkpoint's, 0: off).

    The clip is streamed (:mod:`revise.model.stream`): one pass keeps the frames the model reads, a second
    renders and encodes the output chunk by chunk, so memory does not grow with the clip's length; the
    frames are those of :meth:`ReviseModel.edit` on the whole clip. ``out`` may not be ``video`` and is
    replaced only with ``overwrite``; until the edit is complete it is a hidden temporary file. A clip
    that looks outside RVE-Sim's world (:func:`~revise.model.domain.assess_domain`) raises a
    :class:`DomainWarning` (a Python warning: the edit is still made). ``threads``: torch threads of the model
    part (None: torch's setting; one is fastest for the tiny model, and two threads on a busy 2-core machine
    ran 3.5x slower)."""
    import warnings

    from ..video import VideoReader, VideoWriter
    from .stream import ahead

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
    if restore is not None and not (np.isfinite(restore) and restore >= 0):
        raise ConfigError(f"--restore must be a finite number >= 0, got {restore}")
    if threads is not None and int(threads) < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    out = check_output_path(video, out, overwrite=overwrite)
    source = VideoReader(video)
    if not isinstance(model, ReviseModel):
        model = ReviseModel.from_pretrained(model)
    if source.num_frames == 0:
        source.count()  # the container declares no frame count: one pass counts the frames
    previous = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(int(threads))
        plan = model.plan_edit(source, instruction, steps=steps, guidance=guidance, seed=seed, n=reflect,
                               detail=detail, restore=restore)
    finally:
        torch.set_num_threads(previous)
    if plan.domain is not None and not plan.domain.in_domain:
        warnings.warn(domain_message(plan.domain), DomainWarning, stacklevel=2)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with VideoWriter(out, source.fps) as writer, Progress(
            TextColumn("edit"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
            disable=not progress) as bar:
        task = bar.add_task("edit", total=plan.renderer.num_frames)
        for _, frames in ahead(plan.renderer.frames(source)):  # the next chunk renders while this one encodes
            writer.write(frames)
            bar.update(task, advance=len(frames))
    return out
