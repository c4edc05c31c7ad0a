"""Dictionary versions of the GAN-tensor transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform

from monai_singanseg.transforms.gan.array import SplitGANTensor, ToGANTensor
from monai_singanseg.transforms.gan.layout import RandTumourDisplacement

__all__ = ["ToGANTensord", "SplitGANTensord", "RandTumourDisplacementd"]


class ToGANTensord(MapTransform):
    """Dictionary :class:`ToGANTensor`: ``d[output_key] = gan(d[image_key], d[label_key])``.

    Args:
        image_key: image in [-1, 1].
        label_key: class indices.
        output_key: where the GAN tensor goes.
        num_classes: classes including background.
    """

    backend = ToGANTensor.backend

    def __init__(
        self, image_key: str = "image", label_key: str = "label", output_key: str = "gan", num_classes: int = 4
    ) -> None:
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


class RandTumourDisplacementd(RandomizableTransform, MapTransform):
    """Dictionary :class:`RandTumourDisplacement`: each key's GAN tensor gets its own draw.

    Args:
        keys: the GAN tensors.
        prob: probability of displacing the tumour.
        allow_missing_keys: skip absent keys.
        kwargs: :class:`RandTumourDisplacement`'s other arguments.
    """

    backend = RandTumourDisplacement.backend

    def __init__(
        self, keys: KeysCollection, prob: float = 1.0, allow_missing_keys: bool = False, **kwargs: Any
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.transform = RandTumourDisplacement(prob=prob, **kwargs)

    def set_random_state(self, seed: int | None = None, state: Any = None) -> RandTumourDisplacementd:
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d
