from __future__ import annotations

from monai_singanseg.transforms.intensity.array import *  # noqa: F401,F403
from monai_singanseg.transforms.intensity.dictionary import *  # noqa: F401,F403
