"""The pix2pix condition (brain mask + tumour one-hot [+ tissue classes]) and transforms making new ones."""

from __future__ import annotations

from monai_singanseg.transforms.condition.array import *  # noqa: F401,F403
from monai_singanseg.transforms.condition.deform import *  # noqa: F401,F403
from monai_singanseg.transforms.condition.dictionary import *  # noqa: F401,F403
from monai_singanseg.transforms.condition.inputs import *  # noqa: F401,F403
