from __future__ import annotations

from monai_singanseg.transforms.slices.array import *  # noqa: F401,F403
from monai_singanseg.transforms.slices.dictionary import *  # noqa: F401,F403
from monai_singanseg.transforms.slices.grid import *  # noqa: F401,F403
