"""Prepare and synthesize: the one builder per generator that every entry point calls.

One folder per generator with the same file names: ``singanseg/`` and ``pix2pix/``, each with ``prepare`` (cases ->
the trainer's tensors) and ``synthesize`` (a model file plus options -> the MONAI ``Compose`` that samples or renders,
finishes and writes cases). :func:`synthesize` runs such a pipeline over N cases with a datalist and a preview.
"""

from __future__ import annotations

from monai_singanseg.synthesis.inputs import default_channel_names, is_2d_image_input
from monai_singanseg.synthesis.pix2pix import (
    Pix2PixTrainingSet,
    pix2pix_case_slices,
    pix2pix_deform_steps,
    pix2pix_synthesis,
    pix2pix_training_slices,
)
from monai_singanseg.synthesis.runner import SynthesisPipeline, preview_plane, synthesize
from monai_singanseg.synthesis.singanseg import (
    SLICE_MAX_SIZE,
    TUMOUR_BOX_MARGIN,
    VOLUME_BOXES,
    VOLUME_MAX_SIZE,
    SinGANSegSynthesisSettings,
    SinGANSegTrainingSet,
    default_box,
    default_max_size,
    singanseg_case_writer,
    singanseg_prepare,
    singanseg_style,
    singanseg_synthesis,
    singanseg_training_input,
)

__all__ = [
    "pix2pix_deform_steps",
    "pix2pix_synthesis",
    "default_channel_names",
    "is_2d_image_input",
    "pix2pix_case_slices",
    "pix2pix_training_slices",
    "Pix2PixTrainingSet",
    "singanseg_prepare",
    "singanseg_training_input",
    "SinGANSegTrainingSet",
    "SynthesisPipeline",
    "preview_plane",
    "synthesize",
    "SinGANSegSynthesisSettings",
    "singanseg_case_writer",
    "singanseg_style",
    "singanseg_synthesis",
    "SLICE_MAX_SIZE",
    "VOLUME_MAX_SIZE",
    "VOLUME_BOXES",
    "TUMOUR_BOX_MARGIN",
    "default_box",
    "default_max_size",
]
