"""Segmentation scores per BraTS tumour region: Dice and IoU (MONAI metrics), precision and recall.

BraTS scores nested regions rather than the individual label classes:

- whole tumour ``WT`` = labels {1, 2, 4} (necrotic/non-enhancing core, oedema, enhancing tumour),
- tumour core ``TC`` = labels {1, 4},
- enhancing tumour ``ET`` = label {4}.

Dice and IoU are computed per slice with :class:`monai.metrics.DiceMetric` and
:class:`monai.metrics.MeanIoU` (``ignore_empty=True``: a slice whose ground truth lacks the region is
skipped, so it scores neither 1 nor 0) and averaged over the slices. Precision and recall pool the
confusion matrix of all slices (:func:`monai.metrics.get_confusion_matrix`), so false positives on
slices without the region count against precision.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from monai.metrics import DiceMetric, MeanIoU, compute_confusion_matrix_metric, get_confusion_matrix

from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES

__all__ = ["BRATS_REGIONS", "METRIC_NAMES", "region_masks", "region_metrics", "mean_over_regions"]

#: BraTS evaluation regions as sets of label VALUES.
BRATS_REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
#: the scores :func:`region_metrics` returns per region.
METRIC_NAMES = ("dice", "iou", "precision", "recall")


def region_masks(
    index: torch.Tensor,
    label_values: Sequence[int] = BRATS_LABEL_VALUES,
    regions: Mapping[str, Sequence[int]] = BRATS_REGIONS,
) -> torch.Tensor:
    """Class-index maps ``(N, 1, *sp)`` -> one binary channel per region ``(N, R, *sp)`` float.

    Args:
        index: class indices ``0..K-1`` (index ``i`` stands for ``label_values[i]``).
        label_values: label value of every class index.
        regions: region name -> label values it unites (values absent from ``label_values`` are ignored,
            e.g. ET for a label set without 4).

    Raises:
        ValueError: ``index`` is not ``(N, 1, *spatial)``, or holds a negative index.
    """
    if index.ndim < 3 or index.shape[1] != 1:
        raise ValueError(f"expected class-index maps (N, 1, *spatial), got shape {tuple(index.shape)}")
    values = [int(v) for v in label_values]
    index = index[:, 0].long()
    low, high = torch.aminmax(index) if index.numel() else (torch.tensor(0), torch.tensor(0))
    if int(low) < 0:
        raise ValueError(f"class indices must be >= 0, got {int(low)}")
    channels = []
    for members in regions.values():  # a table from class index to "in the region", looked up for every voxel
        table = torch.zeros(max(len(values), int(high) + 1), dtype=torch.bool, device=index.device)
        table[[values.index(int(v)) for v in members if int(v) in values]] = True
        channels.append(table[index])
    return torch.stack(channels, dim=1).float()


def _nanmean(x: torch.Tensor) -> float:
    """Mean of the finite entries; NaN when there are none."""
    finite = x[torch.isfinite(x)]
    return float(finite.mean()) if finite.numel() else math.nan


def region_metrics(
    prediction: torch.Tensor,
    target: torch.Tensor,
    label_values: Sequence[int] = BRATS_LABEL_VALUES,
    regions: Mapping[str, Sequence[int]] = BRATS_REGIONS,
) -> dict[str, dict[str, float]]:
    """Dice, IoU, precision and recall of every region, plus their mean over the defined regions.

    Args:
        prediction: predicted class indices ``(N, 1, *sp)``.
        target: true class indices ``(N, 1, *sp)``.
        label_values: label value of every class index.
        regions: region name -> label values.

    Returns:
        ``{region: {"dice", "iou", "precision", "recall", "slices"}, ..., "mean": {...}}``. A region absent
        from every target slice gets NaN Dice/IoU/recall (``slices`` = 0, the number of target slices
        holding it); ``"mean"`` averages the regions whose value is defined.

    Raises:
        ValueError: shapes differ.
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must have the same shape"
        )
    pred = region_masks(prediction, label_values, regions)
    true = region_masks(target, label_values, regions)
    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=True)(pred, true)
    iou = MeanIoU(include_background=True, reduction="none", ignore_empty=True)(pred, true)
    confusion = get_confusion_matrix(pred, true, include_background=True).sum(dim=0)  # (R, 4): tp, fp, tn, fn
    present = true.flatten(2).any(dim=2).sum(dim=0)
    out: dict[str, dict[str, float]] = {}
    for r, name in enumerate(regions):
        precision = compute_confusion_matrix_metric("precision", confusion[r])
        recall = compute_confusion_matrix_metric("recall", confusion[r])
        out[name] = {
            "dice": _nanmean(dice[:, r]),
            "iou": _nanmean(iou[:, r]),
            "precision": float(precision),
            "recall": float(recall),
            "slices": int(present[r]),
        }
    out["mean"] = mean_over_regions(out, list(regions))
    return out


def mean_over_regions(scores: Mapping[str, Mapping[str, float]], regions: Sequence[str]) -> dict[str, float]:
    """Per metric, the mean over ``regions`` of the defined (finite) values; NaN if none is defined."""
    return {
        m: _nanmean(torch.tensor([float(scores[r][m]) for r in regions], dtype=torch.float64)) for m in METRIC_NAMES
    }
