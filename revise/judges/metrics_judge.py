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
"""

from __future__ import annotations

import math

from ..errors import JudgeError, ReviseError
from ..metrics import PSNR_CAP, agreement_mask, load_state_json, psnr, ssim, state_mask, temporal_ssim, warp_error
from ..metrics.temporal import FARNEBACK
from ..metrics.vmaf import DEFAULT_TIMEOUT, vmaf_available
from ..metrics.vmaf import vmaf as vmaf_score
from .base import Judge, JudgeInput, JudgeResult, register_judge

VERSION = "metrics-v1"


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
            "flow": dict(FARNEBACK) if self.flow else None,
            "vmaf_model": "vmaf_v0.6.1" if self.vmaf else None,
        }

    def preservation_mask(self, item: JudgeInput):
        """The must-not-change mask in the source's shape, or None when there is no way to get one."""
        shape = item.source.frames.shape[:3]
        if item.sample.state is not None:
            state = load_state_json(item.sample.state)
            return state_mask(state, margin=self.margin, shape=shape, where=str(item.sample.state))
        if item.target is not None:
            return agreement_mask(item.source.frames, item.target.frames, threshold=self.agreement_threshold,
                                  dilate=self.agreement_dilate)
        return None

    def score(self, item: JudgeInput) -> JudgeResult:
        edited = item.edited.frames
        values: dict[str, float] = {}
        try:
            if item.target is not None:
                target = item.target.frames
                values["psnr_target"] = psnr(edited, target)
                values["ssim_target"] = ssim(edited, target)
                if self.vmaf:
                    values["vmaf"] = vmaf_score(edited, target, fps=item.target.fps or 8.0, timeout=self.vmaf_timeout)
            mask = self.preservation_mask(item)
            if mask is not None and mask.any():
                values["preservation_psnr"] = psnr(edited, item.source.frames, mask=mask)
                values["preservation_ssim"] = ssim(edited, item.source.frames, mask=mask)
            if self.temporal:
                values["temporal_ssim"] = temporal_ssim(edited)
            if self.flow:
                values["warp_error"] = warp_error(edited)
        except (ReviseError, ValueError) as exc:
            raise JudgeError(f"{item.sample.id}: metrics judge failed: {exc}") from exc
        metrics = {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}
        return JudgeResult(judge=self.name, metrics=metrics)
