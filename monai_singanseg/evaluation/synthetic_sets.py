"""The synthetic training sets of a fold, made by the product's own ``synthesize`` over the fold's training cases."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_singanseg.engines.singanseg import SinGANSegSettings
from monai_singanseg.evaluation.settings import ExperimentSettings, style_set_name
from monai_singanseg.evaluation.slice_sets import SliceSet, evenly, synthetic_slices
from monai_singanseg.farm import DatasetSettings, RankContext, synthesize_dataset
from monai_singanseg.synthesis import SinGANSegSynthesisSettings, singanseg_synthesis, synthesize

__all__ = ["SyntheticSets", "make_synthetic_sets"]


def _synthesize(
    items: Sequence[Mapping[str, Any]], folder: Path, dataset: DatasetSettings, device: Any, overwrite: bool
) -> dict[str, Any]:
    """A synthetic dataset of ``items`` made by the product's ``synthesize`` (one process); every entry must succeed."""
    manifest = synthesize_dataset(
        items,
        folder,
        dataset,
        RankContext(run_id=f"evaluation-{folder.name}"),
        device=str(device),
        overwrite=overwrite,
        progress=False,
    )
    if manifest["failed"] or manifest["pending"]:
        errors = "; ".join(
            f"{e['id']}: {e.get('error', e['status'])}" for e in manifest["entries"] if e["status"] != "done"
        )
        raise RuntimeError(f"synthesizing {folder} failed: {errors}")
    return manifest


def _singanseg_dataset(settings: ExperimentSettings, slices_per_case: int | None) -> DatasetSettings:
    return DatasetSettings(
        slices_per_case=slices_per_case,
        samples_per_model=settings.samples_per_model,
        max_size=settings.size,
        label_map=settings.label_map,
        channel_names=settings.channel_names,
        training=SinGANSegSettings(iters=settings.singan_iters),
        options=SinGANSegSynthesisSettings(start_scale=settings.singan_start_scale),
        val_fraction=0.0,  # every synthetic case trains; the experiment validates on real cases
    )


def _styled(
    dataset_dir: Path,
    entry_ids: Sequence[str],
    method: str,
    out: Path,
    settings: ExperimentSettings,
    device: Any,
    overwrite: bool,
) -> list[Path]:
    """The SinGAN-Seg samples of ``entry_ids`` again (same models, same seeds), through the style-transfer step."""
    manifest = json.loads((dataset_dir / "manifest.json").read_text(encoding="utf-8"))
    options = SinGANSegSynthesisSettings(
        start_scale=settings.singan_start_scale,
        style=method,
        style_steps=settings.style_steps,
        style_weights=settings.style_weights,
    )
    folders = []
    for index, entry in enumerate(manifest["entries"]):
        if entry["id"] not in entry_ids:
            continue
        folder = out / entry["id"]
        pipeline = singanseg_synthesis(
            dataset_dir / entry["model"], folder, options, device=device, overwrite=overwrite
        )
        synthesize(
            pipeline,
            pipeline.cases(settings.samples_per_model),
            folder,
            seed=index,
            preview=0,
            progress=False,
            overwrite=overwrite,
        )
        folders.append(folder)
    return folders


@dataclass
class SyntheticSets:
    """A fold's synthetic slices and where they came from.

    Attributes:
        sets: ``singanseg``, ``pix2pix``, ``synthetic`` (both) and ``singanseg+style:M`` slice sets.
        small: the small-data synthetic sets ``{(k, style or None): slices}`` (the SinGAN-Seg samples of the first k
            small-data slices).
        manifest: the SinGAN-Seg dataset's manifest.
        timing: seconds per step.
    """

    sets: dict[str, SliceSet]
    small: dict[tuple[int, str | None], SliceSet]
    manifest: dict[str, Any]
    timing: dict[str, float]


def make_synthetic_sets(
    items: Sequence[Mapping[str, Any]],
    small_slices: Sequence[int],
    fold_dir: Path,
    settings: ExperimentSettings,
    device: Any,
    overwrite: bool,
    log: Callable[[str], None],
) -> SyntheticSets:
    """SinGAN-Seg over the training cases, SinGAN-Seg on the small-data slices of the first case, pix2pix over the
    training cases and the style variants, each written by ``synthesize`` under ``fold_dir`` and read back.

    Args:
        items: the training cases (datalist entries with their names).
        small_slices: the small-data slices of ``items[0]``, in the order the small sets take them.
        fold_dir: the fold's generator folder.
        settings: the experiment's settings.
        device: torch device.
        overwrite: replace existing datasets.
        log: progress messages.
    """
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    log(f"  synthesize: SinGAN-Seg, {settings.singan_slices} model(s) per training case -> {fold_dir / 'singanseg'}")
    manifest = _synthesize(
        items, fold_dir / "singanseg", _singanseg_dataset(settings, settings.singan_slices), device, overwrite
    )
    log(f"  synthesize: SinGAN-Seg on the small-data slices {list(small_slices)} of {items[0]['name']}")
    small_item = {**items[0], "slices": list(small_slices)}
    small_manifest = _synthesize(
        [small_item], fold_dir / "small_singanseg", _singanseg_dataset(settings, None), device, overwrite
    )
    timing["singanseg"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    log(
        f"  synthesize: pix2pix ({settings.pix2pix_architecture}) on {len(items)} case(s), "
        f"{settings.pix2pix_epochs} epochs, {settings.pix2pix_volumes} render(s) per case"
    )
    p2p = DatasetSettings(
        generator="pix2pix",
        per_case=settings.pix2pix_volumes,
        label_map=settings.label_map,
        channel_names=settings.channel_names,
        pix2pix=settings.pix2pix_settings(),
        val_fraction=0.0,
    )
    _synthesize(items, fold_dir / "pix2pix", p2p, device, overwrite)
    timing["pix2pix"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    size = settings.size
    sets = {
        "singanseg": synthetic_slices([fold_dir / "singanseg"], size),
        "pix2pix": evenly(synthetic_slices([fold_dir / "pix2pix"], size, tumour_only=True), settings.pix2pix_samples),
    }
    sets["synthetic"] = SliceSet.concat([sets["singanseg"], sets["pix2pix"]])
    timing["loading_synthetic"] = time.perf_counter() - t0
    small_ids = [e["id"] for e in small_manifest["entries"]]  # in slice order; model of slice z: <case>_z<z>
    by_slice = {int(e["slice"]): e["id"] for e in small_manifest["entries"]}
    for method in settings.style_methods:
        t0 = time.perf_counter()
        log(f"  style transfer '{method}' of the SinGAN-Seg samples")
        ids = [e["id"] for e in manifest["entries"]]
        folders = _styled(
            fold_dir / "singanseg", ids, method, fold_dir / f"singanseg+style-{method}", settings, device, overwrite
        )
        sets[style_set_name("singanseg", method)] = synthetic_slices(folders, size)
        small_out = fold_dir / f"small_singanseg+style-{method}"
        _styled(fold_dir / "small_singanseg", small_ids, method, small_out, settings, device, overwrite)
        timing[f"style:{method}"] = time.perf_counter() - t0
    small: dict[tuple[int, str | None], SliceSet] = {}
    for k in settings.k_values:
        wanted = [by_slice[z] for z in small_slices[:k]]
        small[(k, None)] = synthetic_slices([fold_dir / "small_singanseg" / "cases" / w for w in wanted], size)
        for method in settings.style_methods:
            folder = fold_dir / f"small_singanseg+style-{method}"
            small[(k, method)] = synthetic_slices([folder / w for w in wanted], size)
    return SyntheticSets(sets, small, manifest, timing)
