"""``revise train scaled``: a few flow-matching or self-reflective steps of the unified model at scale.

Wire it into the CLI with one line in ``revise/cli/model.py`` (after ``train_app`` is defined)::

    from .scaled_cmd import register as _register_scaled; _register_scaled(train_app)

The model is :class:`revise.model.scaled.ScaledUnifiedModel` loaded from ``--config``; the data is an
RVE-Sim folder (``manifest.jsonl``; samples without a target are skipped), each clip resampled to
``--frames`` (``1 + 4k``, Wan's VAE) and resized to ``--size``. Runs under ``accelerate``: one process
here; with ``accelerate launch`` each process takes its share of the batch order and the gradients of the
trainable weights are averaged across processes before each step. Writes ``OUT/trainable.safetensors``
(the trainable weights only: LoRA or the transformer, and the adapters), ``OUT/metrics.jsonl`` and
``OUT/scaled_run.json`` (the config file's content and the run's settings).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer


def _clip(path, frames: int, size: int):
    import numpy as np
    import torch

    from ..video import read_video
    from ..video.frames import match_length, resize_frames

    video = read_video(path).frames
    small = resize_frames(match_length(video, frames), size, size)
    x = torch.from_numpy(np.ascontiguousarray(small)).float().permute(3, 0, 1, 2)
    return x / 127.5 - 1.0


def train_scaled(config: Path, data: Path, out: Path, *, steps: int, srf_lambda: float, lr: float,
                 batch_size: int, frames: int, size: int, seed: int, loss_space: str = "velocity") -> dict:
    """The command's body (callable from Python); returns the run summary."""
    import random

    import torch
    from accelerate import Accelerator

    from ..data import load_manifest
    from ..errors import ConfigError
    from ..model.scaled import ScaledUnifiedModel, load_config_file

    if steps < 1 or batch_size < 1 or size < 1:
        raise ConfigError("train scaled: --steps, --batch-size and --size must be >= 1")
    if frames < 1 or (frames - 1) % 4:
        raise ConfigError(f"train scaled: --frames must be 1 + 4k (Wan's VAE), got {frames}")
    manifest = Path(data) / "manifest.jsonl" if Path(data).is_dir() else Path(data)
    samples = [s for s in load_manifest(manifest) if s.target is not None]
    if not samples:
        raise ConfigError(f"train scaled: {manifest} has no sample with a target video")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    device = str(accelerator.device)
    model = ScaledUnifiedModel.from_config(config, device=device)
    model.train()
    params = list(model.trainable_parameters().values())
    optimizer = torch.optim.AdamW(params, lr=lr)
    order = random.Random(seed)
    generator = torch.Generator().manual_seed(seed + accelerator.process_index)
    out = Path(out)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    metrics = []
    queue: list = []
    start = time.time()
    for step in range(steps):
        batch_samples = []
        for _ in range(batch_size * accelerator.num_processes):
            if not queue:
                queue = list(samples)
                order.shuffle(queue)
            batch_samples.append(queue.pop())
        mine = batch_samples[accelerator.process_index::accelerator.num_processes]
        batch = {"source": torch.stack([_clip(s.source, frames, size) for s in mine]),
                 "target": torch.stack([_clip(s.target, frames, size) for s in mine]),
                 "instructions": [s.instruction for s in mine]}
        optimizer.zero_grad(set_to_none=True)
        loss, parts = model.training_step(batch, srf_lambda=srf_lambda, generator=generator, loss_space=loss_space)
        if not torch.isfinite(loss):
            raise ConfigError(f"train scaled: step {step}: the loss is not finite ({float(loss.detach())})")
        loss.backward()
        if accelerator.num_processes > 1:
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                p.grad = accelerator.reduce(p.grad, reduction="mean")
        optimizer.step()
        row = {"step": step + 1, "loss": float(loss.detach()), "fm": float(parts["fm"].detach()),
               "reward": None if parts["reward"] is None else float(parts["reward"].detach()),
               "seconds": round(time.time() - start, 3)}
        metrics.append(row)
        if accelerator.is_main_process:
            typer.echo(json.dumps(row))
    summary = {"config": load_config_file(config), "data": str(manifest), "steps": steps, "srf_lambda": srf_lambda,
               "lr": lr, "batch_size": batch_size, "frames": frames, "size": size, "seed": seed,
               "loss_space": loss_space, "processes": accelerator.num_processes,
               "trainable_tensors": len(params), "trainable_parameters": int(sum(p.numel() for p in params))}
    if accelerator.is_main_process:
        model.save_trainable(out / "trainable.safetensors")
        (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in metrics), encoding="utf-8")
        (out / "scaled_run.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    accelerator.wait_for_everyone()
    return {**summary, "metrics": metrics}


def register(train_app: typer.Typer) -> None:
    """Add ``scaled`` to the ``revise train`` group."""

    @train_app.command("scaled")
    def scaled(
        config: Path = typer.Option(..., "--config", help="Scaled model config (JSON, or YAML with PyYAML); see "
                                    "docs/gpu.md 'Training at scale'."),
        data: Path = typer.Option(..., "--data", help="RVE-Sim folder (manifest.jsonl) or a manifest file."),
        out: Path = typer.Option(..., "--out", help="Folder for trainable.safetensors, metrics.jsonl, "
                                 "scaled_run.json."),
        steps: int = typer.Option(10, "--steps", help="Optimizer steps."),
        srf_lambda: Optional[float] = typer.Option(None, "--lambda", help="Self-reflection weight (0: flow "
                                                   "matching only; default: the config's srf_lambda)."),
        lr: float = typer.Option(1e-4, "--lr", help="AdamW learning rate."),
        batch_size: int = typer.Option(1, "--batch-size", help="Clips per process per step."),
        frames: int = typer.Option(17, "--frames", help="Frames per clip (1 + 4k)."),
        size: int = typer.Option(256, "--size", help="Square frame size (a multiple of 16 for Wan 2.1)."),
        seed: int = typer.Option(0, "--seed"),
        loss_space: str = typer.Option("velocity", "--loss-space", help="velocity (L_FM) or x0."),
    ) -> None:
        """A few FM or self-reflective steps of the scaled unified model; saves the trainable weights."""
        from ..model.scaled import ScaledOptions, load_config_file

        lam = srf_lambda
        if lam is None:
            options = load_config_file(config).get("options") or {}
            lam = float(options.get("srf_lambda", ScaledOptions.srf_lambda))
        train_scaled(config, data, out, steps=steps, srf_lambda=lam, lr=lr, batch_size=batch_size, frames=frames,
                     size=size, seed=seed, loss_space=loss_space)
