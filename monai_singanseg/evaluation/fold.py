"""One fold of the downstream experiment: real slices of the training cases, the synthetic sets, the training sets,
and a segmentation network per set and seed, scored in 3D on each test case (the held-out case, or every case of a
user's test set)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from monai_singanseg.data import load_case
from monai_singanseg.evaluation.headline import region_scores, summarise
from monai_singanseg.evaluation.quality import quality_of_sets
from monai_singanseg.evaluation.scoring import case_scores
from monai_singanseg.evaluation.segmentation import train_segmentation
from monai_singanseg.evaluation.settings import ExperimentSettings, style_set_name
from monai_singanseg.evaluation.slice_sets import SliceSet, slice_number, split_for_validation
from monai_singanseg.evaluation.synthetic_sets import SyntheticSets, make_synthetic_sets
from monai_singanseg.evaluation.volumes import CaseSlices, case_slices, score_case
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES
from monai_singanseg.transforms.slices import spread_order

__all__ = ["FoldData", "load_fold", "training_sets", "segmentation_runs", "run_fold"]


@dataclass
class FoldData:
    """A fold's real data on the segmentation grid.

    Attributes:
        items: the training cases' datalist entries, each with its case name.
        real: every training brain slice not held in for validation.
        validation: the held-in validation slices.
        tests: the test cases' brain slices (the held-out case, or every case of a test set).
        tumour: positions in ``real`` of the slices with tumour.
        spread: per training case, the positions in ``real`` of its tumour slices spread over its tumour from the
            largest section (as ``synthesize`` picks slices): its SinGAN-Seg models take the first ``singan_slices``.
        small_order: the first training case's ``spread`` (the small-data rows take its first k).
    """

    items: list[dict[str, Any]]
    real: SliceSet
    validation: SliceSet
    tests: list[CaseSlices]
    tumour: list[int]
    spread: dict[str, list[int]]
    small_order: list[int]


def load_fold(
    train_items: Sequence[Mapping[str, Any]], test_items: Sequence[Mapping[str, Any]], settings: ExperimentSettings
) -> FoldData:
    """The fold's cases through the product's data path, as slices on the segmentation grid."""
    train_cases = [load_case(it, BRATS_LABEL_VALUES, 3, settings.label_map) for it in train_items]
    items = [{**it, "name": c["name"]} for it, c in zip(train_items, train_cases)]
    splits = [split_for_validation(case_slices(c, settings.size), settings.validation_every) for c in train_cases]
    real = SliceSet.concat([train for train, _ in splits])
    validation = SliceSet.concat([val for _, val in splits])
    tests = [case_slices(load_case(it, BRATS_LABEL_VALUES, 3, settings.label_map), settings.size) for it in test_items]
    tumour = [i for i in range(len(real)) if bool((real.labels[i] > 0).any())]
    spread = {}
    for case in train_cases:  # each case's tumour slices spread over its tumour, as synthesize would pick them
        own = [i for i in tumour if real.names[i].rsplit(":", 1)[0] == case["name"]]
        areas = [float((real.labels[i] > 0).sum()) for i in own]
        picks = spread_order([slice_number(real.names[i]) for i in own], areas, settings.pool_fraction)
        spread[case["name"]] = [own[p] for p in picks]
    # the small-data rows: k slices of ONE training case
    return FoldData(items, real, validation, tests, tumour, spread, spread[train_cases[0]["name"]])


def training_sets(data: FoldData, synthetic: SyntheticSets, settings: ExperimentSettings) -> dict[str, SliceSet]:
    """The fold's training sets by name (:func:`training_set_names`) that its synthetic sets make (every requested
    one, :func:`~monai_singanseg.evaluation.synthetic_sets.make_synthetic_sets` makes what they need)."""
    real = data.real
    sets: dict[str, SliceSet] = {"real": real, **synthetic.sets}
    if "synthetic" in synthetic.sets:
        sets["real+synthetic"] = SliceSet.concat([real, synthetic.sets["synthetic"]])
    for k in settings.k_values:
        small = real.subset(data.small_order[:k])
        sets[f"real{k}"] = small
        for method in (None, *settings.style_methods):
            if (k, method) in synthetic.small:
                name = f"real{k}+singanseg" if method is None else style_set_name(f"real{k}+singanseg", method)
                sets[name] = SliceSet.concat([small, synthetic.small[(k, method)]])
    return sets


def segmentation_runs(
    sets: Mapping[str, SliceSet],
    data: FoldData,
    settings: ExperimentSettings,
    device: Any,
    progress: bool,
    desc: str,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """A segmentation network per requested training set and seed, scored on every test case's whole volume.

    Returns:
        Per test case (in ``data.tests`` order): ``{set name: {"num_slices", "runs": {seed: scores and training
        figures}, "summary"}}``.
    """
    num_classes = len(BRATS_LABEL_VALUES)
    wanted = settings.requested_sets()
    per_test: list[dict[str, Any]] = [{} for _ in data.tests]
    jobs = [(name, seed) for name in wanted for seed in settings.seeds]
    bar = tqdm(jobs, desc=desc, disable=not progress)
    for name, seed in bar:
        bar.set_postfix_str(f"{name} seed {seed}", refresh=True)
        validation = (data.validation.images, data.validation.labels)
        net, info = train_segmentation(
            sets[name].images,
            sets[name].labels,
            num_classes,
            settings.segmentation,
            seed,
            device,
            progress,
            desc=name,
            validation=validation,
        )
        figures = {"steps": info["steps"], "best_step": info["best_step"], "final_loss": info["losses"][-1]}
        for test, runs in zip(data.tests, per_test):
            scores = score_case(net, test, BRATS_LABEL_VALUES, settings.segmentation.keep_largest)
            entry = runs.setdefault(name, {"num_slices": len(sets[name]), "runs": {}})
            entry["runs"][str(seed)] = {**scores, **figures}
            log(
                f"  {name:<22} seed {seed} on {test.name}: WT Dice {scores['WT']['dice']:.3f}, HD95 "
                f"{scores['WT']['hd95']:.1f} mm (mean of regions {scores['mean']['dice']:.3f}; {info['steps']} steps, "
                f"best at {info['best_step']})"
            )
    for runs in per_test:
        for entry in runs.values():
            entry["summary"] = summarise([region_scores(run) for run in entry["runs"].values()])
    return per_test


def run_fold(
    train_items: Sequence[Mapping[str, Any]],
    test_items: Sequence[Mapping[str, Any]],
    model_dir: Path,
    prefix: str,
    settings: ExperimentSettings,
    device: Any = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    model_cache: Path | None = None,
) -> tuple[list[dict[str, Any]], dict[str, SliceSet]]:
    """One fold: generators on ``train_items``, segmentation trained on each set and scored on every whole volume of
    ``test_items`` (every axial slice predicted, BraTS Dice and HD95 per region in 3D). SinGAN-Seg models come from
    ``model_cache`` (default: ``model_dir/singanseg_cache``), shared by the folds.

    Returns:
        ``(one report per test case, {"real": ..., "singanseg": ..., "pix2pix": ...})`` (the slice sets, for sample
        grids). The reports share the fold's training (its cases, synthetic sets and networks) and differ in the
        test case, its scores and the privacy baseline.
    """
    num_classes = len(BRATS_LABEL_VALUES)
    t0 = time.perf_counter()
    data = load_fold(train_items, test_items, settings)
    real = data.real
    timing: dict[str, float] = {"load": time.perf_counter() - t0}
    tested = ", ".join(f"{t.name} ({len(t.indices)} brain slices)" for t in data.tests)
    log(
        f"  {len(real)} real training slices ({len(data.tumour)} with tumour), {len(data.validation)} validation "
        f"slices; test case(s) {tested}"
    )
    fold_dir = model_dir / prefix
    case_slices = {name: [slice_number(real.names[i]) for i in order] for name, order in data.spread.items()}
    synthetic = make_synthetic_sets(
        data.items,
        case_slices,
        fold_dir,
        settings,
        device,
        overwrite,
        log,
        model_cache or model_dir / "singanseg_cache",
    )
    timing.update(synthetic.timing)
    made = ", ".join(f"{len(s)} {name}" for name, s in synthetic.sets.items()) or "none"
    log(f"  synthetic slices: {made}; SinGAN-Seg case datasets {synthetic.cache}")
    t0 = time.perf_counter()
    real_tumour = real.subset(data.tumour)
    qualities = [quality_of_sets(synthetic.sets, real_tumour, test, num_classes, settings) for test in data.tests]
    timing["quality"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sets = training_sets(data, synthetic, settings)
    per_test = segmentation_runs(sets, data, settings, device, progress, f"{prefix} segmentation runs", log)
    timing["segmentation"] = time.perf_counter() - t0
    shared = {
        "train_cases": [it["name"] for it in data.items],
        "num_real_train": len(real),
        "num_real_train_tumour": len(data.tumour),
        "num_validation": len(data.validation),
        "small_data_slices": [real.names[i] for i in data.small_order[: max(settings.k_values, default=0)]],
        "singanseg_slices": [f"{e['case']}:{e['slice']}" for _, e, _ in synthetic.singanseg_models],
        "generators": synthetic.folders,
        "singanseg_cache": synthetic.cache,
        "seconds": timing,
    }
    reports = []
    for test, quality, runs in zip(data.tests, qualities, per_test):
        present = case_scores(test.target, test.target, BRATS_LABEL_VALUES).items()
        reports.append(
            {
                **shared,
                "test_case": test.name,
                "num_test": len(test.indices),
                "test_regions_present": {r: not v["empty_reference"] for r, v in present if r != "mean"},
                "quality": quality,
                "runs": runs,
            }
        )
    grids = {"real": real_tumour, **{name: s for name, s in synthetic.sets.items() if name != "synthetic"}}
    return reports, grids
