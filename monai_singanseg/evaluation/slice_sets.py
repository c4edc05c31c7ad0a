"""Slices as training and test sets of the segmentation networks: real cases' slices on one grid, split for
validation, and synthetic datasets read back through the same data path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.data import load_decathlon_datalist

from monai_singanseg.data import load_case
from monai_singanseg.evaluation.volumes import CaseSlices, case_slices
from monai_singanseg.transforms.gan import ToGANTensor
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES

__all__ = ["SliceSet", "tumour_slices", "split_for_validation", "slice_number", "evenly", "synthetic_slices"]


@dataclass
class SliceSet:
    """2D training/test pairs: ``images`` ``(N, C, S, S)`` in [-1, 1], ``labels`` ``(N, 1, S, S)`` class indices."""

    images: torch.Tensor
    labels: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, indices: Sequence[int]) -> SliceSet:
        """The slices at ``indices``."""
        idx = [int(i) for i in indices]
        return SliceSet(self.images[idx], self.labels[idx], [self.names[i] for i in idx])

    @staticmethod
    def concat(sets: Sequence[SliceSet]) -> SliceSet:
        """All slices of ``sets``, in order."""
        return SliceSet(
            torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets]), [n for s in sets for n in s.names]
        )

    def gan_tensor(self, num_classes: int) -> torch.Tensor:
        """Image channels + one-hot tumour channels mapped to [-1, 1] ``(N, C + K - 1, S, S)`` (the generators'
        space)."""
        to_gan = ToGANTensor(num_classes)
        return torch.stack([to_gan(img, lab) for img, lab in zip(self.images, self.labels)])


def tumour_slices(case: Mapping[str, Any], size: int, min_area: int = 1) -> SliceSet:
    """The tumour-bearing axial slices of a loaded case on the segmentation networks' grid (:func:`case_slices`).

    Args:
        case: :func:`~monai_singanseg.data.load_case` output (image in source units, label class indices).
        size: output side.
        min_area: minimum tumour pixels of a slice (at the working size).
    """
    cs = case_slices(case, size)
    keep = [p for p in cs.tumour() if int((cs.labels[p] > 0).sum()) >= min_area]
    return SliceSet(cs.images[keep], cs.labels[keep], cs.names(keep))


def split_for_validation(cs: CaseSlices, every: int) -> tuple[SliceSet, SliceSet]:
    """A case's brain slices -> ``(training, validation)``: every ``every``-th slice (from the middle one of the
    first ``every``) is held in for validation."""
    positions = range(len(cs.indices))
    val = [p for p in positions if p % every == every // 2]
    train = [p for p in positions if p % every != every // 2]
    return (
        SliceSet(cs.images[train], cs.labels[train], cs.names(train)),
        SliceSet(cs.images[val], cs.labels[val], cs.names(val)),
    )


def slice_number(name: str) -> int:
    """The axial index in a slice name ``<case>:<index>``."""
    return int(name.rsplit(":", 1)[1])


def synthetic_slices(folders: Sequence[Path], size: int, tumour_only: bool = False) -> SliceSet:
    """The synthetic cases listed in each folder's ``datalist.json`` as training slices, on the segmentation grid and
    scaled as the real slices are (:func:`case_slices`): every brain slice (a SinGAN-Seg case is one slice, kept
    whether or not its sample holds tumour), or only the tumour slices (pix2pix volumes)."""
    sets = []
    for folder in folders:
        for item in load_decathlon_datalist(str(folder / "datalist.json"), data_list_key="training"):
            case = load_case(item, BRATS_LABEL_VALUES, 3)
            if tumour_only:
                sets.append(tumour_slices(case, size))
            else:
                cs = case_slices(case, size)
                sets.append(SliceSet(cs.images, cs.labels, cs.names()))
    return SliceSet.concat(sets)


def evenly(slices: SliceSet, keep: int) -> SliceSet:
    """At most ``keep`` slices, evenly spaced over the set."""
    return slices.subset(torch.linspace(0, len(slices) - 1, min(len(slices), keep)).round().long().tolist())
