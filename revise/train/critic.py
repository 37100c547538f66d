"""``revise train critic``: the internal VLM's judge learns from the generator's own failures.

The SFT judge learns "does the candidate satisfy the instruction?" from true targets (Yes) and from
negatives built out of the data set (the source, other samples' targets, perturbed targets). A generator's
failures look like none of these (blurred, half-moved, ghosted objects), and the SFT critic passes many of
them (docs/critic.md). This recipe closes the loop of ../shared/PAPER.md's self-reflection the other way
round: the model edits training clips itself, the exact ``gt`` judge labels each edit, and the judge
trains on those edits beside its usual examples.

1. **edits**: the checkpoint's generator edits ``edits_per_dimension`` train samples per dimension, in
   batches, at the generator's own size, conditioned exactly as ``revise edit`` is (the VLM's ``reason``
   hidden states, the instruction's tokens, CFG and the sampler defaults of the checkpoint);
2. **labels**: each edit, brought back to the clip's size as ``revise edit`` does, is scored by
   :class:`~revise.judges.gt.GroundTruthJudge` against the RVE-Sim state: ``passed`` is the label;
3. **training**: binary cross-entropy on the critic's logit ``log p(Yes) - log p(No)`` over batches that are
   ``failure_share`` generator edits and the rest the SFT judge examples (positives and negatives, so
   the judge keeps what it knew).

Only the judge-only parts of the VLM train: the candidate-comparison modules of the video encoder
(``vision.change``, ``vision.colours``, ``vision.summary_in``, ``vision.summary_out``, which only run for
a candidate video) and the critic's Yes/No head (``critic_head.safetensors``, as ``revise train srf
--unfreeze-critic-head`` writes it). The language model, the shared vision layers and the output matrix are
frozen, so the ``reason`` hidden states that condition the generator, and every describe / reason answer,
stay bit-identical; the generator is copied unchanged. The edits and labels are computed once (rank 0)
and stored in ``OUT/critic_data.npz``, so ``--resume`` continues on the same data. Same loop, state,
exact resume, CSV/TensorBoard logging and progress bar as :mod:`revise.train.sft`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .common import OneStage, check_settings, run_from_checkpoint
from .engine import SFTResult, lr_scale
from .sft import _Trainer

STAGE = "critic"
DATA_NAME = "critic_data.npz"
JUDGE_ONLY = ("vision.change.", "vision.colours.", "vision.summary_in.", "vision.summary_out.")


@dataclass
class CriticConfig(OneStage):
    """Every setting of a critic run (stored in ``OUT/critic_config.json``; ``resume`` refuses a changed one)."""

    STAGE = STAGE
    seed: int = 0
    per_dimension: int = 150
    edits_per_dimension: int = 15
    edit_steps: int | None = None
    edit_guidance: float | None = None
    edit_batch_size: int = 64
    steps: int = 250
    batch_size: int = 32
    failure_share: float = 0.5
    lr: float = 1e-3
    head_lr: float = 1e-3
    warmup: int = 20
    judge_pairs: int = 2
    max_minutes: float | None = None
    calibration_steps: int = 10
    checkpoint_every: int = 50
    log_every: int = 10

    def __post_init__(self):
        check_settings(self, "critic config", ("per_dimension", "edits_per_dimension", "edit_batch_size", "steps",
                                               "batch_size", "checkpoint_every", "log_every", "judge_pairs"))
        if not 0.0 < self.failure_share < 1.0:
            raise ConfigError(f"critic config: failure_share must be in (0, 1), got {self.failure_share}")
        if self.edit_steps is not None and self.edit_steps < 1:
            raise ConfigError(f"critic config: edit_steps must be >= 1, got {self.edit_steps}")

    def to_dict(self) -> dict:
        return asdict(self)



def judge_only_parameters(vlm) -> dict:
    """The VLM parameters that only a candidate video reaches (see the module docstring)."""
    return {n: p for n, p in vlm.named_parameters() if n.startswith(JUDGE_ONLY)}


def train_critic(init: str | os.PathLike, data: str | os.PathLike, out_dir: str | os.PathLike,
                 config: CriticConfig | None = None, *, resume: bool = False, threads: int | None = 1,
                 progress: bool = True) -> SFTResult:
    """Teach the judge of ``init`` (a unified checkpoint or ``revise-tiny``) its generator's failures."""
    return run_from_checkpoint(_CriticTrainer, init, data, out_dir, config or CriticConfig(), "critic_config.json", resume=resume,
                               threads=threads, progress=progress)


def edit_subset(samples: list, per_dimension: int, seed: int) -> list[int]:
    """Indices of up to ``per_dimension`` samples of every dimension, drawn by ``seed``, in bank order."""
    rng = np.random.default_rng([seed, 4242])
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.group, []).append(i)
    chosen: list[int] = []
    for group in sorted(groups):
        idx = groups[group]
        chosen += [idx[int(j)] for j in rng.permutation(len(idx))[:per_dimension]]
    return sorted(chosen)


class _CriticTrainer(_Trainer):
    def __init__(self, init: Path, data: Path, out: Path, config: CriticConfig, resume: bool, progress: bool):
        super().__init__(data, out, config, resume, progress)
        if getattr(self, "strategy", None) in ("fsdp", "deepspeed"):
            raise ConfigError(f"train critic runs on one process or DDP, not {self.strategy}: it trains a few "
                              "judge-only tensors, replicated; launch with configs/accelerate/ddp.yaml")
        self.init = init

    def run(self) -> SFTResult:
        from ..model.unified import ReviseModel
        from ..provenance import base_provenance

        acc = self.accelerator
        provenance = base_provenance()  # the code this run starts with, not what the tree holds when it ends
        self.bank = self.load_bank(self.begin(), 32)
        model = ReviseModel.from_pretrained(self.init)
        with acc.main_process_first():
            edits = self.failures(model)
        finished = self.train(model, edits)  # a finished stage restores its last state: write() needs it
        if finished and acc.is_main_process:
            self.write(model, edits, provenance)
        return self.end(finished)

    # ---- 1 + 2: the generator's edits of train clips, labelled by the exact judge ----------------------
    def failures(self, model) -> dict:
        """``{"index", "edits" (n, T, S, S, 3) uint8 at the generator's size S, "passed", "reasoning"}`` from
        ``OUT/critic_data.npz``, made first if missing (only by rank 0: the others wait in
        ``main_process_first``)."""
        path = self.out / DATA_NAME
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        import torch

        from ..judges.base import JudgeInput
        from ..judges.gt import GroundTruthJudge
        from ..video import Video, read_video

        cfg = self.cfg
        index = edit_subset(self.bank.samples, cfg.edits_per_dimension, cfg.seed)
        hidden, masks = self.vlm_features(model.vlm)
        gen = model.generator.eval()
        frames = self.generator_bank(gen)  # the sources at the generator's size, as `revise edit` feeds it
        edits = []
        noise_rng = torch.Generator().manual_seed(cfg.seed * 7919 + 53)
        with self.progress_bar() as bar, torch.no_grad():
            task = bar.add_task("critic: generator edits", total=len(index), info="")
            for start in range(0, len(index), cfg.edit_batch_size):
                rows = index[start:start + cfg.edit_batch_size]
                source = torch.from_numpy(frames.source[rows]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
                ids = torch.stack([gen.pad_ids(model.text_ids(self.bank.samples[i].instruction))[0] for i in rows])
                x0 = gen.sample_clean(source, ids, hidden[rows], masks[rows], steps=cfg.edit_steps,
                                      guidance=cfg.edit_guidance, generator=noise_rng)
                edits.append(((x0.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy())
                bar.update(task, advance=len(rows))
        edits = np.concatenate(edits)
        judge = GroundTruthJudge()
        passed, reasoning = [], []
        with self.progress_bar() as bar:
            task = bar.add_task("critic: gt labels", total=len(index), info="")
            for n, i in enumerate(index):
                s = self.bank.samples[i]
                src, tgt = read_video(s.source), read_video(s.target)
                full = gen.output_frames(torch.from_numpy(edits[n]).permute(3, 0, 1, 2).float() / 127.5 - 1.0,
                                         src.frames)  # as `revise edit` returns it (detail transfer included)
                verdict = judge.score(JudgeInput(s, src, Video(full, src.fps), tgt, ""))
                passed.append(bool(verdict.passed))
                reasoning.append(float(verdict.reasoning))
                bar.update(task, advance=1, info=f"passed {np.mean(passed):.1%}")
        data = {"index": np.asarray(index, np.int64), "edits": edits, "passed": np.asarray(passed, bool),
                "reasoning": np.asarray(reasoning, np.float32)}
        if self.accelerator.is_main_process:
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez_compressed(tmp, **data)
            os.replace(tmp, path)
        with np.load(path, allow_pickle=False) as stored:  # what every rank and every resume reads
            return {k: stored[k] for k in stored.files}

    # ---- 3: the judge-only parts and the Yes/No head ---------------------------------------------------
    def train(self, model, edits: dict) -> bool:
        import torch
        import torch.nn.functional as F

        from ..model.vlm_data import TaskBuilder, collate
        from .srf import critic_logit

        cfg, acc = self.cfg, self.accelerator
        vlm = model.vlm
        k = vlm.config.frames
        bank = self.bank_at(vlm.config.image_size)
        for p in vlm.parameters():
            p.requires_grad_(False)
        judge_only = judge_only_parameters(vlm)
        for p in judge_only.values():
            p.requires_grad_(True)
        head = torch.nn.Parameter(vlm.yes_no_rows().detach().clone())
        trainable = torch.nn.ParameterDict({"yes_no": head, **{n.replace(".", "/"): p for n, p in judge_only.items()}})
        optimizer = torch.optim.AdamW([{"params": list(judge_only.values()), "lr": cfg.lr, "weight_decay": 0.01},
                                       {"params": [head], "lr": cfg.head_lr, "weight_decay": 0.0}], betas=(0.9, 0.98))
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + 41 + acc.process_index)
        builder = TaskBuilder(bank, k, seed=cfg.seed + 1000 * acc.process_index + 7)
        step = self.restore(STAGE, {"critic": trainable}, optimizer, {"data": gen})
        vlm.train()
        n_fail = max(1, int(round(cfg.batch_size * cfg.failure_share)))
        n_base = max(1, cfg.batch_size - n_fail)
        fail_edits = torch.from_numpy(edits["edits"]).permute(0, 1, 4, 2, 3).float() / 255.0  # (n, T, 3, S, S)
        fail_src = torch.from_numpy(self.bank.source[edits["index"]]).permute(0, 1, 4, 2, 3).float() / 255.0
        fail_label = torch.from_numpy(edits["passed"].astype(np.float32))
        fail_text = [self.bank.samples[int(i)].instruction for i in edits["index"]]

        def judge_rows():
            epoch, queue = 0, []
            while True:
                while len(queue) < n_base:
                    queue += [e for e in builder.epoch(epoch, judge_pairs=cfg.judge_pairs) if e.task == "judge"]
                    epoch += 1
                yield queue[:n_base]
                queue = queue[n_base:]

        stream = judge_rows()
        for _ in range(step):  # replay the example order up to the resumed step (no frames are touched)
            next(stream)

        def step_fn(i: int, total: int):
            for g_index, group in enumerate(optimizer.param_groups):
                group["lr"] = (cfg.lr if g_index == 0 else cfg.head_lr) * lr_scale(i, total, cfg.warmup)
            base = next(stream)
            _, texts, answers, video1, video2 = collate(bank, base, k)
            pick = torch.randint(0, len(fail_label), (n_fail,), generator=gen)
            logit_base = critic_logit(vlm, head, video1, video2, texts)
            logit_fail = critic_logit(vlm, head, fail_src[pick], fail_edits[pick], [fail_text[int(j)] for j in pick])
            labels_base = torch.tensor([float(a == "Yes") for a in answers])
            loss_base = F.binary_cross_entropy_with_logits(logit_base, labels_base)
            loss_fail = F.binary_cross_entropy_with_logits(logit_fail, fail_label[pick])
            loss = (n_base * loss_base + n_fail * loss_fail) / (n_base + n_fail)
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if self.world > 1:  # nothing here is wrapped: average every trainable gradient by hand
                for p in trainable.parameters():
                    if p.grad is not None:
                        p.grad = acc.reduce(p.grad, reduction="mean")
            torch.nn.utils.clip_grad_norm_(list(trainable.parameters()), 1.0)
            optimizer.step()
            with torch.no_grad():
                detail = {"loss_sft_judge": float(loss_base), "loss_failures": float(loss_fail),
                          "sft_judge_acc": float(((logit_base > 0).float() == labels_base).float().mean()),
                          "failure_acc": float(((logit_fail > 0).float() == fail_label[pick]).float().mean())}
            return float(loss.item()), optimizer.param_groups[0]["lr"], detail

        def save(i: int):
            self.checkpoint(STAGE, {"critic": trainable}, optimizer, {"data": gen}, i)

        done = self.loop(STAGE, cfg.steps, step, step_fn, save)
        vlm.eval()
        for p in judge_only.values():
            p.requires_grad_(False)
        vlm.critic_head = head.detach().clone()
        if done and STAGE not in self.meta["done"]:
            self.meta["done"].append(STAGE)
            save(int(self.meta["stage_steps"][STAGE]))
        return done

    def write(self, model, edits: dict, provenance: dict) -> None:
        """The init's generator (copied), the VLM with its trained judge-only parts and critic head, and
        ``revise.json`` recording both trainings and the edits' pass rate."""
        from ..model.unified import FORMAT, MANIFEST_NAME

        shutil.rmtree(self.out / "generator", ignore_errors=True)
        shutil.copytree(self.init / "generator", self.out / "generator")
        model.vlm.save_pretrained(self.out / "vlm")
        before = json.loads((self.init / MANIFEST_NAME).read_text())
        info = {k: v for k, v in before.items() if k not in ("format", "vlm", "generator", "text", "training",
                                                            "provenance")}
        manifest = {**info, "format": FORMAT, "vlm": "vlm", "generator": "generator",
                    "text": "the generator's instruction ids come from vlm/tokenizer.json",
                    "training": {"recipe": "critic", "init": str(self.init), "config": self.cfg.to_dict(),
                                 "steps": self.meta["stage_steps"], "seconds": round(self.elapsed(), 1),
                                 "train_samples": len(self.bank), "edits": int(len(edits["passed"])),
                                 "edits_passed": int(edits["passed"].sum()), "final_loss": self.meta["loss"],
                                 "init_training": before.get("training")},
                    "provenance": provenance}
        (self.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
