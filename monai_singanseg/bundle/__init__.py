"""Helpers only the MONAI bundles in ``bundles/`` need: finding a bundle's folder, the flat ``models/model.pt``.

The bundles' configs call the package's synthesis builders (:mod:`monai_singanseg.synthesis`) for everything else.
"""

from __future__ import annotations

from monai_singanseg.bundle.export import save_state_dict
from monai_singanseg.bundle.paths import bundle_root

__all__ = ["bundle_root", "save_state_dict"]
