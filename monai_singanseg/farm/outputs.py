"""A dataset synthesis's final outputs: the manifest, the datalist of every synthetic case, the preview and the
report."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai.data import load_decathlon_datalist

from monai_singanseg.data import load_case
from monai_singanseg.farm.datalists import check_channel_order, reorder_images, split_by_source
from monai_singanseg.farm.plan import WorkEntry
from monai_singanseg.farm.settings import DatasetSettings
from monai_singanseg.io.atomic import atomic_path
from monai_singanseg.io.provenance import provenance_record
from monai_singanseg.io.writers import write_datalist
from monai_singanseg.synthesis import (
    preview_plane,
)
from monai_singanseg.visualize import contact_sheet

__all__ = ["manifest_of", "write_outputs"]

logger = logging.getLogger(__name__)


def manifest_of(plan: list[WorkEntry], records: Mapping[str, Any], settings: DatasetSettings) -> dict[str, Any]:
    """Every entry of ``plan`` with its result record (or ``pending``), the counts and the settings."""
    entries = []
    for e in plan:
        r = records.get(e.id) or {"status": "pending"}
        entries.append(
            {
                "id": e.id,
                "case": e.case,
                "image": e.image,
                "label": e.label,
                "slice": e.slice_index,
                **{k: v for k, v in r.items() if k not in ("id", "case", "slice")},
            }
        )
    done = [e for e in entries if e["status"] == "done"]
    return {
        "entries": entries,
        "done": len(done),
        "failed": [e["id"] for e in entries if e["status"] == "failed"],
        "pending": [e["id"] for e in entries if e["status"] == "pending"],
        "samples": sum(int(e.get("samples", 0)) for e in done),
        "settings": settings.to_dict(),
    }


def write_outputs(
    out: Path, plan: list[WorkEntry], records: Mapping[str, Any], manifest: dict[str, Any], settings: DatasetSettings
) -> None:
    """The final datalist (every synthetic case, split into training and validation by source case, channels in
    ``settings.channel_order``), preview, report and manifest; each written atomically.

    Raises:
        ValueError: ``settings.channel_order`` names channels the cases lack.
    """
    entries, images, labels, names = [], [], [], []
    channels: list[str] | None = None
    for e in manifest["entries"]:
        if e["status"] != "done":
            continue
        case_datalist = out / e["cases"] / "datalist.json"
        cases = load_decathlon_datalist(str(case_datalist), data_list_key="training")
        if channels is None:
            modality = json.loads(case_datalist.read_text(encoding="utf-8")).get("modality", {})
            channels = [modality[k] for k in sorted(modality, key=int)]
        entries += cases
        if len(images) < 8:
            rgb = str(cases[0]["image"]).endswith(".png")
            case = load_case(cases[0], settings.label_values, 2 if rgb else 3)
            image, index = preview_plane(case["image"], case["label"], rgb, orthogonal=settings.volume)
            images.append(image)
            labels.append(index)
            names.append(e["id"])
    channels = channels or []
    if settings.channel_order is not None:
        entries = reorder_images(entries, check_channel_order(settings.channel_order, channels, "channel_order"))
        channels = list(settings.channel_order)
    training, validation = split_by_source(entries, settings.val_fraction, settings.seed)
    if validation == [] and settings.val_fraction > 0:
        logger.warning("one source case only: the datalist's validation list is empty (give more cases)")
    manifest["channel_order"] = channels
    datalist = write_datalist(
        out / "datalist.json",
        training,
        overwrite=True,
        extra={
            "description": settings.description,
            "labels": {str(v): str(v) for v in settings.label_values},
            "modality": {str(i): c for i, c in enumerate(channels)},
            "channel_order": channels,
            "monai_singanseg": provenance_record(settings.generator),
        },
        lists={"validation": validation},
    )
    if images:
        contact_sheet(
            out / "preview.png", images, labels, rgb=str(entries[0]["image"]).endswith(".png"), row_names=names
        )
    with atomic_path(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(_report(manifest, settings, len(entries)), encoding="utf-8")
    logger.info("wrote %s (%d synthetic cases)", datalist, len(entries))


def _report(manifest: dict[str, Any], settings: DatasetSettings, num_cases: int) -> str:
    done = [e for e in manifest["entries"] if e["status"] == "done"]
    seconds = [float(e["seconds"]) for e in done]
    span = (max(e["finished"] for e in done) - min(e["started"] for e in done)) if done else 0.0
    flagged = [e for e in done if e["quality"].get("memorised")]
    pix2pix = settings.generator == "pix2pix"
    unit, per = (
        ("cases", f"{settings.per_case} per case") if pix2pix else ("models", f"{settings.samples_per_model} per model")
    )
    against = (
        "the source case's tumour slices (largest tumour slice of each render)"
        if pix2pix
        else (f"their training {'volume' if settings.volume else 'slice'}")
    )
    lines = [
        "# Synthetic dataset report",
        "",
        f"- generator: {settings.generator}"
        + (f", one model: {manifest['model']['model']}" if "model" in manifest else "")
        + (" (3D: one model per volume)" if settings.volume else ""),
        f"- {unit}: {len(done)} done, {len(manifest['failed'])} failed, {len(manifest['pending'])} pending "
        f"(of {len(manifest['entries'])} work entries)",
        f"- synthetic cases: {num_cases} ({per})",
        f"- time: {sum(seconds):.0f} s of work, {span:.0f} s wall from the first start to the last finish"
        + (f", {3600 * len(done) / span:.1f} {unit}/hour" if span > 0 else ""),
        f"- memorisation (nearest-neighbour correlation of samples with {against}, flag > "
        f"{settings.memorisation_threshold}): {len(flagged)} {unit} with flagged samples",
        "",
        f"| {unit[:-1]} | case | slice | seconds | memorisation mean / max | flagged | tumour kept |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in done:
        q = e["quality"]
        memorisation = (
            f"{q['memorisation_mean']:.3f} / {q['memorisation_max']:.3f} | {q['memorised']}/{q['quality_samples']}"
            if "memorisation_max" in q
            else "n/a | n/a"
        )
        lines.append(
            f"| {e['id']} | {e['case']} | {'-' if e['slice'] is None else e['slice']} | {e['seconds']:.0f} | "
            f"{memorisation} | {q['tumour_kept']:.2f} |"
        )
    if manifest["failed"]:
        lines += ["", "## Failed", ""] + [
            f"- {e['id']}: {e.get('error')}" for e in manifest["entries"] if e["status"] == "failed"
        ]
    return "\n".join(lines) + "\n"
