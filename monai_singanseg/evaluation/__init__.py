"""Evaluation of synthetic images: weight-free fidelity (SWD), diversity, memorisation, label statistics, and
per-region segmentation scores; the downstream-utility experiment lives in ``evaluation.experiment``."""

from __future__ import annotations

from .diversity import diversity, pairwise_ssim
from .label_stats import compare_label_statistics, label_statistics
from .memorisation import NearestReference, flag_memorised, memorisation_scores
from .regions import BRATS_REGIONS, region_masks, region_metrics
from .swd import laplacian_pyramid, sliced_wasserstein_distance, sliced_wasserstein_distance_per_level

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
