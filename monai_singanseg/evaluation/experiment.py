"""Downstream utility: do SinGAN-Seg / pix2pix samples train a segmentation network as well as real data?

Protocol (one fold per case held out):

1. **Real slices.** Every case goes through the product's data path (``load_case`` with the label map), then
   :func:`~monai_singanseg.evaluation.volumes.case_slices`: every brain slice on one square grid around the brain
   (``size`` x ``size``), each slice scaled to [-1, 1] inside its brain. Every ``validation_every``-th brain slice of
   each training case is held in for validation (it decides when segmentation training stops).
2. **Synthetic sets, made by ``synthesize``** (:func:`~monai_singanseg.farm.synthesize_dataset`, the product's own
   dataset synthesis) over the training cases only: SinGAN-Seg with ``singan_slices`` models per case and
   ``samples_per_model`` samples each; pix2pix, one model on all training cases, ``pix2pix_volumes`` renders of
   deformed label volumes per case. The written cases are read back through the same data path as the real ones
   (their tumour slices). Style variants run the same models and seeds through the style-transfer step.
3. **Small-data rows**: ``k`` tumour slices of ONE training case, spread over its tumour (farthest-point along the
   axial axis from the largest tumour slice), with and without their own synthetic set: ``synthesize`` trains one
   SinGAN-Seg model on each of exactly those slices, and ``real{k}+singanseg`` adds the samples of the first ``k``.
4. **Training sets**: ``real`` (all training brain slices), ``singanseg``, ``pix2pix``, ``synthetic`` (both),
   ``real+synthetic``, and for every ``k``: ``real{k}`` and ``real{k}+singanseg``.
5. **Segmentation** (:mod:`~monai_singanseg.evaluation.segmentation`): the same network and budget for every set
   and seed, stopped on a validation-Dice plateau; every axial slice of the held-out case is predicted, pasted back
   into its volume and scored in 3D per BraTS region: Dice and HD95 in mm (:mod:`~monai_singanseg.evaluation.scoring`,
   BraTS empty-region convention).
6. **Statistics**: the headline ratios with paired bootstrap 95 % intervals over runs of the same fold, seed and
   test case (:mod:`~monai_singanseg.evaluation.statistics`).
7. **Synthetic-set quality and privacy**: SWD against the real training tumour slices, diversity, memorisation
   (nearest-neighbour correlation against ALL real training tumour slices, flagged above a threshold), label
   statistics; the held-out case's own tumour slices' nearest-neighbour scores as the baseline a sample should not
   exceed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from monai_singanseg.data import load_case
from monai_singanseg.data.case_cache import cached_cases
from monai_singanseg.device import resolve_device
from monai_singanseg.evaluation.cases import check_cases, check_test_cases
from monai_singanseg.evaluation.fold import run_fold
from monai_singanseg.evaluation.headline import (
    headline,
    headline_ratios,
    mean_sd,
    paired_ratio,
    paired_values,
    summarise,
    summarise_folds,
)
from monai_singanseg.evaluation.quality import synthetic_quality
from monai_singanseg.evaluation.report import report_files, write_report
from monai_singanseg.evaluation.scoring import regions_for
from monai_singanseg.evaluation.segmentation import build_segmentation_network
from monai_singanseg.evaluation.settings import (
    GENERATOR_SETS,
    RENDERER_SETS,
    ExperimentSettings,
    needed_generators,
    style_set_name,
    training_set_names,
)
from monai_singanseg.evaluation.slice_sets import SliceSet, split_for_validation, tumour_slices
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.synthesis import default_channel_names
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES
from monai_singanseg.transforms.slices import spread_order
from monai_singanseg.transforms.style import StyleTransfer

__all__ = [
    "GENERATOR_SETS",
    "ExperimentSettings",
    "SliceSet",
    "tumour_slices",
    "split_for_validation",
    "spread_order",
    "training_set_names",
    "style_set_name",
    "synthetic_quality",
    "run_fold",
    "run_experiment",
    "summarise",
    "headline",
    "headline_ratios",
    "paired_ratio",
    "paired_values",
    "summarise_folds",
    "mean_sd",
    "planned_outputs",
    "check_cases",
    "check_test_cases",
]


def _channel_names(case: Mapping[str, Any], item: Mapping[str, Any], settings: ExperimentSettings) -> list[str]:
    if settings.channel_names is not None:
        return list(settings.channel_names)
    files = item["image"] if isinstance(item["image"], (list, tuple)) else [item["image"]]
    return default_channel_names(int(case["image"].shape[0]), len(files), False)


def planned_outputs(
    out_dir: str | os.PathLike, num_folds: int, settings: ExperimentSettings, num_reports: int | None = None
) -> list[Path]:
    """Every report file :func:`run_experiment` writes (``num_reports`` fold reports: one per test case, default
    ``num_folds``) and the run record of every fold's own synthetic dataset (checked free before any work starts; the
    SinGAN-Seg cache is reused, never refused)."""
    out = Path(out_dir)
    renderers = [name for name in RENDERER_SETS if name in needed_generators(settings.requested_sets())]
    datasets = [out / "models" / f"fold{f}" / name / "synthesize.json" for f in range(num_folds) for name in renderers]
    return report_files(out, num_folds if num_reports is None else num_reports) + datasets


def run_experiment(
    items: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    settings: ExperimentSettings | None = None,
    device: Any = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    model_cache: str | os.PathLike | None = None,
    test_items: Sequence[Mapping[str, Any]] | None = None,
    test_source: str = "test set",
) -> dict[str, Any]:
    """The downstream experiment on BraTS-named cases; writes the report folder.

    Leave-one-case-out by default (a fold per case held out). With ``test_items``, the generators and networks train
    once on every case of ``items`` and are scored on each test case; the report has one "fold" per test case, and
    the intervals resample test cases and seeds.

    Args:
        items: datalist entries (at least 2 labelled cases; 1 with ``test_items``).
        out_dir: report folder (``report.json``, ``report.md``, PNG plots, sample grids, ``models/``).
        settings: the protocol's settings.
        device: torch device (None: CUDA if available).
        overwrite: replace existing outputs.
        progress: tqdm bars.
        log: progress messages.
        model_cache: the SinGAN-Seg models' cache, shared by the folds (and by fold processes given the same folder;
            default: ``out_dir/models/singanseg_cache``).
        test_items: a user's test cases (labelled), none of them a training case.
        test_source: where ``test_items`` come from (their datalist file), for messages and the report.

    Returns:
        The report dictionary (also written as ``report.json``).

    Raises:
        ValueError: too few cases, a case that cannot take part, or a test case that is also a training case or has
            other sequences (all raised before any work).
        RuntimeError: the segmentation network cannot be built (``swinunetr`` without ``einops``).
        OutputExistsError: an output exists and ``overwrite`` is False (raised before any work).
    """
    settings = settings or ExperimentSettings()
    if test_items is None and len(items) < 2:
        raise ValueError(f"the downstream experiment needs at least 2 labelled cases (one held out), got {len(items)}")
    if test_items is not None and settings.max_folds is not None:
        raise ValueError(
            "--folds chooses leave-one-out folds; with a test set every test case is scored (drop --folds)"
        )
    if not items or (test_items is not None and not test_items):
        raise ValueError("the downstream experiment needs at least one training case and one test case")
    device = resolve_device(device)
    seg = settings.segmentation
    build_segmentation_network(
        seg.network, 4, len(BRATS_LABEL_VALUES), seg.features
    )  # e.g. swinunetr without einops: fail now
    for method in settings.style_methods:  # e.g. vgg19 without its weights file: fail now
        StyleTransfer(method=method, weights_path=settings.style_weights, steps=0)
    with cached_cases():  # every case is read many times (checks, folds, synthesis steps): read it once
        out = Path(out_dir)
        # every case, before anything is trained or written
        train_facts = check_cases(items, BRATS_LABEL_VALUES, progress, settings.label_map)
        if test_items is None:
            num_folds = len(items) if settings.max_folds is None else min(settings.max_folds, len(items))
            folds_to_run = [
                ([it for i, it in enumerate(items) if i != f], [test]) for f, test in enumerate(items[:num_folds])
            ]
            protocol: dict[str, Any] = {"kind": "leave-one-out"}
        else:
            test_facts = check_cases(
                test_items, BRATS_LABEL_VALUES, progress, settings.label_map, need_tumour=False, what="test case"
            )
            check_test_cases(train_facts, test_facts, test_source)
            num_folds = len(test_items)
            folds_to_run = [(list(items), list(test_items))]
            protocol = {"kind": "test-set", "test_datalist": test_source, "test_cases": [f.name for f in test_facts]}
        check_outputs_free(planned_outputs(out, len(folds_to_run), settings, num_folds), overwrite)
        (out / "models").mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        folds, grids = [], []
        for f, (train_items, tests) in enumerate(folds_to_run):
            names = ", ".join(str(t.get("name", t["label"])) for t in tests)
            log(f"[fold {f + 1}/{len(folds_to_run)}] test case(s) {names}")
            reports, slice_sets = run_fold(
                train_items,
                tests,
                out / "models",
                f"fold{f}",
                settings,
                device,
                overwrite,
                progress,
                log,
                Path(model_cache) if model_cache is not None else None,
            )
            folds += reports
            grids += [slice_sets] * len(reports)
        summary = summarise_folds(folds, settings)
        report = {
            "protocol": protocol,
            "regions": {k: list(v) for k, v in regions_for(BRATS_LABEL_VALUES).items()},
            "settings": settings.to_dict(),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "channel_names": _channel_names(
                load_case(items[0], BRATS_LABEL_VALUES, 3, settings.label_map), items[0], settings
            ),
            "folds": folds,
            "summary": summary,
            "headline": headline(summary, settings.k_values, settings.style_methods, settings.headline_region, folds),
            "seconds": time.perf_counter() - start,
        }
        write_report(out, report, grids, overwrite=overwrite)
        log(f"wrote {out / 'report.json'}, {out / 'report.md'} and plots")
    return report
