"""Evaluation of synthetic images: the weight-free metrics (from :mod:`monai_singanseg.metrics`) and per-region
segmentation scores; the downstream-utility experiment lives in ``evaluation.experiment``."""

from __future__ import annotations

from monai_singanseg.evaluation.regions import BRATS_REGIONS, region_masks, region_metrics
from monai_singanseg.metrics import (
    NearestReference,
    compare_label_statistics,
    diversity,
    flag_memorised,
    label_statistics,
    laplacian_pyramid,
    memorisation_scores,
    pairwise_ssim,
    sliced_wasserstein_distance,
    sliced_wasserstein_distance_per_level,
)

__all__ = [
    "sliced_wasserstein_distance",
    "sliced_wasserstein_distance_per_level",
    "laplacian_pyramid",
    "diversity",
    "pairwise_ssim",
    "memorisation_scores",
    "flag_memorised",
    "NearestReference",
    "label_statistics",
    "compare_label_statistics",
    "BRATS_REGIONS",
    "region_masks",
    "region_metrics",
]
