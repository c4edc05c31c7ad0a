"""Dictionary versions of the GAN-tensor transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.transforms import MapTransform

from monai_singanseg.transforms.gan.array import SplitGANTensor, ToGANTensor

__all__ = ["ToGANTensord", "SplitGANTensord"]


class ToGANTensord(MapTransform):
    """Dictionary :class:`ToGANTensor`: ``d[output_key] = gan(d[image_key], d[label_key])``.

    Args:
        image_key: image in [-1, 1].
        label_key: class indices.
        output_key: where the GAN tensor goes.
        num_classes: classes including background.
    """

    backend = ToGANTensor.backend

    def __init__(self, image_key: str = "image", label_key: str = "label", output_key: str = "gan", num_classes: int = 4) -> None:
        super().__init__([image_key, label_key])
        self.image_key, self.label_key, self.output_key = image_key, label_key, output_key
        self.transform = ToGANTensor(num_classes)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.output_key] = self.transform(d[self.image_key], d[self.label_key])
        return d


class SplitGANTensord(MapTransform):
    """Dictionary :class:`SplitGANTensor`: ``d[gan_key]`` -> ``d[image_key]``, ``d[label_key]``.

    Args:
        gan_key: the GAN tensor.
        image_key: where the image goes.
        label_key: where the class-index label goes.
        kwargs: :class:`SplitGANTensor`'s arguments.
    """

    backend = SplitGANTensor.backend

    def __init__(self, gan_key: str = "gan", image_key: str = "image", label_key: str = "label", **kwargs: Any) -> None:
        super().__init__([gan_key])
        self.gan_key, self.image_key, self.label_key = gan_key, image_key, label_key
        self.transform = SplitGANTensor(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.image_key], d[self.label_key] = self.transform(d[self.gan_key])
        return d
