"""The pix2pix condition (what the generator is told to draw) and transforms that make new ones.

A tumour label alone does not say where the brain is, so the condition is a stack of binary channels:

* ``brain``: the brain mask (non-zero voxels of a skull-stripped case; tumour voxels always count as brain),
* ``tumour_<v>``: one channel per tumour class (label value ``v``; background dropped),
* optionally ``tissue_<i>``: coarse tissue classes (dark -> bright, i.e. CSF / grey / white matter on T1)
  from 1D k-means clustering of one modality inside the brain, tumour excluded.

New conditions come from real ones (:mod:`~monai_singanseg.transforms.condition.deform`).

Every transform accepts numpy arrays and torch tensors (CPU or CUDA) and returns the input's type (a
MetaTensor keeps its metadata). The random ones follow MONAI's rules: a ``prob`` (default 1.0), all random
numbers drawn in ``randomize()``, reproducible with ``set_random_state``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import (
    RandomizableTransform,
    Transform,
)
from monai.utils import TransformBackends, convert_to_numpy, convert_to_tensor

from monai_singanseg.transforms.containers import like_input
from monai_singanseg.transforms.labels.array import BRATS_LABEL_VALUES, IndexToOneHot, LabelValueError

__all__ = [
    "draw_do_transform",
    "ConditionError",
    "condition_channel_names",
    "check_same_grid",
    "TissueClasses",
    "BuildCondition",
    "SplitCondition",
]


class ConditionError(ValueError):
    """A label, brain mask or condition that cannot be used (shape, affine, empty brain, channels)."""


def condition_channel_names(label_values: Sequence[int] = BRATS_LABEL_VALUES, tissue_classes: int = 0) -> list[str]:
    """Names of the condition channels, in order: ``brain``, ``tumour_<value>``..., ``tissue_<i>``..."""
    return (
        ["brain"]
        + [f"tumour_{int(v)}" for v in label_values[1:]]
        + [f"tissue_{i}" for i in range(1, tissue_classes + 1)]
    )


def draw_do_transform(transform: RandomizableTransform) -> None:
    """Set ``transform._do_transform`` from its ``prob``: MONAI's ``RandomizableTransform.randomize`` except
    that ``prob >= 1`` draws no number.

    With the default ``prob=1.0`` the random stream is then exactly the one of the transforms before they
    had a ``prob`` (the shipped bundles' renders depend on it, also when several parts share one state).
    """
    transform._do_transform = transform.prob >= 1.0 or bool(transform.R.rand() < transform.prob)


def check_same_grid(label: NdarrayOrTensor, other: NdarrayOrTensor, what: str) -> None:
    """Raise :class:`ConditionError` if ``other`` is not on the grid of ``label`` (shape, and affine if known)."""
    if tuple(label.shape[1:]) != tuple(other.shape[1:]):
        raise ConditionError(
            f"{what} has spatial shape {tuple(other.shape[1:])} but the label has {tuple(label.shape[1:])}"
        )
    if isinstance(label, MetaTensor) and isinstance(other, MetaTensor):
        if not torch.allclose(label.affine.double(), other.affine.double(), atol=1e-3):
            raise ConditionError(f"{what} affine differs from the label's affine; they are not on the same grid")


class TissueClasses(Transform):
    """Coarse tissue classes by 1D k-means of one channel inside the brain: ``(1, *sp)`` in ``0..num_classes``.

    0 is outside the brain (or excluded, e.g. tumour), ``1..num_classes`` sorted from dark to bright.
    Deterministic: centres start at evenly spaced quantiles.

    Args:
        num_classes: number of clusters (3: CSF, grey and white matter on T1).
        iterations: k-means iterations.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, num_classes: int = 3, iterations: int = 25) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.iterations = iterations

    def __call__(
        self, image: NdarrayOrTensor, brain_mask: NdarrayOrTensor, exclude: NdarrayOrTensor | None = None
    ) -> NdarrayOrTensor:
        """Args:
        image: ``(1, *sp)`` the channel to cluster (e.g. T1).
        brain_mask: ``(1, *sp)`` where to cluster.
        exclude: ``(1, *sp)`` voxels to leave at 0 (e.g. the tumour).
        """
        inside = convert_to_tensor(brain_mask, track_meta=False).bool()
        img = convert_to_tensor(image, track_meta=False, device=inside.device).float()
        if exclude is not None:
            inside = inside & ~convert_to_tensor(exclude, track_meta=False, device=inside.device).bool()
        out = torch.zeros(inside.shape, dtype=torch.int64, device=inside.device)
        values = convert_to_numpy(img[:1][inside].double())
        if values.size == 0:
            return like_input(out, brain_mask)
        centres = np.quantile(values, (np.arange(self.num_classes) + 0.5) / self.num_classes)
        for _ in range(self.iterations):
            assign = np.argmin(np.abs(values[:, None] - centres[None]), axis=1)
            new = np.array(
                [values[assign == k].mean() if (assign == k).any() else centres[k] for k in range(self.num_classes)]
            )
            if np.allclose(new, centres):
                break
            centres = new
        order = np.argsort(centres)
        rank = np.empty_like(order)
        rank[order] = np.arange(self.num_classes)
        assign = rank[np.argmin(np.abs(values[:, None] - centres[None]), axis=1)]
        out[inside] = torch.from_numpy(assign + 1).to(device=out.device, dtype=torch.int64)
        return like_input(out, brain_mask)


class BuildCondition(Transform):
    """Label class indices + brain mask (+ tissue classes) -> binary condition channels ``(C, *sp)`` float.

    Args:
        num_label_classes: classes of the label including background (4 for BraTS 0/1/2/4).
        tissue_classes: number of tissue channels (0 = none).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, num_label_classes: int = len(BRATS_LABEL_VALUES), tissue_classes: int = 0) -> None:
        self.num_label_classes = num_label_classes
        self.tissue_classes = tissue_classes

    def __call__(
        self, label: NdarrayOrTensor, brain_mask: NdarrayOrTensor, tissue: NdarrayOrTensor | None = None
    ) -> NdarrayOrTensor:
        """Args:
        label: ``(1, *sp)`` class indices ``0..num_label_classes-1``.
        brain_mask: ``(1, *sp)`` non-zero inside the brain.
        tissue: ``(1, *sp)`` tissue classes ``0..tissue_classes`` (required iff ``tissue_classes > 0``).

        Raises:
            ConditionError: grids differ, the brain mask is empty, tissue given/missing against the settings.
        """
        check_same_grid(label, brain_mask, "brain mask")
        lab = convert_to_tensor(label, track_meta=False).to(torch.int64)
        if lab.numel() and (int(lab.min()) < 0 or int(lab.max()) >= self.num_label_classes):
            raise LabelValueError(f"label class indices must lie in [0, {self.num_label_classes - 1}]")
        brain = convert_to_tensor(brain_mask, track_meta=False, device=lab.device) != 0
        if not brain.any():
            raise ConditionError("brain mask is empty (no non-zero voxel)")
        brain = brain | (lab > 0)
        channels = [brain.float(), IndexToOneHot(self.num_label_classes)(lab).float()]
        if self.tissue_classes:
            if tissue is None:
                raise ConditionError(
                    f"this condition uses {self.tissue_classes} tissue classes but no tissue map was given"
                )
            check_same_grid(label, tissue, "tissue map")
            tis = convert_to_tensor(tissue, track_meta=False, device=lab.device).to(torch.int64)
            tis = torch.where(brain & (lab == 0), tis, torch.zeros_like(tis))
            channels.append(IndexToOneHot(self.tissue_classes + 1)(tis.clamp(0, self.tissue_classes)).float())
        elif tissue is not None:
            raise ConditionError(
                "a tissue map was given but this condition has no tissue channels (model trained without them)"
            )
        return like_input(torch.cat(channels, dim=0), label)


class SplitCondition(Transform):
    """Inverse of :class:`BuildCondition`: condition ``(C, *sp)`` -> ``(label, brain_mask, tissue|None)``.

    Tumour and tissue voxels are kept only inside the brain channel.

    Args:
        num_label_classes: classes of the label including background.
        tissue_classes: number of tissue channels.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, num_label_classes: int = len(BRATS_LABEL_VALUES), tissue_classes: int = 0) -> None:
        self.num_label_classes = num_label_classes
        self.tissue_classes = tissue_classes

    def __call__(self, condition: NdarrayOrTensor) -> tuple[NdarrayOrTensor, NdarrayOrTensor, NdarrayOrTensor | None]:
        c = convert_to_tensor(condition, track_meta=False).float()
        expected = self.num_label_classes + self.tissue_classes
        if c.shape[0] != expected:
            raise ConditionError(f"condition has {c.shape[0]} channels, expected {expected}")
        brain = c[:1] > 0.5
        tumour = c[1 : self.num_label_classes]
        score, arg = tumour.max(dim=0, keepdim=True)
        label = torch.where((score > 0.5) & brain, arg + 1, torch.zeros_like(arg)).to(torch.int64)
        tissue = None
        if self.tissue_classes:
            tis = c[self.num_label_classes :]
            tscore, targ = tis.max(dim=0, keepdim=True)
            tissue = like_input(
                torch.where((tscore > 0.5) & brain, targ + 1, torch.zeros_like(targ)).to(torch.int64), condition
            )
        return like_input(label, condition), like_input(brain.to(torch.uint8), condition), tissue
