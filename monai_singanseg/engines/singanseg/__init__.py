"""SinGAN-Seg training: settings, pyramid, losses, checkpoints, the batched trainer and the bundle workflow."""

from __future__ import annotations

from monai_singanseg.engines.singanseg.checkpoint import recorded_training
from monai_singanseg.engines.singanseg.losses import gradient_penalty, label_area_loss
from monai_singanseg.engines.singanseg.pyramid import pyramid_sizes, real_pyramid
from monai_singanseg.engines.singanseg.scale_loop import mean_losses
from monai_singanseg.engines.singanseg.settings import (
    MODEL_KIND,
    RESUME_KEYS,
    SCHEDULES,
    VOLUME_DEFAULTS,
    SinGANSegSettings,
    with_iterations,
)
from monai_singanseg.engines.singanseg.stacked import StackedModules, check_same_shapes
from monai_singanseg.engines.singanseg.trainer import BatchedSinGANSegTrainer, SinGANSegTrainer
from monai_singanseg.engines.singanseg.workflow import SinGANSegWorkflow

__all__ = [
    "MODEL_KIND",
    "RESUME_KEYS",
    "SCHEDULES",
    "VOLUME_DEFAULTS",
    "SinGANSegSettings",
    "with_iterations",
    "pyramid_sizes",
    "real_pyramid",
    "gradient_penalty",
    "label_area_loss",
    "StackedModules",
    "check_same_shapes",
    "BatchedSinGANSegTrainer",
    "SinGANSegTrainer",
    "SinGANSegWorkflow",
    "mean_losses",
    "recorded_training",
]
