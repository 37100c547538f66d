"""The ``metrics`` judge: classical metrics attached to each sample, no rubric scores.

It gives no Reasoning/Consistency/Quality (all None) and fills ``JudgeResult.metrics`` with the
metrics that apply to the sample; a key is absent when its metric does not apply:

=====================  ====================================================================  ========
key                    meaning                                                               better
=====================  ====================================================================  ========
``psnr_target``        PSNR (dB, capped at 100) of the edit vs the target                   higher
``ssim_target``        SSIM of the edit vs the target                                        higher
``preservation_psnr``  PSNR of the edit vs the source over the pixels that must not change  higher
``preservation_ssim``  SSIM of the edit vs the source over the same mask                     higher
``temporal_ssim``      mean SSIM of consecutive frames of the edit                           higher
``warp_error``         Farneback-flow warp error of the edit, [0, 1] units (``flow=True``)   lower
``vmaf``               VMAF of the edit vs the target (``vmaf=True``; slow)                  higher
=====================  ====================================================================  ========

Against the target the edit is resampled to the target's length and size; against the source, to the
source's. The preservation mask comes from the sample's RVE-Sim state file when it has one, else from
where source and target agree; with neither (or an empty mask) the preservation keys are absent. The
judge reads no file except the state JSON.

Every value is computed in one pass over the three videos, chunk by chunk
(:func:`revise.metrics.streaming.clip_metrics`): with videos the runner streams from disk
(:class:`~revise.video.VideoFile`), memory does not grow with the clip's length. SSIM and the flow metrics
work at Wang et al.'s downsampled resolution, ``f = max(1, round(min(H, W) / 256))``: RVE-Sim's 128 px clips
are scored at full resolution, 720p at a third (``metrics-v2``; ``metrics-v1`` was full resolution at every
size, the same values up to 383 px).
"""

from __future__ import annotations

import math

from ..errors import JudgeError, ReviseError
from ..metrics import PSNR_CAP, agreement_mask, load_state_json, state_mask
from ..metrics.preservation import fit_mask
from ..metrics.streaming import clip_metrics
from ..metrics.temporal import FARNEBACK
from ..metrics.vmaf import DEFAULT_TIMEOUT, vmaf_available
from ..metrics.vmaf import vmaf as vmaf_score
from ..video import time_indices
from .base import Judge, JudgeInput, JudgeResult, register_judge

VERSION = "metrics-v2"


@register_judge("metrics")
class MetricsJudge(Judge):
    """Classical metrics per sample (see the module docstring for the keys).

    ``vmaf``: also compute VMAF against the target (an ffmpeg run per sample). ``flow``: compute the
    optical-flow warp error (the slowest of the default metrics). ``temporal``: compute frame-to-frame
    SSIM. ``margin``: pixels added to each changing object's disc in the state mask.
    ``agreement_threshold`` / ``agreement_dilate``: the source/target agreement mask without a state.
    """

    name = "metrics"

    def __init__(self, *, vmaf: bool = False, flow: bool = True, temporal: bool = True, margin: float = 4.0,
                 agreement_threshold: float = 0.1, agreement_dilate: int = 2,
                 vmaf_timeout: float = DEFAULT_TIMEOUT) -> None:
        if vmaf and not vmaf_available():
            raise JudgeError("metrics judge: vmaf=True needs ffmpeg with libvmaf, which the bundled ffmpeg lacks")
        if margin < 0 or agreement_dilate < 0 or not 0 < agreement_threshold < 1 or vmaf_timeout <= 0:
            raise JudgeError("metrics judge: margin and agreement_dilate must be >= 0, agreement_threshold in (0, 1), "
                             "vmaf_timeout > 0")
        self.vmaf, self.flow, self.temporal = bool(vmaf), bool(flow), bool(temporal)
        self.margin = float(margin)
        self.agreement_threshold, self.agreement_dilate = float(agreement_threshold), int(agreement_dilate)
        self.vmaf_timeout = float(vmaf_timeout)

    def info(self) -> dict:
        optional = {"temporal_ssim": self.temporal, "warp_error": self.flow, "vmaf": self.vmaf}
        keys = ["psnr_target", "ssim_target", "preservation_psnr", "preservation_ssim"]
        keys += [key for key, enabled in optional.items() if enabled]
        return {
            "judge": self.name, "version": VERSION, "metrics": keys,
            "preservation_mask": f"state file (discs of sqrt(area/pi) + {self.margin:g} px around changing objects) "
                                 f"if the sample has one, else source/target agreement (threshold "
                                 f"{self.agreement_threshold:g}, dilation {self.agreement_dilate} px)",
            "alignment": "edit resampled to the reference's length (nearest frame) and size",
            "psnr_cap_db": PSNR_CAP, "ssim": "gaussian 11x11, sigma 1.5, RGB mean",
            "working_resolution": "PSNR at full size; SSIM, temporal SSIM and flow after area-averaging f x f blocks, "
                                  "f = max(1, round(min(H, W) / 256)) (Wang et al. 2004, ssim.m)",
            "flow": dict(FARNEBACK) if self.flow else None,
            "vmaf_model": "vmaf_v0.6.1" if self.vmaf else None,
        }

    def preservation_mask(self, item: JudgeInput):
        """The must-not-change mask in the source's shape, or None when there is no way to get one."""
        shape = (item.source.num_frames, item.source.height, item.source.width)
        if item.sample.state is not None:
            state = load_state_json(item.sample.state)
            return state_mask(state, margin=self.margin, shape=shape, where=str(item.sample.state))
        if item.target is not None:
            return agreement_mask(item.source.frames, item.target.frames, threshold=self.agreement_threshold,
                                  dilate=self.agreement_dilate)
        return None

    def mask_chunks(self, item: JudgeInput):
        """``mask_chunk(start, source_frames, target_frames)`` for :func:`~revise.metrics.streaming.clip_metrics`:
        the slice of :meth:`preservation_mask` at those frames, computed chunk by chunk; None without a mask."""
        height, width = item.source.height, item.source.width
        if item.sample.state is not None:
            native = state_mask(load_state_json(item.sample.state), margin=self.margin, where=str(item.sample.state))
            times = time_indices(len(native), item.source.num_frames)

            def from_state(start, source_frames, _target):
                return fit_mask(native[times[start:start + len(source_frames)]], (len(source_frames), height, width))

            return from_state
        if item.target is not None:
            def from_agreement(_start, source_frames, target_frames):
                return agreement_mask(source_frames, target_frames, threshold=self.agreement_threshold,
                                      dilate=self.agreement_dilate)

            return from_agreement
        return None

    def score(self, item: JudgeInput) -> JudgeResult:
        values: dict[str, float] = {}
        try:
            values = clip_metrics(item.edited, target=item.target, source=item.source,
                                  mask_chunk=self.mask_chunks(item), temporal=self.temporal, flow=self.flow)
            if self.vmaf and item.target is not None:
                values["vmaf"] = vmaf_score(item.edited.frames, item.target.frames, fps=item.target.fps or 8.0,
                                            timeout=self.vmaf_timeout)
        except (ReviseError, ValueError) as exc:
            raise JudgeError(f"{item.sample.id}: metrics judge failed: {exc}") from exc
        metrics = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
        return JudgeResult(judge=self.name, metrics=metrics)
