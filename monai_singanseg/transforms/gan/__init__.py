"""The generators' joint space: image channels in [-1, 1] + one-hot tumour channels, and back (one place each way);
new tumour layouts in that space."""

from __future__ import annotations

from monai_singanseg.transforms.gan.array import *  # noqa: F401,F403
from monai_singanseg.transforms.gan.dictionary import *  # noqa: F401,F403
from monai_singanseg.transforms.gan.layout import *  # noqa: F401,F403
