"""Evaluation of synthetic images: every weight-free metric of :mod:`monai_singanseg.metrics` and the per-region
segmentation scores; the downstream-utility experiment lives in ``evaluation.experiment``."""

from __future__ import annotations

from monai_singanseg import metrics as _metrics
from monai_singanseg.evaluation.regions import BRATS_REGIONS, region_masks, region_metrics
from monai_singanseg.metrics import *  # noqa: F403 - the evaluation's metrics are the package's

__all__ = [*_metrics.__all__, "BRATS_REGIONS", "region_masks", "region_metrics"]
