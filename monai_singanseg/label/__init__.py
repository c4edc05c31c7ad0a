"""MONAI Label integration: the app (``label/app/main.py``), its tasks, datastore writing and geometry.

The modules here import MONAI Label only where they need it (``infer``, ``train``, ``app/main.py``), so the
datastore writer and the geometry mapping work without the ``label`` extra.
"""

from __future__ import annotations

from pathlib import Path

from monai_singanseg.label.datastore import (
    FINAL_LABEL_DIR,
    SYNTHETIC_SOURCE_KEY,
    datastore_case_paths,
    write_datastore,
    write_datastore_case,
)
from monai_singanseg.label.geometry import slice_sample_to_volume, training_slice
from monai_singanseg.label.options import CONF_KEYS, LabelAppSettings, app_settings

__all__ = [
    "app_dir",
    "FINAL_LABEL_DIR",
    "SYNTHETIC_SOURCE_KEY",
    "datastore_case_paths",
    "write_datastore",
    "write_datastore_case",
    "slice_sample_to_volume",
    "training_slice",
    "CONF_KEYS",
    "LabelAppSettings",
    "app_settings",
]


def app_dir() -> Path:
    """The MONAI Label app folder shipped with the package (``monailabel start_server --app <this>``)."""
    return Path(__file__).resolve().parent / "app"
