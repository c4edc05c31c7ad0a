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
    SYN/datalist.json     every synthetic case (MONAI decathlon format: training, and validation from held-out
                          source cases), written once, atomically, at the end
    SYN/preview.png       one sample per model (up to 8)
    SYN/report.md         counts, time, memorisation flags
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from monai_singanseg.farm.claims import WorkDir
from monai_singanseg.farm.datalists import check_channel_order
from monai_singanseg.farm.distributed import RankContext
from monai_singanseg.farm.outputs import manifest_of, write_outputs
from monai_singanseg.farm.pix2pix import dataset_pix2pix_model, render_case
from monai_singanseg.farm.plan import WorkEntry, plan_work
from monai_singanseg.farm.records import claim_batch, finish
from monai_singanseg.farm.settings import OWN_FILES, OWN_FOLDERS, RUN_FILE, DatasetSettings
from monai_singanseg.farm.singanseg import default_models_per_batch, singanseg_work_batch
from monai_singanseg.io.atomic import OutputExistsError, atomic_path, check_output_folder, hash_file
from monai_singanseg.synthesis import default_channel_names

__all__ = ["DatasetSettings", "synthesize_dataset", "default_models_per_batch", "RUN_FILE"]


def _normalise_items(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    def absolute(p: Any) -> Any:
        return [absolute(x) for x in p] if isinstance(p, (list, tuple)) else os.path.abspath(str(p))

    return [{k: (absolute(v) if k in ("image", "label") else v) for k, v in it.items()} for it in items]


def _check_channel_order(items: Sequence[Mapping[str, Any]], settings: DatasetSettings) -> None:
    """Refuse a channel order that names channels the cases' files lack, before any work (a case of one file, e.g. a
    4D volume, is checked when the datalist is written)."""
    images = items[0]["image"]
    if settings.channel_order is None or settings.channel_names is not None or not isinstance(images, (list, tuple)):
        return
    names = default_channel_names(len(images), len(images), rgb=False)
    check_channel_order(settings.channel_order, names, "channel_order")


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


def _entries_for(plan: list[WorkEntry], ctx: RankContext) -> list[tuple[int, WorkEntry]]:
    """The entries this process tries, in its own order (a Slurm shard: its share only; a rank: all, rotated)."""
    indexed = list(enumerate(plan))
    if ctx.shard:
        return [(i, e) for i, e in indexed if i % ctx.world_size == ctx.rank]
    return indexed[ctx.rank :] + indexed[: ctx.rank]


def _work_through(
    plan: list[WorkEntry],
    out: Path,
    settings: DatasetSettings,
    work: WorkDir,
    ctx: RankContext,
    device: str,
    batch: int,
    model: str | os.PathLike | None,
    progress: bool,
) -> dict[str, Any] | None:
    """Claim and do this process's entries, ``batch`` at a time, with a progress bar over the whole plan; returns the
    record of the dataset's pix2pix model (None for SinGAN-Seg)."""
    pix2pix = settings.generator == "pix2pix"
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
        while claimed := claim_batch(pending, work, batch):
            if pix2pix:
                for index, entry in claimed:
                    render = functools.partial(render_case, entry, index, out, settings, model_path, device)
                    finish(work, entry, render, ctx.rank, progress)
            else:
                singanseg_work_batch(claimed, out, settings, work, device, ctx.rank, progress)
            bar.update(sum(work.is_finished(e.id) for e in plan) - bar.n)
    finally:  # interrupted (Ctrl-C, an error): the unfinished claims are free again at once; checkpoints stay
        work.release_all()
    bar.close()
    return generator


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
    items = _normalise_items(items)
    if not items:
        raise ValueError("no cases in the real dataset")
    _check_channel_order(items, settings)
    out.mkdir(parents=True, exist_ok=True)
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
    generator = _work_through(plan, out, settings, work, ctx, device, batch, model, progress)
    ctx.barrier()
    records = {e.id: work.result(e.id) for e in plan}
    complete = all(r is not None for r in records.values())
    manifest = manifest_of(plan, records, settings)
    if generator is not None:
        manifest["model"] = generator
    if complete and (ctx.rank == 0 or ctx.shard):
        write_outputs(out, plan, records, manifest, settings)
    ctx.barrier()
    return manifest
