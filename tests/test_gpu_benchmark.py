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


UTILITY = SCRIPT.parent / "utility.py"


def test_the_headline_gpu_budget_says_it_needs_a_gpu_and_leaves_evaluate_its_own_defaults(tmp_path):
    env = {**subprocess_env(), "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run(
        [sys.executable, str(UTILITY), "--gpu", "--out", str(tmp_path / "u")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=UTILITY.parent,
    )
    assert res.returncode == 2 and "--gpu needs a CUDA GPU" in res.stderr, res.stderr
    assert not (tmp_path / "u").exists()  # refused before anything was written
    sys.path.insert(0, str(UTILITY.parent))
    try:
        import utility
    finally:
        sys.path.remove(str(UTILITY.parent))
    import argparse

    budget = {**vars(utility.build_parser().parse_args([])), **utility.GPU_BUDGET, "steps": 500}  # --steps 500 given
    cmd = utility.evaluate_command(tmp_path / "d.json", tmp_path / "f0", argparse.Namespace(**budget))
    for flag in ("--size", "--singan-slices", "--singan-iters", "--pix2pix-epochs", "--network", "--features"):
        assert flag not in cmd, flag  # evaluate's own full-size default applies
    assert cmd[cmd.index("--steps") + 1] == "500" and cmd[cmd.index("--device") + 1] == "cuda"
