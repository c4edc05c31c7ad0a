"""Dataset scale: one SinGAN-Seg model per real image, trained by many processes (torchrun ranks or Slurm array
tasks) that claim work entries atomically, skip finished ones and resume killed ones; then one synthetic dataset."""

from __future__ import annotations

from monai_singanseg.farm.claims import WorkDir
from monai_singanseg.farm.distributed import RankContext
from monai_singanseg.farm.plan import WorkEntry, plan_work
from monai_singanseg.farm.synthesize import DatasetSettings, default_models_per_batch, synthesize_dataset

__all__ = [
    "WorkDir",
    "RankContext",
    "WorkEntry",
    "plan_work",
    "DatasetSettings",
    "synthesize_dataset",
    "default_models_per_batch",
]
