"""Per-case 3D segmentation scores as the BraTS challenge computes them: Dice and HD95 per tumour region.

A 2D segmentation network predicts one axial slice at a time; :mod:`~monai_singanseg.evaluation.volumes` pastes a
case's slice predictions back into a class-index volume on the case's grid, and :func:`case_scores` scores that
volume against the reference label with MONAI's :class:`~monai.metrics.DiceMetric` and
:class:`~monai.metrics.HausdorffDistanceMetric` (``percentile=95``; in mm when ``spacing`` is given).

Regions are sets of label VALUES (see :mod:`~monai_singanseg.evaluation.regions`); :func:`regions_for` gives
the BraTS regions of a label convention (BraTS up to 2021 ``{0, 1, 2, 4}``, BRATS-2013 ``{0, 1, 2, 3, 4}``
with 3 = non-enhancing tumour, BraTS 2023 ``{0, 1, 2, 3}`` with 3 = enhancing tumour).

Empty regions follow the BraTS challenge convention (the BraTS 2017-2021 ranking code): a region absent from
the reference is scored too, instead of being skipped, so a false-positive prediction of a missing region is
punished and a correct "nothing here" is rewarded:

======================  ======================  ======  ==========================
reference region        predicted region        Dice    HD95
======================  ======================  ======  ==========================
empty                   empty                   1       0
empty                   not empty               0       :data:`EMPTY_HD95_PENALTY`
not empty               empty                   0       :data:`EMPTY_HD95_PENALTY`
not empty               not empty               MONAI   MONAI (95th percentile)
======================  ======================  ======  ==========================

:data:`EMPTY_HD95_PENALTY` = 373.13 mm is the diagonal of the 240 x 240 x 155 1-mm BraTS volume
(``sqrt(240**2 + 240**2 + 155**2)``), the largest distance possible in BraTS space. It is in mm whatever
``spacing`` is, so on a non-BraTS grid it is only a large constant. MONAI returns NaN (Dice with
``ignore_empty``) or inf (HD95) in these cases; :func:`case_scores` never calls the metrics on an empty mask,
so every returned number is finite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from monai.data import MetaTensor
from monai.metrics import DiceMetric, HausdorffDistanceMetric
from monai.transforms.utils import generate_spatial_bounding_box

from monai_singanseg.evaluation.regions import BRATS_REGIONS, region_masks

__all__ = [
    "EMPTY_HD95_PENALTY",
    "BRATS2013_REGIONS",
    "BRATS2023_REGIONS",
    "SCORE_NAMES",
    "regions_for",
    "case_scores",
]

#: HD95 (mm) of a region empty in exactly one of reference and prediction: the BraTS volume's diagonal.
EMPTY_HD95_PENALTY: float = 373.13
#: BRATS-2013 regions (label 3 = non-enhancing tumour, part of the core).
BRATS2013_REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3, 4), "TC": (1, 3, 4), "ET": (4,)}
#: BraTS 2023 regions (label 3 = enhancing tumour).
BRATS2023_REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}
#: the averaged scores of :func:`case_scores` (its ``"mean"`` entry).
SCORE_NAMES = ("dice", "hd95")


def regions_for(label_values: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """The BraTS regions of a label convention.

    Args:
        label_values: the label value of every class index, e.g. ``(0, 1, 2, 4)``.

    Returns:
        BRATS-2013 regions (WT {1, 2, 3, 4}, TC {1, 3, 4}, ET {4}) when ``label_values`` holds 3 and 4;
        BraTS 2023 regions (WT {1, 2, 3}, TC {1, 3}, ET {3}) when it holds 3 but not 4; else
        :data:`~monai_singanseg.evaluation.regions.BRATS_REGIONS`. Regions none of whose values is in
        ``label_values`` are left out (e.g. ET for ``(0, 1, 2)``): they could never be predicted.
    """
    values = {int(v) for v in label_values}
    if 3 in values:
        regions = BRATS2013_REGIONS if 4 in values else BRATS2023_REGIONS
    else:
        regions = BRATS_REGIONS
    return {name: tuple(members) for name, members in regions.items() if values & set(members)}


def _as_plain(t: torch.Tensor) -> torch.Tensor:
    return t.as_tensor() if isinstance(t, MetaTensor) else torch.as_tensor(t)


def _check_volume(name: str, volume: torch.Tensor) -> None:
    if volume.ndim not in (3, 4) or volume.shape[0] != 1:
        raise ValueError(
            f"{name} must be a class-index map (1, *spatial) with 2 or 3 spatial axes, got shape {tuple(volume.shape)}"
        )


def _crop_to_regions(
    prediction: torch.Tensor,
    target: torch.Tensor,
    label_values: Sequence[int],
    regions: Mapping[str, Sequence[int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both class-index maps ``(1, *spatial)`` cut to the box around every voxel of any region in either, with one
    voxel of margin (clamped to the volume). The scores are unchanged: Dice counts region voxels only, and MONAI's
    surface distances crop to the same kind of box (one voxel of margin, padded where it leaves the volume) before
    finding the edges. Maps with no region voxel are returned whole."""
    every = {"any region": [v for members in regions.values() for v in members]}
    union = (region_masks(prediction[None], label_values, every) + region_masks(target[None], label_values, every))[0]
    if not bool(union.any()):
        return prediction, target
    start, end = generate_spatial_bounding_box(union, margin=1, allow_smaller=True)
    box = (slice(None), *(slice(a, b) for a, b in zip(start, end)))
    return prediction[box], target[box]


def case_scores(
    prediction: torch.Tensor,
    target: torch.Tensor,
    label_values: Sequence[int],
    regions: Mapping[str, Sequence[int]] | None = None,
    spacing: float | Sequence[float] | None = None,
) -> dict[str, dict[str, float | bool]]:
    """Dice and HD95 of every BraTS region of one case, with the BraTS empty-region convention.

    Args:
        prediction: predicted class indices ``(1, *spatial)``, 3 (or 2) spatial axes (index ``i`` stands for
            ``label_values[i]``).
        target: reference class indices ``(1, *spatial)``.
        label_values: the label value of every class index.
        regions: region name -> label values it unites; None: :func:`regions_for` ``(label_values)``.
        spacing: voxel size (one number, or one per spatial axis) so that HD95 is in mm; None: 1 per voxel.

    Returns:
        ``{region: {"dice", "hd95", "empty_reference", "empty_prediction"}, ..., "mean": {"dice", "hd95"}}``;
        ``"mean"`` averages the regions. Every number is finite (see the module's empty-region table).

    Raises:
        ValueError: shapes differ or are not ``(1, *spatial)``; no region, or a region with no value in
            ``label_values``;
            ``spacing`` does not have one entry per spatial axis.
    """
    _check_volume("prediction", prediction)
    _check_volume("target", target)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must have the same shape"
        )
    regions = regions_for(label_values) if regions is None else regions
    if not regions:
        raise ValueError(f"no region to score for label_values {list(label_values)}")
    values = {int(v) for v in label_values}
    unknown = [name for name, members in regions.items() if not values & {int(v) for v in members}]
    if unknown:
        raise ValueError(f"regions {unknown} hold no value of label_values {list(label_values)}; use regions_for()")
    spatial_ndim = prediction.ndim - 1
    if spacing is not None and not isinstance(spacing, (int, float)):
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) != spatial_ndim:
            raise ValueError(f"spacing {spacing} needs one entry per spatial axis ({spatial_ndim})")
    prediction, target = _crop_to_regions(_as_plain(prediction), _as_plain(target), label_values, regions)
    pred = region_masks(prediction[None], label_values, regions)  # (1, R, *spatial)
    true = region_masks(target[None], label_values, regions)
    pred_any = pred.flatten(2).any(dim=2)[0]
    true_any = true.flatten(2).any(dim=2)[0]
    dice_metric = DiceMetric(include_background=True, reduction="none")
    hd_metric = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    out: dict[str, dict[str, float | bool]] = {}
    for r, name in enumerate(regions):
        empty_ref, empty_pred = not bool(true_any[r]), not bool(pred_any[r])
        if empty_ref and empty_pred:
            dice, hd95 = 1.0, 0.0
        elif empty_ref or empty_pred:
            dice, hd95 = 0.0, EMPTY_HD95_PENALTY
        else:
            p, t = pred[:, r : r + 1], true[:, r : r + 1]
            dice = float(dice_metric(p, t)[0, 0])
            hd95 = float(hd_metric(p, t, spacing=spacing)[0, 0])
        out[name] = {"dice": dice, "hd95": hd95, "empty_reference": empty_ref, "empty_prediction": empty_pred}
    out["mean"] = {m: sum(float(out[n][m]) for n in regions) / len(regions) for m in SCORE_NAMES}
    return out
