"""The fp32 golden tests hold on other CPUs too: rerun them on the math-kernel paths of other x86 CPUs.

`MKL_CBWR=AVX2` makes MKL compute as an AVX2-only CPU does, `COMPATIBLE` as the most conservative
path; the tolerances in golden_tolerances.py were measured to absorb both (bench/golden_drift.py).
MKL reads the variable once at load, hence a fresh interpreter per path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
GOLDEN_TESTS = [HERE / "test_golden.py", HERE / "test_sampler_golden.py"]


@pytest.mark.parametrize("kernel_path", ["AVX2", "COMPATIBLE"])
def test_golden_suite_passes_on_another_kernel_path(kernel_path):
    env = {**os.environ, "MKL_CBWR": kernel_path}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             *map(str, GOLDEN_TESTS)], env=env, capture_output=True, text=True,
                            cwd=HERE.parents[1])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
