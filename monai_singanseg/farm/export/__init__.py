"""Dataset export to the trainers users run: nnU-Net v2's raw format and MONAI datalists (bundles, Auto3DSeg)."""

from __future__ import annotations

from monai_singanseg.farm.export.export import export_dataset
from monai_singanseg.farm.export.nnunet import BRATS_TO_NNUNET
from monai_singanseg.farm.export.settings import FORMATS, ExportSettings

__all__ = ["export_dataset", "ExportSettings", "FORMATS", "BRATS_TO_NNUNET"]
