"""Classical video metrics, torchmetrics style: a pure function per metric plus an accumulating class.

=================  ==========================================  =========  ==============
function           what                                        range      better
=================  ==========================================  =========  ==============
``psnr``           PSNR vs a reference (optionally masked)     [0, 100]   higher
``ssim``           SSIM vs a reference (optionally masked)     [-1, 1]    higher
``temporal_ssim``  mean SSIM of consecutive frames             [-1, 1]    higher
``warp_error``     Farneback-flow warp error, [0, 1] units     [0, 1]     lower
``vmaf``           VMAF vs a reference (ffmpeg libvmaf)        [0, 100]   higher
=================  ==========================================  =========  ==============

Classes (``PSNR``, ``SSIM``, ``TemporalSSIM``, ``WarpError``, ``VMAF``) take the same arguments in
``update()``; ``compute()`` equals the function over everything updated, and ``merge()`` combines shards.
Preservation masks (pixels an edit must not change) come from :mod:`revise.metrics.preservation`.
"""

from .base import Metric, MetricError, align_to
from .fidelity import PSNR, PSNR_CAP, SSIM, psnr, ssim
from .preservation import agreement_mask, load_state_json, state_mask
from .temporal import TemporalSSIM, WarpError, temporal_ssim, warp_error
from .vmaf import VMAF, vmaf, vmaf_available, vmaf_frames

__all__ = [
    "Metric", "MetricError", "PSNR", "PSNR_CAP", "SSIM", "TemporalSSIM", "VMAF", "WarpError", "agreement_mask",
    "align_to", "load_state_json", "psnr", "ssim", "state_mask", "temporal_ssim", "vmaf", "vmaf_available",
    "vmaf_frames", "warp_error",
]
