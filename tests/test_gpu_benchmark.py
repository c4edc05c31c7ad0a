"""``benchmarks/gpu.py``, the one-call GPU script: without a GPU it says that it needs one; ``--smoke`` runs all of
its steps on the CPU at toy sizes and prints every row of its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import subprocess_env

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**subprocess_env(), "CUDA_VISIBLE_DEVICES": ""}  # no GPU, even on a machine that has one
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=SCRIPT.parent,
    )


def test_without_a_gpu_it_says_it_needs_one():
    res = _run(timeout=120)
    assert res.returncode == 2 and "needs a CUDA GPU" in res.stderr and "--smoke" in res.stderr, res.stderr
    assert res.stdout == ""


@pytest.mark.slow
def test_smoke_run_prints_every_row():
    res = _run("--smoke", "--batch-size", "8", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for line in ("M =    1:", "M =    2:", "models/hour", "samples/s", "| unet ", "| spade ", "| 3D model |"):
        assert line in out, out
    assert "slices/s" in out and "s to train" in out and "total" in out
