"""Writing transforms: put a (synthetic) case on disk from inside a MONAI pipeline."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform

from monai_singanseg.io.writers import BRATS_MODALITIES, write_brats_case

__all__ = ["SaveBratsCased"]


class SaveBratsCased(MapTransform):
    """Write ``d[image_key]`` (source units) and ``d[label_key]`` (label values) as a BraTS-named case.

    The files are ``<output_dir>/<d[name_key]>_{flair,t1,t1ce,t2,seg}.nii.gz`` with the label's affine
    and the image's ``meta["source_dtype"]``; the datalist entry is stored in ``d[entry_key]``.

    Args:
        keys: ``(image_key, label_key)``.
        output_dir: destination folder.
        name_key: key of the case name.
        modalities: one name per image channel.
        overwrite: replace existing files (otherwise an existing file is an error and nothing is written).
        entry_key: where to store the written case's datalist entry.
    """

    def __init__(
        self,
        keys: Sequence[str] = ("image", "label"),
        output_dir: str | os.PathLike = "output",
        name_key: str = "name",
        modalities: Sequence[str] = BRATS_MODALITIES,
        overwrite: bool = False,
        entry_key: str = "case_entry",
    ) -> None:
        super().__init__(keys)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (image_key, label_key), got {self.keys}")
        self.output_dir = output_dir
        self.name_key = name_key
        self.modalities = tuple(modalities)
        self.overwrite = overwrite
        self.entry_key = entry_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image_key, label_key = self.keys
        image, label = d[image_key], d[label_key]
        affine = label.affine if isinstance(label, MetaTensor) else getattr(image, "affine", torch.eye(4))
        dtype = image.meta.get("source_dtype") if isinstance(image, MetaTensor) else None
        d[self.entry_key] = write_brats_case(
            self.output_dir, str(d[self.name_key]), image, label, affine, self.modalities, dtype, self.overwrite
        )
        return d
