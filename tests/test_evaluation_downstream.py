"""Downstream-utility experiment: region metrics wiring, memorisation flags, and a tiny real run of `evaluate`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import EVALUATE_ONE_FOLD_ON_CPU, brats2013_item

from monai_singanseg.data import load_case
from monai_singanseg.evaluation.experiment import ExperimentSettings, SliceSet, synthetic_quality, tumour_slices
from monai_singanseg.evaluation.regions import BRATS_REGIONS, region_masks, region_metrics

REPO = Path(__file__).resolve().parents[1]


def _case_item(root: Path, name: str) -> dict:
    d = root / "brats_tcga" / name
    return {
        "image": [str(d / f"{name}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")],
        "label": str(d / f"{name}_seg.nii.gz"),
    }


def _known_target() -> torch.Tensor:
    """Two 16x16 slices: slice 0 has core (1), oedema (2) and enhancing (3) pixels; slice 1 only oedema."""
    t = torch.zeros(2, 1, 16, 16, dtype=torch.long)
    t[0, 0, 2:8, 2:8] = 2
    t[0, 0, 3:6, 3:6] = 1
    t[0, 0, 4, 4] = 3
    t[1, 0, 10:14, 10:14] = 2
    return t


def test_region_masks_follow_brats_regions():
    t = _known_target()
    masks = region_masks(t)
    assert list(BRATS_REGIONS) == ["WT", "TC", "ET"]
    assert int(masks[0, 0].sum()) == 36 and int(masks[0, 1].sum()) == 9 and int(masks[0, 2].sum()) == 1
    assert int(masks[1, 0].sum()) == 16 and int(masks[1, 1].sum()) == 0


def test_region_metrics_perfect_disjoint_and_partial():
    t = _known_target()
    perfect = region_metrics(t, t)
    for region in ("WT", "TC", "ET", "mean"):
        for metric in ("dice", "iou", "precision", "recall"):
            assert perfect[region][metric] == pytest.approx(1.0), (region, metric)
    assert perfect["ET"]["slices"] == 1 and perfect["WT"]["slices"] == 2

    disjoint = torch.zeros_like(t)
    disjoint[:, 0, 0:2, 14:16] = 3  # enhancing tumour where there is no tumour at all
    scores = region_metrics(disjoint, t)
    for region in ("WT", "TC", "ET", "mean"):
        assert scores[region]["dice"] == 0.0 and scores[region]["iou"] == 0.0 and scores[region]["recall"] == 0.0

    # predicting the whole tumour as oedema: WT perfect, TC and ET missed
    as_oedema = torch.where(t > 0, torch.full_like(t, 2), t)
    scores = region_metrics(as_oedema, t)
    assert scores["WT"]["dice"] == pytest.approx(1.0)
    assert scores["TC"]["dice"] == 0.0 and scores["ET"]["dice"] == 0.0
    assert scores["mean"]["dice"] == pytest.approx(1.0 / 3.0)

    # a region absent from every target slice is undefined, and left out of the mean
    no_et = torch.where(t == 3, torch.ones_like(t), t)
    scores = region_metrics(no_et, no_et)
    assert math.isnan(scores["ET"]["dice"]) and scores["ET"]["slices"] == 0
    assert scores["mean"]["dice"] == pytest.approx(1.0)


def test_memorisation_flags_a_copy_of_a_training_slice_only(shared_data):
    train = tumour_slices(load_case(_case_item(shared_data, "TCGA-FG-6692")), 32)
    other = tumour_slices(load_case(_case_item(shared_data, "TCGA-DU-7294")), 32)
    copy, unrelated = train.subset([7]), other.subset([0])
    samples = SliceSet.concat(
        [SliceSet(copy.images, copy.labels, ["copy"]), SliceSet(unrelated.images, unrelated.labels, ["unrelated"])]
    )
    settings = ExperimentSettings(size=32, diversity_samples=2, swd_projections=16)
    quality = synthetic_quality(samples, train, 4, settings)
    mem = quality["memorisation"]
    assert mem["num_flagged"] == 1
    assert mem["flagged"][0]["sample"] == "copy" and mem["flagged"][0]["nearest_real"] == train.names[7]
    assert mem["flagged"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert mem["max"] == pytest.approx(1.0, abs=1e-5) and mem["mean"] < 0.95
    assert math.isfinite(quality["swd"]) and quality["swd"] > 0 and math.isfinite(quality["diversity"])
    assert mem["share_closer_than_held_out"] is None  # no held-out baseline given
    # the copy is closer to a training slice than an unseen patient's best slice (0.9); the unrelated slice is not
    between = synthetic_quality(samples, train, 4, settings, held_out_max=0.9)["memorisation"]
    assert between["share_closer_than_held_out"] == pytest.approx(0.5)


@pytest.mark.slow
def test_evaluate_cli_tiny_real_run_writes_a_complete_report(shared_data, tmp_path):
    """Two BRATS-2013 cases from a datalist with non-BraTS file names, two sequences and label 3 mapped to 1; the
    held-out case is predicted slice by slice, pasted back and scored in 3D."""
    items = [brats2013_item(c) for c in ("brats_2013_pat0001_1", "brats_2013_pat0002_1")]
    datalist = tmp_path / "b13.json"
    datalist.write_text(json.dumps({"training": items}), encoding="utf-8")
    out = tmp_path / "report"
    cmd = [
        sys.executable,
        "-m",
        "monai_singanseg",
        "evaluate",
        "--datalist",
        str(datalist),
        "--out",
        str(out),
        "--label-map",
        "3:1",
        "--channel-names",
        "flair",
        "t1ce",
        "--size",
        "32",
        "--seeds",
        "0",
        "--k",
        "1",
        "2",
        "--singan-slices",
        "1",
        "--singan-iters",
        "2",
        "--samples-per-model",
        "2",
        "--pix2pix-epochs",
        "1",
        "--pix2pix-volumes",
        "1",
        "--pix2pix-samples",
        "4",
        "--features",
        "4",
        "--steps",
        "4",
        "--val-every",
        "2",
        "--batch-size",
        "2",
        *EVALUATE_ONE_FOLD_ON_CPU,
        "--style",
        "histogram",
        "random",
        "--style-steps",
        "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", cwd=REPO, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "WT Dice(synthetic) / Dice(real) = " in done.stdout and "Dice(real1+singanseg) / Dice(real1)" in done.stdout
    for name in ("report.json", "report.md", "dice_by_training_set.png", "dice_small_data.png", "samples_fold0.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    fold = report["folds"][0]
    assert fold["train_cases"] == ["brats_2013_pat0002_1"] and fold["test_case"] == "brats_2013_pat0001_1"
    assert report["channel_names"] == ["flair", "t1ce"] and report["regions"] == {
        "WT": [1, 2, 4],
        "TC": [1, 4],
        "ET": [4],
    }
    assert all(fold["test_regions_present"].values())  # pat0001 holds all three regions
    styled = {
        f"{base}+style:{m}"
        for base in ("singanseg", "real1+singanseg", "real2+singanseg")
        for m in ("histogram", "random")
    }
    assert (
        set(report["summary"])
        == {
            "real",
            "singanseg",
            "pix2pix",
            "spade",
            "synthetic",
            "real+synthetic",
            "real1",
            "real1+singanseg",
            "real2",
            "real2+singanseg",
        }
        | styled
    )
    for name, stats in report["summary"].items():
        for region in ("WT", "TC", "ET", "mean"):  # 3D per-case scores, every one defined (BraTS empty convention)
            assert 0.0 <= stats[region]["dice"]["mean"] <= 1.0, (name, region)
            assert 0.0 <= stats[region]["hd95"]["mean"] <= 373.13, (name, region)
    # the held-out volume is predicted whole: 145 brain slices of pat0002 were split 3:1 into training and validation
    assert fold["num_test"] == 132 and fold["num_real_train"] + fold["num_validation"] == 145
    assert fold["num_validation"] == 36 and fold["runs"]["real"]["num_slices"] == 109
    # k real slices of the one training case + 2 samples of each of their own k models
    assert fold["runs"]["real2"]["num_slices"] == 2 and fold["runs"]["real2+singanseg"]["num_slices"] == 6
    assert fold["runs"]["real1+singanseg"]["num_slices"] == 3 and fold["runs"]["singanseg"]["num_slices"] == 2
    small = [int(n.rsplit(":", 1)[1]) for n in fold["small_data_slices"]]
    models = [  # the SinGAN-Seg cache: one dataset per (case, slice)
        e
        for folder in fold["generators"]["small_singanseg"]
        for e in json.loads((Path(folder) / "manifest.json").read_text())["entries"]
    ]
    assert sorted(small) == sorted(e["slice"] for e in models)  # synthesize trained on exactly the small-data slices
    assert fold["runs"]["real"]["runs"]["0"]["steps"] == 4 and fold["runs"]["real"]["runs"]["0"]["best_step"] in (2, 4)
    for name in ("singanseg", "pix2pix", "synthetic", "singanseg+style:histogram", "singanseg+style:random"):
        q = fold["quality"][name]
        assert all(math.isfinite(q[k]) for k in ("swd", "diversity", "real_diversity"))
        assert 0.0 < q["memorisation"]["max"] <= 1.0 and 0.0 <= q["memorisation"]["share_closer_than_held_out"] <= 1.0
    for method in ("histogram", "random"):  # style transfer changes the images, never the labels
        styled_quality = fold["quality"][f"singanseg+style:{method}"]
        assert styled_quality["labels"] == fold["quality"]["singanseg"]["labels"]
        assert styled_quality["swd"] != fold["quality"]["singanseg"]["swd"]
        assert fold["runs"][f"real2+singanseg+style:{method}"]["num_slices"] == 6
    h = report["headline"]
    assert h["region"] == "WT" and h["ratios"]["synthetic/real"]["interval"] is None  # one fold, one seed: no interval
    assert h["ratios"]["synthetic/real"]["verdict"].startswith("unresolved") and "real2+singanseg/real2" in h["ratios"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| real (all training slices) | 109 |" in md
    assert "n/a (fewer than 2 paired runs, or a zero denominator)" in md
    assert "| SinGAN-Seg only + style transfer (histogram) | 2 |" in md
    for name in ("singanseg", "small_singanseg", "pix2pix"):  # the synthetic datasets, as synthesize writes them
        assert all((Path(folder) / "datalist.json").is_file() for folder in fold["generators"][name]), name
    assert Path(fold["generators"]["singanseg"][0]).parent == out / "models" / "singanseg_cache"
    assert (out / "models" / "fold0" / "pix2pix" / "models" / "pix2pix.pt").is_file()
    # the two renderers side by side, the same budget: the U-Net pix2pix and SPADE, each its own model
    for name, architecture in (("pix2pix", "unet"), ("spade", "spade")):
        model = torch.load(out / "models" / "fold0" / name / "models" / "pix2pix.pt", weights_only=True)
        assert model["config"]["architecture"] == architecture, name
        assert model["config"]["settings"]["epochs"] == 1, name
    assert fold["runs"]["spade"]["num_slices"] == fold["runs"]["pix2pix"]["num_slices"] > 0
    assert h["ratios"]["spade/pix2pix"]["numerator"] == "spade" and "| SPADE only |" in md

    # never overwritten without --overwrite: refused before any work, the report untouched
    before = (out / "report.json").read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", cwd=REPO, env=env, timeout=120)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert (out / "report.json").read_bytes() == before


def test_segmentation_stops_on_a_validation_plateau_and_keeps_the_best_weights():
    from monai_singanseg.evaluation.segmentation import SegmentationSettings, train_segmentation, validation_dice

    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(12, 1, 32, 32, dtype=torch.long)
    for i in range(12):  # a bright square is the tumour
        r, c = torch.randint(0, 20, (2,), generator=gen).tolist()
        labels[i, 0, r : r + 10, c : c + 10] = 1
    images = labels.float() * 2 - 1 + 0.3 * torch.randn(12, 1, 32, 32, generator=gen)
    settings = SegmentationSettings(network="basicunet", features=4, steps=400, batch_size=4, val_every=5, patience=2)
    net, info = train_segmentation(
        images[:8], labels[:8], 2, settings, seed=0, device="cpu", progress=False, validation=(images[8:], labels[8:])
    )
    history = info["validation"]
    assert info["steps"] < 400 and len(history) == info["steps"] // 5  # stopped early, on a plateau
    best_step, best = max(history, key=lambda h: h[1])
    assert info["best_step"] == best_step and all(d <= best for s, d in history if s > best_step)
    assert len([s for s, _ in history if s > best_step]) == 2  # patience: two validations without improvement
    assert validation_dice(net, images[8:], labels[8:], 2) == pytest.approx(best)  # the best weights came back
