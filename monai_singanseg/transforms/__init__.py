"""MONAI transforms of monai-singanseg, grouped by job (labels, intensity, slices, condition, GAN tensor, style,
writers)."""

from __future__ import annotations

from monai_singanseg.transforms.condition import *  # noqa: F401,F403
from monai_singanseg.transforms.gan import *  # noqa: F401,F403
from monai_singanseg.transforms.intensity import *  # noqa: F401,F403
from monai_singanseg.transforms.labels import *  # noqa: F401,F403
from monai_singanseg.transforms.slices import *  # noqa: F401,F403
from monai_singanseg.transforms.style import *  # noqa: F401,F403
