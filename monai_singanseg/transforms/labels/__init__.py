from __future__ import annotations

from monai_singanseg.transforms.labels.array import *  # noqa: F401,F403
from monai_singanseg.transforms.labels.dictionary import *  # noqa: F401,F403
