"""Helpers the MONAI bundles in ``bundles/`` call from their configs (the package, not ``scripts/``)."""

from __future__ import annotations

from monai_singanseg.bundle.export import export_torchscript
from monai_singanseg.bundle.paths import bundle_root
from monai_singanseg.bundle.pipelines import (
    pix2pix_deform_steps,
    singanseg_case_writer,
    singanseg_pipeline,
    singanseg_style,
)
from monai_singanseg.bundle.synthesis import synthesise

__all__ = [
    "bundle_root", "export_torchscript", "pix2pix_deform_steps", "singanseg_case_writer", "singanseg_pipeline",
    "singanseg_style", "synthesise",
]
