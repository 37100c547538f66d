"""The unified model's internal VLM: sampled video frames + text in, text and hidden states out.

A small convolutional video encoder turns ``k`` sampled frames of one or two videos into visual tokens;
they are interleaved with word embeddings and read by a toy-sized ``transformers`` Llama causal LM
through ``inputs_embeds``. One network does three jobs, chosen by a task token:

``describe``  ``<bos> <describe> <video> V1 <sep>``                               -> caption
``reason``    ``<bos> <reason> <video> V1 instruction <sep>``                     -> what will happen
``judge``     ``<bos> <judge> <video> V1 <video> V2 instruction <sep>``           -> ``Yes`` / ``No``

``V1`` is the source (the clip described, for ``describe``), ``V2`` the candidate edit. The candidate's
tokens are computed *in comparison with the source* (frame differences enter the first conv, per-cell
change and a global change summary are added; see :class:`VideoEncoder`): a judge trained from scratch
without them stayed at chance for 1,000 steps (``docs/model.md``). Frames enter as float RGB in [0, 1];
sampling ``k`` frames and resizing to ``image_size`` happen inside the model with differentiable torch
ops, so :meth:`ReviseVLM.judge_probability` has a gradient w.r.t. candidate pixels (the self-reflective
loss backpropagates through it into a generator).

Checkpoints are a folder with ``config.json`` (:class:`VLMConfig`), ``model.safetensors`` and
``tokenizer.json``; nothing is pickled. See ``docs/model.md`` ("Internal VLM") for the design reasons.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..jsonfile import load_json_object
from ..video import sample_indices
from .tokenizer import TASKS, TextTokenizer

FORMAT = "revise-vlm/1"
CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_NAME = "config.json", "model.safetensors", "tokenizer.json"
CRITIC_HEAD_NAME = "critic_head.safetensors"  # optional: Yes/No output rows trained by `revise train srf`
SLOT1, SLOT2 = -1, -2  # placeholder ids where the visual tokens of video 1 / video 2 go


@dataclass
class VLMConfig:
    """Everything needed to rebuild a :class:`ReviseVLM` (stored as ``config.json``).

    ``image_size / grid`` must be ``2 ** len(vision_channels)`` (each conv halves the frame);
    ``frames`` must be a multiple of ``tubelet`` (that many consecutive frames share one token).
    A video gives ``frames / tubelet * grid ** 2`` visual tokens.
    """

    vocab_size: int = 0
    image_size: int = 32
    frames: int = 8
    grid: int = 4
    tubelet: int = 4
    vision_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 384
    max_text_tokens: int = 48
    max_answer_tokens: int = 64
    tie_embeddings: bool = True
    colour_detectors: int = 16
    format: str = FORMAT

    def __post_init__(self):
        self.vision_channels = [int(c) for c in self.vision_channels]
        problems = []
        if self.image_size != self.grid * 2 ** len(self.vision_channels):
            problems.append(f"image_size {self.image_size} != grid {self.grid} * 2**{len(self.vision_channels)} "
                            "(one stride-2 conv per vision channel entry)")
        if self.frames % self.tubelet:
            problems.append(f"frames {self.frames} is not a multiple of tubelet {self.tubelet}")
        if self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        if self.format != FORMAT:
            problems.append(f"format {self.format!r} is not {FORMAT!r}")
        if problems:
            raise ConfigError("invalid VLM config: " + "; ".join(problems))

    @property
    def visual_tokens(self) -> int:
        """Visual tokens per video."""
        return self.frames // self.tubelet * self.grid ** 2

    @property
    def max_positions(self) -> int:
        return 3 + 2 * (1 + self.visual_tokens) + self.max_text_tokens + 1 + self.max_answer_tokens + 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VLMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown VLM config keys {unknown}")
        return cls(**data)


def prepare_video(frames, k: int, size: int) -> torch.Tensor:
    """Any clip batch -> float ``(B, k, 3, size, size)`` in [0, 1], differentiable for float tensors.

    Accepts a numpy array or a tensor shaped ``(T, H, W, 3)``, ``(B, T, H, W, 3)`` or ``(B, T, 3, H, W)``
    (a last axis of 3 means channels-last), uint8 in [0, 255] or float in [0, 1]. ``k`` frames are taken
    at :func:`revise.video.sample_indices` (nearest frames, repeated when ``T < k``); frames are resized
    with area averaging when shrinking (bilinear when growing), so a 128-pixel RVE-Sim clip becomes exact
    4x4 block means at 32 pixels.
    """
    # a read-only array (a memory-mapped frame bank) is copied: torch does not take non-writable memory
    x = torch.as_tensor(np.require(frames, requirements=["C", "W"])) if isinstance(frames, np.ndarray) else frames
    if not torch.is_tensor(x):
        raise TypeError(f"frames must be a numpy array or a torch tensor, got {type(frames).__name__}")
    if x.dim() == 4:
        x = x.unsqueeze(0)
    if x.dim() != 5 or 3 not in (x.shape[-1], x.shape[2]):
        raise ValueError("frames must be shaped (T, H, W, 3), (B, T, H, W, 3) or (B, T, 3, H, W), "
                         f"got {tuple(x.shape)}")
    if x.shape[-1] == 3:
        x = x.permute(0, 1, 4, 2, 3)
    x = x.float() / 255.0 if not x.is_floating_point() else x.float()
    t = x.shape[1]
    if t != k:
        idx = sample_indices(t, k) if t >= k else np.round(np.linspace(0, t - 1, k)).astype(int).tolist()
        x = x[:, torch.as_tensor(idx, device=x.device)]
    b, k_, c, h, w = x.shape
    if (h, w) != (size, size):
        mode = "area" if h * w >= size * size else "bilinear"
        x = F.interpolate(x.reshape(b * k_, c, h, w), size=(size, size), mode=mode,
                          **({} if mode == "area" else {"align_corners": False}))
        x = x.reshape(b, k_, c, size, size)
    return x


class VideoEncoder(nn.Module):
    """Frames in [0, 1] -> ``(B, k / tubelet * grid**2, hidden)`` visual tokens.

    Per frame: stride-2 3x3 convs down to a ``grid x grid`` map over six channels, the frame's RGB (kept:
    colour names most answers) and its difference from the *reference* frame at the same time (the
    source, for a candidate; zero for the source itself), so "unchanged", "changed here" and "a
    different scene" are visible to the first layer instead of having to be learned by attention across
    two token streams. For a candidate, each token also gets a projection of the largest absolute
    change inside its cell (max-pooled ``|frame - reference|``), added after the norm so that a small
    moved object is as loud as a repainted scene is. ``tubelet`` consecutive frames are concatenated per
    cell and projected; learned cell, time and video-slot embeddings say where and when a token is and
    which video it belongs to.
    """

    def __init__(self, config: VLMConfig):
        super().__init__()
        layers, c_in = [], 6
        for c in config.vision_channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GELU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.tubelet = config.tubelet
        self.proj = nn.Linear(c_in * config.tubelet, config.hidden_size)
        self.change = nn.Linear(3 * config.tubelet, config.hidden_size)
        self.colours = nn.Conv2d(3, config.colour_detectors, 1)
        d, k = config.hidden_size, config.frames
        # one input projection per statistic, so each is initialised for its own width
        self.summary_in = nn.ModuleList([nn.Linear(6 * k, d), nn.Linear(k * config.colour_detectors, d),
                                         nn.Linear(4 * (k - 1), d)])
        self.summary_out = nn.Sequential(nn.GELU(), nn.Linear(d, d))
        self.grid = config.grid
        self.norm = nn.LayerNorm(config.hidden_size)
        steps = config.frames // config.tubelet
        self.cell = nn.Parameter(torch.randn(config.grid ** 2, config.hidden_size) * 0.02)
        self.time = nn.Parameter(torch.randn(steps, 1, config.hidden_size) * 0.02)
        self.slot = nn.Parameter(torch.randn(2, config.hidden_size) * 0.02)

    def _colour_shares(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, k, detectors)``: the share of each frame that each learned 1x1 colour detector fires on."""
        b, k, c, h, w = frames.shape
        return torch.sigmoid(self.colours(frames.reshape(b * k, c, h, w) * 2.0 - 1.0)).mean((-1, -2)).reshape(b, k, -1)

    def _motion(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, 2 (k - 1))``: mean and largest per-cell change from each frame to the next (smooth motion or not)."""
        b, k, c, h, w = frames.shape
        step = (frames[:, 1:] - frames[:, :-1]).abs().reshape(b * (k - 1), c, h, w)
        cells = F.adaptive_max_pool2d(step, self.grid).amax(1).reshape(b, k - 1, -1)
        return torch.cat([cells.mean(-1), cells.amax(-1)], dim=-1)

    def _per_cell(self, maps: torch.Tensor, b: int, k: int) -> torch.Tensor:
        """``(b*k, C, g, g)`` maps -> ``(b, k / tubelet, g*g, tubelet*C)``: a tubelet's frames side by side."""
        ch, cells = maps.shape[1], maps.shape[2] * maps.shape[3]
        maps = maps.reshape(b, k // self.tubelet, self.tubelet, ch, cells).permute(0, 1, 4, 2, 3)
        return maps.reshape(b, k // self.tubelet, cells, self.tubelet * ch)

    def forward(self, frames: torch.Tensor, slot: int, reference: torch.Tensor | None = None):
        """``frames`` and ``reference`` ``(B, k, 3, S, S)`` -> ``(tokens, summary)``.

        ``reference`` None means no comparison (``summary`` is then None). ``summary`` ``(B, hidden)`` is
        an MLP of global comparison statistics: every frame's mean and largest per-cell change per
        channel (how much changed, when), how the share of each learned colour differs between candidate
        and reference frames (the same things or other ones, whatever the camera does), and the
        frame-to-frame motion of both (smooth or scrambled). The change and colour statistics are zero
        for an unchanged clip.
        """
        b, k, c, h, w = frames.shape
        diff = torch.zeros_like(frames) if reference is None else frames - reference
        x = torch.cat([frames * 2.0 - 1.0, diff], dim=2).reshape(b * k, 2 * c, h, w)
        feats = self.convs(x)  # (b*k, C, g, g)
        tokens = self.proj(self._per_cell(feats, b, k))
        tokens = self.norm(tokens + self.cell + self.time) + self.slot[slot]
        summary = None
        if reference is not None:  # the largest change inside each cell, added after the norm keeps its size
            change = F.adaptive_max_pool2d(diff.abs().reshape(b * k, c, h, w), self.grid)
            tokens = tokens + self.change(self._per_cell(change, b, k))
            cells = change.reshape(b, k, c, -1)
            stats = [torch.cat([cells.mean(-1), cells.amax(-1)], -1).reshape(b, -1),
                     (self._colour_shares(frames) - self._colour_shares(reference)).reshape(b, -1),
                     torch.cat([self._motion(frames), self._motion(reference)], -1)]
            summary = self.summary_out(sum(proj(x) for proj, x in zip(self.summary_in, stats)))
        return tokens.reshape(b, -1, tokens.shape[-1]), summary


@dataclass
class VLMInputs:
    """Token ids with visual placeholders (``-1`` video 1, ``-2`` video 2), mask, positions, labels."""

    ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor | None = None


class ReviseVLM(nn.Module):
    """The internal VLM (video encoder + toy Llama). Build with a config and a :class:`TextTokenizer`.

    Video arguments take anything :func:`prepare_video` accepts (float RGB in [0, 1] or uint8;
    ``(B, T, H, W, 3)`` or ``(B, T, 3, H, W)``); ``instruction`` is one string or a list of ``B``.
    """

    def __init__(self, config: VLMConfig, tokenizer: TextTokenizer):
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        if config.vocab_size != tokenizer.vocab_size:
            raise ConfigError(f"config vocab_size {config.vocab_size} != tokenizer's {tokenizer.vocab_size}")
        self.config = config
        self.tokenizer = tokenizer
        self.vision = VideoEncoder(config)
        lm_config = LlamaConfig(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
            num_key_value_heads=config.num_heads, max_position_embeddings=config.max_positions,
            tie_word_embeddings=config.tie_embeddings, pad_token_id=tokenizer.pad_id, bos_token_id=tokenizer.bos_id,
            eos_token_id=tokenizer.eos_id)
        lm_config._attn_implementation = "sdpa"
        self.lm = LlamaForCausalLM(lm_config)
        self.critic_head: torch.Tensor | None = None  # (2, hidden) Yes/No rows from `revise train srf`, if any

    @classmethod
    def create(cls, tokenizer: TextTokenizer, **overrides) -> ReviseVLM:
        """A freshly initialised model (seed torch first for reproducible weights)."""
        return cls(VLMConfig(vocab_size=tokenizer.vocab_size, **overrides), tokenizer)

    @property
    def device(self) -> torch.device:
        return self.lm.lm_head.weight.device

    # ---- inputs -------------------------------------------------------------------------------------
    def prompt_ids(self, task: str, instruction: str | None) -> list[int]:
        """The prompt of one example, visual positions as placeholders, ending with ``<sep>``."""
        tok, n = self.tokenizer, self.config.visual_tokens
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        ids = [tok.bos_id, tok.task_ids[task], tok.video_id] + [SLOT1] * n
        if task == "judge":
            ids += [tok.video_id] + [SLOT2] * n
        if task != "describe":
            if not instruction:
                raise ValueError(f"task {task!r} needs an instruction")
            ids += tok.encode(instruction)[: self.config.max_text_tokens]
        return ids + [tok.sep_id]

    def build_inputs(self, tasks: list[str], instructions: list[str | None], answers: list[str] | None = None,
                     padding: str = "right") -> VLMInputs:
        """Batch token ids; with ``answers`` also ``labels`` (``-100`` except on answer words and ``<eos>``).

        Right padding is used for training, left padding for generation and scoring (the last column is
        then every row's ``<sep>``). Positions count real tokens only, so both give the same numbers.
        """
        rows, label_rows = [], []
        for i, (task, instruction) in enumerate(zip(tasks, instructions)):
            prompt = self.prompt_ids(task, instruction)
            answer = []
            if answers is not None:
                answer = self.tokenizer.encode(answers[i])[: self.config.max_answer_tokens] + [self.tokenizer.eos_id]
            rows.append(prompt + answer)
            label_rows.append([-100] * len(prompt) + answer)
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.tokenizer.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        labels = torch.full((len(rows), length), -100, dtype=torch.long)
        for i, (row, lab) in enumerate(zip(rows, label_rows)):
            span = slice(0, len(row)) if padding == "right" else slice(length - len(row), length)
            ids[i, span] = torch.tensor(row)
            mask[i, span] = 1
            labels[i, span] = torch.tensor(lab)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.device
        return VLMInputs(ids.to(dev), mask.to(dev), positions.to(dev), labels.to(dev) if answers is not None else None)

    def embed(self, ids: torch.Tensor, video1: torch.Tensor, video2: torch.Tensor | None = None) -> torch.Tensor:
        """Word embeddings with the visual tokens of ``video1`` (every row) and ``video2`` (judge rows, in
        row order) written into the placeholder positions, and the candidate's change summary added to
        its row's ``<sep>`` (the answer position). Videos are prepared ``(n, k, 3, S, S)`` floats."""
        emb = self.lm.get_input_embeddings()(ids.clamp(min=0))
        video1 = video1.to(emb.device)
        for slot, (marker, video) in enumerate(((SLOT1, video1), (SLOT2, video2))):
            where = ids == marker
            if not bool(where.any()):
                continue
            if video is None:
                raise ValueError("the batch has judge rows but no candidate video")
            reference = None
            if slot == 1:  # the candidate is compared with its own row's source
                rows = where.any(-1)
                if int(rows.sum()) != video.shape[0]:
                    raise ValueError(f"{video.shape[0]} candidate clips for {int(rows.sum())} judge rows")
                reference = video1[rows]
            tokens, summary = self.vision(video.to(emb.device), slot, reference)
            if tokens.shape[0] * tokens.shape[1] != int(where.sum()):
                raise ValueError(f"video {slot + 1}: {tokens.shape[0]} clips for {int(where.any(-1).sum())} rows")
            emb = emb.masked_scatter(where.unsqueeze(-1), tokens.to(emb.dtype))
            if summary is not None:
                answer_at = (ids == self.tokenizer.sep_id) & rows.unsqueeze(-1)
                emb = emb + torch.zeros_like(emb).masked_scatter(answer_at.unsqueeze(-1), summary.to(emb.dtype))
        return emb

    def _prepare(self, frames) -> torch.Tensor:
        return prepare_video(frames, self.config.frames, self.config.image_size).to(self.device)

    # ---- training -----------------------------------------------------------------------------------
    def forward(self, inputs: VLMInputs, video1: torch.Tensor, video2: torch.Tensor | None = None):
        """Teacher-forced pass over the labelled tokens: ``(loss, per-row loss, per-row token accuracy,
        per-row first-answer-token correctness)`` (the last is the judge's Yes/No being right).

        Each row's loss is the mean cross-entropy over its own answer tokens, and the batch loss the
        mean over rows, so a one-word judge answer weighs as much as a forty-word explanation.
        """
        if inputs.labels is None:
            raise ValueError("forward needs labels; build the inputs with answers")
        hidden = self.hidden_states(inputs, video1, video2)
        targets = inputs.labels[:, 1:]
        keep = targets != -100
        logits = self.lm.lm_head(hidden[:, :-1][keep])
        token_loss = F.cross_entropy(logits.float(), targets[keep], reduction="none")
        row = keep.nonzero()[:, 0]
        counts = keep.sum(1).clamp(min=1).float()
        row_loss = torch.zeros(len(counts), device=hidden.device).index_add(0, row, token_loss) / counts
        correct = (logits.argmax(-1) == targets[keep]).float()
        row_acc = torch.zeros(len(counts), device=hidden.device).index_add(0, row, correct) / counts
        sizes = keep.sum(1)
        starts = (sizes.cumsum(0) - sizes).clamp(max=max(len(correct) - 1, 0))
        first = correct[starts].bool() & (sizes > 0)  # each row's first answer token
        return row_loss.mean(), row_loss.detach(), row_acc.detach(), first

    def hidden_states(self, inputs: VLMInputs, video1: torch.Tensor, video2: torch.Tensor | None = None):
        """Last-layer hidden states ``(B, L, hidden)`` (after the final norm)."""
        emb = self.embed(inputs.ids, video1, video2)
        out = self.lm.model(inputs_embeds=emb, attention_mask=inputs.attention_mask,
                            position_ids=inputs.position_ids, use_cache=False)
        return out.last_hidden_state

    # ---- public inference API ------------------------------------------------------------------------
    def encode(self, source, instruction: str | list[str], candidate=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states for the generator: ``(hidden (B, L, hidden_size), attention_mask (B, L))``.

        Without ``candidate`` the ``reason`` prompt is encoded, with it the ``judge`` prompt. Rows are
        left-padded (``attention_mask`` is 0 on padding); the last position is every row's ``<sep>``.
        """
        video1 = self._prepare(source)
        instructions = _as_list(instruction, video1.shape[0])
        task = "reason" if candidate is None else "judge"
        inputs = self.build_inputs([task] * len(instructions), instructions, padding="left")
        video2 = None if candidate is None else self._prepare(candidate)
        return self.hidden_states(inputs, video1, video2), inputs.attention_mask

    def yes_no_rows(self) -> torch.Tensor:
        """The ``(2, hidden)`` output rows of Yes and No: a trained critic head if loaded, else the LM's."""
        if self.critic_head is not None:
            return self.critic_head
        return self.lm.lm_head.weight[[self.tokenizer.yes_id, self.tokenizer.no_id]]

    def judge_logit(self, source, instruction: str | list[str], candidate) -> torch.Tensor:
        """``log p(Yes) - log p(No)`` at the answer position, shape ``(B,)``; differentiable in ``candidate``.

        With a critic head trained by self-reflection (``critic_head.safetensors`` in the checkpoint) the
        Yes/No rows come from it; text generation always uses the LM's own output matrix.
        """
        hidden, _ = self.encode(source, instruction, candidate)
        rows = self.yes_no_rows()
        return hidden[:, -1] @ (rows[0] - rows[1])

    def judge_probability(self, source, instruction: str | list[str], candidate) -> torch.Tensor:
        """``p(Yes)`` in [0, 1], shape ``(B,)``: does ``candidate`` satisfy ``instruction`` applied to ``source``?

        The probability is renormalised over the two answer words (``sigmoid`` of :meth:`judge_logit`).
        Pass the candidate as a float tensor in [0, 1] to keep the gradient (nothing is detached or
        quantised on its path); the self-reflective loss is ``-log p(Yes)`` = ``softplus(-judge_logit)``.
        """
        return torch.sigmoid(self.judge_logit(source, instruction, candidate))

    @torch.no_grad()
    def generate(self, video, instruction: str | list[str] | None = None, *, task: str | None = None,
                 candidate=None, max_new_tokens: int | None = None) -> list[str]:
        """Greedy decoding; one string per clip.

        ``task`` defaults to ``describe`` without an instruction, ``reason`` with one and ``judge`` with a
        ``candidate`` (then the text is ``"Yes"`` or ``"No"``).
        """
        video1 = self._prepare(video)
        n = video1.shape[0]
        if task is None:
            task = "judge" if candidate is not None else ("reason" if instruction is not None else "describe")
        instructions = [None] * n if task == "describe" else _as_list(instruction, n)
        video2 = self._prepare(candidate) if task == "judge" else None
        ids = self.greedy(self.build_inputs([task] * n, instructions, padding="left"), video1, video2,
                          max_new_tokens or self.config.max_answer_tokens + 1)
        return [self.tokenizer.decode(row) for row in ids]

    @torch.no_grad()
    def greedy(self, inputs: VLMInputs, video1: torch.Tensor, video2: torch.Tensor | None,
               max_new_tokens: int) -> list[list[int]]:
        """Greedy token ids after each (left-padded) prompt, with a KV cache; stops at ``<eos>``."""
        emb = self.embed(inputs.ids, video1, video2)
        mask, pos = inputs.attention_mask, inputs.position_ids[:, -1:]
        out = self.lm.model(inputs_embeds=emb, attention_mask=mask, position_ids=inputs.position_ids, use_cache=True)
        cache, hidden = out.cache, out.last_hidden_state[:, -1:]
        done = torch.zeros(len(mask), dtype=torch.bool, device=mask.device)
        produced: list[torch.Tensor] = []
        for _ in range(max_new_tokens):
            token = self.lm.lm_head(hidden[:, -1]).argmax(-1)
            token = torch.where(done, torch.full_like(token, self.tokenizer.eos_id), token)
            produced.append(token)
            done |= token == self.tokenizer.eos_id
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            pos = pos + 1
            out = self.lm.model(input_ids=token[:, None], attention_mask=mask, position_ids=pos, cache=cache,
                                use_cache=True)
            cache, hidden = out.cache, out.last_hidden_state
        return torch.stack(produced, 1).tolist()

    # ---- checkpoints ---------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``tokenizer.json`` into ``directory``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")
        self.tokenizer.save(directory / TOKENIZER_NAME)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if k not in self._tied_keys()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": FORMAT})
        if self.critic_head is not None:
            save_file({"yes_no": self.critic_head.detach().contiguous().cpu()}, str(directory / CRITIC_HEAD_NAME))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> ReviseVLM:
        """Load a folder written by :meth:`save_pretrained`; any problem raises a one-line :class:`ConfigError`."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        if not directory.is_dir():
            raise ConfigError(f"{directory}: VLM checkpoint folder not found")
        for name in (CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_NAME):
            if not (directory / name).is_file():
                raise ConfigError(f"{directory}: not a VLM checkpoint ({name} is missing)")
        raw = load_json_object(directory / CONFIG_NAME)
        try:
            config = VLMConfig.from_dict(raw)
        except (ConfigError, TypeError) as exc:
            raise ConfigError(f"{directory / CONFIG_NAME}: {exc}") from None
        tokenizer = TextTokenizer.from_file(directory / TOKENIZER_NAME)
        try:
            model = cls(config, tokenizer)
        except ConfigError as exc:
            raise ConfigError(f"{directory}: {exc}") from None
        try:
            state = load_file(str(directory / WEIGHTS_NAME))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ConfigError(f"{directory / WEIGHTS_NAME}: unreadable safetensors ({exc})") from None
        expected = {k: v for k, v in model.state_dict().items() if k not in model._tied_keys()}
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
        if missing or unexpected or wrong:
            raise ConfigError(f"{directory / WEIGHTS_NAME}: weights do not match config.json "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]})")
        model.load_state_dict(state, strict=False)  # only the tied output matrix is absent, checked above
        head_path = directory / CRITIC_HEAD_NAME
        if head_path.is_file():
            try:
                head = load_file(str(head_path))["yes_no"]
            except (SafetensorError, OSError, ValueError, KeyError) as exc:
                raise ConfigError(f"{head_path}: unreadable critic head ({exc})") from None
            if tuple(head.shape) != (2, config.hidden_size):
                raise ConfigError(f"{head_path}: critic head is {tuple(head.shape)}, expected (2, {config.hidden_size})")
            model.critic_head = head.to(device)
        return model.to(device).eval()

    def _tied_keys(self) -> set[str]:
        """State-dict keys that alias another tensor (the output matrix when embeddings are tied)."""
        return {"lm.lm_head.weight"} if self.config.tie_embeddings else set()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _as_list(instruction, n: int) -> list[str]:
    items = [instruction] * n if isinstance(instruction, str) else list(instruction)
    if len(items) != n:
        raise ValueError(f"{len(items)} instructions for {n} clips")
    return items

