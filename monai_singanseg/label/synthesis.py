"""Synthetic image/label volumes for a datastore image, in that image's geometry."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from monai_singanseg.data import LoadCased, load_case
from monai_singanseg.inferers import Pix2PixRender, SinGANSegSampler
from monai_singanseg.label.geometry import slice_sample_to_volume
from monai_singanseg.synthesis import SinGANSegSynthesisSettings, pix2pix_synthesis, singanseg_synthesis
from monai_singanseg.transforms.intensity.array import SOURCE_DTYPE_KEY

__all__ = ["SyntheticVolume", "singanseg_volume", "pix2pix_volume"]


@dataclass
class SyntheticVolume:
    """A synthetic image/label pair on a source image's grid.

    Args:
        image: ``(C, X, Y, Z)`` in source units.
        label: ``(1, X, Y, Z)`` label values.
        affine: the source's 4x4 affine.
        image_dtype: the source image's dtype on disk.
        slice_index: the axial slice holding the synthetic content (None: the whole volume).
    """

    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    image_dtype: str
    slice_index: int | None = None


def singanseg_volume(
    model: str | os.PathLike,
    image_path: str | os.PathLike,
    label_path: str | os.PathLike,
    label_values: Sequence[int],
    seed: int,
    start_scale: int = 0,
    threshold: float = 0.5,
    min_component: int = 0,
    device: str | torch.device | None = "auto",
    style: str = "none",
    style_steps: int = 100,
    tumour_shift: float | None = SinGANSegSynthesisSettings.tumour_shift,
) -> SyntheticVolume:
    """Draw one SinGAN-Seg sample of an image's model and put it at its slice in the image's geometry (a 3D model's
    sample: the whole volume, resampled from the model's brain box into the image's grid).

    Args:
        model: the image's SinGAN-Seg model file.
        image_path: the source image (the model's training image).
        label_path: its label.
        label_values: the label values.
        seed: random seed of the sample.
        start_scale: scale where random noise starts (higher: closer to the source slice).
        threshold: label background threshold.
        min_component: remove tumour components smaller than this many pixels.
        device: torch device.
        style: SinGAN-Seg's style-transfer step (a :data:`~monai_singanseg.transforms.style.STYLE_METHODS` name
            without VGG-19, or ``"none"``); the style image is the model's reconstruction of its training slice.
        style_steps: optimisation steps of the network style methods.
        tumour_shift: new tumour layout, shifted by up to this fraction of the side (None: the model's layout).

    Returns:
        The synthetic volume: one synthetic axial slice at the training slice's index, background elsewhere (3D
        models: a whole synthetic brain, background outside its box; ``slice_index`` None).

    Raises:
        ValueError: the model does not belong to this image (other geometry), or bad sampling arguments.
    """
    sampler = SinGANSegSampler(model, device=device)
    cfg = sampler.config
    volume = cfg.spatial_dims == 3
    options = SinGANSegSynthesisSettings(
        start_scale=start_scale,
        threshold=threshold,
        min_component=min_component,
        style=style,
        style_steps=style_steps,
        tumour_shift=tumour_shift,
        paste=volume,
    )
    pipeline = singanseg_synthesis(sampler, None, options, device=sampler.device)
    pipeline.set_random_state(seed)
    sample = pipeline({"name": cfg.source_name})
    case = load_case({"image": str(image_path), "label": str(label_path)}, label_values)
    image_dtype = str(case["image"].meta[SOURCE_DTYPE_KEY])
    if volume:  # a 3D model's sample, pasted into the grid of the volume it learnt
        grid = case["label"]
        if list(grid.shape[1:]) != list(cfg.source_grid_shape) or not np.allclose(
            grid.affine.numpy(), np.asarray(cfg.source_grid_affine), atol=1e-3
        ):
            raise ValueError(
                f"{model}: this 3D model was trained on another volume (grid {cfg.source_grid_shape}), not "
                f"on {image_path} (grid {list(grid.shape[1:])})"
            )
        return SyntheticVolume(
            image=np.asarray(sample["image"]),
            label=np.asarray(sample["label"]),
            affine=grid.affine.numpy(),
            image_dtype=image_dtype,
        )
    slice_index = cfg.source_slice_index
    if slice_index is None:
        raise ValueError(f"{model}: a model of a 2D picture has no slice to place in a volume")
    vol_image, vol_label = slice_sample_to_volume(
        torch.as_tensor(np.asarray(sample["image"]), dtype=torch.float32),
        torch.as_tensor(np.asarray(sample["label"]), dtype=torch.float32),
        case,
        slice_index,
        sampler.config.source_affine,
    )
    return SyntheticVolume(
        image=vol_image.numpy(),
        label=vol_label.numpy(),
        affine=case["image"].affine.numpy(),
        image_dtype=image_dtype,
        slice_index=slice_index,
    )


def pix2pix_volume(
    model: str | os.PathLike,
    image_path: str | os.PathLike,
    label_path: str | os.PathLike,
    seed: int,
    deform: bool = True,
    device: str | torch.device = "cpu",
) -> SyntheticVolume:
    """Render a whole synthetic multi-modal volume with a pix2pix model for the image's label, or a deformed copy.

    The condition (brain mask, tumour classes and, if the model uses them, tissue classes of the image's T1) is
    built from the image and its label, elastically deformed when ``deform`` (seeded by ``seed``), and rendered
    slice by slice; the result has the image's grid.

    Args:
        model: a pix2pix model file (e.g. the shipped ``bundles/pix2pix/models/pix2pix.pt``).
        image_path: the source image; its channels must be the model's modalities (flair, t1, t1ce, t2).
        label_path: its label.
        seed: seed of the deformation.
        deform: render a deformed copy of the label (False: the label itself).
        device: torch device.

    Raises:
        ValueError: the image's channels do not match the model's modalities, or its label values are not the model's.
    """
    renderer = Pix2PixRender(model, device=device)
    modalities = list(renderer.modalities)
    data = LoadCased(("image", "label"), renderer.label_values)({"image": str(image_path), "label": str(label_path)})
    if data["image"].shape[0] != len(modalities):
        raise ValueError(
            f"{image_path}: pix2pix renders {len(modalities)}-channel images ({', '.join(modalities)}); this image has "
            f"{data['image'].shape[0]} channel(s)"
        )
    pipeline = pix2pix_synthesis(renderer, None, deform=deform)
    pipeline.set_random_state(seed)
    source = data["image"]
    out = pipeline(data)
    return SyntheticVolume(
        image=np.asarray(out["image"]),
        label=np.asarray(out["label"]),
        affine=source.affine.numpy(),
        image_dtype=str(renderer.stats.dtype),
    )
