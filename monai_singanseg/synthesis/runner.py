"""Run a synthesis pipeline over N cases: every output checked free first, then cases, datalist and preview."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.transforms import Compose
from monai.utils import convert_to_tensor
from tqdm.auto import tqdm

from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.writers import write_datalist
from monai_singanseg.transforms.io import find_case_writer
from monai_singanseg.transforms.labels.array import LabelToIndex
from monai_singanseg.transforms.slices.array import axial_axis, tumour_area_per_slice
from monai_singanseg.visualize import contact_sheet

__all__ = ["SynthesisPipeline", "run_pipeline", "synthesise", "preview_plane"]


def run_pipeline(pipeline: Compose, data: Any, start: int = 0, end: int | None = None) -> Any:
    """``pipeline(data, start, end)``, raising the error a step raised instead of MONAI's wrapper around it.

    MONAI wraps an exception inside a ``Compose`` step in ``RuntimeError("applying transform <object at 0x..>")``;
    a user needs the step's own message (a file name, a value and the allowed range), so the innermost
    ``ValueError``/``OSError`` of the chain is raised as it is.
    """
    try:
        return pipeline(data, start=start, end=end)
    except RuntimeError as exc:
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, (ValueError, OSError)):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


class SynthesisPipeline(Compose):
    """A synthesis ``Compose`` that knows what it makes (built by the synthesis builders, run by :func:`synthesise`).

    Args:
        transforms: the steps, ending in a case writer when the pipeline writes cases.
        label_values: label values of the written labels.
        modalities: names of the image channels.
        rgb: the cases are RGB pictures.
        description: the datalist's description.
        case_prefix: first part of every case name.
        extra: other top-level fields of the datalist.
    """

    def __init__(
        self,
        transforms: Sequence[Any],
        label_values: Sequence[int],
        modalities: Sequence[str],
        rgb: bool = False,
        description: str = "monai-singanseg synthetic cases",
        case_prefix: str = "synthetic",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(list(transforms))
        self.label_values = tuple(int(v) for v in label_values)
        self.modalities = tuple(modalities)
        self.rgb = rgb
        self.description = description
        self.case_prefix = case_prefix
        self.extra = dict(extra or {})

    def cases(self, num: int, template: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """``num`` items ``{**template, "name": <prefix>_syn0000, ...}`` to run the pipeline on."""
        if num < 1:
            raise ValueError(f"the number of synthetic cases must be >= 1, got {num}")
        return [{**dict(template or {}), "name": f"{self.case_prefix}_syn{i:04d}"} for i in range(num)]


def preview_plane(image: Any, index: Any, rgb: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The plane with most tumour of a 3D case (or the 2D case itself), each channel scaled to [-1, 1].

    Args:
        image: ``(C, *spatial)`` in source units.
        index: ``(1, *spatial)`` class indices.
        rgb: an RGB picture in 0..255, scaled as a whole (grey channels are scaled one by one).
    """
    img = convert_to_tensor(image, track_meta=False).float().cpu()
    lab = convert_to_tensor(index, track_meta=False).cpu()
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
    pipeline: SynthesisPipeline,
    items: Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    seed: int | None = 0,
    overwrite: bool = False,
    preview: int = 8,
    progress: bool = True,
) -> dict[str, Any]:
    """Apply ``pipeline`` (ending in a case writer) to each item; write ``datalist.json`` and ``preview.png``.

    Every output path is checked before anything is written, so a refused run leaves nothing behind.
    The pipeline's random state is seeded once with ``seed``, so case ``i`` depends only on ``seed`` and ``i``.

    Args:
        pipeline: a synthesis builder's pipeline with a writer
            (:func:`~monai_singanseg.synthesis.singanseg_synthesis`, :func:`~monai_singanseg.synthesis.pix2pix_synthesis`).
        items: one dict per synthetic case; each must hold a distinct ``"name"``.
        output_dir: destination folder (the writer's).
        seed: seeds every randomisable transform of the pipeline (None: not deterministic).
        overwrite: replace existing outputs.
        preview: cases shown in the PNG preview (0: no preview).
        progress: show a progress bar.

    Returns:
        ``{"datalist": path, "preview": path or None, "cases": [datalist entries]}``.
    """
    out = Path(output_dir)
    names = [str(item["name"]) for item in items]
    if not names:
        raise ValueError("no synthetic cases requested")
    if len(set(names)) != len(names):
        raise ValueError("synthetic case names must be distinct")
    writer = find_case_writer(pipeline)
    targets = [out / "datalist.json"] + ([out / "preview.png"] if preview > 0 else [])
    for name in names:
        targets += writer.output_paths(name)
    check_outputs_free(targets, overwrite)
    if seed is not None:
        pipeline.set_random_state(seed)
    to_index = LabelToIndex(pipeline.label_values)
    entries, images, labels = [], [], []
    for item in tqdm(items, desc="synthesising", unit="case", disable=not progress):
        d = run_pipeline(pipeline, dict(item))
        entries.append(d[writer.entry_key])
        if len(images) < preview:
            image, index = preview_plane(d["image"], to_index(d["label"]), pipeline.rgb)
            images.append(image)
            labels.append(index)
    fields = {"description": pipeline.description, **pipeline.extra}
    datalist = write_datalist(out / "datalist.json", entries, overwrite=True, extra=fields)
    sheet = None
    if images:
        sheet = str(contact_sheet(out / "preview.png", images, labels, channel_names=list(pipeline.modalities),
                                  rgb=pipeline.rgb, row_names=names[: len(images)]))
    return {"datalist": str(datalist), "preview": sheet, "cases": entries}
