"""``make test`` reruns the ``numerics`` tests with ATEN_CPU_CAPABILITY=default and =avx2, the kernels other
x86-64 CPUs get. This checks that the forced value really reached torch (a typo is ignored with a warning)."""

from __future__ import annotations

import os

import pytest
import torch

LEVELS = ["default", "avx2", "avx512"]  # x86-64, lowest first


@pytest.mark.numerics
def test_a_forced_cpu_capability_takes_effect():
    got = torch.backends.cpu.get_cpu_capability().lower()
    assert got in LEVELS, got
    forced = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if forced:
        assert forced in LEVELS, f"ATEN_CPU_CAPABILITY={forced!r} is not an x86-64 level torch knows"
        # torch never goes above what the hardware has: a CPU without AVX2 stays at default
        assert LEVELS.index(got) <= LEVELS.index(forced), (forced, got)
