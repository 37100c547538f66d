"""``revise train vae``: a tiny Wan VAE (:mod:`revise.model.latent`) trained on RVE-Sim clips.

The latent space issue 19 names as a lever: Wan's own ``AutoencoderKLWan`` design at toy width, trained
from scratch on the train split's source and target clips at ``size`` pixels. Each step draws
``batch_size`` clips (sources and targets alike) and a random window of ``clip_frames`` consecutive frames
from each (``1 + 4k`` frames: the causal VAE's first frame plus whole latent frames; short windows keep a
step cheap on a CPU, and the causal convolutions make a window's code the same as inside a long clip's
first chunk), encodes it, draws from the posterior, decodes, and minimises

    L1(x_hat, x) + MSE(x_hat, x) + kl_weight * KL(q(z|x) || N(0, I))

on [-1, 1] pixels (flat-coloured synthetic frames need neither the perceptual nor the GAN loss of Wan's own
training). After the last step the per-channel mean and standard deviation of the posterior modes over
``stats_clips`` whole train clips go into the VAE's config (``latents_mean`` / ``latents_std``), which
:func:`revise.model.latent.encode_clips` normalises with.

Same machinery as every trainer (:mod:`revise.train.engine`): ``OUT/vae_config.json``, exact ``--resume``
from ``OUT/state``, ``metrics.csv`` / TensorBoard, the ``--max-minutes`` plan, DDP under ``accelerate
launch``. The result is ``OUT/vae/`` (``config.json`` + ``diffusion_pytorch_model.safetensors``) and
``OUT/vae.json`` (the training record with provenance).

:func:`evaluate_vae` measures what the latent space costs: reconstruction error on a split's clips and the
exact ``gt`` judge's ceiling (the true targets through the VAE and back to full size) beside the
pixel-space ceiling (the true targets shrunk to ``size`` and blown back up), on the same samples
(``benchmarks/bench_latent_ceiling.py``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .common import OneStage, check_settings
from .engine import SFTResult, StageTrainer, lr_scale, run_in_folder

STAGE = "vae"
RECORD_NAME = "vae.json"


@dataclass
class VAEConfig(OneStage):
    """Every setting of a VAE run (stored in ``OUT/vae_config.json``; ``resume`` refuses a changed one)."""

    STAGE = STAGE
    seed: int = 0
    per_dimension: int = 150            # train samples per dimension when the data must be generated
    size: int = 64                      # frame size trained on (the pixel generator's 64 px)
    clip_frames: int = 5                # frames per training window: 1 + k * temporal factor
    vae_config: dict = field(default_factory=dict)  # AutoencoderKLWan overrides of revise.model.latent.TINY_VAE
    steps: int = 2000
    batch_size: int = 4
    lr: float = 5e-4
    warmup: int = 50
    kl_weight: float = 1e-6
    stats_clips: int = 64
    bf16_stages: tuple[str, ...] = ()
    max_minutes: float | None = None
    calibration_steps: int = 10
    checkpoint_every: int = 100
    log_every: int = 10

    def __post_init__(self):
        check_settings(self, "vae config", ("per_dimension", "size", "clip_frames", "steps", "batch_size",
                                            "stats_clips", "checkpoint_every", "log_every"))
        if self.kl_weight < 0:
            raise ConfigError(f"vae config: kl_weight must be >= 0, got {self.kl_weight}")
        self.bf16_stages = tuple(self.bf16_stages)
        bad = sorted(set(self.bf16_stages) - {STAGE})
        if bad:
            raise ConfigError(f"vae config: bf16_stages may only name 'vae', got {bad}")
        from ..model.latent import TINY_VAE, option_factors, vae_parameters

        unknown = sorted(set(self.vae_config) - vae_parameters())
        if unknown:
            raise ConfigError(f"vae config: --vae-config has unknown AutoencoderKLWan option(s) {unknown}")
        temporal, spatial = option_factors({**TINY_VAE, **self.vae_config})
        if self.size % spatial:
            raise ConfigError(f"vae config: size {self.size} is not divisible by the VAE's spatial factor {spatial}")
        if (self.clip_frames - 1) % temporal or self.clip_frames > 16:
            raise ConfigError(f"vae config: clip_frames must be 1 + k * {temporal} and at most 16, got "
                              f"{self.clip_frames}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bf16_stages"] = list(self.bf16_stages)
        return d


def train_vae(data: str | os.PathLike, out_dir: str | os.PathLike, config: VAEConfig | None = None, *,
              resume: bool = False, threads: int | None = 1, progress: bool = True) -> SFTResult:
    """Run (or resume) a VAE training into ``out_dir``; see the module docstring. Returns what was done."""
    config = config or VAEConfig()
    out = Path(out_dir)
    return run_in_folder(out, "vae_config.json", config.to_dict(), resume, threads,
                         lambda: _VAETrainer(Path(data), out, config, resume, progress).run(),
                         defaults=VAEConfig().to_dict())


class _VAETrainer(StageTrainer):
    def __init__(self, data: Path, out: Path, config: VAEConfig, resume: bool, progress: bool):
        super().__init__(data, out, config, resume, progress)
        if self.strategy in ("fsdp", "deepspeed"):
            raise ConfigError(f"train vae runs on one process or DDP, not {self.strategy}: the VAE is small and "
                              "replicated; launch with configs/accelerate/ddp.yaml")

    def run(self) -> SFTResult:
        from ..provenance import base_provenance

        provenance = base_provenance()
        self.bank = self.load_bank(self.begin(), self.cfg.size)
        finished = STAGE in self.meta["done"] or self.train()
        if finished and self.accelerator.is_main_process:
            self.write(provenance)
        self.accelerator.wait_for_everyone()
        return self.end(finished)

    def train(self) -> bool:
        import torch
        import torch.nn.functional as F

        from ..model.latent import tiny_vae

        cfg, acc = self.cfg, self.accelerator
        torch.manual_seed(cfg.seed)
        vae = tiny_vae(**cfg.vae_config)
        optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.99))
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + 29 + acc.process_index)
        step = self.restore(STAGE, {"vae": vae}, optimizer, {"data": gen})
        # not wrapped by DDP: the loss needs the posterior, which only encode() returns, so the
        # gradients are averaged over the ranks by hand (as train critic does)
        core = vae.to(acc.device).train()
        clips = [self.bank.source, self.bank.target]  # uint8 (N, T, H, W, 3), memory-mapped when cached
        n, length = len(self.bank), self.bank.source.shape[1]
        dev = acc.device

        def step_fn(i: int, total: int):
            lr = cfg.lr * lr_scale(i, total, cfg.warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = torch.randint(0, 2 * n, (cfg.batch_size,), generator=gen)
            start = torch.randint(0, length - cfg.clip_frames + 1, (cfg.batch_size,), generator=gen)
            x = np.stack([clips[int(j) // n][int(j) % n, int(s):int(s) + cfg.clip_frames] for j, s in zip(idx, start)])
            x = torch.from_numpy(x).permute(0, 4, 1, 2, 3).to(dev).float() / 127.5 - 1.0
            with self.autocast(STAGE):
                posterior = core.encode(x).latent_dist
                z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(dev)
                rec = core.decode(z).sample
            rec = rec.float()
            l1, mse = F.l1_loss(rec, x), F.mse_loss(rec, x)
            kl = 0.5 * (posterior.mean.float() ** 2 + posterior.var.float() - 1.0 - posterior.logvar.float()).mean()
            loss = l1 + mse + cfg.kl_weight * kl
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if self.world > 1:
                for p in core.parameters():
                    if p.grad is not None:
                        p.grad = acc.reduce(p.grad, reduction="mean")
            torch.nn.utils.clip_grad_norm_(core.parameters(), 1.0)
            optimizer.step()
            with torch.no_grad():
                levels = float((rec - x).abs().mean()) * 127.5
            return float(loss.item()), lr, {"l1_levels": levels, "kl": float(kl.detach())}

        def save(i: int):
            self.checkpoint(STAGE, {"vae": core}, optimizer, {"data": gen}, i)

        done = self.loop(STAGE, cfg.steps, step, step_fn, save)
        core.eval()
        if done:
            self.meta["done"].append(STAGE)
            save(int(self.meta["stage_steps"][STAGE]))
        self.vae = core
        return done

    def write(self, provenance: dict) -> None:
        """Measure the latent statistics, then write ``OUT/vae/`` and ``OUT/vae.json``."""
        import torch

        from ..model.latent import encode_clips, tiny_vae

        vae = getattr(self, "vae", None)
        if vae is None:  # a finished run resumed: its last state holds the weights
            from .state import load_state

            vae = tiny_vae(**self.cfg.vae_config)
            load_state(self.state_dir, {"vae": vae}, None, {}, rank=0, world_size=self.world)
        vae.eval()
        rng = np.random.default_rng([self.cfg.seed, 31])
        pick = np.sort(rng.permutation(len(self.bank))[:self.cfg.stats_clips])
        zs = []
        with torch.no_grad():
            for start in range(0, len(pick), 8):
                x = torch.from_numpy(np.array(self.bank.source[pick[start:start + 8]]))
                x = x.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
                zs.append(encode_clips(vae, x, normalise=False))
        z = torch.cat(zs).transpose(0, 1).reshape(vae.config.z_dim, -1)
        mean = [round(float(v), 6) for v in z.mean(1)]
        std = [round(max(float(v), 1e-4), 6) for v in z.std(1)]
        vae.register_to_config(latents_mean=mean, latents_std=std)
        vae.save_pretrained(self.out / "vae", safe_serialization=True)
        record = {"format": "revise-vae/1", "vae": "vae", "latents": {"mean": mean, "std": std,
                                                                     "clips": int(len(pick))},
                  "training": {"recipe": "vae", "config": self.cfg.to_dict(), "steps": self.meta["stage_steps"],
                               "seconds": round(self.elapsed(), 1), "train_samples": len(self.bank),
                               "final_loss": self.meta["loss"]},
                  "provenance": provenance}
        (self.out / RECORD_NAME).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


# ---- what the latent space costs -------------------------------------------------------------------------
def evaluate_vae(vae, manifest: str | os.PathLike, *, size: int = 64, max_samples: int | None = None,
                 judge: bool = True, cache_dir: str | os.PathLike | None = None, progress: bool = False) -> dict:
    """Reconstruction error of ``vae`` on ``manifest``'s sources and targets at ``size`` pixels, and (with
    ``judge``) the gt judge's ceiling of a latent-space and a pixel-space model on the same samples.

    Returns ``{"samples", "recon": {"mae_levels", "psnr_db", "max_levels"} (sources and targets at size,
    0-255 levels), "ceiling": {"latent": {...}, "pixel": {...}}}`` where each ceiling has the mean
    ``share`` (``gt_reasoning_s``), ``reasoning``, ``consistency``, ``quality``, ``overall`` and
    ``accuracy`` (all three at 5) of the true targets after the round trip (``latent``: through the VAE at
    ``size``; ``pixel``: shrunk to ``size``), brought back to their full size."""
    from ..data import load_manifest
    from ..judges.base import JudgeInput
    from ..judges.gt import GroundTruthJudge
    from ..model.latent import reconstruct_uint8
    from ..model.vlm_data import load_frames
    from ..video import Video, match_length, read_video, resize_frames

    m = load_manifest(manifest)
    samples = list(m)[:max_samples] if max_samples is not None else list(m)
    bank = load_frames(m, size=size, frames=16, cache_dir=cache_dir, progress=progress)
    k = len(samples)
    src, tgt = bank.source[:k], bank.target[:k]
    rec_src, rec_tgt = reconstruct_uint8(vae, src), reconstruct_uint8(vae, tgt)
    diff = np.concatenate([np.abs(rec_src.astype(np.int16) - src.astype(np.int16)).ravel(),
                           np.abs(rec_tgt.astype(np.int16) - tgt.astype(np.int16)).ravel()]).astype(np.float64)
    mse = float((diff ** 2).mean())
    out = {"samples": k, "size": size,
           "recon": {"mae_levels": round(float(diff.mean()), 3), "max_levels": int(diff.max()) if diff.size else 0,
                     "psnr_db": round(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)), 2)}}
    if not judge:
        return out
    gt = GroundTruthJudge()
    rows: dict[str, list] = {"latent": [], "pixel": []}
    for i, s in enumerate(samples):
        if s.target is None or s.state is None:
            continue
        source, target = read_video(s.source), read_video(s.target)
        h, w = target.frames.shape[1:3]
        small = {"latent": rec_tgt[i], "pixel": tgt[i]}
        for name, frames in small.items():
            full = match_length(resize_frames(frames, h, w), len(target.frames))
            v = gt.score(JudgeInput(s, source, Video(full, target.fps), target, ""))
            if v.error or v.reasoning is None:
                raise ConfigError(f"{s.id}: the gt judge failed on the {name} round trip: {v.error}")
            rows[name].append((float(v.metrics.get("gt_reasoning_s", 0.0)), v.reasoning, v.consistency, v.quality))
    out["ceiling"] = {}
    for name, values in rows.items():
        a = np.asarray(values, np.float64).reshape(-1, 4)
        entry = {"samples": len(a)}
        if len(a):
            entry.update(share=round(float(a[:, 0].mean()), 4), reasoning=round(float(a[:, 1].mean()), 3),
                         consistency=round(float(a[:, 2].mean()), 3), quality=round(float(a[:, 3].mean()), 3),
                         overall=round(float(a[:, 1:].mean()), 3),
                         accuracy=round(float((a[:, 1:] == 5).all(1).mean()), 4))
        else:
            entry.update(dict.fromkeys(("share", "reasoning", "consistency", "quality", "overall", "accuracy")))
        out["ceiling"][name] = entry
    return out
