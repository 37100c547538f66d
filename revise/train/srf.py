"""``revise train srf``: self-reflective fine-tuning of the generator with its own VLM as the critic.

ReViSE's objective (../shared/PAPER.md §3), implemented here (no code was released)::

    L = L_FM + lambda * ( -log p_critic(Yes | decode(x0_hat), source, instruction) )

``x0_hat = x_t - t v_theta`` is the one-step clean estimate of the current step (it keeps its graph);
"decode" is the identity up to scaling for this pixel-space generator ([-1, 1] -> [0, 1]); the critic is
the unified model's internal VLM asked its ``judge`` prompt. Its weights are frozen, but the gradient
flows *through* it into the generator: no external critic, no policy gradient. The reward term is applied
to samples whose ``t`` lies in ``reward_t_range`` (where x0_hat is a usable picture) and whose condition
was not dropped for CFG, every ``reward_every`` steps.

``reward_sampler_steps`` = N > 0 puts the reward on a real sample instead, as DRaFT-K (Clark et al., 2024)
and ReFL (Xu et al., 2023) do: the generator samples each batch's sources from fresh noise with N Euler
steps (``reward_guidance``), keeping the graph of the last ``reward_grad_last`` = K steps only, and the
critic judges the result. ``reward_clip`` > 0 clips the critic's log-odds from above before the loss (a
hinge: an edit the critic already passes by that margin gets no push towards "more Yes"), for either
reward.

``unfreeze_critic_head`` trains the critic's output head too, as the official config does: here the
head is the pair of Yes/No rows of the VLM's output matrix, copied into a separate parameter (the
matrix is tied to the input embeddings, which stay frozen). Trained on the reward alone such a head
learns to say Yes to anything; so while it trains it also sees the true target (Yes) and the
unchanged source (No) of each batch (binary cross-entropy, weight ``head_anchor``). The trained head is
written back into ``vlm/`` so the checkpoint's critic is the one that was trained.

``lambda = 0`` is FM-only fine-tuning from the same initialisation: exactly the same batches, noise and
updates as the ablation's counterpart (the reward is then not even computed). Same loop, checkpoints,
exact resume, CSV/TensorBoard logging and progress bar as :mod:`revise.train.sft`.

``critic_refresh_every`` = K > 0 is a critic that keeps learning, the reward-model refresh of RLHF and of
Adv-GRPO: every K steps the generator, as it is then, edits ``refresh_edits`` train clips (a seeded draw of
its own), the reference judge ``labels`` (``gt`` on RVE-Sim; any registered judge) labels each edit brought
back to the clip's size as ``revise edit`` returns it (Yes when its Reasoning is >= 4, the pass of ``revise
bench agreement``), the edits join a first-in-first-out buffer of ``refresh_buffer``, and the critic's Yes/No
head takes ``refresh_steps`` steps of binary cross-entropy on batches that mix buffered edits with each
sample's true target (Yes) and unchanged source (No), so that it does not forget what it knew. The reward
then reads the refreshed head; the reward's own gradient never reaches the head. The buffer, the draw and
the head's moments are part of the training state, so ``--resume`` stays exact.

``monitor_every`` > 0 adds the reward-hacking monitor (:mod:`revise.train.monitor`): every that many steps,
before the first and after the last, the generator edits a fixed RVE-Sim val set, the critic and the exact
gt judge score the edits, and one row goes to ``OUT/metrics.jsonl``. It uses its own seeds, so the training
batches, noise and updates are the same with it and without it.
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


@dataclass
class SRFConfig(OneStage):
    """Every setting of a self-reflective run (stored in ``OUT/srf_config.json``)."""

    STAGE = "srf"
    seed: int = 0
    per_dimension: int = 150
    steps: int = 300
    batch_size: int = 8
    lr: float = 2e-4
    warmup: int = 20
    lam: float = 0.1
    reward_t_range: tuple[float, float] = (0.0, 0.6)
    reward_every: int = 1
    unfreeze_critic_head: bool = False
    head_lr: float = 1e-4
    head_anchor: float = 1.0
    grad_checkpointing: bool = False
    loss_space: str = "x0"
    change_weight: float = 0.0
    max_minutes: float | None = None
    calibration_steps: int = 10
    checkpoint_every: int = 100
    log_every: int = 25
    reward_sampler_steps: int = 0   # 0: the reward on the one-step estimate; N: on an N-step sample (DRaFT-K)
    reward_grad_last: int = 1       # with reward_sampler_steps: the last K sampler steps keep their graph
    reward_guidance: float | None = None  # with reward_sampler_steps: the sampler's CFG (None: the checkpoint's)
    reward_clip: float = 0.0        # > 0: the critic's log-odds clipped at this (no push past it); 0 = off
    critic_refresh_every: int = 0   # > 0: every N steps the critic head learns from fresh, labelled edits
    refresh_edits: int = 16         # train clips the generator edits per refresh
    refresh_steps: int = 10         # head steps per refresh
    refresh_buffer: int = 256       # labelled edits kept (first in, first out)
    labels: str = "gt"              # the reference judge that labels them (any registered judge)
    monitor_every: int = 0          # steps between reward-hacking evaluations (revise.train.monitor); 0 = off
    monitor_data: str = ""          # its RVE-Sim val manifest; "" = a val split generated into OUT/monitor-val
    monitor_samples: int = 16       # how many of its samples (the first ones)

    def __post_init__(self):
        check_settings(self, "srf config", ("steps", "batch_size", "reward_every", "checkpoint_every", "log_every",
                                            "per_dimension", "monitor_samples", "refresh_edits", "refresh_steps",
                                            "refresh_buffer"), t_range=True, loss_space=True)
        if int(self.critic_refresh_every) < 0:
            raise ConfigError(f"srf config: critic_refresh_every must be >= 0 (0 = off), got {self.critic_refresh_every}")
        if self.critic_refresh_every and self.unfreeze_critic_head:
            raise ConfigError("srf config: --critic-refresh-every and --unfreeze-critic-head both train the critic's "
                              "head (from labelled edits, and from the reward with anchors); choose one")
        if not self.lam >= 0:
            raise ConfigError(f"srf config: lambda must be >= 0, got {self.lam}")
        if int(self.reward_sampler_steps) < 0:
            raise ConfigError(f"srf config: reward_sampler_steps must be >= 0 (0 = one-step estimate), "
                              f"got {self.reward_sampler_steps}")
        if self.reward_sampler_steps and not 1 <= int(self.reward_grad_last) <= int(self.reward_sampler_steps):
            raise ConfigError(f"srf config: reward_grad_last must be in [1, reward_sampler_steps="
                              f"{self.reward_sampler_steps}], got {self.reward_grad_last}")
        if not self.reward_clip >= 0:
            raise ConfigError(f"srf config: reward_clip must be >= 0 (0 = off), got {self.reward_clip}")
        if self.reward_guidance is not None and not (np.isfinite(self.reward_guidance) and self.reward_guidance >= 0):
            raise ConfigError(f"srf config: reward_guidance must be a finite number >= 0, got {self.reward_guidance}")
        if int(self.monitor_every) < 0:
            raise ConfigError(f"srf config: monitor_every must be >= 0 (0 = off), got {self.monitor_every}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reward_t_range"] = list(self.reward_t_range)
        return d



def to_unit_video(x):
    """Generator layout ``(B, 3, T, H, W)`` in [-1, 1] -> the VLM's ``(B, T, 3, H, W)`` in [0, 1] ("decode")."""
    return ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 1, 3, 4)


def critic_logit(vlm, head, source01, candidate01, instructions: list[str]):
    """``log p(Yes) - log p(No)`` of the critic's judge prompt with Yes/No rows ``head`` ``(2, hidden)``;
    differentiable in ``candidate01`` (and in ``head``)."""
    hidden, _ = vlm.encode(source01, instructions, candidate01)
    return hidden[:, -1] @ (head[0] - head[1])


def reward_loss(vlm, head, source, x0_hat, instructions: list[str], clip: float = 0.0):
    """The self-reflective term ``-log p_critic(Yes | decode(x0_hat), source, instruction)``, averaged.

    ``source`` and ``x0_hat`` are generator tensors ``(B, 3, T, H, W)`` in [-1, 1]; ``p`` is renormalised
    over Yes/No, so the term is ``softplus(-logit)``. ``clip`` > 0 clips the logit at ``clip`` from above
    first: a sample the critic already passes with log-odds ``clip`` or more gets no gradient (the hinge of
    ReFL / DRaFT against reward over-optimisation). Returns ``(loss, logit)`` (the logit unclipped).
    """
    import torch.nn.functional as F

    logit = critic_logit(vlm, head, to_unit_video(source), to_unit_video(x0_hat), instructions)
    scored = logit.clamp(max=float(clip)) if clip > 0 else logit
    return F.softplus(-scored).mean(), logit


def parse_range(text: str) -> tuple[float, float]:
    """``"0.0,0.6"`` -> ``(0.0, 0.6)`` with a one-line error."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--reward-t-range {text!r}: expected two numbers like 0.0,0.6") from None
    return lo, hi


def train_srf(init: str | os.PathLike, data: str | os.PathLike, out_dir: str | os.PathLike,
              config: SRFConfig | None = None, *, resume: bool = False, threads: int | None = 1,
              progress: bool = True) -> SFTResult:
    """Fine-tune the generator of ``init`` (a unified checkpoint or ``revise-tiny``) into ``out_dir``."""
    return run_from_checkpoint(_SRFTrainer, init, data, out_dir, config or SRFConfig(), "srf_config.json", resume=resume,
                               threads=threads, progress=progress)


class _SRFTrainer(_Trainer):
    def __init__(self, init: Path, data: Path, out: Path, config: SRFConfig, resume: bool, progress: bool):
        super().__init__(data, out, config, resume, progress)
        self.init = init

    def run(self) -> SFTResult:
        from ..model.unified import ReviseModel
        from ..provenance import base_provenance

        provenance = base_provenance()  # the code this run starts with, not what the tree holds when it ends
        self.bank = self.load_bank(self.begin(), 32)
        model = ReviseModel.from_pretrained(self.init)
        if model.generator.vae is not None:
            raise ConfigError(f"{self.init}: train srf does not support a latent-space generator yet (its reward "
                              "reads pixels; the VAE decode is not in its loss); use a pixel-space checkpoint")
        finished = self.train(model)  # a finished stage restores its last state (no steps): write() needs it
        if finished and self.accelerator.is_main_process:
            self.write(model, provenance)
        return self.end(finished)

    def train(self, unified) -> bool:
        import torch
        import torch.nn.functional as F

        from ..model.flow import flow_matching_loss
        from ..model.flow import sample as flow_sample

        cfg, acc = self.cfg, self.accelerator
        if cfg.reward_sampler_steps and cfg.lam > 0 and self.world > 1:
            raise ConfigError("--reward-sampler-steps: the sampled reward runs the generator outside its "
                              "distributed wrapper; use one process (or the one-step reward)")
        vlm, generator = unified.vlm, unified.generator
        dev = acc.device  # the critic runs beside the generator; the bank stays on the CPU
        vlm.to(dev).eval()
        for p in vlm.parameters():
            p.requires_grad_(False)
        hidden, masks = self.vlm_features(vlm)
        ids = torch.stack([generator.pad_ids(unified.text_ids(s.instruction))[0] for s in self.bank.samples])
        instructions = [s.instruction for s in self.bank.samples]
        frames = self.generator_bank(generator)  # at the generator's size; the VLM's features from its own
        source, target = frames.source, frames.target  # uint8 (N, T, H, W, 3), memory-mapped (read-only) when cached
        # the critic's Yes/No head: a separate copy of the two output rows, trainable only on request
        refreshing = cfg.critic_refresh_every > 0
        head = torch.nn.Parameter(vlm.yes_no_rows().detach().clone(),
                                  requires_grad=cfg.unfreeze_critic_head or refreshing)
        head_module = torch.nn.ParameterDict({"yes_no": head})
        groups = [{"params": list(generator.parameters()), "lr": cfg.lr, "weight_decay": 0.01}]
        if cfg.unfreeze_critic_head or refreshing:
            groups.append({"params": [head], "lr": cfg.head_lr, "weight_decay": 0.0})
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.99))
        generator.train()
        if cfg.grad_checkpointing:
            generator.transformer.enable_gradient_checkpointing()
            (getattr(vlm.lm, "activation_checkpointing_enable", None) or vlm.lm.gradient_checkpointing_enable)()
            vlm.lm.train()  # transformers only checkpoints in training mode; the toy LM has no dropout
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + 29 + acc.process_index)
        modules = {"generator": generator, "critic_head": head_module}
        rngs = {"data": gen}
        if refreshing:  # the same draw on every rank: every rank's head takes the same steps
            if self.world > 1 and self.strategy != "ddp":
                raise ConfigError(f"--critic-refresh-every: the refresh edits with the whole generator on every rank; "
                                  f"under {self.strategy} each rank holds a shard of it (use one process or DDP)")
            t_, h_, w_ = generator.video_shape
            buffer = torch.nn.Module()
            buffer.register_buffer("edits", torch.zeros(cfg.refresh_buffer, t_, h_, w_, 3, dtype=torch.uint8))
            buffer.register_buffer("index", torch.zeros(cfg.refresh_buffer, dtype=torch.int64))
            buffer.register_buffer("label", torch.zeros(cfg.refresh_buffer))
            buffer.register_buffer("count", torch.zeros((), dtype=torch.int64))
            modules["critic_buffer"] = buffer
            rngs["refresh"] = torch.Generator().manual_seed(cfg.seed * 7919 + 101)
            from ..judges.base import create_judge

            self.label_judge = create_judge(cfg.labels)  # an unknown judge fails before the first step
        step = self.restore("srf", modules, optimizer, rngs)
        wrapped, optimizer = self.prepare(generator, optimizer)  # the frozen critic is not wrapped
        lo, hi = cfg.reward_t_range
        monitor = self.monitor_hook(unified, head, step)

        def unit(clips, idx):  # the batch's clips, read from the bank -> (B, 3, T, H, W) in [-1, 1]
            x = torch.from_numpy(np.ascontiguousarray(clips[idx.numpy()])).permute(0, 4, 1, 2, 3)
            return x.to(dev).float() / 127.5 - 1.0

        def step_fn(i: int, total: int):
            if monitor is not None and i % cfg.monitor_every == 0:
                monitor(i)
            refreshed = {}
            if refreshing and i % cfg.critic_refresh_every == 0:
                refreshed = self.refresh_critic(unified, head, optimizer, buffer, rngs["refresh"], source, target,
                                                ids, hidden, masks, i, total)
            for g_index, group in enumerate(optimizer.param_groups):
                base = cfg.lr if g_index == 0 else cfg.head_lr
                group["lr"] = base * lr_scale(i, total, cfg.warmup)
            idx = torch.randint(0, len(source), (cfg.batch_size,), generator=gen)
            src = unit(source, idx)
            batch = {"source": src, "target": unit(target, idx), "text_ids": ids[idx].to(dev),
                     "vlm_hidden": hidden[idx].to(dev), "vlm_mask": masks[idx].to(dev)}
            loss_fm, extras = flow_matching_loss(wrapped, batch, gen, change_weight=cfg.change_weight,
                                                 loss_space=cfg.loss_space)
            loss = loss_fm
            detail = {"loss_fm": float(loss_fm.item()), **refreshed}
            if cfg.lam > 0 and i % cfg.reward_every == 0 and cfg.reward_sampler_steps:
                # DRaFT-K: a fresh sample of the whole sampler, the graph kept for its last K steps only
                noise = torch.randn(src.shape, generator=gen).to(dev)
                x0 = flow_sample(generator, src, batch["text_ids"], batch["vlm_hidden"], batch["vlm_mask"],
                                 steps=cfg.reward_sampler_steps, guidance=cfg.reward_guidance, noise=noise,
                                 grad_last=cfg.reward_grad_last)
                texts = [instructions[int(j)] for j in idx]
                reward, logit = reward_loss(vlm, reward_head(), src, x0.float(), texts, cfg.reward_clip)
                loss = loss + cfg.lam * reward
                detail.update({"reward_loss": float(reward.item()),
                               "critic_p_yes": float(torch.sigmoid(logit).mean().item()),
                               "reward_rows": float(len(idx))})
            elif cfg.lam > 0 and i % cfg.reward_every == 0:
                use = (extras.t >= lo) & (extras.t <= hi) & ~extras.drop
                if bool(use.any()):
                    rows = torch.nonzero(use)[:, 0]
                    texts = [instructions[int(j)] for j in idx[rows.cpu()]]
                    reward, logit = reward_loss(vlm, reward_head(), src[rows], extras.x0_hat[rows], texts,
                                                cfg.reward_clip)
                    loss = loss + cfg.lam * reward
                    detail.update({"reward_loss": float(reward.item()),
                                   "critic_p_yes": float(torch.sigmoid(logit).mean().item()),
                                   "reward_rows": float(len(rows))})
            if cfg.unfreeze_critic_head:
                s01, t01 = to_unit_video(src), to_unit_video(batch["target"])
                texts = [instructions[int(j)] for j in idx]
                anchor_logits = torch.cat([critic_logit(vlm, head, s01, t01, texts),
                                           critic_logit(vlm, head, s01, s01, texts)])
                labels = torch.cat([torch.ones(len(idx)), torch.zeros(len(idx))]).to(anchor_logits.device)
                anchor = F.binary_cross_entropy_with_logits(anchor_logits, labels)
                loss = loss + cfg.head_anchor * anchor
                detail["head_anchor_loss"] = float(anchor.item())
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if cfg.unfreeze_critic_head and self.world > 1 and self.strategy != "deepspeed":
                # DDP / FSDP average the generator's gradients, not the head's (DeepSpeed's engine holds the head
                # too: it averaged and applied its gradient inside acc.backward)
                head.grad = acc.reduce(head.grad, reduction="mean")
            acc.clip_grad_norm_(wrapped.parameters(), 1.0)
            optimizer.step()
            return float(loss.item()), optimizer.param_groups[0]["lr"], detail

        def reward_head():  # a refreshed head learns from labels only, never from the reward
            return head.detach() if refreshing else head

        def save(i: int):
            self.checkpoint("srf", modules, optimizer, rngs, i)

        done = self.loop("srf", cfg.steps, step, step_fn, save)
        if monitor is not None and done:
            monitor(int(self.meta["stage_steps"].get("srf", cfg.steps)))  # the finished generator
        generator.eval()
        unified.generator = self.full_module(generator)  # every rank: FSDP / DeepSpeed gather the full weights
        vlm.lm.eval()
        if cfg.grad_checkpointing:
            generator.transformer.disable_gradient_checkpointing()
            (getattr(vlm.lm, "activation_checkpointing_disable", None) or vlm.lm.gradient_checkpointing_disable)()
        self.head = head.detach().cpu().clone()
        if done and "srf" not in self.meta["done"]:
            self.meta["done"].append("srf")
            self.checkpoint("srf", modules, optimizer, rngs, int(self.meta["stage_steps"]["srf"]))
        return done

    def refresh_critic(self, unified, head, optimizer, buffer, rng, source, target, ids, hidden, masks, step: int,
                       total: int) -> dict:
        """One refresh of the critic's head (see the module docstring); returns the step's log details."""
        import torch
        import torch.nn.functional as F

        from ..judges.base import JudgeInput
        from ..video import Video, read_video
        from ..bench.agreement import passes
        from .monitor import CRITIC_PASS, pearson

        cfg = self.cfg
        generator, vlm = unified.generator, unified.vlm
        judge = self.label_judge
        dev = self.accelerator.device
        picks = torch.randint(0, len(source), (cfg.refresh_edits,), generator=rng)
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            src = torch.from_numpy(np.ascontiguousarray(source[picks.numpy()])).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
            src = src.to(dev)
            x0 = generator.sample_clean(src, ids[picks].to(dev), hidden[picks].to(dev), masks[picks].to(dev),
                                        generator=rng)
        generator.train(was_training)
        edits = ((x0.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu()
        labels = []
        for n, j in enumerate(picks.tolist()):
            sample = self.bank.samples[j]
            clip = read_video(sample.source)
            full = generator.output_frames(edits[n].permute(3, 0, 1, 2).float() / 127.5 - 1.0, clip.frames)
            reference = read_video(sample.target) if sample.target is not None else None
            verdict = judge.score(JudgeInput(sample, clip, Video(full, clip.fps), reference, ""))
            labels.append(1.0 if verdict.reasoning is not None and passes(verdict.reasoning) else 0.0)
        count = int(buffer.count)
        cap = len(buffer.label)
        for n, j in enumerate(picks.tolist()):  # first in, first out
            slot = (count + n) % cap
            buffer.edits[slot], buffer.index[slot], buffer.label[slot] = edits[n], j, labels[n]
        buffer.count.fill_(count + len(picks))
        held = min(int(buffer.count), cap)
        with torch.no_grad():
            before = torch.sigmoid(critic_logit(vlm, head, to_unit_video(src),
                                                edits.permute(0, 1, 4, 2, 3).float().div(255.0).to(dev),
                                                [self.bank.samples[j].instruction for j in picks.tolist()])).cpu()
        group = optimizer.param_groups[1]
        group["lr"] = cfg.head_lr * lr_scale(step, total, cfg.warmup)
        losses = []
        for _ in range(cfg.refresh_steps):
            rows = torch.randint(0, held, (min(cfg.batch_size, held),), generator=rng)
            j = buffer.index[rows]
            texts = [self.bank.samples[int(k)].instruction for k in j]
            s01 = torch.from_numpy(np.ascontiguousarray(source[j.numpy()])).float().div(255.0).permute(0, 1, 4, 2, 3)
            t01 = torch.from_numpy(np.ascontiguousarray(target[j.numpy()])).float().div(255.0).permute(0, 1, 4, 2, 3)
            e01 = buffer.edits[rows].float().div(255.0).permute(0, 1, 4, 2, 3)
            s01, t01, e01 = s01.to(dev), t01.to(dev), e01.to(dev)
            logits = torch.cat([critic_logit(vlm, head, s01, e01, texts), critic_logit(vlm, head, s01, t01, texts),
                                critic_logit(vlm, head, s01, s01, texts)])
            y = torch.cat([buffer.label[rows], torch.ones(len(rows)), torch.zeros(len(rows))]).to(logits.device)
            loss = F.binary_cross_entropy_with_logits(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for p in optimizer.param_groups[0]["params"]:  # only the head moves here
                p.grad = None
            optimizer.step()
            losses.append(float(loss.item()))
        optimizer.zero_grad(set_to_none=True)
        yes = [p >= CRITIC_PASS for p in before.tolist()]
        return {"refresh_loss": round(float(np.mean(losses)), 6), "refresh_gt_pass": float(np.mean(labels)),
                "refresh_agreement": float(np.mean([a == (b > 0.5) for a, b in zip(yes, labels)])),
                "refresh_corr": float("nan") if (r := pearson(before.tolist(), labels)) is None else r}

    def monitor_hook(self, unified, head, resume_step: int):
        """``monitor(step)``: one reward-hacking evaluation logged to ``OUT/metrics.jsonl`` (each step once,
        a resumed run included), or None when ``monitor_every`` is 0. The val set is read (or generated by
        rank 0) here, so a bad one fails before the first step."""
        cfg, acc = self.cfg, self.accelerator
        if not cfg.monitor_every:
            return None
        if self.world > 1 and self.strategy != "ddp":
            raise ConfigError(f"--monitor-every: the monitor edits with the whole generator on every rank; under "
                              f"{self.strategy} each rank holds a shard of it (use one process or DDP)")
        from ..sim import generate_dataset
        from .monitor import MonitorLog, evaluate, load_monitor_set

        path = Path(cfg.monitor_data) if cfg.monitor_data else self.out / "monitor-val"
        if not cfg.monitor_data:
            with acc.main_process_first():
                if acc.is_main_process and not (path / "manifest.jsonl").is_file():
                    generate_dataset(path, per_dimension=-(-cfg.monitor_samples // 8), seed=0, split="val",
                                     overwrite=True, progress=False)
        monitor_set = load_monitor_set(path, cfg.monitor_samples)
        log = MonitorLog(self.out, resume_step, main=acc.is_main_process)

        def monitor(step: int) -> None:
            if log.done(step):
                return
            row = evaluate(unified, head.detach(), monitor_set, seed=cfg.seed)
            log.log(step, row, {"seconds": round(self.elapsed(), 1), "lam": cfg.lam,
                                "val": str(monitor_set.manifest)})
            acc.log({f"monitor/{k}": row[k] for k in ("critic_p_yes", "gt_share", "agreement")
                     if row.get(k) is not None}, step=step)

        return monitor

    def write(self, unified, provenance: dict) -> None:
        """The fine-tuned checkpoint: the init's VLM (plus ``critic_head.safetensors`` when the head trained)
        and the new generator, and ``revise.json`` recording both trainings."""
        from safetensors.torch import save_file

        from ..model.unified import FORMAT, MANIFEST_NAME
        from ..model.vlm import CRITIC_HEAD_NAME

        shutil.rmtree(self.out / "vlm", ignore_errors=True)
        shutil.copytree(self.init / "vlm", self.out / "vlm")
        if (self.cfg.unfreeze_critic_head or self.cfg.critic_refresh_every) and getattr(self, "head", None) is not None:
            # the VLM stores one matrix tied to its input embeddings; the trained Yes/No rows go beside it
            save_file({"yes_no": self.head.contiguous()}, str(self.out / "vlm" / CRITIC_HEAD_NAME))
        unified.generator.save_pretrained(self.out / "generator", safe_serialization=True)
        before = json.loads((self.init / MANIFEST_NAME).read_text())
        manifest = {"format": FORMAT, "vlm": "vlm", "generator": "generator",
                    "text": "the generator's instruction ids come from vlm/tokenizer.json",
                    "training": {"recipe": "srf", "init": str(self.init), "config": self.cfg.to_dict(),
                                 "steps": self.meta["stage_steps"], "seconds": round(self.elapsed(), 1),
                                 "train_samples": len(self.bank), "final_loss": self.meta["loss"],
                                 "init_training": before.get("training")},
                    "provenance": provenance}
        (self.out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
