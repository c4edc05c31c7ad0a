"""pix2pix's builders: ``prepare`` (cases -> condition/image slices) and ``synthesize`` (model file -> Compose that
deforms labels and renders)."""

from __future__ import annotations

from monai_singanseg.synthesis.pix2pix.prepare import Pix2PixTrainingSet, pix2pix_case_slices, pix2pix_training_slices
from monai_singanseg.synthesis.pix2pix.synthesize import pix2pix_deform_steps, pix2pix_synthesis

__all__ = [
    "Pix2PixTrainingSet",
    "pix2pix_case_slices",
    "pix2pix_training_slices",
    "pix2pix_deform_steps",
    "pix2pix_synthesis",
]
