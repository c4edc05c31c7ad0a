"""Dictionary versions of the label transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys

from monai_singanseg.transforms.labels.array import (
    BRATS_LABEL_VALUES,
    BinarizeMask,
    IndexToLabel,
    IndexToOneHot,
    LabelToIndex,
    OneHotToIndex,
)

__all__ = ["LabelToIndexd", "IndexToLabeld", "IndexToOneHotd", "OneHotToIndexd", "BinarizeMaskd"]


def pop_trace_entry(transform: InvertibleTransform, d: dict[Hashable, Any], key: Hashable) -> dict | None:
    """Pop and return the entry ``transform`` pushed on ``d[key]``'s trace, or None if there is none.

    MONAI's ``pop_transform`` finds the entry of this very instance (or of its class in ``spawn`` workers);
    failing that, the most recent entry of the same class is taken (the item was traced by another instance
    of the transform, e.g. one built from the same config). An item without trace (tracing off, or made
    outside the pipeline) gives None.

    Args:
        transform: the invertible transform whose entry to pop.
        d: the data dictionary.
        key: the key of the item.
    """
    if not transform.tracing:
        return None
    try:
        return transform.pop_transform(d, key)
    except (ValueError, RuntimeError):
        pass
    item = d[key]
    ops = item.applied_operations if isinstance(item, MetaTensor) else d.get(transform.trace_key(key)) or []
    for i in range(len(ops) - 1, -1, -1):
        if ops[i].get(TraceKeys.CLASS_NAME) == type(transform).__name__:
            return ops.pop(i)
    return None


class _ArrayMapTransform(MapTransform):
    """Apply one array transform to every key (and its ``inverse``, where the array transform has one)."""

    backend_transform: Any

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Apply the array transform to every key."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.backend_transform(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Apply the array transform's inverse to every key.

        Raises:
            NotImplementedError: the array transform has no inverse.
        """
        if not hasattr(self.backend_transform, "inverse"):
            raise NotImplementedError(f"{type(self).__name__} has no inverse")
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.backend_transform.inverse(d[key])
        return d


class _InvertibleArrayMapTransform(_ArrayMapTransform, InvertibleTransform):
    """An :class:`_ArrayMapTransform` whose array transform is exactly invertible, traced the MONAI way.

    The forward pushes an entry on each item's transform trace (``applied_operations`` of a MetaTensor, or
    ``d["<key>_transforms"]`` for plain arrays); ``inverse`` pops it (MONAI checks it is this transform's)
    and applies the array transform's inverse, so ``monai.transforms.Compose([...]).inverse(d)`` undoes it.
    An item without a trace entry (tracing off, or built outside the pipeline) is inverted all the same
    (see :func:`pop_trace_entry`).
    """

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Apply the array transform to every key and record it on the key's trace."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.backend_transform(d[key])
            self.push_transform(d, key)
        return d

    def inverse(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Pop each key's trace entry and apply the array transform's inverse."""
        d = dict(data)
        for key in self.key_iterator(d):
            pop_trace_entry(self, d, key)
            d[key] = self.backend_transform.inverse(d[key])
        return d


class LabelToIndexd(_InvertibleArrayMapTransform):
    """Dictionary version of :class:`LabelToIndex`; ``inverse`` maps class indices back to label values.

    Args:
        keys: keys of the labels.
        label_values: label value of each class.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = LabelToIndex.backend

    def __init__(
        self, keys: KeysCollection, label_values: Sequence[int] = BRATS_LABEL_VALUES, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.backend_transform = LabelToIndex(label_values)


class IndexToLabeld(_InvertibleArrayMapTransform):
    """Dictionary version of :class:`IndexToLabel`; ``inverse`` maps label values back to class indices.

    Args:
        keys: keys of the class-index maps.
        label_values: label value of each class.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = IndexToLabel.backend

    def __init__(
        self, keys: KeysCollection, label_values: Sequence[int] = BRATS_LABEL_VALUES, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.backend_transform = IndexToLabel(label_values)


class IndexToOneHotd(_InvertibleArrayMapTransform):
    """Dictionary version of :class:`IndexToOneHot`; ``inverse`` maps the channels back to class indices
    (:class:`OneHotToIndex`).

    Args:
        keys: keys of the class-index maps.
        num_classes: number of classes including background.
        include_background: keep the background channel.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = IndexToOneHot.backend

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
    """Dictionary version of :class:`OneHotToIndex` (not invertible: soft channels are thresholded).

    Args:
        keys: keys of the one-hot / soft label channels.
        threshold: minimum foreground score.
        include_background: whether channel 0 is background.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = OneHotToIndex.backend

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
    """Dictionary version of :class:`BinarizeMask` (not invertible: thresholding loses the grey values).

    Args:
        keys: keys of the mask images.
        threshold: values above it are foreground.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = BinarizeMask.backend

    def __init__(self, keys: KeysCollection, threshold: float = 127.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.backend_transform = BinarizeMask(threshold)
