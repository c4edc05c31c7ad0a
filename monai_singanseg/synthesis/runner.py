"""Run a synthesis pipeline over N cases: every output checked free first, then cases, datalist and preview."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.transforms import Compose, Randomizable
from monai.utils import convert_to_tensor
from tqdm.auto import tqdm

from monai_singanseg.io.atomic import (
    OutputExistsError,
    atomic_path,
    check_output_folder,
    check_outputs_free,
    remove_stale_temps,
)
from monai_singanseg.io.writers import write_datalist
from monai_singanseg.transforms.io import find_case_writer
from monai_singanseg.transforms.labels.array import LabelToIndex
from monai_singanseg.transforms.slices.array import axial_axis, tumour_area_per_slice
from monai_singanseg.visualize import contact_sheet

__all__ = ["SynthesisPipeline", "run_pipeline", "synthesize", "preview_plane", "orthogonal_planes"]


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
    """A synthesis ``Compose`` that knows what it makes (built by the synthesis builders, run by :func:`synthesize`).

    Args:
        transforms: the steps, ending in a case writer when the pipeline writes cases.
        label_values: label values of the written labels.
        modalities: names of the image channels.
        rgb: the cases are RGB pictures.
        description: the datalist's description.
        case_prefix: first part of every case name.
        extra: other top-level fields of the datalist.
        signature: what defines the run besides the items and the seed (model file hash, options); recorded in
            ``synthesis.json`` so that a resumed run is the same run.
        orthogonal_preview: the preview shows each volume's three planes through its tumour (3D models), not its
            axial plane with most tumour.
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
        signature: Mapping[str, Any] | None = None,
        orthogonal_preview: bool = False,
    ) -> None:
        super().__init__(list(transforms))
        self.orthogonal_preview = orthogonal_preview
        self.label_values = tuple(int(v) for v in label_values)
        self.modalities = tuple(modalities)
        self.rgb = rgb
        self.description = description
        self.case_prefix = case_prefix
        self.extra = dict(extra or {})
        self.signature = json.loads(json.dumps(dict(signature or {})))

    def cases(self, num: int, template: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """``num`` items ``{**template, "name": <prefix>_syn0000, ...}`` to run the pipeline on."""
        if num < 1:
            raise ValueError(f"the number of synthetic cases must be >= 1, got {num}")
        return [{**dict(template or {}), "name": f"{self.case_prefix}_syn{i:04d}"} for i in range(num)]


def orthogonal_planes(image: torch.Tensor, index: torch.Tensor, gap: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The three planes of a volume through its tumour's centre (the volume's centre without tumour), side by side.

    Args:
        image: ``(C, X, Y, Z)``.
        index: ``(1, X, Y, Z)`` class indices.
        gap: background pixels between the planes.

    Returns:
        ``(C, W, H)`` and ``(1, W, H)``: the planes along the first, second and third axis, zero-padded to one height.
    """
    tumour = torch.nonzero(index[0] > 0).float()
    centre = tumour.mean(0) if len(tumour) else torch.tensor(index.shape[1:], dtype=torch.float32) / 2
    planes = [(image.select(a + 1, int(centre[a])), index.select(a + 1, int(centre[a]))) for a in range(3)]
    height = max(int(p.shape[2]) for p, _ in planes)

    def side_by_side(parts: list[torch.Tensor]) -> torch.Tensor:
        padded = [torch.nn.functional.pad(x, (0, height - x.shape[2], 0, gap)) for x in parts]
        return torch.cat(padded, dim=1)[:, :-gap]

    return side_by_side([p for p, _ in planes]), side_by_side([lab for _, lab in planes])


def preview_plane(
    image: Any, index: Any, rgb: bool = False, orthogonal: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The plane with most tumour of a 3D case (or the 2D case itself), each channel scaled to [-1, 1].

    Args:
        image: ``(C, *spatial)`` in source units.
        index: ``(1, *spatial)`` class indices.
        rgb: an RGB picture in 0..255, scaled as a whole (grey channels are scaled one by one).
        orthogonal: a volume's three planes through its tumour (:func:`orthogonal_planes`), not its axial plane
            with most tumour.
    """
    img = convert_to_tensor(image, track_meta=False).float().cpu()
    lab = convert_to_tensor(index, track_meta=False).cpu()
    if rgb:
        return (img / 127.5 - 1.0).clamp(-1, 1), lab
    if img.ndim == 4 and orthogonal:
        img, lab = orthogonal_planes(img, lab)
    elif img.ndim == 4:
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


def _run_record(pipeline: SynthesisPipeline, names: Sequence[str], seed: int | None) -> dict[str, Any]:
    return {"format": "monai-singanseg-synthesis", "seed": seed, "cases": list(names), **pipeline.signature}


#: the record of a synthesis run in its output folder (what ``resume`` compares).
RUN_RECORD = "synthesis.json"


def _start_run(
    out: Path,
    record: dict[str, Any],
    case_paths: Mapping[str, Sequence[Path]],
    resume: bool,
    overwrite: bool,
    preview: bool,
) -> set[str]:
    """Check the outputs (or, resuming, that ``out`` holds this very run), clear what a killed run left half-written
    and write the run record; returns the names of the cases already complete.

    Raises:
        OutputExistsError: outputs exist (without ``overwrite``/``resume``), or ``out`` holds another run.
    """
    record_path = out / RUN_RECORD
    case_files = [p for paths in case_paths.values() for p in paths]
    done: set[str] = set()
    if resume and record_path.is_file():
        try:
            old = json.loads(record_path.read_text(encoding="utf-8"))
        except ValueError:
            old = None
        if old != record:
            raise OutputExistsError(
                f"{out} holds another synthesis run ({record_path} differs: other model, options, cases or seed); "
                "choose another --out, or pass --overwrite to replace it"
            )
        done = {n for n, paths in case_paths.items() if all(p.is_file() for p in paths)}
    else:
        targets = [out / "datalist.json", record_path] + ([out / "preview.png"] if preview else [])
        check_outputs_free(targets + case_files, overwrite)
    for path in [out / "datalist.json", record_path, out / "preview.png", *case_files]:
        remove_stale_temps(path)  # what a killed earlier run left half-written
    with atomic_path(record_path) as tmp:
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return done


def synthesize(
    pipeline: SynthesisPipeline,
    items: Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    seed: int | None = 0,
    overwrite: bool = False,
    preview: int = 8,
    progress: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Apply ``pipeline`` (ending in a case writer) to each item; write ``datalist.json`` and ``preview.png``.

    Every output path is checked before anything is written, so a refused run leaves nothing behind. The
    pipeline's random state is seeded once with ``seed``, so case ``i`` depends only on ``seed`` and ``i``. Each
    case is written all-or-nothing; ``synthesis.json`` (written first) records the run, so ``resume=True``
    completes an interrupted run (the same pipeline, items and seed) and gives what an uninterrupted run gives.

    Args:
        pipeline: a synthesis builder's pipeline with a writer
            (:func:`~monai_singanseg.synthesis.singanseg_synthesis`,
            :func:`~monai_singanseg.synthesis.pix2pix_synthesis`).
        items: one dict per synthetic case; each must hold a distinct ``"name"``.
        output_dir: destination folder (the writer's).
        seed: seeds every randomisable transform of the pipeline (None: not deterministic; cannot resume).
        overwrite: replace existing outputs.
        preview: cases shown in the PNG preview (0: no preview).
        progress: show a progress bar.
        resume: complete the run recorded in ``output_dir/synthesis.json``: cases whose files all exist are kept.

    Returns:
        ``{"datalist": path, "preview": path or None, "cases": [datalist entries], "resumed": cases kept}``.

    Raises:
        OutputExistsError: outputs exist (without ``overwrite``/``resume``), or ``resume`` on a folder that
            holds another run.
    """
    out = check_output_folder(output_dir)
    names = [str(item["name"]) for item in items]
    if not names:
        raise ValueError("no synthetic cases requested")
    if len(set(names)) != len(names):
        raise ValueError("synthetic case names must be distinct")
    if resume and seed is None:
        raise ValueError("a run without a seed cannot be resumed (its cases could not be drawn again)")
    writer = find_case_writer(pipeline)
    if pipeline.transforms[-1] is not writer:
        raise ValueError("the synthesis pipeline must end in its case writer")
    record = _run_record(pipeline, names, seed)
    case_paths = {name: writer.output_paths(name) for name in names}
    resuming = resume and (out / RUN_RECORD).is_file()
    done = _start_run(out, record, case_paths, resume, overwrite, preview > 0)
    writer.overwrite = writer.overwrite or overwrite or bool(done) or resuming
    if seed is not None:
        pipeline.set_random_state(seed)
    to_index = LabelToIndex(pipeline.label_values)
    entries, images, labels = [], [], []
    without_writer = len(pipeline.transforms) - 1
    replay_end = 1 + max((i for i, t in enumerate(pipeline.transforms) if isinstance(t, Randomizable)), default=-1)
    for i, item in enumerate(tqdm(items, desc="synthesizing", unit="case", disable=not progress)):
        name = names[i]
        if name in done and len(images) >= preview:  # replay its random steps only: later cases stay the same
            run_pipeline(pipeline, dict(item), end=replay_end)
            entries.append(writer.entry(name, writer.provenance_of(item)))
            continue
        d = run_pipeline(pipeline, dict(item), end=without_writer if name in done else None)
        entries.append(writer.entry(name, writer.provenance_of(item)) if name in done else d[writer.entry_key])
        if len(images) < preview:
            image, index = preview_plane(d["image"], to_index(d["label"]), pipeline.rgb, pipeline.orthogonal_preview)
            images.append(image)
            labels.append(index)
    fields = {"description": pipeline.description, **pipeline.extra}
    datalist = write_datalist(out / "datalist.json", entries, overwrite=True, extra=fields)
    sheet = None
    if images:
        sheet = str(
            contact_sheet(
                out / "preview.png",
                images,
                labels,
                channel_names=list(pipeline.modalities),
                rgb=pipeline.rgb,
                row_names=names[: len(images)],
                overwrite=True,
            )
        )
    return {"datalist": str(datalist), "preview": sheet, "cases": entries, "resumed": len(done)}
