"""Cases as the segmentation networks see them, and back: every brain slice on one square grid, per-case 3D scores.

A case's axial slices that hold brain are cut to one square in-plane box around the brain (the same box for every
slice: :class:`~monai_singanseg.transforms.slices.AxialSliceGrid`, pix2pix's grid), resized to the working size,
and each slice's channels are scaled to [-1, 1] inside its brain (per slice, as the generators' samples are).
Predictions go back the same way: the class probabilities of every slice are resized onto the box, the voxels
outside the brain slices stay background, and the argmax is scored against the case's own label volume in 3D
with its voxel spacing (:func:`~monai_singanseg.evaluation.scoring.case_scores`: Dice and HD95 per BraTS region).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from monai.transforms import KeepLargestConnectedComponent

from monai_singanseg.evaluation.scoring import case_scores
from monai_singanseg.evaluation.segmentation import predict_probabilities
from monai_singanseg.transforms.intensity import IntensityToTanhRange, foreground_mask
from monai_singanseg.transforms.slices import AxialSliceGrid

__all__ = ["CaseSlices", "case_slices", "predict_case", "keep_largest_tumour", "score_case"]


@dataclass
class CaseSlices:
    """Every brain slice of a case on its working grid.

    Args:
        name: the case's name.
        images: ``(S, C, size, size)`` in [-1, 1] inside the brain (-1 outside).
        labels: ``(S, 1, size, size)`` class indices.
        indices: the axial slice index of each.
        grid: the slice grid (for pasting predictions back).
        target: the case's label volume ``(1, *spatial)`` (class indices).
        spacing: voxel size (mm) of the volume's axes.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    indices: list[int]
    grid: AxialSliceGrid
    target: torch.Tensor
    spacing: tuple[float, ...]

    def tumour(self) -> list[int]:
        """Positions (into ``images``) of the slices holding tumour."""
        return [i for i in range(len(self.indices)) if bool((self.labels[i] > 0).any())]

    def names(self, positions: Sequence[int] | None = None) -> list[str]:
        """``<case>:<slice index>`` of the slices at ``positions`` (all by default)."""
        positions = range(len(self.indices)) if positions is None else positions
        return [f"{self.name}:{self.indices[p]}" for p in positions]


def case_slices(case: Mapping[str, Any], size: int, margin: int = 4) -> CaseSlices:
    """A loaded case (:func:`~monai_singanseg.data.load_case`: image in source units, label class indices) ->
    :class:`CaseSlices` (tumour voxels count as brain).

    Raises:
        ValueError: the case has no label or no brain.
    """
    if "label" not in case:
        raise ValueError(f"{case.get('name', 'case')}: scoring needs a label")
    image, label = case["image"], case["label"]
    brain = torch.as_tensor(foreground_mask(image.as_tensor())) | (label.as_tensor() > 0)
    grid = AxialSliceGrid(brain, image.affine, size, margin)
    indices = grid.brain_slices
    raw = grid.extract(image.as_tensor(), indices, mode="area")
    masks = grid.extract(brain.float(), indices, mode="nearest-exact") > 0.5
    labels = grid.extract(label.as_tensor().float(), indices, mode="nearest-exact").round().long()
    scaler = IntensityToTanhRange()
    images = torch.stack(
        [
            scaler(raw[i], mask=masks[i]) if bool(masks[i].any()) else torch.full_like(raw[i], -1.0)
            for i in range(len(indices))
        ]
    ).float()
    spacing = tuple(float(s) for s in torch.as_tensor(image.affine)[:3, :3].norm(dim=0).tolist())
    target = label.as_tensor().long()
    return CaseSlices(str(case.get("name", "case")), images, labels, list(indices), grid, target, spacing)


def predict_case(net: torch.nn.Module, cs: CaseSlices, num_classes: int, batch_size: int = 16) -> torch.Tensor:
    """Class indices ``(1, *spatial)`` of the whole case: every brain slice predicted and pasted back."""
    probs = predict_probabilities(net, cs.images, batch_size)  # (S, K, size, size)
    volume = torch.zeros((num_classes, *cs.target.shape[1:]), dtype=torch.float32)
    volume[0] = 1.0  # outside the brain slices: background
    cs.grid.paste(probs, cs.indices, volume)
    return volume.max(0, keepdim=True).indices  # argmax's first-maximum rule, several times faster on a CPU


def keep_largest_tumour(prediction: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``prediction`` (class indices ``(1, *spatial)``) with every tumour voxel outside its largest connected tumour
    component (all tumour classes together, full connectivity) set to background; ``prediction`` is left as it is."""
    keep = KeepLargestConnectedComponent(applied_labels=list(range(1, num_classes)), independent=False)
    return torch.as_tensor(keep(prediction.clone())).to(prediction.dtype)  # MONAI's transform works in place


def score_case(
    net: torch.nn.Module, cs: CaseSlices, label_values: Sequence[int], keep_largest: bool = False
) -> dict[str, dict[str, float | bool]]:
    """Dice and HD95 (mm) per BraTS region of the network's prediction of the whole case (with ``keep_largest``, of
    its largest connected tumour component: :func:`keep_largest_tumour`)."""
    prediction = predict_case(net, cs, len(label_values))
    if keep_largest:
        prediction = keep_largest_tumour(prediction, len(label_values))
    return case_scores(prediction, cs.target, label_values, spacing=cs.spacing)
