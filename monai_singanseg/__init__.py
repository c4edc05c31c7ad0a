"""monai-singanseg: synthetic labelled medical images (SinGAN-Seg, pix2pix) as MONAI transforms and bundles."""

from __future__ import annotations

__version__ = "0.1.0"
