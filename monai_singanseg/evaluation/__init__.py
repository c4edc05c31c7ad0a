"""Weight-free evaluation of synthetic images: fidelity (SWD), diversity, memorisation, label statistics."""

from __future__ import annotations

from .diversity import diversity, pairwise_ssim
from .label_stats import compare_label_statistics, label_statistics
from .memorisation import NearestReference, flag_memorised, memorisation_scores
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
]
