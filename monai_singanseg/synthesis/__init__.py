"""Prepare and synthesise: the one builder per generator that every entry point calls.

``prepare`` turns cases into the trainers' tensors; ``singanseg_synthesis`` / ``pix2pix_synthesis`` turn a model
file plus options into the MONAI ``Compose`` that samples/renders, finishes and writes cases; ``synthesise``
runs such a pipeline over N cases with a datalist and a preview.
"""

from __future__ import annotations

from monai_singanseg.synthesis.pix2pix import pix2pix_deform_steps, pix2pix_synthesis
from monai_singanseg.synthesis.prepare import (
    SLICE_MAX_SIZE,
    TUMOUR_BOX_MARGIN,
    VOLUME_BOXES,
    VOLUME_MAX_SIZE,
    Pix2PixTrainingSet,
    SinGANSegTrainingSet,
    default_channel_names,
    default_max_size,
    is_2d_image_input,
    pix2pix_case_slices,
    pix2pix_training_slices,
    singanseg_prepare,
    singanseg_training_input,
)
from monai_singanseg.synthesis.runner import SynthesisPipeline, preview_plane, synthesise
from monai_singanseg.synthesis.singanseg import (
    SinGANSegSynthesisOptions,
    singanseg_case_writer,
    singanseg_style,
    singanseg_synthesis,
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
    "synthesise",
    "SinGANSegSynthesisOptions",
    "singanseg_case_writer",
    "singanseg_style",
    "singanseg_synthesis",
    "SLICE_MAX_SIZE",
    "VOLUME_MAX_SIZE",
    "VOLUME_BOXES",
    "TUMOUR_BOX_MARGIN",
    "default_max_size",
]
