"""Dataset synthesis with pix2pix: one model for the whole dataset (given, or trained once on every usable case by
whichever process claims it), then ``per_case`` renders of randomly deformed label volumes for every case."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from monai_singanseg.data import load_case
from monai_singanseg.engines.pix2pix import train_pix2pix
from monai_singanseg.farm.claims import WorkDir
from monai_singanseg.farm.plan import WorkEntry
from monai_singanseg.io.modelfile import load_model_file
from monai_singanseg.metrics import flag_memorised, memorisation_scores, tumour_kept
from monai_singanseg.synthesis import default_channel_names, pix2pix_synthesis, pix2pix_training_slices, synthesize
from monai_singanseg.transforms.slices import axial_axis, tumour_area_per_slice

__all__ = ["MODEL_ENTRY", "dataset_pix2pix_model", "render_case"]

logger = logging.getLogger(__name__)

#: the work entry of the dataset's pix2pix model (claimed like any other; the others wait for its result).
MODEL_ENTRY = "pix2pix-model"
#: seconds between looks at another process's model training.
POLL_SECONDS = 2.0


def _train(
    plan: list[WorkEntry], settings: Any, path: Path, work: WorkDir, device: str, progress: bool
) -> dict[str, Any]:
    usable = [e for e in plan if e.error is None]
    if not usable:
        raise ValueError("no usable case to train the pix2pix model on")
    first = usable[0].image
    names = settings.channel_names or default_channel_names(
        len(first) if isinstance(first, (list, tuple)) else 1, 0, False
    )
    items = [{"image": e.image, "label": e.label, "name": e.case} for e in usable]
    start = time.time()
    data = pix2pix_training_slices(
        items, settings.pix2pix, settings.label_values, names, progress=False, label_map=settings.label_map
    )
    result = train_pix2pix(
        data,
        path,
        settings.pix2pix,
        device=device,
        resume=True,
        progress=progress,
        on_epoch=lambda losses: work.heartbeat(MODEL_ENTRY),
    )
    return {
        "id": MODEL_ENTRY,
        "status": "done",
        "model": "models/pix2pix.pt",
        "cases": [e.case for e in usable],
        "slices": result["num_slices"],
        "epochs": result["epochs_done"],
        "started": start,
        "finished": time.time(),
        "train_seconds": round(time.time() - start, 3),
    }


def dataset_pix2pix_model(
    out: Path, plan: list[WorkEntry], settings: Any, work: WorkDir, device: str, model: str | None, progress: bool
) -> tuple[Path, dict[str, Any]]:
    """The run's pix2pix model file and its record: ``model`` as given, else ``models/pix2pix.pt``, trained (or
    resumed) by the process that claims it while the others wait for it.

    Raises:
        ValueError: training failed here or in another process (its error is named).
    """
    if model is not None:
        config = load_model_file(model).config
        return Path(model), {
            "id": MODEL_ENTRY,
            "status": "given",
            "model": str(Path(model).resolve()),
            "cases": list(getattr(config, "training_cases", [])),
        }
    path = out / "models" / "pix2pix.pt"
    while (record := work.result(MODEL_ENTRY)) is None:
        if not work.claim(MODEL_ENTRY):
            time.sleep(POLL_SECONDS)  # another process trains it (a dead one's claim is taken over by claim())
            continue
        try:
            record = _train(plan, settings, path, work, device, progress)
        except (ValueError, OSError, RuntimeError) as exc:
            work.finish(MODEL_ENTRY, {"id": MODEL_ENTRY, "status": "failed", "error": str(exc)}, failed=True)
            raise ValueError(f"training the dataset's pix2pix model failed: {exc}") from exc
        work.finish(MODEL_ENTRY, record)
    if record["status"] != "done":
        raise ValueError(f"training the dataset's pix2pix model failed: {record.get('error')}")
    return path, record


def render_case(entry: WorkEntry, index: int, out: Path, settings: Any, model: Path, device: str) -> dict[str, Any]:
    """Render ``settings.per_case`` deformed label volumes of one case (seed ``settings.seed + index``)."""
    start = time.time()
    folder = out / "cases" / entry.id
    pipeline = pix2pix_synthesis(model, folder, deform=True, load=True, device=device, label_map=settings.label_map)
    names = [f"{entry.id}_p2p{i:03d}" for i in range(settings.per_case)]
    items = [{"image": entry.image, "label": entry.label, "name": name, "source": entry.case} for name in names]
    written = synthesize(pipeline, items, folder, seed=settings.seed + index, preview=0, progress=False, resume=True)
    quality = render_quality(entry, written["cases"], settings)
    return {
        "id": entry.id,
        "case": entry.case,
        "slice": None,
        "status": "done",
        "model": str(model.relative_to(out) if model.is_relative_to(out) else model),
        "cases": f"cases/{entry.id}",
        "samples": len(names),
        "started": start,
        "finished": time.time(),
        "train_seconds": 0.0,
        "seconds": round(time.time() - start, 3),
        "quality": quality,
    }


def _axial_slices(case: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(axial slices (Z, C, H, W) of the case's image, tumour area of each)``."""
    axis = axial_axis(case["label"].affine)
    return case["image"].as_tensor().movedim(axis + 1, 0).float(), tumour_area_per_slice(case["label"], axis)


def render_quality(entry: WorkEntry, rendered: list[dict[str, Any]], settings: Any) -> dict[str, Any]:
    """Tumour kept (share of renders whose tumour is 0.25x..4x the source case's) and memorisation: the correlation
    of each render's largest tumour slice with its nearest real tumour slice of the source case (a render that copies
    the real image scores near 1)."""
    real = load_case({"image": entry.image, "label": entry.label}, settings.label_values, 3, settings.label_map)
    slices, areas = _axial_slices(real)
    references = slices[areas > 0]
    samples, kept = [], 0
    for item in rendered:
        render = load_case(item, settings.label_values, 3)
        slices, areas = _axial_slices(render)
        kept += bool(tumour_kept(render["label"].as_tensor()[None], real["label"].as_tensor()[None]))
        if bool((areas > 0).any()) and slices.shape[1:] == references.shape[1:]:
            samples.append(slices[int(areas.argmax())])
    quality: dict[str, Any] = {"tumour_kept": kept / max(len(rendered), 1), "quality_samples": len(samples)}
    if samples and references.shape[0]:
        scores = memorisation_scores(torch.stack(samples), references).scores
        quality.update(
            memorisation_mean=float(scores.mean()),
            memorisation_max=float(scores.max()),
            memorised=int(flag_memorised(scores, settings.memorisation_threshold).sum()),
        )
    return quality
