"""The SinGAN-Seg synthesis pipeline as one MONAI ``Compose``, shared by the ``generate`` command and Python users.

sample (GAN space: image in [-1, 1], class indices) -> optional style step on the image -> source units and
label values -> case writer (BraTS NIfTI, or PNG image + mask for RGB models). The bundle's
``inference.json`` lists the same transforms in its config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from monai.transforms import Compose, MapTransform

from monai_singanseg.engines.singan_sampler import SinGANSegSampler
from monai_singanseg.io.modelfile import ModelFile
from monai_singanseg.transforms.condition import BuildConditiond, RandDeformConditiond, SplitConditiond
from monai_singanseg.transforms.intensity import IntensityFromTanhRanged
from monai_singanseg.transforms.io import SaveBratsCased, SaveCased, SaveImageMaskPngd
from monai_singanseg.transforms.labels import IndexToLabeld
from monai_singanseg.transforms.style import StyleTransferd
from monai_singanseg.transforms.synthesis import SinGANSegSampled

__all__ = ["singanseg_pipeline", "singanseg_case_writer", "singanseg_style", "pix2pix_deform_steps"]


def singanseg_case_writer(sampler: SinGANSegSampler, output_dir: str | os.PathLike, overwrite: bool = False) -> SaveCased:
    """The writer that fits the model's input: PNG image + mask for RGB models, else BraTS-named NIfTI."""
    if sampler.config.get("input_kind") == "rgb":
        return SaveImageMaskPngd(("image", "label"), output_dir, overwrite=overwrite)
    return SaveBratsCased(("image", "label"), output_dir, modalities=sampler.config["image_channels"], overwrite=overwrite)


def pix2pix_deform_steps(num_label_classes: int, tissue_classes: int = 0, spatial_dims: int = 3) -> list[MapTransform]:
    """The steps that turn ``"label"`` (class indices), ``"brain_mask"`` (and ``"tissue"``) into a randomly deformed set.

    Condition (``BuildConditiond``) -> elastic + affine deformation (``RandDeformConditiond``) -> back to
    label, brain mask and tissue map (``SplitConditiond``): a new label map for pix2pix to render. A list, so it
    splices into a pipeline and is seeded with it.

    Args:
        num_label_classes: label classes including background.
        tissue_classes: tissue channels of the condition (0: none).
        spatial_dims: 2 for slices, 3 for volumes.
    """
    return [
        BuildConditiond("label", "brain_mask", "condition", num_label_classes=num_label_classes, tissue_classes=tissue_classes),
        RandDeformConditiond("condition", spatial_dims=spatial_dims),
        SplitConditiond("condition", num_label_classes=num_label_classes, tissue_classes=tissue_classes),
    ]


def singanseg_style(
    sampler: SinGANSegSampler,
    method: str = "none",
    steps: int = 100,
    weights_path: str | os.PathLike | None = None,
    device: str | None = "cpu",
) -> StyleTransferd | None:
    """SinGAN-Seg's style step for a model's samples: the style image is the model's own training slice.

    Args:
        sampler: the model.
        method: a :data:`~monai_singanseg.transforms.style.STYLE_METHODS` name, or ``"none"`` (returns None).
        steps: optimisation steps of the network-based methods.
        weights_path: VGG-19 weights file (``vgg19`` methods).
        device: where the optimisation runs.
    """
    if method == "none":
        return None
    return StyleTransferd("image", style=sampler.reference_image(), method=method, steps=steps,
                          weights_path=weights_path, device=device)


def singanseg_pipeline(
    model: str | os.PathLike | ModelFile | SinGANSegSampler,
    output_dir: str | os.PathLike,
    start_scale: int = 0,
    size: Sequence[int] | None = None,
    threshold: float = 0.5,
    min_component: int = 0,
    style: Callable[[Any], Any] | None = None,
    overwrite: bool = False,
    device: str | None = "cpu",
) -> Compose:
    """Build the synthesis pipeline of a SinGAN-Seg model; run it with :func:`monai_singanseg.bundle.synthesise`.

    Args:
        model: model file, loaded :class:`ModelFile` or :class:`SinGANSegSampler`.
        output_dir: where the writer puts the cases.
        start_scale: scale where random noise starts.
        size: output spatial size (None: the training size).
        threshold: label background threshold.
        min_component: remove tumour components smaller than this many pixels.
        style: a dictionary transform applied to ``"image"`` in [-1, 1] before it goes back to source units
            (e.g. :class:`~monai_singanseg.transforms.StyleTransferd`); the label is not passed through it.
        overwrite: replace existing outputs.
        device: device of the generator.
    """
    sampler = model if isinstance(model, SinGANSegSampler) else SinGANSegSampler(model, device=device)
    transforms: list[Callable[[Any], Any]] = [
        SinGANSegSampled(("image", "label"), sampler, start_scale=start_scale, size=size, threshold=threshold,
                         min_component=min_component)
    ]
    if style is not None:
        transforms.append(style)
    transforms += [
        IntensityFromTanhRanged("image"),
        IndexToLabeld("label", label_values=sampler.label_values),
        singanseg_case_writer(sampler, output_dir, overwrite),
    ]
    return Compose(transforms)
