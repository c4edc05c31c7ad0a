"""Per-case BraTS scores (Dice, HD95, empty regions), slice stacking, and the bootstrap intervals."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from monai_singanseg.data import load_image
from monai_singanseg.evaluation.regions import BRATS_REGIONS
from monai_singanseg.evaluation.scoring import (
    BRATS2013_REGIONS,
    BRATS2023_REGIONS,
    EMPTY_HD95_PENALTY,
    case_scores,
    regions_for,
)
from monai_singanseg.evaluation.statistics import Interval, bootstrap_ci, paired_difference_ci, paired_ratio_ci
from monai_singanseg.transforms.labels import LabelToIndex

LABELS = (0, 1, 2, 4)  # class index i <-> label value LABELS[i]
OEDEMA, ENHANCING = 2, 3  # class indices of labels 2 and 4


def _cube(shape=(16, 16, 16), start=(3, 3, 2), side=10, index=OEDEMA) -> torch.Tensor:
    vol = torch.zeros((1, *shape), dtype=torch.long)
    vol[(0, *(slice(s, s + side) for s in start))] = index
    return vol


# ------------------------------------------------------------------------------------------------ scores
@pytest.mark.parametrize("axis, expected_hd95", [(2, 4.0), (0, 2.0)])
def test_dice_and_hd95_of_a_cube_shifted_by_two_voxels(axis, expected_hd95):
    # A: 10^3 cube; B: A shifted by s = 2 voxels along `axis`; spacing (1, 1, 2) mm.
    # Dice: |A| = |B| = 1000, |A & B| = 10 * 10 * 8 = 800 -> 2 * 800 / 2000 = 0.8.
    # HD95 (MONAI: distances between the two SURFACES, i.e. the voxels with a face-neighbour outside):
    # - upper bound: a translation maps A's surface onto B's, so every A-surface voxel v has the B-surface voxel
    #   v + s at s * spacing[axis]; every distance is <= s * spacing[axis] (and the same from B to A).
    # - A's face at the start of `axis` (10 * 10 = 100 voxels) is s voxels before any voxel of B: its distances
    #   are >= s * spacing[axis], hence equal. A has 10^3 - 8^3 = 488 surface voxels, 100 / 488 = 20 % > 5 %,
    #   so the 95th percentile is s * spacing[axis]: 2 * 2 = 4 mm along axis 2, 2 * 1 = 2 mm along axis 0.
    spacing = (1.0, 1.0, 2.0)
    start_b = [3, 3, 2]
    start_b[axis] += 2
    a, b = _cube(), _cube(start=tuple(start_b))
    scores = case_scores(b, a, LABELS, spacing=spacing)
    assert scores["WT"]["dice"] == pytest.approx(2 * 800 / (1000 + 1000))
    assert scores["WT"]["hd95"] == pytest.approx(expected_hd95)
    assert scores["WT"]["empty_reference"] is False and scores["WT"]["empty_prediction"] is False
    # oedema only: TC and ET are empty in both -> Dice 1, HD95 0 (BraTS convention)
    for region in ("TC", "ET"):
        assert (scores[region]["dice"], scores[region]["hd95"]) == (1.0, 0.0)
    assert scores["mean"]["dice"] == pytest.approx((0.8 + 1 + 1) / 3)
    assert scores["mean"]["hd95"] == pytest.approx(expected_hd95 / 3)


def test_hd95_without_spacing_is_in_voxels():
    a, b = _cube(), _cube(start=(3, 3, 4))
    assert case_scores(b, a, LABELS)["WT"]["hd95"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "reference_empty, prediction_empty, dice, hd95",
    [
        (True, True, 1.0, 0.0),
        (True, False, 0.0, EMPTY_HD95_PENALTY),
        (False, True, 0.0, EMPTY_HD95_PENALTY),
        (False, False, 1.0, 0.0),
    ],
)
def test_the_four_empty_combinations(reference_empty, prediction_empty, dice, hd95):
    empty, tumour = torch.zeros((1, 12, 12, 12), dtype=torch.long), _cube((12, 12, 12), (2, 2, 2), 6, ENHANCING)
    target = empty if reference_empty else tumour
    prediction = empty if prediction_empty else tumour
    with warnings.catch_warnings():
        # MONAI warns "... is all 0, this may result in nan/inf distance" on an empty mask: never called on one
        warnings.filterwarnings("error", message=".*all 0")
        scores = case_scores(prediction, target, LABELS, spacing=(1.0, 1.0, 1.0))
    for region in ("WT", "TC", "ET"):  # label 4 lies in all three regions
        assert scores[region]["dice"] == dice and scores[region]["hd95"] == hd95
        assert scores[region]["empty_reference"] is reference_empty
        assert scores[region]["empty_prediction"] is prediction_empty
    assert all(math.isfinite(v) for r in scores.values() for v in r.values())
    assert scores["mean"] == pytest.approx({"dice": dice, "hd95": hd95})


def test_empty_penalty_is_the_brats_diagonal():
    assert EMPTY_HD95_PENALTY == pytest.approx(math.sqrt(240**2 + 240**2 + 155**2), abs=0.01)


def test_brats2013_regions_count_label_3():
    values = (0, 1, 2, 3, 4)
    assert regions_for(values) == BRATS2013_REGIONS == {"WT": (1, 2, 3, 4), "TC": (1, 3, 4), "ET": (4,)}
    assert regions_for(LABELS) == BRATS_REGIONS
    assert regions_for((0, 1, 2, 3)) == BRATS2023_REGIONS  # BraTS 2023: 3 is the enhancing tumour
    assert regions_for((0, 1, 2)) == {"WT": (1, 2, 4), "TC": (1, 4)}  # ET cannot be represented
    # target: non-enhancing tumour (value 3, index 3) only; prediction: the same voxels as necrosis (value 1)
    target, prediction = _cube(index=3), _cube(index=1)
    scores = case_scores(prediction, target, values)  # regions default to regions_for(values)
    assert scores["WT"]["dice"] == 1.0 and scores["TC"]["dice"] == 1.0
    assert scores["ET"] == {"dice": 1.0, "hd95": 0.0, "empty_reference": True, "empty_prediction": True}
    # with the later-BraTS regions, label 3 would be ignored: the reference WT looks empty
    wrong = case_scores(prediction, target, values, regions=BRATS_REGIONS)
    assert wrong["WT"]["empty_reference"] is True and wrong["WT"]["dice"] == 0.0


def test_case_scores_rejects_bad_input():
    a = _cube()
    with pytest.raises(ValueError, match=r"\(1, 16, 16, 16\).*\(1, 16, 16, 8\)"):
        case_scores(a, a[..., :8], LABELS)
    with pytest.raises(ValueError, match=r"\(1, \*spatial\).*\(2, 16, 16, 16\)"):
        case_scores(a.repeat(2, 1, 1, 1), a.repeat(2, 1, 1, 1), LABELS)
    with pytest.raises(ValueError, match=r"\(1, \*spatial\).*\(1, 1, 16, 16, 16\)"):
        case_scores(a[None], a[None], LABELS)
    with pytest.raises(ValueError, match="ET"):
        case_scores(a, a, (0, 1, 2), regions=BRATS_REGIONS)
    with pytest.raises(ValueError, match="spacing"):
        case_scores(a, a, LABELS, spacing=(1.0, 1.0))


def test_real_brats2013_case(shared_data):
    values = (0, 1, 2, 3, 4)
    label = load_image(shared_data / "brats2013" / "brats_2013_pat0001_1" / "OTMultiClass.nii.gz", 3, "label")
    target = LabelToIndex(values)(label)
    spacing = tuple(float(s) for s in label.pixdim)
    perfect = case_scores(target, target, values, spacing=spacing)
    for region in ("WT", "TC", "ET", "mean"):
        assert (perfect[region]["dice"], perfect[region]["hd95"]) == (1.0, 0.0)
    erased = case_scores(torch.zeros_like(target.as_tensor()), target, values, spacing=spacing)
    assert (erased["WT"]["dice"], erased["WT"]["hd95"]) == (0.0, EMPTY_HD95_PENALTY)
    assert erased["WT"]["empty_prediction"] is True and erased["WT"]["empty_reference"] is False
    # shifted by 2 slices (1 mm): a translation maps surface onto surface, so 0 < HD95 <= 2 mm; Dice in (0, 1)
    shifted = case_scores(torch.roll(target.as_tensor(), 2, dims=3), target, values, spacing=spacing)
    assert 0.0 < shifted["WT"]["dice"] < 1.0
    assert 0.0 < shifted["WT"]["hd95"] <= 2.0 + 1e-6


def test_scores_equal_monai_metrics_on_the_whole_volumes(shared_data):
    """case_scores cuts both volumes to the box around their tumour before scoring; the figures are MONAI's Dice and
    HD95 of the whole, uncut volumes, also for a prediction that touches the volume's border and one with scattered
    false positives."""
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    values = (0, 1, 2, 3, 4)
    label = load_image(shared_data / "brats2013" / "brats_2013_pat0001_1" / "OTMultiClass.nii.gz", 3, "label")
    target = LabelToIndex(values)(label).as_tensor().long()
    spacing = (0.9, 1.2, 2.0)
    generator = torch.Generator().manual_seed(0)
    speckle = torch.rand(target.shape, generator=generator) < 2e-4
    predictions = {
        "shifted": torch.roll(target, shifts=(3, -2, 1), dims=(1, 2, 3)),
        "at the border": torch.roll(target, shifts=100, dims=1),  # the tumour wraps round the first axis' edge
        "speckled": torch.where(speckle, torch.full_like(target, 2), target),
    }
    for name, prediction in predictions.items():
        scores = case_scores(prediction, target, values, spacing=spacing)
        for region, members in BRATS2013_REGIONS.items():
            indices = torch.tensor([values.index(v) for v in members])
            p, t = torch.isin(prediction, indices)[None].float(), torch.isin(target, indices)[None].float()
            dice = float(DiceMetric(include_background=True)(p, t)[0, 0])
            hd_metric = HausdorffDistanceMetric(include_background=True, percentile=95)
            with warnings.catch_warnings():  # MONAI's own deprecation notice inside its surface distance
                warnings.simplefilter("ignore")
                hd95 = float(hd_metric(p, t, spacing=spacing)[0, 0])
            assert (scores[region]["dice"], scores[region]["hd95"]) == (dice, hd95), (name, region)


# ------------------------------------------------------------------------------------------ slices and back
class _Oracle(torch.nn.Module):
    """Returns the one-hot logits of the given label slices, batch after batch (a network that is always right)."""

    def __init__(self, labels: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.labels, self.num_classes, self.seen = labels, num_classes, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = self.labels[self.seen : self.seen + x.shape[0], 0]
        self.seen += x.shape[0]
        return 10.0 * torch.nn.functional.one_hot(batch, self.num_classes).permute(0, 3, 1, 2).float()


def test_keeping_the_largest_tumour_removes_a_distant_false_positive_only(shared_data):
    from monai_singanseg.evaluation.volumes import keep_largest_tumour

    values = (0, 1, 2, 3, 4)
    label = load_image(shared_data / "brats2013" / "brats_2013_pat0001_1" / "OTMultiClass.nii.gz", 3, "label")
    target = LabelToIndex(values)(label).as_tensor()
    spacing = tuple(float(s) for s in label.pixdim)
    original = target.clone()
    largest = keep_largest_tumour(target, len(values))
    assert torch.equal(target, original)  # the input is left as it is
    assert largest.dtype == target.dtype and largest.shape == target.shape
    kept = largest > 0
    assert bool((largest[kept] == target[kept]).all())  # classes inside the kept component are untouched
    assert 0.95 * int((target > 0).sum()) <= int(kept.sum()) < int((target > 0).sum())  # islands went
    predicted = largest.clone()
    predicted[0, 10:40, 10:40, 10:40] = OEDEMA  # a 30^3 blob of oedema far from the tumour
    assert not bool((target[0, 10:40, 10:40, 10:40] > 0).any())
    before = case_scores(predicted, target, values, spacing=spacing)
    after = case_scores(keep_largest_tumour(predicted, len(values)), target, values, spacing=spacing)
    assert torch.equal(keep_largest_tumour(predicted, len(values)), largest)  # only the blob went
    assert after["WT"]["dice"] > before["WT"]["dice"] and after["WT"]["hd95"] < before["WT"]["hd95"]


def test_slices_pasted_back_rebuild_the_case(shared_data):
    """Every brain slice of a real case goes to the working grid and back: a network that predicts the grid's own
    labels scores close to Dice 1 in 3D (the loss is only the resampling to 96 px and back), in mm."""
    from monai_singanseg.data import load_case
    from monai_singanseg.evaluation.volumes import case_slices, predict_case, score_case

    folder = shared_data / "brats2013" / "brats_2013_pat0001_1"
    item = {
        "image": [str(folder / "Flair_subtrMeanDivStd.nii.gz"), str(folder / "T1c_subtrMeanDivStd.nii.gz")],
        "label": str(folder / "OTMultiClass.nii.gz"),
        "name": "pat1",
    }
    case = load_case(item, (0, 1, 2, 4), 3, {3: 1})
    cs = case_slices(case, 96)
    assert cs.images.shape[1:] == (2, 96, 96) and len(cs.indices) == cs.images.shape[0] == 132
    assert float(cs.images.min()) == -1.0 and float(cs.images.max()) == 1.0 and cs.spacing == (1.0, 1.0, 1.0)
    prediction = predict_case(_Oracle(cs.labels, 4), cs, 4)
    assert prediction.shape == cs.target.shape
    outside = [z for z in range(cs.target.shape[3]) if z not in cs.indices]  # the axial axis is the last here
    assert outside and not bool(prediction[..., outside].any())
    scores = score_case(_Oracle(cs.labels, 4), cs, (0, 1, 2, 4))
    assert scores["WT"]["dice"] > 0.95 and scores["TC"]["dice"] > 0.9 and scores["WT"]["hd95"] <= 2.0


# ------------------------------------------------------------------------------------------------ bootstrap
def test_bootstrap_of_constant_values_is_a_point():
    estimate, low, high = bootstrap_ci([0.7] * 20)
    assert estimate == pytest.approx(0.7) and low == pytest.approx(0.7) and high == pytest.approx(0.7)


def test_bootstrap_of_a_normal_sample_has_the_textbook_width():
    n, mu, sd = 400, 3.0, 2.0
    z = np.random.default_rng(1).standard_normal(n)
    x = (z - z.mean()) / z.std(ddof=1) * sd + mu  # sample mean exactly mu, sample sd exactly sd
    estimate, low, high = bootstrap_ci(x)
    assert estimate == pytest.approx(mu) and low < mu < high
    assert (high - low) == pytest.approx(2 * 1.96 * sd / math.sqrt(n), rel=0.15)
    assert bootstrap_ci(x) == (estimate, low, high)  # deterministic with the seed
    assert bootstrap_ci(x, seed=1) != (estimate, low, high)
    med, mlow, mhigh = bootstrap_ci(x, num_resamples=2000, statistic=np.median)
    assert med == pytest.approx(float(np.median(x))) and mlow <= med <= mhigh


def test_paired_ratio_with_a_known_ratio():
    den = np.random.default_rng(2).uniform(0.5, 1.0, 50)
    exact = paired_ratio_ci(0.8 * den, den)  # every pair has ratio 0.8, so does every resample
    assert (exact.estimate, exact.low, exact.high, exact.n) == pytest.approx((0.8, 0.8, 0.8, 50))
    noise = np.random.default_rng(3).normal(0, 0.02, 50)
    noisy = paired_ratio_ci(0.8 * den + (noise - noise.mean()), den)
    assert noisy.estimate == pytest.approx(0.8) and noisy.low < 0.8 < noisy.high
    assert noisy.excludes(1.0) and not noisy.excludes(0.8)
    assert noisy.resolved_against(1.0) == "below" and noisy.resolved_against(0.5) == "above"
    assert noisy.resolved_against(0.8) == "unresolved"


def test_paired_difference():
    b = np.random.default_rng(4).uniform(0.3, 0.9, 30)
    diff = paired_difference_ci(b + 0.1, b)
    assert (diff.estimate, diff.low, diff.high, diff.n) == pytest.approx((0.1, 0.1, 0.1, 30))
    assert diff.resolved_against(0.0) == "above"


def test_interval_methods():
    iv = Interval(estimate=1.0, low=0.9, high=1.2, n=10)
    assert iv.excludes(0.8) and iv.excludes(1.3) and not iv.excludes(0.9) and not iv.excludes(1.0)
    assert (iv.resolved_against(0.5), iv.resolved_against(1.5), iv.resolved_against(1.0)) == (
        "above",
        "below",
        "unresolved",
    )


def test_statistics_reject_bad_input():
    with pytest.raises(ValueError, match=r"NaN at positions \[1, 3\]"):
        bootstrap_ci([1.0, math.nan, 2.0, math.nan])
    with pytest.raises(ValueError, match="infinite"):
        paired_difference_ci([1.0, math.inf], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ci([1.0])
    with pytest.raises(ValueError, match="at least 2"):
        paired_ratio_ci([1.0], [1.0])
    with pytest.raises(ValueError, match="equal lengths.*3.*2"):
        paired_ratio_ci([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference_ci([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="denominator's mean is zero"):
        paired_ratio_ci([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        bootstrap_ci([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=1.5)


def test_headline_ratios_with_known_answers():
    """Two folds x two seeds of made-up WT Dice: synthetic is exactly half of real (a point interval, below 0.9),
    1 real + SinGAN-Seg doubles 1 real (above 1.3), real + synthetic straddles real (unresolved)."""
    from monai_singanseg.evaluation.experiment import ExperimentSettings, headline, summarise_folds
    from monai_singanseg.evaluation.report import headline_text

    def run(dice: float) -> dict:
        return {r: {"dice": dice, "hd95": 1.0} for r in ("WT", "TC", "ET", "mean")}

    real = [0.8, 0.7, 0.6, 0.9]
    wiggle = [0.1, -0.1, 0.1, -0.1]
    folds = [
        {
            "test_case": f"case{f}",
            "runs": {
                "real": {"runs": {str(s): run(real[2 * f + s]) for s in range(2)}},
                "synthetic": {"runs": {str(s): run(real[2 * f + s] / 2) for s in range(2)}},
                "real+synthetic": {"runs": {str(s): run(real[2 * f + s] + wiggle[2 * f + s]) for s in range(2)}},
                "real1": {"runs": {str(s): run(0.2 + 0.1 * s) for s in range(2)}},
                "real1+singanseg": {"runs": {str(s): run(0.4 + 0.2 * s) for s in range(2)}},
            },
        }
        for f in range(2)
    ]
    settings = ExperimentSettings(k_values=(1, 5))
    h = headline(summarise_folds(folds, settings), settings.k_values, (), "WT", folds)
    assert h["k"] == 1 and h["dice_real"] == pytest.approx(0.75)
    assert set(h["ratios"]) == {"synthetic/real", "real+synthetic/real", "real1+singanseg/real1"}  # no real5 runs
    half = h["ratios"]["synthetic/real"]
    assert half["ratio"] == pytest.approx(0.5) and half["interval"]["n"] == 4
    assert half["interval"]["low"] == pytest.approx(0.5) and half["interval"]["high"] == pytest.approx(0.5)
    assert half["verdict"] == "below 0.9; below 1"
    assert h["ratios"]["real1+singanseg/real1"]["verdict"] == "above 1.3; above 1"
    mixed = h["ratios"]["real+synthetic/real"]
    assert mixed["target"] == 1.0 and mixed["interval"]["low"] < 1.0 < mixed["interval"]["high"]
    assert mixed["verdict"] == "unresolved against 1"
    text = "\n".join(headline_text(h))
    assert "WT Dice(synthetic) / Dice(real) = 0.500" in text and "(n = 4; below 0.9; below 1)" in text
    # a run of some sets only (--sets real1 real1+singanseg): real-only Dice is said to be missing, not printed as nan
    small = [{**fold, "runs": {n: fold["runs"][n] for n in ("real1", "real1+singanseg")}} for fold in folds]
    only = headline(summarise_folds(small, settings), settings.k_values, (), "WT", small)
    lines = headline_text(only)
    assert lines[0] == "WT Dice(real only) = not run (no 'real' set) (target >= 0.75)" and "nan" not in "".join(lines)
    assert "Dice(real1+singanseg) / Dice(real1)" in lines[1]
