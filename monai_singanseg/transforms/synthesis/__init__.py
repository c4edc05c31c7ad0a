from __future__ import annotations
from monai_singanseg.transforms.synthesis.pix2pix import *  # noqa: F401,F403
from monai_singanseg.transforms.synthesis.singanseg import *  # noqa: F401,F403
