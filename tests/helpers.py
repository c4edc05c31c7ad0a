"""What several test files share: the command line run as a real subprocess (:func:`cli`) or in this process
(:func:`run_cli`, where the subprocess is not the point), SinGAN-Seg model helpers, and the evaluation's BRATS-2013
cases and tiny settings."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from conftest import SHARED_DATA, free_port

from monai_singanseg.cli import main
from monai_singanseg.io.modelfile import load_model_file

REPO = Path(__file__).resolve().parents[1]


def brats2013_item(case: str) -> dict:
    """A shared BRATS-2013 case as a datalist entry: FLAIR + T1c and the expert label (its own file names)."""
    d = SHARED_DATA / "brats2013" / case
    return {
        "name": case,
        "image": [str(d / "Flair_subtrMeanDivStd.nii.gz"), str(d / "T1c_subtrMeanDivStd.nii.gz")],
        "label": str(d / "OTMultiClass.nii.gz"),
    }


def tiny_experiment(**overrides: Any) -> Any:
    """Downstream-experiment settings of seconds for the BRATS-2013 cases (32 px, one seed, one tiny SinGAN-Seg model
    per case, a width-4 BasicUNet for 2 steps; label 3 counted as 1)."""
    from monai_singanseg.evaluation.experiment import ExperimentSettings
    from monai_singanseg.evaluation.segmentation import SegmentationSettings

    base: dict[str, Any] = dict(
        size=32,
        seeds=(0,),
        k_values=(1,),
        singan_slices=1,
        singan_iters=2,
        samples_per_model=2,
        label_map={3: 1},
        channel_names=("flair", "t1ce"),
        segmentation=SegmentationSettings(network="basicunet", features=4, steps=2, val_every=2, batch_size=2),
    )
    return ExperimentSettings(**{**base, **overrides})


#: the end of the tests' ``evaluate`` commands: one fold, one torch thread, on the CPU, without progress output.
EVALUATE_ONE_FOLD_ON_CPU = ("--folds", "1", "--threads", "1", "--device", "cpu", "--quiet")


def subprocess_env() -> dict[str, str]:
    """The environment of the tests' subprocesses: one torch thread per process, unbuffered output."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run_command(cmd: Sequence[str], cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``cmd`` as a real subprocess in :func:`subprocess_env`, capturing its output (bad bytes replaced)."""
    return subprocess.run(
        list(cmd),
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        env=subprocess_env(),
    )


def cli(
    *args: str, cwd: Path = REPO, timeout: float = 600, module: str = "monai_singanseg"
) -> subprocess.CompletedProcess:
    """Run ``python -m MODULE ARGS`` as a real subprocess (one torch thread) and capture its output."""
    return run_command([sys.executable, "-m", module, *args], cwd, timeout)


def torchrun_command(module: str, *args: str, processes: int = 2) -> list[str]:
    """``torchrun`` of ``python -m MODULE ARGS`` on ``processes`` local processes, on a free port (two jobs of
    parallel test workers must not meet on torchrun's default port)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
        "--master_port", str(free_port()), "-m", module, *args,
    ]  # fmt: skip


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m monai_singanseg ARGS`` in this process (argparse errors included) and capture its output, as
    :func:`cli` does; for checks of messages and exit codes, where starting a process is not what is tested."""
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --help or a bad option
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            torch.set_num_threads(threads)  # --threads must not leak into the other tests
    return subprocess.CompletedProcess(["monai_singanseg", *args], code, out.getvalue(), err.getvalue())


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
