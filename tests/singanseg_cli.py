"""The ``python -m monai_singanseg`` SinGAN-Seg commands as real subprocesses, for the CLI test files."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from monai_singanseg.io.modelfile import load_model_file


def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m monai_singanseg ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "monai_singanseg", *args], capture_output=True, text=True, encoding="utf-8", **kwargs
    )


def train_args(item: dict, out: Path, options: Sequence[str]) -> list[str]:
    """``train-singanseg`` of a datalist entry into ``out`` with ``options``."""
    return ["train-singanseg", "--image", *item["image"], "--label", item["label"], "--out", str(out), *options]


def kill_after_first_scale(args: Sequence[str], out: Path, timeout: float = 300) -> None:
    """Start ``train-singanseg ARGS`` and SIGKILL it as soon as its model file ``out`` (the first scale) exists,
    then check that ``out`` is a valid, unfinished model file."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "monai_singanseg", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + timeout
        while not out.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    partial = load_model_file(out).config  # the checkpoint of the last finished scale is a valid model file
    assert not partial.complete and 1 <= partial.finished_scales < partial.num_scales, (
        "the run ended before it could be killed"
    )


def assert_same_model(a: Path, b: Path) -> None:
    """Two complete model files with the same noise amplitudes and bit-identical generators."""
    first, second = load_model_file(a), load_model_file(b)
    assert first.config.complete and second.config.complete
    assert first.config.noise_amplitudes == second.config.noise_amplitudes
    for name, tensor in first.state["generator"].items():
        assert torch.equal(tensor, second.state["generator"][name]), name
