"""`evaluate --quick`, the CPU smoke budget, end to end on the four-sequence TCGA cases (its own file, so that the
test runner can put it beside the other long `evaluate` runs rather than after them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import EVALUATE_ONE_FOLD_ON_CPU

from monai_singanseg.evaluation.experiment import ExperimentSettings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_evaluate_quick_on_the_four_sequence_cases(shared_data, tmp_path):
    """`evaluate --quick` (the CPU smoke budget), one fold of the two BraTS-named four-sequence TCGA cases, with some of
    its budgets replaced by options given beside it: every training set runs, the report holds every headline ratio
    with its verdict."""
    from monai_singanseg.evaluation.experiment import headline_ratios, training_set_names

    out = tmp_path / "quick"
    cmd = [
        sys.executable,
        "-m",
        "monai_singanseg",
        "evaluate",
        "--data",
        str(shared_data / "brats_tcga"),
        "--out",
        str(out),
        "--quick",
        "--pix2pix-epochs",
        "1",
        "--singan-iters",
        "4",
        "--steps",
        "20",
        "--val-every",
        "10",
        *EVALUATE_ONE_FOLD_ON_CPU,
    ]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    quick = ExperimentSettings.quick()
    assert report["channel_names"] == ["flair", "t1", "t1ce", "t2"] and report["settings"]["k_values"] == [1, 2]
    assert (report["settings"]["pix2pix_epochs"], report["settings"]["singan_iters"]) == (1, 4)  # given: replaced
    assert report["settings"]["samples_per_model"] == quick.samples_per_model  # not given: the quick budget's
    (fold,) = report["folds"]
    assert list(fold["runs"]) == training_set_names(quick.k_values)
    for name, entry in fold["runs"].items():
        assert 0.0 <= entry["runs"]["0"]["WT"]["dice"] <= 1.0, name
        assert entry["runs"]["0"]["steps"] <= 20, name
    assert list(report["headline"]["ratios"]) == list(headline_ratios(quick.k_values))
    assert "Dice(real+synthetic) / Dice(real) = " in done.stdout
    assert (out / "samples_fold0.png").is_file() and (out / "dice_small_data.png").is_file()
