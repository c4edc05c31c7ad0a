"""SinGAN-Seg's builders: ``prepare`` (case -> GAN tensor) and ``synthesize`` (model file + options -> Compose)."""

from __future__ import annotations

from monai_singanseg.synthesis.singanseg.prepare import (
    SLICE_MAX_SIZE,
    TUMOUR_BOX_MARGIN,
    VOLUME_BOXES,
    VOLUME_MAX_SIZE,
    SinGANSegTrainingSet,
    default_box,
    default_max_size,
    singanseg_prepare,
    singanseg_training_input,
)
from monai_singanseg.synthesis.singanseg.synthesize import (
    SinGANSegSynthesisSettings,
    singanseg_case_writer,
    singanseg_style,
    singanseg_synthesis,
)

__all__ = [
    "SLICE_MAX_SIZE",
    "TUMOUR_BOX_MARGIN",
    "VOLUME_BOXES",
    "VOLUME_MAX_SIZE",
    "SinGANSegTrainingSet",
    "default_box",
    "default_max_size",
    "singanseg_prepare",
    "singanseg_training_input",
    "SinGANSegSynthesisSettings",
    "singanseg_case_writer",
    "singanseg_style",
    "singanseg_synthesis",
]
