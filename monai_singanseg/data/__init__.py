"""Case discovery, validated loading, and the embedded demo data."""

from __future__ import annotations

from monai_singanseg.data.demo import demo_case, demo_kvasir, demo_root
from monai_singanseg.data.discovery import (
    BRATS_MODALITY_ALIASES,
    brats_datalist,
    check_distinct_cases,
    dicom_datalist,
    find_cases,
    image_mask_datalist,
    load_datalist,
)
from monai_singanseg.data.loading import CaseError, LoadCased, case_name, load_case, load_image

__all__ = [
    "demo_case",
    "demo_kvasir",
    "demo_root",
    "BRATS_MODALITY_ALIASES",
    "brats_datalist",
    "check_distinct_cases",
    "dicom_datalist",
    "find_cases",
    "image_mask_datalist",
    "load_datalist",
    "CaseError",
    "LoadCased",
    "case_name",
    "load_case",
    "load_image",
]
