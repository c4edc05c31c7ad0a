"""Weight-free metrics of synthetic images: fidelity (SWD, also over the three planes of volumes), diversity,
memorisation, label statistics, tumour fidelity (size kept, components, class nesting), artefacts, fine detail.

They need no trained network, so every layer that judges samples (dataset synthesis, the evaluation) can use them.
"""

from __future__ import annotations

from monai_singanseg.metrics.artifacts import neighbour_slice_ssim, periodic_power
from monai_singanseg.metrics.diversity import diversity, pairwise_ssim
from monai_singanseg.metrics.label_stats import compare_label_statistics, label_statistics
from monai_singanseg.metrics.memorisation import NearestReference, flag_memorised, memorisation_scores
from monai_singanseg.metrics.spectrum import FINE_DETAIL_CUTOFF, fine_detail_ratio, fine_detail_share
from monai_singanseg.metrics.swd import (
    laplacian_pyramid,
    orthogonal_slices,
    sliced_wasserstein_distance,
    sliced_wasserstein_distance_3d,
    sliced_wasserstein_distance_per_level,
)
from monai_singanseg.metrics.tumour import (
    core_background_contact,
    outer_ring,
    tumour_components,
    tumour_kept,
    tumour_size_ratio,
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
    "periodic_power",
    "fine_detail_share",
    "fine_detail_ratio",
    "FINE_DETAIL_CUTOFF",
    "neighbour_slice_ssim",
    "sliced_wasserstein_distance_3d",
    "orthogonal_slices",
    "outer_ring",
    "tumour_size_ratio",
    "tumour_kept",
    "tumour_components",
    "core_background_contact",
]
