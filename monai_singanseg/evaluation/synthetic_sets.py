"""The synthetic training sets of a fold, made by the product's own ``synthesize`` over the fold's training cases: only
those its requested training sets need, the SinGAN-Seg models trained once per case and shared by the folds."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_singanseg.engines.singanseg import SinGANSegSettings
from monai_singanseg.evaluation.generator_cache import cached_slice_models, synthesize_all
from monai_singanseg.evaluation.settings import (
    RENDERER_SETS,
    ExperimentSettings,
    needed_generators,
    small_data_models,
    style_set_name,
)
from monai_singanseg.evaluation.slice_sets import SliceSet, evenly, synthetic_slices
from monai_singanseg.farm import DatasetSettings
from monai_singanseg.synthesis import SinGANSegSynthesisSettings, singanseg_synthesis, synthesize

__all__ = ["SyntheticSets", "make_synthetic_sets", "singanseg_dataset_settings"]


def singanseg_dataset_settings(settings: ExperimentSettings, slices_per_case: int | None) -> DatasetSettings:
    """The ``synthesize`` dataset settings of the experiment's SinGAN-Seg models: its working size, iterations,
    samples per model, sampling options and label conventions; ``slices_per_case`` models per case (None: the
    slices each item names, else every tumour slice)."""
    return DatasetSettings(
        slices_per_case=slices_per_case,
        samples_per_model=settings.samples_per_model,
        max_size=settings.size,
        label_map=settings.label_map,
        channel_names=settings.channel_names,
        training=SinGANSegSettings(iters=settings.singan_iters),
        options=SinGANSegSynthesisSettings(start_scale=settings.singan_start_scale, tumour_shift=settings.tumour_shift),
        val_fraction=0.0,  # every synthetic case trains; the experiment validates on real cases
    )


def _styled(
    models: Sequence[tuple[Path, dict[str, Any], int]],
    method: str,
    out: Path,
    settings: ExperimentSettings,
    device: Any,
    overwrite: bool,
) -> list[Path]:
    """The samples of SinGAN-Seg models again (same models, same seeds), through the style-transfer step.

    Args:
        models: ``(dataset folder, manifest entry, index in its dataset)`` of each model; its samples were drawn with
            seed ``index`` (the dataset's seed 0 + the entry's index).
    """
    options = SinGANSegSynthesisSettings(
        start_scale=settings.singan_start_scale,
        tumour_shift=settings.tumour_shift,
        style=method,
        style_steps=settings.style_steps,
        style_weights=settings.style_weights,
    )
    folders = []
    for dataset_dir, entry, index in models:
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
        sets: the synthetic training sets its requested sets need, of ``singanseg``, ``pix2pix``, ``spade``,
            ``synthetic`` (SinGAN-Seg and pix2pix) and ``singanseg+style:M``.
        small: the small-data synthetic sets ``{(k, style or None): slices}`` (the SinGAN-Seg samples of the first k
            small-data slices), when requested.
        singanseg_models: ``(dataset folder, manifest entry, index)`` of every SinGAN-Seg model over the training
            cases.
        folders: the synthetic datasets used, by generator (SinGAN-Seg: one cached dataset per case).
        cache: SinGAN-Seg case datasets ``trained`` now and ``reused`` from the cache.
        timing: seconds per step.
    """

    sets: dict[str, SliceSet]
    small: dict[tuple[int, str | None], SliceSet]
    singanseg_models: list[tuple[Path, dict[str, Any], int]]
    folders: dict[str, list[str]]
    cache: dict[str, int]
    timing: dict[str, float]


def make_synthetic_sets(
    items: Sequence[Mapping[str, Any]],
    case_slices: Mapping[str, Sequence[int]],
    fold_dir: Path,
    settings: ExperimentSettings,
    device: Any,
    overwrite: bool,
    log: Callable[[str], None],
    model_cache: Path | None = None,
) -> SyntheticSets:
    """The synthetic sets that the requested training sets need, and only those: SinGAN-Seg over the training cases,
    SinGAN-Seg on the small-data slices of the first case, the renderers (pix2pix U-Net, SPADE) over the training
    cases and the style variants,
    each written by ``synthesize`` and read back. SinGAN-Seg models come from ``model_cache`` (one dataset per case,
    :mod:`~monai_singanseg.evaluation.generator_cache`: trained once, reused by every fold); pix2pix and the style
    variants are the fold's own, under ``fold_dir``.

    Args:
        items: the training cases (datalist entries with their names).
        case_slices: per training case, its tumour slices spread over its tumour: the SinGAN-Seg set takes the first
            ``singan_slices`` of each case, the small-data sets the first k of ``items[0]``.
        fold_dir: the fold's generator folder.
        settings: the experiment's settings.
        device: torch device.
        overwrite: replace existing datasets (not the cache: its entries are named by their data and settings).
        log: progress messages.
        model_cache: the SinGAN-Seg cache folder (default: ``fold_dir``'s parent's ``singanseg_cache``).
    """
    cache = model_cache if model_cache is not None else fold_dir.parent / "singanseg_cache"
    needed = needed_generators(settings.requested_sets())
    timing: dict[str, float] = {}
    counts = {"trained": 0, "reused": 0}
    sets: dict[str, SliceSet] = {}
    folders: dict[str, list[str]] = {}
    size = settings.size
    dataset = singanseg_dataset_settings(settings, None)  # each model its own slice: item["slices"]

    def slice_models(item: Mapping[str, Any], slices: Sequence[int]) -> list[tuple[Path, dict[str, Any], int]]:
        models, made = cached_slice_models(item, slices, dataset, cache, device)
        for k, v in made.items():
            counts[k] += v
        return models

    t0 = time.perf_counter()
    models: list[tuple[Path, dict[str, Any], int]] = []
    if "singanseg" in needed:
        log(f"  synthesize: SinGAN-Seg, {settings.singan_slices} model(s) per training case (cache {cache})")
        for item in items:
            models += slice_models(item, case_slices[item["name"]][: settings.singan_slices])
        folders["singanseg"] = [str(folder) for folder, _, _ in models]
        sets["singanseg"] = synthetic_slices([folder for folder, _, _ in models], size)
    small_slices = list(case_slices[items[0]["name"]][: small_data_models(settings.requested_sets())])
    small_models: dict[int, tuple[Path, dict[str, Any], int]] = {}
    if "small_singanseg" in needed:
        log(f"  synthesize: SinGAN-Seg on the small-data slices {list(small_slices)} of {items[0]['name']}")
        for model in slice_models(items[0], small_slices):
            small_models[int(model[1]["slice"])] = model
        folders["small_singanseg"] = [str(folder) for folder, _, _ in small_models.values()]
    timing["singanseg"] = time.perf_counter() - t0
    for name, architecture in RENDERER_SETS.items():
        if name not in needed:
            continue
        t0 = time.perf_counter()
        log(
            f"  synthesize: {name} ({architecture} generator) on {len(items)} case(s), {settings.pix2pix_epochs} "
            f"epochs, {settings.pix2pix_volumes} render(s) per case"
        )
        renderer = DatasetSettings(
            generator="pix2pix",
            per_case=settings.pix2pix_volumes,
            label_map=settings.label_map,
            channel_names=settings.channel_names,
            pix2pix=settings.renderer_settings(name),
            val_fraction=0.0,
        )
        synthesize_all(items, fold_dir / name, renderer, device, overwrite)
        folders[name] = [str(fold_dir / name)]
        timing[name] = time.perf_counter() - t0
        sets[name] = evenly(synthetic_slices([fold_dir / name], size, tumour_only=True), settings.pix2pix_samples)
    if "singanseg" in sets and "pix2pix" in sets:
        sets["synthetic"] = SliceSet.concat([sets["singanseg"], sets["pix2pix"]])
    small: dict[tuple[int, str | None], SliceSet] = {}
    small_k = [k for k in settings.k_values if k <= len(small_models)]  # the k of the requested small-data sets
    for k in small_k:
        wanted = [small_models[z] for z in small_slices[:k]]
        small[(k, None)] = synthetic_slices([folder for folder, _, _ in wanted], size)
    requested = set(settings.requested_sets())
    for method in settings.style_methods:  # style transfer of the samples that a requested styled set uses
        styled_main = bool(models) and style_set_name("singanseg", method) in requested
        styled_k = [k for k in small_k if style_set_name(f"real{k}+singanseg", method) in requested]
        if not (styled_main or styled_k):
            continue
        t0 = time.perf_counter()
        log(f"  style transfer '{method}' of the SinGAN-Seg samples")
        if styled_main:
            styled = _styled(models, method, fold_dir / f"singanseg+style-{method}", settings, device, overwrite)
            sets[style_set_name("singanseg", method)] = synthetic_slices(styled, size)
        if styled_k:
            out = fold_dir / f"small_singanseg+style-{method}"
            _styled([small_models[z] for z in small_slices[: max(styled_k)]], method, out, settings, device, overwrite)
            for k in styled_k:
                small[(k, method)] = synthetic_slices([out / small_models[z][1]["id"] for z in small_slices[:k]], size)
        timing[f"style:{method}"] = time.perf_counter() - t0
    return SyntheticSets(sets, small, models, folders, counts, timing)
