"""Helpers only the MONAI bundles in ``bundles/`` need: finding a bundle's folder, TorchScript export.

The bundles' configs call the package's synthesis builders (:mod:`monai_singanseg.synthesis`) for everything else.
"""

from __future__ import annotations

from monai_singanseg.bundle.export import export_torchscript
from monai_singanseg.bundle.paths import bundle_root

__all__ = ["bundle_root", "export_torchscript"]
