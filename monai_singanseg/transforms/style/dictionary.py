"""Dictionary versions of the style transforms: only the image keys change, labels and other entries are kept."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform

from monai_singanseg.transforms.style.array import FOREGROUND_LEVEL, HistogramMatch, StyleTransfer

__all__ = ["HistogramMatchd", "StyleTransferd"]


def _reference(d: Mapping[Hashable, Any], key: str | None, fixed: NdarrayOrTensor | None, what: str) -> NdarrayOrTensor:
    """``d[key]`` if a key is given, else the fixed image; raises naming ``what`` if neither is there."""
    if key is not None:
        if key not in d:
            raise KeyError(f"{what} key {key!r} not in the data (keys: {list(d)})")
        return d[key]
    if fixed is None:
        raise ValueError(f"no {what} image: give {what}_key= or {what}=")
    return fixed


class HistogramMatchd(MapTransform):
    """Dictionary version of :class:`HistogramMatch`: ``d[key]`` takes the distribution of ``d[reference_key]``.

    Args:
        keys: image keys to change (never the label).
        reference_key: key of the reference image (e.g. the real slice).
        reference: a fixed reference image, used when ``reference_key`` is None.
        foreground_level: see :class:`HistogramMatch`.
        allow_missing_keys: don't raise if a key is missing.
    """

    backend = HistogramMatch.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        reference_key: str | None = None,
        reference: NdarrayOrTensor | None = None,
        foreground_level: float = FOREGROUND_LEVEL,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.reference_key = reference_key
        self.reference = reference
        self.match = HistogramMatch(foreground_level=foreground_level)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Match every key's histogram to the reference."""
        d = dict(data)
        ref = _reference(d, self.reference_key, self.reference, "reference")
        for key in self.key_iterator(d):
            d[key] = self.match(d[key], ref)
        return d


class StyleTransferd(MapTransform):
    """Dictionary version of :class:`StyleTransfer`: ``d[key]`` takes the style of ``d[style_key]``.

    Args:
        keys: image keys to style (never the label).
        style_key: key of the style (real) image.
        style: a fixed style image, used when ``style_key`` is None.
        allow_missing_keys: don't raise if a key is missing.
        kwargs: the other arguments of :class:`StyleTransfer` (``method``, ``weights_path``, ``steps`` ...).
    """

    backend = StyleTransfer.backend

    def __init__(
        self,
        keys: KeysCollection = "image",
        style_key: str | None = None,
        style: NdarrayOrTensor | None = None,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.style_key = style_key
        self.transfer = StyleTransfer(style=style, **kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Style every key like the style image."""
        d = dict(data)
        style = _reference(d, self.style_key, self.transfer.style, "style")
        for key in self.key_iterator(d):
            d[key] = self.transfer(d[key], style)
        return d
