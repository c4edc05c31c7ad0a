"""`evaluate --test-datalist`: generators and networks trained once on every training case, scored on a user's own
test cases; test sets that cannot score them are refused before anything is trained or written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import brats2013_item, tiny_experiment

from monai_singanseg.evaluation.experiment import run_experiment

REPO = Path(__file__).resolve().parents[1]
CASES = ("brats_2013_pat0001_1", "brats_2013_pat0002_1", "brats_2013_pat0003_1", "brats_2013_pat0004_1")


def _tcga_item(root: Path, case: str, order: tuple[str, ...] = ("flair", "t1", "t1ce", "t2")) -> dict:
    d = root / "brats_tcga" / case
    images = [str(d / f"{case}_{m}.nii.gz") for m in order]
    return {"name": case, "image": images, "label": str(d / f"{case}_seg.nii.gz")}


@pytest.mark.slow
def test_evaluate_on_a_test_datalist_trains_once_and_scores_every_test_case(shared_data, tmp_path):
    """Two training cases, two test cases in the datalist's 'testing' list, two seeds: one fold of generators and
    networks, one report entry per test case (the same networks: same training figures, other scores), intervals
    over test cases x seeds."""
    items = [brats2013_item(c) for c in CASES]
    datalist = tmp_path / "split.json"
    datalist.write_text(json.dumps({"training": items[:2], "testing": items[2:]}), encoding="utf-8")
    out = tmp_path / "report"
    cmd = [
        sys.executable, "-m", "monai_singanseg", "evaluate", "--datalist", str(datalist), "--test-datalist",
        str(datalist), "--out", str(out), "--label-map", "3:1", "--channel-names", "flair", "t1ce", "--size", "32",
        "--seeds", "0", "1", "--k", "1", "--singan-slices", "1", "--singan-iters", "2", "--samples-per-model", "2",
        "--sets", "real", "singanseg", "real1", "real1+singanseg", "--features", "4", "--steps", "4", "--val-every",
        "2", "--batch-size", "2", "--threads", "1", "--device", "cpu", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", cwd=REPO, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["protocol"] == {"kind": "test-set", "test_datalist": str(datalist), "test_cases": list(CASES[2:])}
    first, second = report["folds"]
    assert [first["test_case"], second["test_case"]] == list(CASES[2:])
    assert first["train_cases"] == second["train_cases"] == list(CASES[:2])
    assert first["num_real_train"] + first["num_validation"] > second["num_test"] > 0
    assert [p.name for p in (out / "models").iterdir() if p.name.startswith("fold")] == []  # no pix2pix asked for
    for name in ("real", "singanseg", "real1", "real1+singanseg"):
        for seed in ("0", "1"):
            a, b = first["runs"][name]["runs"][seed], second["runs"][name]["runs"][seed]
            assert (a["steps"], a["final_loss"]) == (b["steps"], b["final_loss"]), (name, seed)  # one network
            assert a["WT"] != b["WT"], (name, seed)  # scored on two different patients
    ratio = report["headline"]["ratios"]["real1+singanseg/real1"]
    assert ratio["interval"]["n"] == 4  # 2 test cases x 2 seeds, paired
    md = (out / "report.md").read_text(encoding="utf-8")
    assert f"tested on the 2 case(s) of the test set {datalist}" in md
    assert "WT Dice(real1+singanseg) / Dice(real1)" in done.stdout


def _refused(tmp_path: Path, train: list, test: list, match: str, **overrides) -> None:
    out = tmp_path / "out"
    settings = tiny_experiment(**{"training_sets": ("real",), **overrides})
    with pytest.raises(ValueError, match=match):
        run_experiment(train, out, settings, "cpu", progress=False, test_items=test, test_source="t.json")
    assert not out.exists()  # refused before anything was written


def test_a_test_case_that_is_a_training_case_is_refused(shared_data, tmp_path):
    """The same files, and the same voxels under other file names, are both refused, naming the training case."""
    train = [brats2013_item(c) for c in CASES[:2]]
    _refused(tmp_path, train, [train[1]], r"brats_2013_pat0002_1: the training case brats_2013_pat0002_1 has the same")
    copy = tmp_path / "renamed"
    copy.mkdir()
    renamed = {"name": "new_patient", "image": [], "label": str(copy / "seg.nii.gz")}
    for i, f in enumerate(train[0]["image"]):
        renamed["image"].append(str(copy / f"channel{i}.nii.gz"))
        shutil.copyfile(f, renamed["image"][-1])
    shutil.copyfile(train[0]["label"], renamed["label"])
    _refused(tmp_path, train, [renamed], r"new_patient: the same image voxels as the training case brats_2013_pat0001")


def test_a_test_set_with_other_sequences_or_unknown_labels_or_missing_files_is_refused(shared_data, tmp_path):
    """Other channels than the training cases, the same channels in another order, a label value outside the mapping,
    a missing image file, and --folds (a leave-one-out option): each refused before any work, nothing written."""
    train = [brats2013_item(c) for c in CASES[:2]]
    flair_only = {**brats2013_item(CASES[2]), "image": [brats2013_item(CASES[2])["image"][0]]}
    _refused(tmp_path, train, [flair_only], r"1 image channel\(s\), the training cases have 2")
    reordered = _tcga_item(shared_data, "TCGA-FG-6692", ("t1", "flair", "t1ce", "t2"))
    _refused(
        tmp_path,
        [_tcga_item(shared_data, "TCGA-DU-7294")],
        [reordered],
        r"sequences \['t1', 'flair', 't1ce', 't2'\], the training cases have \['flair', 't1', 't1ce', 't2'\]",
        label_map={},
        channel_names=None,
    )
    label = nib.load(brats2013_item(CASES[2])["label"])
    values = np.asarray(label.dataobj).copy()
    values[0, 0, 0] = 7
    bad_label = tmp_path / "seg7.nii.gz"
    nib.save(nib.Nifti1Image(values, label.affine, label.header), str(bad_label))
    _refused(tmp_path, train, [{**brats2013_item(CASES[2]), "label": str(bad_label)}], r"test case .*7")
    missing = {**brats2013_item(CASES[2]), "image": [str(tmp_path / "gone.nii.gz"), train[0]["image"][1]]}
    _refused(tmp_path, train, [missing], r"test case .*gone\.nii\.gz")
    _refused(tmp_path, train, [brats2013_item(CASES[2])], r"--folds", max_folds=1)
