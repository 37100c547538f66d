"""Flow matching for the generator: noising, the training loss, the clean estimate and the sampler.

Conventions (rectified flow, as Wan and SD3; the ReViSE reconstruction in PAPER.md section 3):

    x_t   = (1 - t) x_0 + t eps              t in [0, 1]; 0 = clean, 1 = noise
    v*    = eps - x_0                        the target velocity, dx_t/dt
    L_FM  = mean || v_theta(x_t, t, c) - v* ||^2
    x0hat = x_t - t v_theta(x_t, t, c)       one-step clean estimate, WITH gradient (self-reflection)
    L_x0  = mean || x0hat - x_0 ||^2         loss_space="x0" [ours]: L_FM weighted by t^2, every t alike

Training times are logit-normal, ``t = sigmoid(n)``, ``n ~ N(logit_mean, logit_std)``, then shifted
``t <- s t / (1 + (s - 1) t)`` with the model's ``flow_shift`` ``s`` (more weight on noisy times). The
sampler uses diffusers' ``FlowMatchEulerDiscreteScheduler`` with the same shift, so training and
inference share one time warp. Classifier-free guidance: ``v = v_null + g (v_cond - v_null)`` where the
null branch drops the VLM and text parts of the context (the source stays).
"""

from __future__ import annotations

import contextlib

from dataclasses import dataclass

import numpy as np
import torch

BATCH_KEYS = ("source", "target", "text_ids")
LOSS_SPACES = ("velocity", "x0")


def shift_time(t: torch.Tensor, shift: float) -> torch.Tensor:
    """The SD3/Wan time shift ``s t / (1 + (s - 1) t)`` (identity for ``s = 1``)."""
    return shift * t / (1.0 + (shift - 1.0) * t)


def sample_time(batch_size: int, *, shift: float = 1.0, logit_mean: float = 0.0, logit_std: float = 1.0,
                generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """``(batch_size,)`` training times: logit-normal, then shifted; strictly inside (0, 1)."""
    n = torch.randn(batch_size, generator=generator) * logit_std + logit_mean
    return shift_time(torch.sigmoid(n), shift).clamp(1e-5, 1 - 1e-5).to(device)


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_t = (1 - t) x_0 + t eps`` with ``t`` ``(B,)``."""
    tt = _per_sample(t, x0)
    return (1 - tt) * x0 + tt * noise


def clean_estimate(x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One-step clean estimate ``x0hat = x_t - t v`` (differentiable in ``v``)."""
    return x_t - _per_sample(t, x_t) * v


@dataclass
class FlowExtras:
    """What a training step computed, for losses built on top of flow matching (self-reflection).

    ``x0_hat`` keeps its graph: a loss on it back-propagates into the denoiser. ``drop`` marks samples
    whose VLM + text were dropped for classifier-free guidance (a critic should skip those).
    """

    x_t: torch.Tensor
    t: torch.Tensor
    noise: torch.Tensor
    v_pred: torch.Tensor
    v_target: torch.Tensor
    x0_hat: torch.Tensor
    drop: torch.Tensor


def _check_batch(batch) -> None:
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise ValueError(f"flow-matching batch lacks {', '.join(missing)} (needs {', '.join(BATCH_KEYS)})")
    if batch["source"].shape != batch["target"].shape:
        raise ValueError(f"batch source {tuple(batch['source'].shape)} and target {tuple(batch['target'].shape)} "
                         "must have the same shape")


def flow_matching_loss(model, batch, generator: torch.Generator | None = None, *, change_weight: float = 0.0,
                       drop_prob: float | None = None, loss_space: str = "velocity") -> tuple[torch.Tensor, FlowExtras]:
    """The flow-matching loss of ``model`` on one batch, and the step's :class:`FlowExtras`.

    ``batch``: ``source``, ``target`` ``(B, 3, T, H, W)`` in [-1, 1]; ``text_ids`` ``(B, L)``; optional
    ``vlm_hidden`` ``(B, L_vlm, vlm_dim)`` and ``vlm_mask``. Each sample's VLM + text are dropped with
    probability ``drop_prob`` (default: the model's ``cfg_drop_prob``). ``change_weight`` > 0 weights
    the squared error by ``1 + change_weight * m`` where ``m`` marks pixels whose target differs from the
    source (by more than 0.1 on [-1, 1]): the edit is a small part of most frames and would otherwise
    be drowned by the copied background. ``loss_space``: "velocity" (``L_FM``, the paper's) or "x0"
    (``L_x0``: ``L_FM`` puts most weight on small ``t``, where the input is almost clean; see
    docs/model-generator.md). All randomness comes from ``generator``.
    """
    _check_batch(batch)
    if loss_space not in LOSS_SPACES:
        raise ValueError(f"loss_space must be one of {LOSS_SPACES}, got {loss_space!r}")
    source, target = batch["source"], batch["target"]
    cfg = getattr(model, "module", model).config  # DDP / FSDP / DeepSpeed wrap the model; the config is inside
    b = target.shape[0]
    t = sample_time(b, shift=cfg.flow_shift, logit_mean=cfg.logit_mean, logit_std=cfg.logit_std, generator=generator,
                    device=target.device)
    noise = torch.randn(target.shape, generator=generator).to(target.device, target.dtype)
    p = cfg.cfg_drop_prob if drop_prob is None else drop_prob
    drop = (torch.rand(b, generator=generator) < p).to(target.device)
    x_t = add_noise(target, noise, t)
    v_pred = model(x_t, t, source, batch["text_ids"], batch.get("vlm_hidden"), batch.get("vlm_mask"), drop=drop)
    v_target = noise - target
    x0_hat = clean_estimate(x_t, t, v_pred)
    if loss_space == "velocity":
        err = (v_pred.float() - v_target.float()) ** 2
    else:
        err = (x0_hat.float() - target.float()) ** 2
    if change_weight > 0:
        changed = ((target - source).abs().amax(dim=1, keepdim=True) > 0.1).to(err.dtype)
        weight = 1.0 + change_weight * changed
        loss = (err * weight).sum() / (weight.sum() * err.shape[1])
    else:
        loss = err.mean()
    return loss, FlowExtras(x_t=x_t, t=t, noise=noise, v_pred=v_pred, v_target=v_target,
                            x0_hat=x0_hat, drop=drop)


def make_scheduler(model):
    """A fresh ``FlowMatchEulerDiscreteScheduler`` with the model's shift (one per call: schedulers keep state)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=float(model.config.flow_shift))


def sample(model, source: torch.Tensor, text_ids: torch.Tensor, vlm_hidden: torch.Tensor | None = None,
           vlm_mask: torch.Tensor | None = None, *, steps: int | None = None, guidance: float | None = None,
           generator: torch.Generator | None = None, noise: torch.Tensor | None = None,
           grad_last: int = 0) -> torch.Tensor:
    """Integrate the flow from noise to a clean video ``(B, 3, T, H, W)`` in [-1, 1].

    ``steps`` Euler steps on the shifted schedule ``linspace(1, 1/steps)`` (defaults from the model
    config); ``guidance`` > 1 evaluates the conditioned and the VLM+text-dropped context in one batch.
    The conditions are encoded once. Deterministic for a given ``generator`` state or ``noise``.
    ``grad_last`` = K > 0 (with gradients enabled by the caller) keeps the graph of the last K steps only and
    of the conditions, as DRaFT-K does for a reward on the sample (the earlier steps run without one);
    with 0 (the default) nothing keeps a graph.
    """
    if not grad_last:
        with torch.no_grad():
            return _sample(model, source, text_ids, vlm_hidden, vlm_mask, steps, guidance, generator, noise, 0)
    return _sample(model, source, text_ids, vlm_hidden, vlm_mask, steps, guidance, generator, noise, int(grad_last))


def _sample(model, source, text_ids, vlm_hidden, vlm_mask, steps, guidance, generator, noise, grad_last):
    steps = int(model.config.default_steps if steps is None else steps)
    guidance = float(model.config.default_guidance if guidance is None else guidance)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not np.isfinite(guidance) or guidance < 0:
        raise ValueError(f"guidance must be a finite number >= 0, got {guidance}")
    b = source.shape[0]
    ids = model.pad_ids(text_ids, b)
    guided = guidance != 1.0
    if guided:
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(source.device)
        vlm2 = None if vlm_hidden is None else torch.cat([vlm_hidden, vlm_hidden])
        mask2 = None if vlm_mask is None else torch.cat([vlm_mask, vlm_mask])
        context = model.encode_context(torch.cat([source, source]), torch.cat([ids, ids]), vlm2, mask2, drop)
        source_in = torch.cat([source, source])
    else:
        context = model.encode_context(source, ids, vlm_hidden, vlm_mask)
        source_in = source
    if noise is None:
        noise = torch.randn(source.shape, generator=generator)
    x = noise.to(source.device, source.dtype)
    scheduler = make_scheduler(model)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / steps, steps).tolist(), device=source.device)
    if not 0 <= int(grad_last) <= steps:
        raise ValueError(f"grad_last must be in [0, steps={steps}], got {grad_last}")
    free = steps - int(grad_last) if grad_last else 0  # the steps run without a graph
    for k, (timestep, sigma) in enumerate(zip(scheduler.timesteps, scheduler.sigmas)):
        with torch.no_grad() if k < free else contextlib.nullcontext():
            x_in = torch.cat([x, x]) if guided else x
            v = model(x_in, sigma.expand(x_in.shape[0]), source_in, None, context=context)
            if guided:
                v_cond, v_null = v.chunk(2)
                v = v_null + guidance * (v_cond - v_null)
            x = scheduler.step(v, timestep, x, return_dict=False)[0]
    return x
