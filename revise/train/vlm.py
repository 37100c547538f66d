"""Train and evaluate the internal VLM on RVE-Sim (describe, reason, judge).

``train_vlm`` is a plain PyTorch loop run through ``accelerate`` (CPU here; the same code runs on one
GPU): teacher-forced cross-entropy on the answer tokens only (each example's loss is the mean over its
own answer tokens), AdamW, linear warm-up then cosine decay, every random choice seeded. The output
folder is a checkpoint (:meth:`ReviseVLM.save_pretrained`) plus ``metrics.json`` and ``log.jsonl``.

Metrics (:func:`evaluate_vlm`):

* judge accuracy: ``p(Yes) > 0.5`` against the label. The headline ``judge_accuracy`` is balanced,
  ``(accuracy on positives + accuracy on negatives) / 2``, with exactly one negative per test sample of
  each of :data:`~revise.model.vlm_data.NEGATIVE_KINDS` (the source; another sample's target of the same
  dimension; one visibly perturbed target). ``swapped`` (true target, another family's instruction) and
  every perturbation separately are reported as well, outside the headline.
* reasoning: greedy answers to ``reason`` prompts vs. the reference answer, by :func:`answer_scores`,
  and the teacher-forced token accuracy (share of reference tokens that are the model's argmax).
* describe: the same scores for greedy captions of the target clips (``describe`` prompts) against the
  simulator's captions.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import ConfigError

STOPWORDS = frozenset(
    "a an the and or but of to in on at by for with from as is are was were be been it its it's this that these "
    "those there here so then than into onto over off up out too also just still now we our you she her he his "
    "they them their what which who when where while before after all any some no not nothing instead same "
    "very much more most again back away about around along down one".split())
COLOURS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def answer_scores(prediction: str, reference: str) -> dict[str, float]:
    """How well a generated answer matches the reference answer; every score is in [0, 1], higher better.

    * ``exact``: 1 if the two are equal after collapsing whitespace, else 0.
    * ``word_f1``: SQuAD-style bag-of-words F1 over lower-cased words (punctuation dropped).
    * ``keyword_f1``: F1 over the *sets* of content words (words not in :data:`STOPWORDS`): colours,
      objects, directions, numbers, verbs; the part of an answer that carries its meaning.
    * ``colour_match``: 1 if both name exactly the same set of colours (what must be read from pixels).
    """
    exact = float(" ".join(prediction.split()) == " ".join(reference.split()))
    pred, ref = _words(prediction), _words(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    word_f1 = _f1(common, len(pred), len(ref))
    kp, kr = {w for w in pred if w not in STOPWORDS}, {w for w in ref if w not in STOPWORDS}
    keyword_f1 = _f1(len(kp & kr), len(kp), len(kr))
    colour_match = float({w for w in pred if w in COLOURS} == {w for w in ref if w in COLOURS})
    return {"exact": exact, "word_f1": word_f1, "keyword_f1": keyword_f1, "colour_match": colour_match}


def _f1(common: int, n_pred: int, n_ref: int) -> float:
    if n_pred == 0 and n_ref == 0:
        return 1.0
    if common == 0:
        return 0.0
    p, r = common / n_pred, common / n_ref
    return 2 * p * r / (p + r)


def cosine_schedule(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine down to 5% at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))


@contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` torch CPU threads, then restore the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_vlm(train_manifest: str | os.PathLike, out_dir: str | os.PathLike, *, steps: int | None = None,
              max_minutes: float | None = None, batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 0.01,
              warmup: int = 100, judge_pairs: int = 2, seed: int = 0, eval_manifest: str | os.PathLike | None = None,
              model_config: dict | None = None, cache_dir: str | os.PathLike | None = None, threads: int = 2,
              log_every: int = 50, eval_max_samples: int | None = None, progress: bool = True) -> dict:
    """Train a VLM from scratch on ``train_manifest``; save it to ``out_dir``; return the metrics.

    Give ``steps``, or ``max_minutes`` alone: then the speed of the first 20 steps fixes the number of
    steps (recorded in the metrics), so the schedule still ends at its minimum. With both, training
    stops at whichever comes first. ``model_config`` overrides :class:`~revise.model.vlm.VLMConfig`
    fields. ``eval_manifest`` (e.g. a test split) is evaluated at the end by :func:`evaluate_vlm`.
    """
    if steps is None and max_minutes is None:
        raise ConfigError("train_vlm needs steps or max_minutes")
    options = dict(locals())
    del options["threads"]
    with torch_threads(threads):
        return _train_vlm(**options)


def _train_vlm(train_manifest, out_dir, *, steps, max_minutes, batch_size, lr, weight_decay, warmup, judge_pairs, seed,
               eval_manifest, model_config, cache_dir, log_every, eval_max_samples, progress) -> dict:
    import torch
    from accelerate import Accelerator

    from ..model.tokenizer import TextTokenizer
    from ..model.vlm import ReviseVLM
    from ..model.vlm_data import TaskBuilder, collate, corpus, load_frames

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bank = load_frames(train_manifest, size=(model_config or {}).get("image_size", 32), cache_dir=cache_dir,
                       progress=progress)
    tokenizer = TextTokenizer.build(corpus(bank.samples))
    torch.manual_seed(seed)
    model = ReviseVLM.create(tokenizer, **(model_config or {}))
    k = model.config.frames
    builder = TaskBuilder(bank, k, seed=seed)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98))
    model, optimizer = accelerator.prepare(model, optimizer)
    core = accelerator.unwrap_model(model)
    prep_s = time.perf_counter() - started

    total = steps if steps is not None else 10**9
    deadline = None if max_minutes is None else time.perf_counter() + 60 * max_minutes
    epoch, queue = 0, []
    log = (out / "log.jsonl").open("w")
    window: dict[str, list[float]] = defaultdict(list)
    step = 0
    train_started = time.perf_counter()
    model.train()
    while step < total:
        if steps is None and step == 20:
            per_step = (time.perf_counter() - train_started) / 20
            total = max(21, int((deadline - train_started) / per_step * 0.97))
        if deadline is not None and time.perf_counter() > deadline:
            break
        while len(queue) < batch_size:
            queue += builder.epoch(epoch, judge_pairs=judge_pairs)
            epoch += 1
        batch, queue = queue[:batch_size], queue[batch_size:]
        tasks, instructions, answers, video1, video2 = collate(bank, batch, k)
        inputs = core.build_inputs(tasks, instructions, answers)
        scale = cosine_schedule(step, total if steps is not None or step >= 20 else 10**9, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr * scale
        loss, row_loss, _, first_ok = model(inputs, video1, video2)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        for e, rl, ok in zip(batch, row_loss.tolist(), first_ok.tolist()):
            window[f"loss_{e.task}"].append(rl)
            if e.task == "judge":
                window["judge_train_acc"].append(float(ok))
        step += 1
        if step % log_every == 0 or step == total:
            record = {"step": step, "epoch": epoch, "lr": lr * scale,
                      "seconds": round(time.perf_counter() - started, 1),
                      **{key: round(float(np.mean(v)), 4) for key, v in window.items()}}
            log.write(json.dumps(record) + "\n")
            log.flush()
            if progress:
                print(" ".join(f"{key}={val}" for key, val in record.items()), flush=True)
            window.clear()
    log.close()
    train_s = time.perf_counter() - train_started
    core.eval()
    core.save_pretrained(out)
    metrics = {"steps": step, "planned_steps": total, "batch_size": batch_size, "lr": lr, "seed": seed,
               "epochs_started": epoch, "train_samples": len(bank), "parameters": core.num_parameters(),
               "config": core.config.to_dict(), "prep_seconds": round(prep_s, 1), "train_seconds": round(train_s, 1)}
    if eval_manifest is not None:
        metrics["eval"] = evaluate_vlm(core, eval_manifest, seed=seed, cache_dir=cache_dir,
                                       max_samples=eval_max_samples, progress=progress)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def evaluate_vlm(model, manifest: str | os.PathLike, *, seed: int = 0, cache_dir: str | os.PathLike | None = None,
                 batch_size: int = 64, max_samples: int | None = None, reason: bool = True,
                 progress: bool = False) -> dict:
    """Judge and reasoning accuracy of ``model`` on ``manifest`` (see the module docstring for definitions).

    Returns ``{"judge_accuracy", "judge_positive_accuracy", "judge_negative_accuracy", "judge_by_kind",
    "judge_by_dimension", "reason": {exact, word_f1, keyword_f1, colour_match, token_accuracy,
    "by_dimension"}, "describe" (the same scores for the captions of the targets), "facts": {colour_match, object_match, colour_recall, "by_dimension"} (RVE-Sim samples,
    with state files, only), "samples", "seconds"}``.
    """
    import torch

    from ..data import load_manifest
    from ..model.vlm_data import FrameBank, TaskBuilder, collate, load_frames

    started = time.perf_counter()
    m = load_manifest(manifest)
    bank = load_frames(m, size=model.config.image_size, cache_dir=cache_dir, progress=progress)
    if max_samples is not None and max_samples < len(bank):
        bank = FrameBank(bank.samples[:max_samples], bank.source[:max_samples], bank.target[:max_samples])
    k = model.config.frames
    builder = TaskBuilder(bank, k, seed=seed)
    model.eval()
    judged = builder.judge_eval()
    correct: list[bool] = []
    with torch.no_grad():
        for start in range(0, len(judged), batch_size):
            chunk = judged[start:start + batch_size]
            _, instructions, _, video1, video2 = collate(bank, chunk, k)
            logit = model.judge_logit(video1, instructions, video2)
            correct += [bool((lg > 0) == e.label) for lg, e in zip(logit.tolist(), chunk)]
    by_kind: dict[str, list[bool]] = defaultdict(list)
    by_dim: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for e, ok in zip(judged, correct):
        kind = e.kind.split(":")[0] if e.kind.startswith("perturbed:") else e.kind
        by_kind[e.kind if e.kind.startswith("perturbed-all") else kind].append(ok)
        if kind in ("positive", "source", "other", "perturbed"):
            by_dim[bank.samples[e.video1.index].group]["positive" if kind == "positive" else "negative"].append(ok)
    pos = float(np.mean(by_kind["positive"]))
    neg = float(np.mean(by_kind["source"] + by_kind["other"] + by_kind["perturbed"]))
    result = {
        "samples": len(bank),
        "judge_accuracy": (pos + neg) / 2, "judge_positive_accuracy": pos, "judge_negative_accuracy": neg,
        "judge_by_kind": {key: {"accuracy": float(np.mean(v)), "n": len(v)} for key, v in sorted(by_kind.items())},
        "judge_by_dimension": {g: (float(np.mean(d["positive"])) + float(np.mean(d["negative"]))) / 2
                               for g, d in sorted(by_dim.items())},
    }
    if reason:
        result["reason"] = _evaluate_reasoning(model, bank, builder, batch_size, collate)
        if all(sample.metadata.get("target_caption") for sample in bank.samples):
            result["describe"] = _evaluate_answers(model, bank, [builder.describe(i) for i in range(len(bank))],
                                                   batch_size, collate)
        if all(sample.state is not None for sample in bank.samples):
            result["facts"] = _evaluate_facts(model, bank, builder, batch_size, collate)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def object_set(text: str) -> set[tuple[str, str]]:
    """The ``(colour, noun)`` pairs a text names ("a blue ball, an orange box" -> {(blue, ball), (orange, box)})."""
    words = _words(text)
    return {(a, b) for a, b in zip(words, words[1:]) if a in COLOURS and b not in COLOURS}


def _greedy_answers(model, bank, examples, batch_size: int, collate) -> tuple[list[str], list[float]]:
    """Greedy answers to ``examples`` and each one's teacher-forced token accuracy."""
    import torch

    k = model.config.frames
    outputs: list[str] = []
    token_acc: list[float] = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            tasks, instructions, answers, video1, _ = collate(bank, chunk, k)
            _, _, row_acc, _ = model(model.build_inputs(tasks, instructions, answers), video1)
            token_acc += row_acc.tolist()
            ids = model.greedy(model.build_inputs(tasks, instructions, padding="left"), video1, None,
                               model.config.max_answer_tokens + 1)
            outputs += [model.tokenizer.decode(row) for row in ids]
    return outputs, token_acc


def _evaluate_facts(model, bank, builder, batch_size: int, collate) -> dict:
    """The ``facts`` question (:data:`~revise.model.vlm_data.FACTS_QUESTION`) on every source clip against
    what the simulator knows is there: ``colour_match`` (the same set of colours), ``object_match`` (the
    same set of colour-object pairs), ``colour_recall`` (share of the true colours named), per dimension."""
    examples = [builder.facts(i) for i in range(len(bank))]
    outputs, _ = _greedy_answers(model, bank, examples, batch_size, collate)
    rows = []
    for e, text in zip(examples, outputs):
        true_c = {w for w in _words(e.answer) if w in COLOURS}
        said_c = {w for w in _words(text) if w in COLOURS}
        rows.append({"colour_match": float(said_c == true_c), "object_match": float(object_set(text) == object_set(e.answer)),
                     "colour_recall": len(said_c & true_c) / max(1, len(true_c))})
    keys = ("colour_match", "object_match", "colour_recall")
    by_dim: dict[str, list[dict]] = defaultdict(list)
    for e, r in zip(examples, rows):
        by_dim[bank.samples[e.video1.index].group].append(r)
    result = {key: float(np.mean([r[key] for r in rows])) for key in keys}
    result["by_dimension"] = {g: {key: float(np.mean([r[key] for r in v])) for key in keys}
                              for g, v in sorted(by_dim.items())}
    result["examples"] = [{"id": bank.samples[e.video1.index].id, "reference": e.answer, "generated": t}
                          for e, t in list(zip(examples, outputs))[:6]]
    return result


def _evaluate_reasoning(model, bank, builder, batch_size: int, collate) -> dict:
    return _evaluate_answers(model, bank, [builder.reason(i) for i in range(len(bank))], batch_size, collate)


def _evaluate_answers(model, bank, examples, batch_size: int, collate) -> dict:
    """Greedy answers to ``examples`` (reason or describe prompts) scored by :func:`answer_scores`."""
    outputs, token_acc = _greedy_answers(model, bank, examples, batch_size, collate)
    scores = [answer_scores(t, e.answer) for t, e in zip(outputs, examples)]
    keys = ("exact", "word_f1", "keyword_f1", "colour_match")
    by_dim: dict[str, list[dict]] = defaultdict(list)
    for e, s in zip(examples, scores):
        by_dim[bank.samples[e.video1.index].group].append(s)
    result = {key: float(np.mean([s[key] for s in scores])) for key in keys}
    result["token_accuracy"] = float(np.mean(token_acc))
    result["by_dimension"] = {g: {key: float(np.mean([s[key] for s in v])) for key in keys}
                              for g, v in sorted(by_dim.items())}
    result["examples"] = [{"id": bank.samples[e.video1.index].id, "instruction": e.instruction,
                           "reference": e.answer, "generated": t} for e, t in list(zip(examples, outputs))[:6]]
    return result
