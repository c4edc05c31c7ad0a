"""(image, label) <-> the GAN tensor: image channels in [-1, 1] followed by one-hot tumour channels in {-1, 1}.

SinGAN-Seg learns and samples this tensor; :class:`ToGANTensor` builds it from a prepared slice and
:class:`SplitGANTensor` turns a generated one back into an image and a class-index label. Every entry point
goes through these two transforms.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_numpy, convert_to_tensor
from scipy import ndimage

from monai_singanseg.transforms.labels.array import IndexToOneHot, OneHotToIndex

__all__ = ["ToGANTensor", "SplitGANTensor", "remove_small_components"]


def remove_small_components(label: NdarrayOrTensor, min_size: int) -> NdarrayOrTensor:
    """Set connected tumour components (any foreground class) smaller than ``min_size`` pixels to background.

    Args:
        label: class-index map ``(1, *spatial)``.
        min_size: minimum component size in pixels/voxels; <= 1 keeps everything.
    """
    if min_size <= 1:
        return label
    t = convert_to_tensor(label, track_meta=False)
    components, n = ndimage.label(convert_to_numpy(t[0] > 0))
    if n == 0:
        return label
    small = np.bincount(components.ravel()) < min_size
    small[0] = False
    drop = torch.from_numpy(small[components])[None].to(t.device)
    out = torch.where(drop, torch.zeros_like(t), t)
    return convert_to_numpy(out) if isinstance(label, np.ndarray) else out


class ToGANTensor(Transform):
    """Image ``(Ci, *sp)`` in [-1, 1] + class indices ``(1, *sp)`` -> ``(Ci + K - 1, *sp)`` float32.

    The tumour classes (background dropped) become channels ``2 * onehot - 1``, so the whole tensor lies in
    [-1, 1] like a generator's ``tanh`` output.

    Args:
        num_classes: classes including background.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, num_classes: int) -> None:
        self.to_onehot = IndexToOneHot(num_classes)

    def __call__(self, image: NdarrayOrTensor, label: NdarrayOrTensor) -> torch.Tensor:
        img = convert_to_tensor(image, track_meta=False).float()
        lab = convert_to_tensor(label, track_meta=False)
        if tuple(img.shape[1:]) != tuple(lab.shape[1:]):
            raise ValueError(f"image size {tuple(img.shape[1:])} and label size {tuple(lab.shape[1:])} differ")
        if not torch.isfinite(img).all():
            raise ValueError("image holds NaN or infinite values")
        onehot = convert_to_tensor(self.to_onehot(torch.round(lab).long()), track_meta=False).float().to(img.device)
        return torch.cat([img, 2.0 * onehot - 1.0], dim=0)


class SplitGANTensor(Transform):
    """A GAN tensor ``(C, *sp)`` -> image channels ``(Ci, *sp)`` in [-1, 1] and class indices ``(1, *sp)``.

    Args:
        num_image_channels: the leading image channels; the rest are tumour-class channels.
        threshold: a pixel is background unless its largest label channel ``(x + 1) / 2`` exceeds it.
        min_component: remove tumour components smaller than this many pixels.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, num_image_channels: int, threshold: float = 0.5, min_component: int = 0) -> None:
        if num_image_channels < 1:
            raise ValueError(f"num_image_channels must be >= 1, got {num_image_channels}")
        self.num_image_channels = num_image_channels
        self.to_index = OneHotToIndex(threshold=threshold)
        self.min_component = min_component

    def __call__(self, x: NdarrayOrTensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = convert_to_tensor(x, track_meta=False)
        if t.shape[0] <= self.num_image_channels:
            raise ValueError(f"a GAN tensor needs more than {self.num_image_channels} channels, got {t.shape[0]}")
        image = t[: self.num_image_channels]
        soft = (t[self.num_image_channels :] + 1.0) / 2.0
        label = remove_small_components(convert_to_tensor(self.to_index(soft), track_meta=False), self.min_component)
        return image, label
