"""Dictionary versions of the label transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_singanseg.transforms.labels.array import (
    BRATS_LABEL_VALUES,
    BinarizeMask,
    IndexToLabel,
    IndexToOneHot,
    LabelToIndex,
    OneHotToIndex,
)

__all__ = ["LabelToIndexd", "IndexToLabeld", "IndexToOneHotd", "OneHotToIndexd", "BinarizeMaskd"]


class _ArrayMapTransform(MapTransform):
    """Apply one array transform to every key (and its ``inverse``, where the array transform has one)."""

    backend_transform: Any

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.backend_transform(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        if not hasattr(self.backend_transform, "inverse"):
            raise NotImplementedError(f"{type(self).__name__} has no inverse")
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.backend_transform.inverse(d[key])
        return d


class LabelToIndexd(_ArrayMapTransform):
    """Dictionary version of :class:`LabelToIndex`; ``inverse`` maps class indices back to label values.

    Args:
        keys: keys of the labels.
        label_values: label value of each class.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self, keys: KeysCollection, label_values: Sequence[int] = BRATS_LABEL_VALUES, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.backend_transform = LabelToIndex(label_values)


class IndexToLabeld(_ArrayMapTransform):
    """Dictionary version of :class:`IndexToLabel`.

    Args:
        keys: keys of the class-index maps.
        label_values: label value of each class.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self, keys: KeysCollection, label_values: Sequence[int] = BRATS_LABEL_VALUES, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.backend_transform = IndexToLabel(label_values)


class IndexToOneHotd(_ArrayMapTransform):
    """Dictionary version of :class:`IndexToOneHot`.

    Args:
        keys: keys of the class-index maps.
        num_classes: number of classes including background.
        include_background: keep the background channel.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        num_classes: int,
        include_background: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.backend_transform = IndexToOneHot(num_classes, include_background)


class OneHotToIndexd(_ArrayMapTransform):
    """Dictionary version of :class:`OneHotToIndex`.

    Args:
        keys: keys of the one-hot / soft label channels.
        threshold: minimum foreground score.
        include_background: whether channel 0 is background.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(
        self,
        keys: KeysCollection,
        threshold: float = 0.5,
        include_background: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.backend_transform = OneHotToIndex(threshold, include_background)


class BinarizeMaskd(_ArrayMapTransform):
    """Dictionary version of :class:`BinarizeMask`.

    Args:
        keys: keys of the mask images.
        threshold: values above it are foreground.
        allow_missing_keys: don't raise if a key is missing.
    """

    def __init__(self, keys: KeysCollection, threshold: float = 127.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.backend_transform = BinarizeMask(threshold)
