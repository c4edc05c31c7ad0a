"""Run a synthesis pipeline (MONAI transforms ending in a writer) over N cases, then write the datalist and preview."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.transforms import Randomizable
from monai.utils import convert_to_tensor
from tqdm.auto import tqdm

from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.writers import BRATS_MODALITIES, write_datalist
from monai_singanseg.transforms.io import find_case_writer
from monai_singanseg.transforms.labels.array import BRATS_LABEL_VALUES, LabelToIndex
from monai_singanseg.transforms.slices.array import axial_axis, tumour_area_per_slice
from monai_singanseg.visualize import contact_sheet

__all__ = ["synthesise", "preview_plane"]


def preview_plane(image: Any, index: Any, rgb: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The plane with most tumour of a 3D case (or the 2D case itself), each channel scaled to [-1, 1].

    Args:
        image: ``(C, *spatial)`` in source units.
        index: ``(1, *spatial)`` class indices.
        rgb: an RGB picture in 0..255, scaled as a whole (grey channels are scaled one by one).
    """
    img = convert_to_tensor(image, track_meta=False).float()
    lab = convert_to_tensor(index, track_meta=False)
    if rgb:
        return (img / 127.5 - 1.0).clamp(-1, 1), lab
    if img.ndim == 4:
        affine = getattr(image, "affine", torch.eye(4))
        axis = axial_axis(affine)
        k = int(tumour_area_per_slice(lab, axis).argmax())
        img, lab = img.select(axis + 1, k), lab.select(axis + 1, k)
    inside = (img != 0).any(dim=0)  # scale by the foreground, not the background around it
    flat = img[:, inside] if bool(inside.any()) else img.flatten(1)
    low = torch.quantile(flat, 0.005, dim=1).view(-1, 1, 1)
    high = torch.quantile(flat, 0.995, dim=1).view(-1, 1, 1)
    scaled = (2.0 * (img - low) / (high - low).clamp_min(1e-6) - 1.0).clamp(-1, 1)
    return torch.where(inside, scaled, torch.full_like(scaled, -1.0)), lab


def synthesise(
    transform: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    items: Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    seed: int | None = 0,
    label_values: Sequence[int] = BRATS_LABEL_VALUES,
    modalities: Sequence[str] = BRATS_MODALITIES,
    overwrite: bool = False,
    preview: int = 8,
    description: str = "monai-singanseg synthetic cases",
    rgb: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply ``transform`` (ending in a case writer) to each item; write ``datalist.json`` and ``preview.png``.

    Every output path is checked before anything is written, so a refused run leaves nothing behind.

    Args:
        transform: the synthesis pipeline, e.g. a ``Compose`` of the package's MONAI transforms ending in
            :class:`~monai_singanseg.transforms.io.SaveBratsCased` or
            :class:`~monai_singanseg.transforms.io.SaveImageMaskPngd`.
        items: one dict per synthetic case; each must hold a distinct ``"name"``.
        output_dir: destination folder.
        seed: seeds every randomisable transform of the pipeline (None: not deterministic).
        label_values: label values of the written labels (for the preview overlay).
        modalities: image channel names.
        overwrite: replace existing outputs.
        preview: cases shown in the PNG preview (0: no preview).
        description: the datalist's description.
        rgb: the cases are RGB pictures (preview in colour).
        extra: other top-level fields of the datalist.

    Returns:
        ``{"datalist": path, "preview": path or None, "cases": [datalist entries]}``.
    """
    out = Path(output_dir)
    names = [str(item["name"]) for item in items]
    if not names:
        raise ValueError("no synthetic cases requested")
    if len(set(names)) != len(names):
        raise ValueError("synthetic case names must be distinct")
    writer = find_case_writer(transform)
    targets = [out / "datalist.json"] + ([out / "preview.png"] if preview > 0 else [])
    for name in names:
        targets += writer.output_paths(name)
    check_outputs_free(targets, overwrite)
    if seed is not None and isinstance(transform, Randomizable):
        transform.set_random_state(seed)
    to_index = LabelToIndex(label_values)
    entries, images, labels = [], [], []
    for item in tqdm(items, desc="synthesising", unit="case"):
        d = transform(dict(item))
        entries.append(d[writer.entry_key])
        if len(images) < preview:
            image, index = preview_plane(d["image"], to_index(d["label"]), rgb)
            images.append(image)
            labels.append(index)
    fields = {"description": description, **dict(extra or {})}
    datalist = write_datalist(out / "datalist.json", entries, overwrite=True, extra=fields)
    sheet = None
    if images:
        sheet = str(contact_sheet(out / "preview.png", images, labels, channel_names=list(modalities), rgb=rgb,
                                  row_names=names[: len(images)]))
    return {"datalist": str(datalist), "preview": sheet, "cases": entries}
