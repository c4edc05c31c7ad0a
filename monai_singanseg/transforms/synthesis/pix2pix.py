"""Rendering whole synthetic multi-modal volumes from label maps with a trained pix2pix model.

For a label volume and its brain mask, every axial slice that holds brain is cut to one square
in-plane box around the brain (the same box for every slice, so the scale is the same as in
training), resized to the model's working size, rendered, resized back and pasted into a volume
with the label's exact shape and affine. Intensities go back to the training data's range and
dtype; voxels outside the brain (and slices without brain) stay background.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_tensor

from monai_singanseg.io.modelfile import ModelFile, load_model_file
from monai_singanseg.networks.pix2pix import Pix2PixGenerator
from monai_singanseg.transforms.condition.array import (
    BuildCondition,
    ConditionError,
    check_same_grid,
    condition_channel_names,
)
from monai_singanseg.transforms.intensity.array import IntensityFromTanhRange, IntensityStats
from monai_singanseg.transforms.labels.array import LabelToIndex
from monai_singanseg.transforms.slices.array import axial_axis

__all__ = ["PIX2PIX_KIND", "AxialSliceGrid", "load_pix2pix", "generator_from_config", "Pix2PixRender", "Pix2PixRenderd"]

#: ``kind`` of pix2pix model files.
PIX2PIX_KIND = "pix2pix"


class AxialSliceGrid:
    """Axial slices of a volume <-> a stack of square ``size x size`` slices around the brain.

    Args:
        brain_mask: ``(1, *sp)`` 3D brain mask (defines the in-plane box and which slices hold brain).
        affine: the volume's 4x4 affine (gives the axial axis).
        size: working size of the generator.
        margin: voxels of background kept around the brain's in-plane bounding box.
    """

    def __init__(self, brain_mask: NdarrayOrTensor, affine: NdarrayOrTensor, size: int, margin: int = 4) -> None:
        brain = convert_to_tensor(brain_mask, track_meta=False)[0] != 0
        if brain.ndim != 3:
            raise ConditionError(f"expected a 3D volume (1, X, Y, Z), got spatial shape {tuple(brain.shape)}")
        if not brain.any():
            raise ConditionError("brain mask is empty (no non-zero voxel)")
        self.axis = axial_axis(affine)
        self.size = size
        self.shape = tuple(brain.shape)
        moved = brain.movedim(self.axis, 0)  # (S, A, B)
        self.brain_slices = [int(i) for i in torch.nonzero(moved.flatten(1).any(1)).flatten()]
        proj = moved.any(0)
        rows, cols = torch.nonzero(proj.any(1)).flatten(), torch.nonzero(proj.any(0)).flatten()
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        self.side = max(r1 - r0, c1 - c0) + 2 * margin
        self.r0 = (r0 + r1 - self.side) // 2
        self.c0 = (c0 + c1 - self.side) // 2

    def _plane_stack(self, volume: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
        """``(C, *sp)`` -> ``(N, C, A, B)`` axial slices."""
        return volume.movedim(1 + self.axis, 0)[list(indices)]

    def extract(self, volume: NdarrayOrTensor, indices: Sequence[int], mode: str = "area", pad_value: float = 0.0) -> torch.Tensor:
        """Slices ``indices`` of ``volume`` ``(C, *sp)`` as ``(N, C, size, size)`` float.

        Args:
            mode: ``"nearest-exact"`` for conditions/labels, ``"area"`` (downsampling) or ``"bilinear"`` for images.
            pad_value: value of the box outside the volume.
        """
        vol = convert_to_tensor(volume, track_meta=False).float()
        planes = self._plane_stack(vol, indices)
        a, b = planes.shape[-2:]
        pads = (max(0, -self.c0), max(0, self.c0 + self.side - b), max(0, -self.r0), max(0, self.r0 + self.side - a))
        planes = F.pad(planes, pads, value=pad_value)
        r, c = self.r0 + pads[2], self.c0 + pads[0]
        box = planes[..., r : r + self.side, c : c + self.side]
        if mode == "area" and self.side < self.size:
            mode = "bilinear"
        kwargs = {"align_corners": False} if mode == "bilinear" else {}
        return F.interpolate(box, size=(self.size, self.size), mode=mode, **kwargs)

    def paste(self, slices: torch.Tensor, indices: Sequence[int], out: torch.Tensor) -> torch.Tensor:
        """Resize rendered ``(N, C, size, size)`` slices back to the box and write them into ``out`` ``(C, *sp)``."""
        back = F.interpolate(slices.float(), size=(self.side, self.side), mode="bilinear", align_corners=False)
        moved = out.movedim(1 + self.axis, 0)  # a view: writing into it writes into ``out``
        a, b = moved.shape[-2:]
        ra, rb = max(0, self.r0), min(a, self.r0 + self.side)
        ca, cb = max(0, self.c0), min(b, self.c0 + self.side)
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        moved[idx, :, ra:rb, ca:cb] = back[..., ra - self.r0 : rb - self.r0, ca - self.c0 : cb - self.c0].to(out.dtype)
        return out


def generator_from_config(config: Mapping[str, Any]) -> Pix2PixGenerator:
    """The generator described by a pix2pix model config (untrained weights)."""
    return Pix2PixGenerator(
        spatial_dims=2,
        in_channels=len(config["condition"]["channels"]),
        out_channels=len(config["modalities"]),
        size=int(config["size"]),
        channels=int(config["generator_channels"]),
        dropout=float(config.get("dropout", 0.5)),
        norm=config.get("norm", "INSTANCE"),
    )


def load_pix2pix(
    model: str | os.PathLike | ModelFile, device: str | torch.device = "cpu"
) -> tuple[Pix2PixGenerator, dict[str, Any]]:
    """Load a pix2pix model file (through the one model-file loader) -> ``(generator in eval mode, config)``."""
    mf = model if isinstance(model, ModelFile) else load_model_file(model, expected_kind=PIX2PIX_KIND)
    if mf.kind != PIX2PIX_KIND:
        raise ValueError(f"{mf.path}: this is a '{mf.kind}' model, expected a '{PIX2PIX_KIND}' model")
    generator = generator_from_config(mf.config)
    generator.load_state_dict(mf.state["generator"])
    return generator.to(device).eval(), mf.config


class Pix2PixRender(Transform):
    """Render a synthetic multi-modal volume for a label volume with a trained pix2pix model.

    Args:
        model: model file path or loaded :class:`ModelFile`.
        device: torch device (``"cpu"``, ``"cuda"``).
        batch_size: slices per generator call.
        dropout: keep dropout active while rendering (pix2pix's only noise; then the render depends on
            the torch seed). Off by default: the render is a deterministic function of the condition.
    """

    def __init__(
        self, model: str | os.PathLike | ModelFile, device: str | torch.device = "cpu", batch_size: int = 16, dropout: bool = False
    ) -> None:
        self.device = torch.device(device)
        self.generator, self.config = load_pix2pix(model, self.device)
        if dropout:
            for m in self.generator.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.train()
        cond = self.config["condition"]
        self.label_values = tuple(int(v) for v in cond["label_values"])
        self.tissue_classes = int(cond.get("tissue_classes", 0))
        if list(cond["channels"]) != condition_channel_names(self.label_values, self.tissue_classes):
            raise ConditionError(f"model condition channels {cond['channels']} are not ones this version can build")
        self.stats = IntensityStats.from_dict(self.config["intensity_stats"])
        self.size = int(self.config["size"])
        self.margin = int(self.config.get("margin", 4))
        self.batch_size = batch_size
        self.modalities = tuple(self.config["modalities"])

    @torch.no_grad()
    def render_condition(self, condition: NdarrayOrTensor, affine: NdarrayOrTensor) -> torch.Tensor:
        """Condition ``(C, *sp)`` -> rendered volume ``(M, *sp)`` in [-1, 1] (-1 outside the brain)."""
        cond = convert_to_tensor(condition, track_meta=False).float()
        if cond.shape[0] != len(self.config["condition"]["channels"]):
            raise ConditionError(
                f"condition has {cond.shape[0]} channels but the model was trained with {self.config['condition']['channels']}"
            )
        grid = AxialSliceGrid(cond[:1], affine, self.size, self.margin)
        out = torch.full((len(self.modalities), *cond.shape[1:]), -1.0)
        for start in range(0, len(grid.brain_slices), self.batch_size):
            idx = grid.brain_slices[start : start + self.batch_size]
            x = grid.extract(cond, idx, mode="nearest-exact").to(self.device)
            grid.paste(self.generator(x).cpu(), idx, out)
        return torch.where(cond[:1] > 0.5, out, torch.full_like(out, -1.0))

    def __call__(
        self, label: NdarrayOrTensor, brain_mask: NdarrayOrTensor, tissue: NdarrayOrTensor | None = None
    ) -> MetaTensor:
        """Args:
        label: ``(1, X, Y, Z)`` label map holding the model's label VALUES (e.g. BraTS 0/1/2/4).
        brain_mask: ``(1, X, Y, Z)`` brain mask on the label's grid (non-zero = brain; tumour voxels count as brain).
        tissue: ``(1, X, Y, Z)`` tissue classes (:class:`TissueClasses`), needed iff the model uses them.

        Returns:
            ``(M, X, Y, Z)`` MetaTensor, one channel per modality, in the training intensity range and dtype,
            with the label's metadata and affine; background outside the brain.

        Raises:
            LabelValueError: label values outside the model's set.
            ConditionError: shape/affine mismatch, empty brain mask, tissue map missing or not expected.
        """
        lab = convert_to_tensor(label, track_meta=False)
        if lab.ndim != 4 or lab.shape[0] != 1:
            raise ConditionError(f"expected a (1, X, Y, Z) label volume, got shape {tuple(lab.shape)}")
        check_same_grid(label, brain_mask, "brain mask")
        brain = convert_to_tensor(brain_mask, track_meta=False) != 0
        if not brain.any():
            raise ConditionError("brain mask is empty (no non-zero voxel)")
        if tissue is not None:
            check_same_grid(label, tissue, "tissue map")
        # work inside the bounding box of brain and label only (every non-zero label voxel lies in it)
        nonzero = torch.nonzero((brain | (lab != 0))[0])
        box = (slice(None),) + tuple(slice(int(a), int(b) + 1) for a, b in zip(nonzero.min(0).values, nonzero.max(0).values))
        index = LabelToIndex(self.label_values)(lab[box])
        cropped_tissue = None if tissue is None else convert_to_tensor(tissue, track_meta=False)[box]
        condition = BuildCondition(len(self.label_values), self.tissue_classes)(index, brain[box], cropped_tissue)
        affine = label.affine if isinstance(label, MetaTensor) else torch.eye(4, dtype=torch.float64)
        rendered = self.render_condition(condition, affine)
        image = convert_to_tensor(IntensityFromTanhRange(self.stats)(rendered, mask=condition[:1] > 0.5), track_meta=False)
        background = torch.tensor(self.stats.background, dtype=torch.float64).view(-1, 1, 1, 1)
        out = background.expand(len(self.modalities), *lab.shape[1:]).to(image.dtype).clone()
        out[box] = image
        meta = dict(label.meta) if isinstance(label, MetaTensor) else {}
        meta.update(affine=torch.as_tensor(affine).clone(), source_dtype=self.stats.dtype)
        return MetaTensor(out, meta=meta)


class Pix2PixRenderd(MapTransform):
    """Dictionary :class:`Pix2PixRender`: ``d[output_key] = render(d[label_key], d[brain_key], d[tissue_key])``.

    Args:
        model: model file path or loaded :class:`ModelFile`.
        label_key: label map (label values).
        brain_key: brain mask.
        output_key: where to store the rendered image.
        tissue_key: tissue map key (used only if the model has tissue channels).
        device: torch device.
        batch_size: slices per generator call.
    """

    def __init__(
        self,
        model: str | os.PathLike | ModelFile,
        label_key: str = "label",
        brain_key: str = "brain_mask",
        output_key: str = "image",
        tissue_key: str = "tissue",
        device: str | torch.device = "cpu",
        batch_size: int = 16,
    ) -> None:
        super().__init__([label_key, brain_key])
        self.label_key, self.brain_key, self.output_key, self.tissue_key = label_key, brain_key, output_key, tissue_key
        self.renderer = Pix2PixRender(model, device=device, batch_size=batch_size)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        tissue = d.get(self.tissue_key) if self.renderer.tissue_classes else None
        d[self.output_key] = self.renderer(d[self.label_key], d[self.brain_key], tissue)
        return d
