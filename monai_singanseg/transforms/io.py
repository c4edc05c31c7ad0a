"""Writing transforms: put a (synthetic) case on disk from inside a MONAI pipeline.

Each writer knows the files it will write for a case name (:meth:`output_paths`), so a pipeline runner
(:func:`monai_singanseg.synthesis.synthesize`) can check every output is free before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import MetaTensor
from monai.transforms import Compose, MapTransform

from monai_singanseg.io.writers import (
    BRATS_MODALITIES,
    brats_case_paths,
    image_mask_png_paths,
    write_brats_case,
    write_image_mask_png,
)

__all__ = ["SaveCased", "SaveBratsCased", "SaveImageMaskPngd", "find_case_writer"]


class SaveCased(MapTransform):
    """Base of the case writers: writes ``d[image_key]`` and ``d[label_key]`` as case ``d[name_key]``.

    The written case's datalist entry is stored in ``d[entry_key]``. A synthetic case's files and entry carry its
    provenance (:mod:`monai_singanseg.io.provenance`): the writer's ``provenance`` record, whose ``source`` is
    ``d[source_key]`` when the item names its own source case.

    Args:
        keys: ``(image_key, label_key)``.
        output_dir: destination folder.
        name_key: key of the case name.
        overwrite: replace existing files (otherwise an existing file is an error and nothing is written).
        entry_key: where to store the written case's datalist entry.
        provenance: the provenance record of the cases written (None: not synthetic, nothing recorded).
        source_key: key of an item's source case name.
    """

    def __init__(
        self,
        keys: Sequence[str] = ("image", "label"),
        output_dir: str | os.PathLike = "output",
        name_key: str = "name",
        overwrite: bool = False,
        entry_key: str = "case_entry",
        provenance: Mapping[str, Any] | None = None,
        source_key: str = "source",
    ) -> None:
        super().__init__(keys)
        if len(self.keys) != 2:
            raise ValueError(f"keys must be (image_key, label_key), got {self.keys}")
        self.output_dir = output_dir
        self.name_key = name_key
        self.overwrite = overwrite
        self.entry_key = entry_key
        self.provenance = None if provenance is None else dict(provenance)
        self.source_key = source_key

    def provenance_of(self, item: Mapping[Hashable, Any]) -> dict[str, Any] | None:
        """The provenance record of the case written for ``item`` (its own source case when it names one)."""
        if self.provenance is None:
            return None
        source = item.get(self.source_key)
        return self.provenance if source is None else {**self.provenance, "source": str(source)}

    def output_paths(self, name: str) -> list[Path]:
        """Every file written for case ``name``."""
        raise NotImplementedError

    def entry(self, name: str, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The datalist entry of case ``name`` (as :meth:`write` returns it), e.g. for a case already on disk; with
        its provenance (``synthetic``, ``generator``, ``source``) when it has one."""
        paths = [str(p) for p in self.output_paths(name)]
        entry = {"image": paths[:-1] if len(paths) > 2 else paths[0], "label": paths[-1], "name": name}
        if provenance is not None:
            entry.update({k: provenance[k] for k in ("synthetic", "generator", "source") if k in provenance})
        return entry

    def write(self, name: str, image: Any, label: Any, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write one case (with its provenance record in every file); returns its datalist entry."""
        raise NotImplementedError

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image_key, label_key = self.keys
        name = str(d[self.name_key])
        provenance = self.provenance_of(d)
        self.write(name, d[image_key], d[label_key], provenance)
        d[self.entry_key] = self.entry(name, provenance)  # the same entry as for a case found on disk (resumed)
        return d


class SaveBratsCased(SaveCased):
    """Write the image (source units) and label (label values) as a BraTS-named NIfTI case.

    The files are ``<output_dir>/<name>_{flair,t1,t1ce,t2,seg}.nii.gz`` with the label's affine and the
    image's ``meta["source_dtype"]``.

    Args:
        keys: ``(image_key, label_key)``.
        output_dir: destination folder.
        name_key: key of the case name.
        modalities: one name per image channel.
        overwrite: replace existing files.
        entry_key: where to store the written case's datalist entry.
        provenance: the provenance record of the cases written (None: not synthetic).
        source_key: key of an item's source case name.
    """

    def __init__(
        self,
        keys: Sequence[str] = ("image", "label"),
        output_dir: str | os.PathLike = "output",
        name_key: str = "name",
        modalities: Sequence[str] = BRATS_MODALITIES,
        overwrite: bool = False,
        entry_key: str = "case_entry",
        provenance: Mapping[str, Any] | None = None,
        source_key: str = "source",
    ) -> None:
        super().__init__(keys, output_dir, name_key, overwrite, entry_key, provenance, source_key)
        self.modalities = tuple(modalities)

    def output_paths(self, name: str) -> list[Path]:
        paths = brats_case_paths(self.output_dir, name, self.modalities)
        return [Path(p) for p in paths["image"]] + [Path(paths["label"])]

    def write(self, name: str, image: Any, label: Any, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
        affine = label.affine if isinstance(label, MetaTensor) else getattr(image, "affine", torch.eye(4))
        dtype = image.meta.get("source_dtype") if isinstance(image, MetaTensor) else None
        return write_brats_case(
            self.output_dir, name, image, label, affine, self.modalities, dtype, self.overwrite, provenance
        )


class SaveImageMaskPngd(SaveCased):
    """Write a 2D RGB image (0..255) and its binary mask as ``images/<name>.png`` and ``masks/<name>.png``.

    Args:
        keys: ``(image_key, label_key)``.
        output_dir: destination folder.
        name_key: key of the case name.
        overwrite: replace existing files.
        entry_key: where to store the written case's datalist entry.
        provenance: the provenance record of the cases written (None: not synthetic).
        source_key: key of an item's source case name.
    """

    def output_paths(self, name: str) -> list[Path]:
        return list(image_mask_png_paths(self.output_dir, name))

    def write(self, name: str, image: Any, label: Any, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return write_image_mask_png(self.output_dir, name, image, label, self.overwrite, provenance)


def find_case_writer(transform: Any) -> SaveCased:
    """The case writer of a pipeline: ``transform`` itself or the last :class:`SaveCased` of a ``Compose``.

    Raises:
        ValueError: the pipeline writes no cases.
    """
    if isinstance(transform, SaveCased):
        return transform
    if isinstance(transform, Compose):
        for t in reversed(list(transform.transforms)):
            if isinstance(t, (SaveCased, Compose)):
                try:
                    return find_case_writer(t)
                except ValueError:
                    continue
    raise ValueError("the synthesis pipeline must end in a case writer (SaveBratsCased or SaveImageMaskPngd)")
