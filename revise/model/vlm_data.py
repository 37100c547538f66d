"""Training and evaluation data for the internal VLM, built from an RVE-Sim manifest.

Videos are decoded once and kept as small uint8 frames (:class:`FrameBank`, optionally cached as a folder of
memory-mapped ``.npy`` arrays keyed by the manifest's hash), so decoding never competes with training and a
train split of tens of thousands of clips does not have to fit in memory. From a bank, three
task datasets are drawn deterministically from a seed:

* ``describe``: the target clip -> its literal ``target_caption`` (RVE-Sim captions targets only);
* ``reason``: source + instruction -> ``reference_answer``;
* ``judge``: source + instruction + candidate -> ``Yes`` for the true target, ``No`` for a
  :data:`NEGATIVE_KINDS` negative: the source itself, another sample's target from the same dimension,
  a perturbed target (time-reversed, mirrored or frame-shuffled, kept only where the perturbation
  visibly changes the clip, so that it is truly wrong), or the true target under another scenario
  family's instruction (``swapped``: teaches the judge to read the instruction).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import Manifest, Sample, load_manifest
from ..errors import ConfigError
from ..video import match_length, read_video, sample_indices
from .tokenizer import NO, YES

CACHE_FORMAT = 2  # 2: a folder of memory-mapped .npy arrays (1 was one .npz)
PERTURBATIONS = ("reversed", "mirrored", "shuffled")
NEGATIVE_KINDS = ("source", "other", "perturbed")  # the judge accuracy target is over these
EXTRA_NEGATIVE_KINDS = ("swapped",)                 # reported separately
# A perturbation counts as "wrong" only if it changes at least this fraction of (frame, pixel) cells of
# the sampled small frames by more than CHANGE_LEVEL (max over RGB): a static candle reversed is not.
CHANGE_LEVEL = 40
MIN_CHANGED = 0.004


@dataclass
class FrameBank:
    """Small frames of every sample of a manifest: ``source``/``target`` uint8 ``(N, T, S, S, 3)``."""

    samples: list[Sample]
    source: np.ndarray
    target: np.ndarray

    @property
    def size(self) -> int:
        return int(self.source.shape[2])

    def __len__(self) -> int:
        return len(self.samples)


def _manifest_key(manifest: Manifest, size: int, frames: int) -> str:
    h = hashlib.sha256(Path(manifest.path).read_bytes())
    h.update(f"|{CACHE_FORMAT}|{size}|{frames}".encode())
    return h.hexdigest()[:20]


def _small_clip(path, frames: int, size: int) -> np.ndarray:
    """One clip decoded and resized the model's way -> uint8 ``(frames, size, size, 3)``."""
    import torch

    from .vlm import prepare_video

    clip = match_length(read_video(path).frames, frames)
    x = prepare_video(clip, frames, size)[0].permute(0, 2, 3, 1)
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)  # one thread per decoding process: the processes are the parallelism


def _decode_chunk(args) -> tuple[int, np.ndarray, np.ndarray]:
    """Worker job: ``(start, sources, targets)`` of a run of samples (paths in, arrays out)."""
    start, pairs, frames, size = args
    src = np.stack([_small_clip(a, frames, size) for a, _ in pairs])
    tgt = np.stack([_small_clip(b, frames, size) for _, b in pairs])
    return start, src, tgt


def load_frames(manifest: str | os.PathLike | Manifest, *, size: int = 32, frames: int = 16,
                cache_dir: str | os.PathLike | None = None, progress: bool = False,
                workers: int | None = None) -> FrameBank:
    """Decode every source and target once, resized to ``size`` pixels and ``frames`` frames.

    Resizing uses :func:`revise.model.vlm.prepare_video` (the model's own path), so cached frames equal
    what the model computes from full-size clips. Without ``cache_dir`` the bank is held in memory. With
    ``cache_dir`` it is a folder ``frames-<hash>/`` (the hash covers the manifest bytes, ``size``,
    ``frames``) of two uint8 ``.npy`` arrays, ``source.npy`` and ``target.npy`` ``(N, T, S, S, 3)``, filled
    chunk by chunk and returned **memory-mapped** (read-only): a train split of tens of thousands of clips
    needs neither the RAM for all of it nor a second decode. A killed decode resumes at the last chunk
    written (``progress.json``); the folder counts as complete only once ``ids.json`` is written.
    ``workers`` > 1 decodes in that many processes (default: 1 for under 512 samples, else up to 2).
    Every sample needs a target, a reference answer and a ``target_caption``.
    """
    manifest = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    samples = list(manifest)
    problems = [s.id for s in samples
                if s.target is None or not s.reference_answer or not s.metadata.get("target_caption")]
    if problems:
        raise ConfigError(f"{manifest.path}: {len(problems)} sample(s) lack target / reference_answer / "
                          f"target_caption, which the VLM tasks need (first: {problems[0]})")
    ids = [s.id for s in samples]
    pairs = [(str(s.source), str(s.target)) for s in samples]
    if workers is None:
        workers = 1 if len(samples) < 512 else max(1, min(2, os.cpu_count() or 1))
    chunk = 64
    shape = (len(samples), frames, size, size, 3)
    if cache_dir is None:
        src, tgt = np.empty(shape, np.uint8), np.empty(shape, np.uint8)
        _fill(src, tgt, pairs, 0, frames, size, workers, chunk, progress, None)
        return FrameBank(samples, src, tgt)

    folder = Path(cache_dir) / f"frames-{_manifest_key(manifest, size, frames)}"
    done = folder / "ids.json"
    def mapped() -> FrameBank:
        return FrameBank(samples, np.load(folder / "source.npy", mmap_mode="r"),
                         np.load(folder / "target.npy", mmap_mode="r"))

    if done.is_file():
        if json.loads(done.read_text()) == ids:
            return mapped()
        raise ConfigError(f"{folder}: the cached frame bank lists other samples than {manifest.path}; delete it")
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "progress.json"
    filled = 0
    if marker.is_file() and (folder / "source.npy").is_file() and (folder / "target.npy").is_file():
        record = json.loads(marker.read_text())
        if record.get("n") == len(samples):
            filled = int(record.get("filled", 0))
    mode = "r+" if filled else "w+"
    src = np.lib.format.open_memmap(folder / "source.npy", mode=mode, dtype=np.uint8, shape=shape)
    tgt = np.lib.format.open_memmap(folder / "target.npy", mode=mode, dtype=np.uint8, shape=shape)

    def mark(count: int) -> None:
        src.flush()
        tgt.flush()
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({"n": len(samples), "filled": count}))
        os.replace(tmp, marker)

    _fill(src, tgt, pairs, filled, frames, size, workers, chunk, progress, mark)
    del src, tgt
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(ids))
    os.replace(tmp, done)
    marker.unlink(missing_ok=True)
    return mapped()


def _fill(src: np.ndarray, tgt: np.ndarray, pairs: list, start: int, frames: int, size: int, workers: int,
          chunk: int, progress: bool, mark) -> None:
    """Decode samples ``start:`` into ``src``/``tgt`` in chunks, in order; ``mark(count)`` after each chunk."""
    from rich.progress import Progress

    jobs = [(i, pairs[i:i + chunk], frames, size) for i in range(start, len(pairs), chunk)]
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("decoding clips", total=len(pairs), completed=start)

        def store(result) -> None:
            i, s, t = result
            src[i:i + len(s)] = s
            tgt[i:i + len(t)] = t
            if mark is not None:
                mark(i + len(s))
            bar.advance(task, len(s))

        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                store(_decode_chunk(job))
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init) as pool:
            for result in pool.map(_decode_chunk, jobs):  # in order: the marker only ever covers a prefix
                store(result)


# ---- candidate clips ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    """A clip of the bank: sample ``index``'s ``which`` video, optionally perturbed (``shuffle`` seeds it)."""

    index: int
    which: str = "target"
    perturbation: str | None = None
    shuffle: int = 0


def clip_frames(bank: FrameBank, clip: Clip, k: int) -> np.ndarray:
    """The ``k`` sampled frames ``(k, S, S, 3)`` of a clip (perturbation applied to the whole clip first)."""
    frames = (bank.source if clip.which == "source" else bank.target)[clip.index]
    if clip.perturbation == "reversed":
        frames = frames[::-1]
    elif clip.perturbation == "mirrored":
        frames = frames[:, :, ::-1]
    elif clip.perturbation == "shuffled":
        frames = frames[_shuffle_order(len(frames), clip.shuffle)]
    elif clip.perturbation is not None:
        raise ValueError(f"unknown perturbation {clip.perturbation!r}")
    return frames[sample_indices(len(frames), k)]


def _shuffle_order(n: int, seed: int) -> np.ndarray:
    """A permutation that is neither the identity nor the reversal (both would not be 'shuffled')."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        if n < 3 or (np.any(order != np.arange(n)) and np.any(order != np.arange(n)[::-1])):
            return order


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of (frame, pixel) cells whose largest channel difference exceeds :data:`CHANGE_LEVEL`."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(-1)
    return float((diff > CHANGE_LEVEL).mean())


def valid_perturbations(bank: FrameBank, index: int, k: int, seed: int = 0) -> list[Clip]:
    """The perturbed targets of sample ``index`` that visibly differ from the target and the source."""
    target = clip_frames(bank, Clip(index), k)
    out = []
    for name in PERTURBATIONS:
        clip = Clip(index, "target", name, shuffle=seed)
        frames = clip_frames(bank, clip, k)
        if changed_fraction(frames, target) >= MIN_CHANGED:
            out.append(clip)
    return out


# ---- structured facts from the simulator ------------------------------------------------------------
#: The question of the ``facts`` examples (asked as a ``reason`` prompt: no new task token, so any VLM runs it)
FACTS_QUESTION = "Which objects are in this video?"


def facts_answer(sample: Sample) -> str:
    """What the simulator knows is in ``sample``'s source clip, as the answer to :data:`FACTS_QUESTION`:
    every body present at the start, ``"a blue box, an orange ball and a green character."``, sorted by
    shape then colour (a set, in one canonical order). Read from the sample's state file; a missing or
    unreadable one is a one-line error naming it."""
    if sample.state is None:
        raise ConfigError(f"sample {sample.id}: no state file; the facts task needs RVE-Sim samples")
    try:
        state = json.loads(Path(sample.state).read_text())
        bodies = state["scenes"]["source"]["bodies"]
        items = sorted({(str(b["shape"]), str(b["colour"])) for b in bodies
                        if b.get("visible", True) and b.get("perceivable", True)})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{sample.state}: unreadable RVE-Sim state ({type(exc).__name__}: {exc})") from None
    if not items:
        raise ConfigError(f"{sample.state}: the source scene has no visible object")
    words = [f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}" for shape, colour in items]
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return text + "."


# ---- task examples ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Example:
    """One training/evaluation item. ``kind``: ``caption``/``answer`` or a judge kind (``positive``,
    a :data:`NEGATIVE_KINDS` / :data:`EXTRA_NEGATIVE_KINDS` entry, with the perturbation after a colon)."""

    task: str
    video1: Clip
    video2: Clip | None
    instruction: str | None
    answer: str
    kind: str

    @property
    def label(self) -> bool | None:
        return None if self.task != "judge" else self.answer == YES


class TaskBuilder:
    """Draws the three tasks' examples from a bank; every draw is a function of ``(seed, epoch)``.

    ``facts=True`` adds one ``facts`` example per sample and epoch: :data:`FACTS_QUESTION` about the source
    clip, answered with what the simulator knows is in it (:func:`facts_answer`), so the VLM is taught to
    name the colours and objects it sees. Without it the epochs are exactly as before."""

    def __init__(self, bank: FrameBank, k: int, seed: int = 0, *, facts: bool = False):
        self.bank, self.k, self.seed = bank, k, seed
        self._facts = [facts_answer(s) for s in bank.samples] if facts else None
        self.by_group: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(bank.samples):
            self.by_group[s.group].append(i)
        self._perturbed = [valid_perturbations(bank, i, k, seed=seed * 7919 + i) for i in range(len(bank))]

    def _scenario(self, i: int) -> str:
        return self.bank.samples[i].metadata.get("scenario", self.bank.samples[i].id)

    def other_target(self, i: int, rng: np.random.Generator) -> int | None:
        """Another sample of the same dimension (any other sample if the dimension has only this one)."""
        pool = [j for j in self.by_group[self.bank.samples[i].group] if j != i]
        pool = pool or [j for j in range(len(self.bank)) if j != i]
        return int(rng.choice(pool)) if pool else None

    def swapped_instruction(self, i: int, rng: np.random.Generator) -> str | None:
        """An instruction from another scenario family, preferably of the same dimension."""
        mine = self._scenario(i)
        same = [j for j in self.by_group[self.bank.samples[i].group] if self._scenario(j) != mine]
        pool = same or [j for j in range(len(self.bank)) if self._scenario(j) != mine]
        return self.bank.samples[int(rng.choice(pool))].instruction if pool else None

    def negatives(self, i: int, rng: np.random.Generator) -> list[Example]:
        """Every negative kind available for sample ``i`` (one perturbation, drawn by ``rng``)."""
        s = self.bank.samples[i]
        src = Clip(i, "source")
        out = [Example("judge", src, Clip(i, "source"), s.instruction, NO, "source")]
        j = self.other_target(i, rng)
        if j is not None:
            out.append(Example("judge", src, Clip(j, "target"), s.instruction, NO, "other"))
        if self._perturbed[i]:
            clip = self._perturbed[i][int(rng.integers(len(self._perturbed[i])))]
            out.append(Example("judge", src, clip, s.instruction, NO, f"perturbed:{clip.perturbation}"))
        swapped = self.swapped_instruction(i, rng)
        if swapped is not None:
            out.append(Example("judge", src, Clip(i, "target"), swapped, NO, "swapped"))
        return out

    def positive(self, i: int) -> Example:
        s = self.bank.samples[i]
        return Example("judge", Clip(i, "source"), Clip(i, "target"), s.instruction, YES, "positive")

    def describe(self, i: int) -> Example:
        s = self.bank.samples[i]
        return Example("describe", Clip(i, "target"), None, None, s.metadata["target_caption"], "caption")

    def reason(self, i: int) -> Example:
        s = self.bank.samples[i]
        return Example("reason", Clip(i, "source"), None, s.instruction, s.reference_answer, "answer")

    def facts(self, i: int) -> Example:
        """The ``facts`` example of sample ``i`` (a ``reason`` prompt with :data:`FACTS_QUESTION`)."""
        answer = self._facts[i] if self._facts is not None else facts_answer(self.bank.samples[i])
        return Example("reason", Clip(i, "source"), None, FACTS_QUESTION, answer, "facts")

    def epoch(self, epoch: int, *, judge_pairs: int = 2) -> list[Example]:
        """One epoch, shuffled: per sample one describe, one reason and ``judge_pairs`` positive/negative
        pairs (negatives drawn without replacement from the available kinds), so the judge sees as many
        ``Yes`` as ``No``."""
        rng = np.random.default_rng([self.seed, epoch, 1])
        items: list[Example] = []
        for i in range(len(self.bank)):
            items += [self.describe(i), self.reason(i)]
            if self._facts is not None:
                items.append(self.facts(i))
            negs = self.negatives(i, rng)
            picks = rng.permutation(len(negs))[:judge_pairs]
            for p in picks:
                items += [self.positive(i), negs[int(p)]]
        order = rng.permutation(len(items))
        return [items[int(o)] for o in order]

    def judge_eval(self) -> list[Example]:
        """Judge evaluation set: per sample the positive, one negative of each kind (the perturbed one
        drawn by the seed) and every valid perturbation separately (``perturbed-all:<name>``)."""
        rng = np.random.default_rng([self.seed, 99])
        items: list[Example] = []
        for i in range(len(self.bank)):
            items.append(self.positive(i))
            items += self.negatives(i, rng)
            s = self.bank.samples[i]
            items += [Example("judge", Clip(i, "source"), c, s.instruction, NO, f"perturbed-all:{c.perturbation}")
                      for c in self._perturbed[i]]
        return items


def collate(bank: FrameBank, examples: list[Example], k: int):
    """``(tasks, instructions, answers, video1 (B, k, 3, S, S), video2 (n_judge, k, 3, S, S) or None)``,
    videos as float tensors in [0, 1]."""
    import torch

    def stack(clips):
        arr = np.stack([clip_frames(bank, c, k) for c in clips])
        return torch.from_numpy(arr).permute(0, 1, 4, 2, 3).float().div_(255.0)

    video2 = [e.video2 for e in examples if e.video2 is not None]
    return ([e.task for e in examples], [e.instruction for e in examples], [e.answer for e in examples],
            stack([e.video1 for e in examples]), stack(video2) if video2 else None)


def corpus(samples: list[Sample], *, facts: bool = False) -> list[str]:
    """The texts a tokenizer is built from: instructions, reference answers and captions (with ``facts``,
    also :data:`FACTS_QUESTION` and every sample's :func:`facts_answer`)."""
    texts = []
    for s in samples:
        texts += [s.instruction, s.reference_answer or "", s.metadata.get("target_caption", "")]
        if facts:
            texts.append(facts_answer(s))
    return texts + ([FACTS_QUESTION] if facts else [])
