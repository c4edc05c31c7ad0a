"""The pix2pix synthesis pipeline: model file + options -> one MONAI ``Compose`` (the only place it is composed).

[load the case] -> brain mask and tissue classes as the model's condition needs them -> [a random elastic +
affine deformation of the condition: a new label map] -> label values -> render every axial slice -> case
writer. The command line, the bundle's ``inference.json``, MONAI Label and the evaluation all build it here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from monai.inferers import Inferer
from monai.transforms import MapTransform

from monai_singanseg.data import LoadCased, case_name
from monai_singanseg.inferers.pix2pix import Pix2PixRender, Pix2PixRenderd, RandAppearanced
from monai_singanseg.io.modelfile import ModelFile
from monai_singanseg.io.provenance import provenance_record
from monai_singanseg.synthesis.runner import SynthesisPipeline
from monai_singanseg.transforms.condition import (
    BuildConditiond,
    ConditionInputsd,
    RandDeformConditiond,
    SplitConditiond,
)
from monai_singanseg.transforms.io import SaveBratsCased
from monai_singanseg.transforms.labels import IndexToLabeld

__all__ = ["pix2pix_deform_steps", "pix2pix_synthesis", "SourceCased"]


class SourceCased(MapTransform):
    """Name the real case a render comes from (``d["source"]``, its provenance): the case of the label file
    ``d["label"]`` (a path, before loading), unless the item names its source itself."""

    def __init__(self, label_key: str = "label", source_key: str = "source") -> None:
        super().__init__([label_key])
        self.label_key = label_key
        self.source_key = source_key

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        if d.get(self.source_key) is None and isinstance(d.get(self.label_key), (str, os.PathLike)):
            d[self.source_key] = case_name({"label": str(d[self.label_key])})
        return d


def pix2pix_deform_steps(num_label_classes: int, tissue_classes: int = 0, spatial_dims: int = 3) -> list[MapTransform]:
    """The steps that turn ``"label"`` (class indices), ``"brain_mask"`` (and ``"tissue"``) into a randomly deformed
    set.

    Condition (``BuildConditiond``) -> elastic + affine deformation (``RandDeformConditiond``) -> back to
    label, brain mask and tissue map (``SplitConditiond``).

    Args:
        num_label_classes: label classes including background.
        tissue_classes: tissue channels of the condition (0: none).
        spatial_dims: 2 for slices, 3 for volumes.
    """
    return [
        BuildConditiond(
            "label", "brain_mask", "condition", num_label_classes=num_label_classes, tissue_classes=tissue_classes
        ),
        RandDeformConditiond("condition", spatial_dims=spatial_dims),
        SplitConditiond("condition", num_label_classes=num_label_classes, tissue_classes=tissue_classes),
    ]


def pix2pix_synthesis(
    model: str | os.PathLike | ModelFile | Pix2PixRender,
    output_dir: str | os.PathLike | None = None,
    deform: bool = True,
    load: bool = False,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    label_map: Mapping[int, int] | None = None,
    inferer: Inferer | None = None,
) -> SynthesisPipeline:
    """The synthesis pipeline of a pix2pix model; run it with :func:`~monai_singanseg.synthesis.synthesize`.

    Each item is a case: ``{"label": class indices (1, X, Y, Z), "image": the case's volume (brain mask and
    tissue classes are taken from it)}``, optionally with ``"brain_mask"`` and ``"tissue_image"`` instead, or
    (with ``load=True``) a datalist entry of paths. The result holds ``"image"`` (rendered, source units and
    dtype) and ``"label"`` (label values) on the label's grid.

    Args:
        model: model file, loaded :class:`ModelFile`, or a :class:`Pix2PixRender`.
        output_dir: where the writer puts the cases (None: no writer).
        deform: render a random deformation of each label (seeded through the pipeline), not the label itself.
        load: items are datalist entries of paths (loaded with the model's label values).
        overwrite: replace existing outputs.
        device: device of the generator.
        label_map: with ``load``, label values replaced on load (e.g. ``{3: 1}`` for BRATS-2013 labels).
        inferer: how the generator is called on each batch of slices (default ``SimpleInferer``; not used
            when ``model`` is a renderer, which has its own).
    """
    renderer = model if isinstance(model, Pix2PixRender) else Pix2PixRender(model, device=device, inferer=inferer)
    cfg = renderer.config
    values, tissue = renderer.label_values, renderer.tissue_classes
    steps: list = (
        [SourceCased(), LoadCased(("image", "label"), label_values=values, label_map=label_map)] if load else []
    )
    steps.append(ConditionInputsd(tissue_classes=tissue, tissue_channel=cfg.tissue_channel))
    if deform:
        steps += pix2pix_deform_steps(len(values), tissue)
    steps.append(IndexToLabeld("label", values))
    if renderer.varies:  # every case its own code and noise (SPADE)
        steps.append(RandAppearanced(renderer, "appearance", "noise_seed"))
    steps.append(Pix2PixRenderd(renderer, "label", "brain_mask", "image", "tissue", appearance_key="appearance"))
    if output_dir is not None:
        provenance = provenance_record(f"pix2pix-{cfg.architecture}")  # an item's "source" names its label's case
        steps.append(
            SaveBratsCased(
                ("image", "label"),
                output_dir,
                modalities=renderer.modalities,
                overwrite=overwrite,
                provenance=provenance,
            )
        )
    return SynthesisPipeline(
        steps,
        label_values=values,
        modalities=renderer.modalities,
        description="pix2pix renders of deformed label maps" if deform else "pix2pix renders",
        case_prefix="pix2pix",
        signature={"generator": "pix2pix", "model_sha256": renderer.model.sha256(), "deform": deform},
    )
