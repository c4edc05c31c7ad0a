"""Dataset synthesis with SinGAN-Seg: one model per work entry (a tumour slice, or a whole volume), prepared, trained
in batches of one shape and resume point, sampled and scored."""

from __future__ import annotations

import functools
import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from monai_singanseg.engines.singanseg import BatchedSinGANSegTrainer
from monai_singanseg.farm.claims import WorkDir
from monai_singanseg.farm.plan import WorkEntry
from monai_singanseg.farm.records import fail, finish
from monai_singanseg.farm.settings import DatasetSettings
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.io.modelfile import ModelFileError, load_model_file
from monai_singanseg.metrics import flag_memorised, memorisation_scores, tumour_kept
from monai_singanseg.synthesis import (
    singanseg_synthesis,
    singanseg_training_input,
    synthesize,
)

__all__ = ["default_models_per_batch", "singanseg_work_batch"]

logger = logging.getLogger(__name__)


def _model_quality(model: Path, real: torch.Tensor, settings: DatasetSettings, seed: int) -> dict[str, Any]:
    """Memorisation (nearest-neighbour correlation of samples with the training slice) and tumour kept (share of
    samples whose tumour is 0.25x..4x the training slice's)."""
    sampler = SinGANSegSampler(model, device="cpu")
    num = min(settings.samples_per_model, 16)
    options = settings.options.for_model(sampler.config)
    x = sampler.sample(
        num, start_scale=min(options.start_scale, sampler.num_scales - 1), seed=seed, tumour_shift=options.tumour_shift
    )
    scores = memorisation_scores(x, real[None].float()).scores
    _, labels = sampler.split(x, options.threshold, options.min_component)
    _, real_label = sampler.split(real[None].float())
    return {
        "memorisation_mean": float(scores.mean()),
        "memorisation_max": float(scores.max()),
        "memorised": int(flag_memorised(scores, settings.memorisation_threshold).sum()),
        "tumour_kept": float(tumour_kept(labels, real_label).float().mean()),
        "quality_samples": num,
    }


def _prepare(entry: WorkEntry, settings: DatasetSettings) -> tuple[torch.Tensor, dict[str, Any]]:
    """The entry's GAN tensor and model metadata (the package's prepare step)."""
    gan, meta = singanseg_training_input(
        entry.image,
        entry.label,
        entry.slice_index if entry.slice_index is not None else "auto",
        settings.max_size,
        settings.label_values,
        settings.channel_names,
        settings.label_map,
        name=entry.case,
        volume=settings.volume,
        box=settings.box,
    )
    meta["source_name"] = entry.id  # case names of the samples: <entry id>_synNNNN
    return gan, meta


def _finished_scales(model: Path) -> int:
    """Scales a checkpoint has finished (0: none yet); unreadable files are left to the trainer's checks."""
    try:
        return int(load_model_file(model).config.finished_scales) if model.exists() else 0
    except (ModelFileError, OSError, ValueError):
        return -1


@dataclass
class _Job:
    """One claimed work entry on its way through prepare -> train -> sample."""

    index: int
    entry: WorkEntry
    model: Path
    gan: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    train_seconds: float = 0.0
    batch: int = 1


def _train(jobs: list[_Job], settings: DatasetSettings, work: WorkDir, device: str) -> dict[str, str]:
    """Train the jobs together (models of one shape at one resume point: ``fit_many``); returns errors by entry id.

    A batch that fails is retried model by model, so one bad checkpoint does not fail its batch-mates.
    """
    trainer = BatchedSinGANSegTrainer(settings.training, device=device, progress=False)
    start = time.time()
    try:
        trainer.fit_many(
            [j.gan for j in jobs],
            [j.model for j in jobs],
            [j.meta for j in jobs],
            [settings.training.seed + j.index for j in jobs],
            resume=True,
            on_scale=lambda k: [work.heartbeat(j.entry.id) for j in jobs],
        )
    except (ValueError, OSError, RuntimeError) as exc:
        if len(jobs) == 1:
            return {jobs[0].entry.id: str(exc)}
        logger.warning("batch of %d models failed (%s); training them one by one", len(jobs), exc)
        errors: dict[str, str] = {}
        for job in jobs:
            errors.update(_train([job], settings, work, device))
        return errors
    for job in jobs:
        job.train_seconds, job.batch = (time.time() - start) / len(jobs), len(jobs)
    return {}


def _sample(job: _Job, out: Path, settings: DatasetSettings, device: str) -> dict[str, Any]:
    """Write the job's synthetic cases and score them; returns its result record."""
    entry = job.entry
    folder = out / "cases" / entry.id
    pipeline = singanseg_synthesis(job.model, folder, settings.options, device=device)
    synthesize(
        pipeline,
        pipeline.cases(settings.samples_per_model, {"source": entry.case}),  # the real case, not only its slice
        folder,
        seed=settings.seed + job.index,
        preview=0,
        progress=False,
        resume=True,
    )
    quality = _model_quality(job.model, job.gan, settings, settings.seed + job.index)
    return {
        "id": entry.id,
        "case": entry.case,
        "slice": entry.slice_index,
        "status": "done",
        "model": f"models/{entry.id}.pt",
        "cases": f"cases/{entry.id}",
        "samples": settings.samples_per_model,
        "started": job.started,
        "finished": time.time(),
        "train_seconds": round(job.train_seconds, 3),
        "batch": job.batch,
        "seconds": round(time.time() - job.started, 3),
        "quality": quality,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }


def singanseg_work_batch(
    claimed: list[tuple[int, WorkEntry]],
    out: Path,
    settings: DatasetSettings,
    work: WorkDir,
    device: str,
    rank: int,
    progress: bool,
) -> None:
    """Prepare the claimed entries, train those of one shape and resume point together, sample each; record results."""
    jobs: dict[tuple, list[_Job]] = {}
    for index, entry in claimed:
        job = _Job(index, entry, out / "models" / f"{entry.id}.pt")
        try:
            job.gan, job.meta = _prepare(job.entry, settings)
        except (ValueError, OSError, RuntimeError) as exc:
            fail(work, entry, str(exc), rank)
            continue
        jobs.setdefault((tuple(job.gan.shape), _finished_scales(job.model)), []).append(job)
    for group in jobs.values():
        errors = _train(group, settings, work, device)
        for job in group:
            if job.entry.id in errors:
                fail(work, job.entry, errors[job.entry.id], rank)
            else:
                finish(work, job.entry, functools.partial(_sample, job, out, settings, device), rank, progress)


def default_models_per_batch(device: str | torch.device) -> int:
    """Models trained together on one device: 1 on a CPU (no gain from batching there), 16 on a GPU."""
    return 16 if torch.device(device).type == "cuda" else 1
