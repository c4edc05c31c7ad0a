"""A real dataset in, a synthetic dataset out: one SinGAN-Seg model per (case, tumour slice), as the SinGAN-Seg
paper did per image (or, with ``volume``, one 3D model per case whose samples are whole volumes), trained and
sampled by every process of the run through the package's own prepare, train and synthesis steps.

Layout of the output folder::

    SYN/synthesize.json   the run (data and settings); another run's folder is refused unless overwrite
    SYN/models/<id>.pt    one model per work entry (a checkpoint while it trains: a killed run resumes it)
    SYN/cases/<id>/       its synthetic cases (NIfTI in BraTS naming, or PNG pairs), with their own datalist
    SYN/done/ failed/     one result record per entry (seconds, samples, quality figures, owner)
    SYN/claims/           who works on what now
    SYN/manifest.json     every entry with its status, written with the final outputs
    SYN/datalist.json     every synthetic case (MONAI decathlon format), written once, atomically, at the end
    SYN/preview.png       one sample per model (up to 8)
    SYN/report.md         counts, time, memorisation flags
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import resource
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.data import load_decathlon_datalist
from tqdm.auto import tqdm

from monai_singanseg.data import load_case
from monai_singanseg.engines.pix2pix import Pix2PixSettings
from monai_singanseg.engines.singan import BatchedSinGANSegTrainer, SinGANSegSettings
from monai_singanseg.farm.claims import WorkDir
from monai_singanseg.farm.distributed import RankContext
from monai_singanseg.farm.pix2pix import dataset_pix2pix_model, render_case
from monai_singanseg.farm.plan import WorkEntry, plan_work
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.io.atomic import OutputExistsError, atomic_path, check_output_folder, hash_file
from monai_singanseg.io.modelfile import ModelFileError, load_model_file
from monai_singanseg.io.writers import write_datalist
from monai_singanseg.metrics import flag_memorised, memorisation_scores, tumour_kept
from monai_singanseg.synthesis import (
    VOLUME_BOXES,
    SinGANSegSynthesisOptions,
    default_max_size,
    preview_plane,
    singanseg_synthesis,
    singanseg_training_input,
    synthesise,
)
from monai_singanseg.visualize import contact_sheet

__all__ = ["DatasetSettings", "synthesize_dataset", "default_models_per_batch", "RUN_FILE"]

logger = logging.getLogger(__name__)

RUN_FILE = "synthesize.json"
GENERATORS = ("singanseg", "pix2pix")
DESCRIPTIONS = {
    "singanseg": "monai-singanseg synthetic dataset (SinGAN-Seg, one model per slice)",
    "singanseg-3d": "monai-singanseg synthetic dataset (3D SinGAN-Seg, one model per volume)",
    "pix2pix": "monai-singanseg synthetic dataset (pix2pix renders of deformed label volumes, one model)",
}
#: the folders and files a synthesis writes in its output folder (removed by ``overwrite``; nothing else is).
OWN_FOLDERS = ("models", "cases", "claims", "done", "failed")
OWN_FILES = (RUN_FILE, "manifest.json", "datalist.json", "preview.png", "report.md")


@dataclass
class DatasetSettings:
    """What a dataset synthesis does (stored in ``synthesize.json``; a resumed run must use the same).

    Args:
        generator: ``"singanseg"`` (one model per tumour slice, or per volume with ``volume``) or ``"pix2pix"`` (one
            model for the dataset, rendering ``per_case`` deformed label volumes of every case).
        volume: ``generator="singanseg"``: one 3D model per case, trained on its whole brain (``train-singanseg
            --volume``), whose samples are whole volumes; ``slices_per_case`` is then not used. Pass
            ``training=SinGANSegSettings.for_volume(...)`` for the 3D CPU defaults.
        box: ``volume``: the working box of each model, ``"brain"`` or ``"tumour"`` (with a margin; see
            :func:`~monai_singanseg.synthesis.singanseg_prepare`).
        slices_per_case: models per volume, on tumour slices spread over the tumour (None: every tumour slice).
        samples_per_model: synthetic cases drawn from each model.
        max_size: long side of the training slice (or of the brain box of a 3D model); None: 128 (48 with ``volume``).
        label_values: label values after ``label_map`` (background first).
        label_map: label values replaced on load, e.g. ``{3: 1}`` (BRATS-2013 -> BraTS).
        channel_names: names of the image channels (None: from the files: BraTS modalities, RGB or ``ch<i>``).
        training: SinGAN-Seg training settings; model ``i`` is trained with ``seed + i``.
        options: sampling, finishing and style options of the synthesis pipeline.
        seed: base seed of training and sampling.
        memorisation_threshold: a sample whose nearest-neighbour correlation with its training slice exceeds this
            is flagged in the report.
        claim_timeout: seconds without a heartbeat after which another host's claim is taken over.
        pix2pix: pix2pix training settings (``generator="pix2pix"`` without a given model).
        per_case: pix2pix renders per case.
    """

    slices_per_case: int | None = 1
    samples_per_model: int = 10
    max_size: int | None = None
    label_values: tuple[int, ...] = (0, 1, 2, 4)
    label_map: dict[int, int] = field(default_factory=dict)
    channel_names: tuple[str, ...] | None = None
    training: SinGANSegSettings = field(default_factory=SinGANSegSettings)
    options: SinGANSegSynthesisOptions = field(default_factory=SinGANSegSynthesisOptions)
    seed: int = 0
    memorisation_threshold: float = 0.95
    claim_timeout: float = 900.0
    generator: str = "singanseg"
    pix2pix: Pix2PixSettings = field(default_factory=Pix2PixSettings)
    per_case: int = 10
    volume: bool = False
    box: str = "brain"

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ValueError(f"generator must be one of {GENERATORS}, got {self.generator!r}")
        if self.volume and self.generator != "singanseg":
            raise ValueError(
                f"volume (one 3D model per case) is a SinGAN-Seg setting, not one of generator={self.generator!r}"
            )
        if self.box not in VOLUME_BOXES or (self.box != "brain" and not self.volume):
            raise ValueError(
                f"box {self.box!r}: one of {VOLUME_BOXES}, and other than 'brain' only with volume (3D models)"
            )
        if self.max_size is None:
            self.max_size = default_max_size(self.volume)
        if self.per_case < 1:
            raise ValueError(f"per_case must be >= 1, got {self.per_case}")
        if self.slices_per_case is not None and self.slices_per_case < 1:
            raise ValueError(f"slices_per_case must be >= 1 or None (all), got {self.slices_per_case}")
        if self.samples_per_model < 1:
            raise ValueError(f"samples_per_model must be >= 1, got {self.samples_per_model}")
        self.label_values = tuple(int(v) for v in self.label_values)
        self.label_map = {int(k): int(v) for k, v in self.label_map.items()}
        unknown = sorted(set(self.label_map.values()) - set(self.label_values))
        if unknown:
            raise ValueError(f"label map targets {unknown} are not label values {list(self.label_values)}")

    @property
    def description(self) -> str:
        """The datalist's description of a dataset made with these settings."""
        return DESCRIPTIONS["singanseg-3d" if self.volume else self.generator]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the run record)."""
        d = dataclasses.asdict(self)
        d["training"] = self.training.to_dict()
        d["label_map"] = {str(k): v for k, v in self.label_map.items()}
        return json.loads(json.dumps(d))


def _normalise_items(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    def absolute(p: Any) -> Any:
        return [absolute(x) for x in p] if isinstance(p, (list, tuple)) else os.path.abspath(str(p))

    return [{k: (absolute(v) if k in ("image", "label") else v) for k, v in it.items()} for it in items]


def _start_run(out: Path, record: dict[str, Any], ctx: RankContext, overwrite: bool) -> None:
    """Rank 0 checks (or replaces) the run record; every rank then sees the same folder."""
    path = out / RUN_FILE
    if ctx.rank == 0 or ctx.shard:
        existing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if existing is not None and existing != record:
            if not overwrite:
                raise OutputExistsError(
                    f"{out} holds another dataset synthesis ({path} differs: other data or settings); choose another "
                    "--out, or pass --overwrite to replace it"
                )
            if ctx.rank == 0 and not ctx.shard:
                for name in OWN_FOLDERS:
                    shutil.rmtree(out / name, ignore_errors=True)
                for name in OWN_FILES:
                    (out / name).unlink(missing_ok=True)
                existing = None
        elif existing is None and not overwrite:
            clashes = [name for name in (*OWN_FOLDERS, *OWN_FILES) if (out / name).exists()]
            if clashes:
                raise OutputExistsError(f"{out} already holds {', '.join(clashes)}; pass --overwrite to replace it")
        if existing is None:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    ctx.barrier()


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
    synthesise(
        pipeline,
        pipeline.cases(settings.samples_per_model),
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


def _failure(entry: WorkEntry, error: str) -> dict[str, Any]:
    return {"id": entry.id, "case": entry.case, "slice": entry.slice_index, "status": "failed", "error": error}


def _work_batch(
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
            _fail(work, entry, str(exc), rank)
            continue
        jobs.setdefault((tuple(job.gan.shape), _finished_scales(job.model)), []).append(job)
    for group in jobs.values():
        errors = _train(group, settings, work, device)
        for job in group:
            if job.entry.id in errors:
                _fail(work, job.entry, errors[job.entry.id], rank)
            else:
                _finish(work, job.entry, functools.partial(_sample, job, out, settings, device), rank, progress)


def _fail(work: WorkDir, entry: WorkEntry, error: str, rank: int) -> None:
    logger.error("[rank %d] %s failed: %s", rank, entry.id, error)
    work.finish(entry.id, _failure(entry, error), failed=True)


def _finish(
    work: WorkDir, entry: WorkEntry, make_record: Callable[[], dict[str, Any]], rank: int, progress: bool
) -> None:
    """Record the entry's result (or its failure: the run goes on), with a log line."""
    try:
        record = make_record()
    except (ValueError, OSError, RuntimeError) as exc:
        _fail(work, entry, str(exc), rank)
        return
    work.finish(entry.id, record)
    if progress:
        quality = record["quality"]
        trained = (
            f"trained in {record['train_seconds']:.0f} s (batch of {record['batch']}), " if "batch" in record else ""
        )
        memorised = f", memorisation max {quality['memorisation_max']:.3f}" if "memorisation_max" in quality else ""
        print(
            f"[rank {rank}] {entry.id}: {trained}{record['samples']} samples in {record['seconds']:.0f} s{memorised}",
            flush=True,
        )


def _claim_batch(pending: Iterator[tuple[int, WorkEntry]], work: WorkDir, limit: int) -> list[tuple[int, WorkEntry]]:
    """Claim up to ``limit`` entries from ``pending`` (entries that cannot be used are recorded as failed on the
    way)."""
    claimed = []
    for index, entry in pending:
        if work.result(entry.id) is not None or not work.claim(entry.id):
            continue
        if entry.error is not None:
            work.finish(entry.id, _failure(entry, entry.error), failed=True)
            continue
        claimed.append((index, entry))
        if len(claimed) >= limit:
            break
    return claimed


def default_models_per_batch(device: str | torch.device) -> int:
    """Models trained together on one device: 1 on a CPU (no gain from batching there), 16 on a GPU."""
    return 16 if torch.device(device).type == "cuda" else 1


def _entries_for(plan: list[WorkEntry], ctx: RankContext) -> list[tuple[int, WorkEntry]]:
    """The entries this process tries, in its own order (a Slurm shard: its share only; a rank: all, rotated)."""
    indexed = list(enumerate(plan))
    if ctx.shard:
        return [(i, e) for i, e in indexed if i % ctx.world_size == ctx.rank]
    return indexed[ctx.rank :] + indexed[: ctx.rank]


def synthesize_dataset(
    items: Sequence[Mapping[str, Any]],
    output_dir: str | os.PathLike,
    settings: DatasetSettings | None = None,
    context: RankContext | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    models_per_batch: int | None = None,
    model: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train one SinGAN-Seg model per work entry (or one pix2pix model for all) and write the synthetic dataset
    (every process of a run calls it).

    Args:
        items: datalist entries of the real dataset.
        output_dir: the synthetic dataset's folder.
        settings: what to do.
        context: this process's rank (default: from torchrun's environment, or a single process).
        device: torch device (default: this rank's GPU, else CPU).
        overwrite: replace another run's outputs in ``output_dir``.
        progress: a bar over models with ETA (rank 0) and a log line per model.
        models_per_batch: models a process trains together on its device (:class:`BatchedSinGANSegTrainer`; models
            of one slice shape, so equal-sized volumes batch fully); None: :func:`default_models_per_batch`. A batched
            model equals the one trained alone up to float rounding.
        model: ``generator="pix2pix"``: a trained pix2pix model file to render with (None: train one on the cases).

    Returns:
        The manifest: ``{"entries": [...], "done": n, "failed": [ids], ...}`` (complete on the process that
        writes the final outputs; others return their own share).

    Raises:
        OutputExistsError: ``output_dir`` holds another run and ``overwrite`` is False.
    """
    settings = settings or DatasetSettings()
    ctx = context or RankContext.from_environment(device=device)
    device = device or ctx.device
    out = check_output_folder(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = _normalise_items(items)
    if not items:
        raise ValueError("no cases in the real dataset")
    record = {"format": "monai-singanseg-dataset", "items": items, "settings": settings.to_dict()}
    if model is not None:
        record["model_sha256"] = hash_file(model).hexdigest()
    _start_run(out, record, ctx, overwrite)
    pix2pix = settings.generator == "pix2pix"
    plan = plan_work(
        items,
        settings.slices_per_case,
        settings.label_values,
        settings.label_map,
        whole_cases=pix2pix or settings.volume,
    )
    work = WorkDir(out, {"rank": ctx.rank, "run": ctx.run_id}, settings.claim_timeout)
    if ctx.rank == 0:
        work.forget_failures()
    ctx.barrier()
    batch = 1 if pix2pix else max(1, models_per_batch or default_models_per_batch(device))
    if not ctx.shard:  # ranks share one list: no rank claims more than its share of it at once
        batch = min(batch, -(-len(plan) // ctx.world_size))
    pending = iter(_entries_for(plan, ctx))
    bar = tqdm(
        total=len(plan),
        desc="cases" if pix2pix else "models",
        unit="case" if pix2pix else "model",
        disable=not progress or ctx.rank != 0,
    )
    bar.update(sum(work.is_finished(e.id) for e in plan))
    generator = None
    try:
        if pix2pix:
            model_path, generator = dataset_pix2pix_model(
                out, plan, settings, work, device, model, progress and ctx.rank == 0
            )
        while claimed := _claim_batch(pending, work, batch):
            if pix2pix:
                for index, entry in claimed:
                    _finish(
                        work,
                        entry,
                        functools.partial(render_case, entry, index, out, settings, model_path, device),
                        ctx.rank,
                        progress,
                    )
            else:
                _work_batch(claimed, out, settings, work, device, ctx.rank, progress)
            bar.update(sum(work.is_finished(e.id) for e in plan) - bar.n)
    finally:  # interrupted (Ctrl-C, an error): the unfinished claims are free again at once; checkpoints stay
        work.release_all()
    bar.close()
    ctx.barrier()
    records = {e.id: work.result(e.id) for e in plan}
    complete = all(r is not None for r in records.values())
    manifest = _manifest(plan, records, settings)
    if generator is not None:
        manifest["model"] = generator
    if complete and (ctx.rank == 0 or ctx.shard):
        _write_outputs(out, plan, records, manifest, settings)
    ctx.barrier()
    return manifest


def _manifest(plan: list[WorkEntry], records: Mapping[str, Any], settings: DatasetSettings) -> dict[str, Any]:
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


def _write_outputs(
    out: Path, plan: list[WorkEntry], records: Mapping[str, Any], manifest: dict[str, Any], settings: DatasetSettings
) -> None:
    """The final datalist (every synthetic case), preview, report and manifest; each written atomically."""
    entries, images, labels, names = [], [], [], []
    for e in manifest["entries"]:
        if e["status"] != "done":
            continue
        cases = load_decathlon_datalist(str(out / e["cases"] / "datalist.json"), data_list_key="training")
        entries += cases
        if len(images) < 8:
            rgb = str(cases[0]["image"]).endswith(".png")
            case = load_case(cases[0], settings.label_values, 2 if rgb else 3)
            image, index = preview_plane(case["image"], case["label"], rgb, orthogonal=settings.volume)
            images.append(image)
            labels.append(index)
            names.append(e["id"])
    datalist = write_datalist(
        out / "datalist.json",
        entries,
        overwrite=True,
        extra={"description": settings.description, "labels": {str(v): str(v) for v in settings.label_values}},
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
