"""One fold of the downstream experiment: real slices of the training cases, the synthetic sets, the training sets,
and a segmentation network per set and seed, scored on the held-out case in 3D."""

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
from monai_singanseg.evaluation.settings import ExperimentSettings, style_set_name, training_set_names
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
        test: the held-out case's brain slices.
        tumour: positions in ``real`` of the slices with tumour.
        small_order: positions in ``real`` of the first training case's tumour slices in small-data order (spread
            over its tumour from the largest section).
    """

    items: list[dict[str, Any]]
    real: SliceSet
    validation: SliceSet
    test: CaseSlices
    tumour: list[int]
    small_order: list[int]


def load_fold(
    train_items: Sequence[Mapping[str, Any]], test_item: Mapping[str, Any], settings: ExperimentSettings
) -> FoldData:
    """The fold's cases through the product's data path, as slices on the segmentation grid."""
    train_cases = [load_case(it, BRATS_LABEL_VALUES, 3, settings.label_map) for it in train_items]
    items = [{**it, "name": c["name"]} for it, c in zip(train_items, train_cases)]
    splits = [split_for_validation(case_slices(c, settings.size), settings.validation_every) for c in train_cases]
    real = SliceSet.concat([train for train, _ in splits])
    validation = SliceSet.concat([val for _, val in splits])
    test = case_slices(load_case(test_item, BRATS_LABEL_VALUES, 3, settings.label_map), settings.size)
    tumour = [i for i in range(len(real)) if bool((real.labels[i] > 0).any())]
    # the small-data rows: k slices of ONE training case (spread over its tumour), as synthesize would pick them
    own = [i for i in tumour if real.names[i].rsplit(":", 1)[0] == train_cases[0]["name"]]
    areas = [float((real.labels[i] > 0).sum()) for i in own]
    order = [own[p] for p in spread_order([slice_number(real.names[i]) for i in own], areas, settings.pool_fraction)]
    return FoldData(items, real, validation, test, tumour, order)


def training_sets(data: FoldData, synthetic: SyntheticSets, settings: ExperimentSettings) -> dict[str, SliceSet]:
    """Every training set of the fold by name (:func:`training_set_names`)."""
    real = data.real
    sets: dict[str, SliceSet] = {
        "real": real,
        **synthetic.sets,
        "real+synthetic": SliceSet.concat([real, synthetic.sets["synthetic"]]),
    }
    for k in settings.k_values:
        small = real.subset(data.small_order[:k])
        sets[f"real{k}"] = small
        sets[f"real{k}+singanseg"] = SliceSet.concat([small, synthetic.small[(k, None)]])
        for method in settings.style_methods:
            styled = synthetic.small[(k, method)]
            sets[style_set_name(f"real{k}+singanseg", method)] = SliceSet.concat([small, styled])
    return sets


def segmentation_runs(
    sets: Mapping[str, SliceSet],
    data: FoldData,
    settings: ExperimentSettings,
    device: Any,
    progress: bool,
    desc: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """A segmentation network per requested training set and seed, scored on the whole held-out volume.

    Returns:
        ``{set name: {"num_slices", "runs": {seed: scores and training figures}, "summary"}}``.
    """
    num_classes = len(BRATS_LABEL_VALUES)
    known = training_set_names(settings.k_values, settings.style_methods)
    wanted = [n for n in known if settings.training_sets is None or n in settings.training_sets]
    runs: dict[str, Any] = {}
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
        scores = score_case(net, data.test, BRATS_LABEL_VALUES)
        entry = runs.setdefault(name, {"num_slices": len(sets[name]), "runs": {}})
        figures = {"steps": info["steps"], "best_step": info["best_step"], "final_loss": info["losses"][-1]}
        entry["runs"][str(seed)] = {**scores, **figures}
        log(
            f"  {name:<22} seed {seed}: WT Dice {scores['WT']['dice']:.3f}, HD95 {scores['WT']['hd95']:.1f} mm "
            f"(mean of regions {scores['mean']['dice']:.3f}; {info['steps']} steps, best at {info['best_step']})"
        )
    for entry in runs.values():
        entry["summary"] = summarise([region_scores(run) for run in entry["runs"].values()])
    return runs


def run_fold(
    train_items: Sequence[Mapping[str, Any]],
    test_item: Mapping[str, Any],
    model_dir: Path,
    prefix: str,
    settings: ExperimentSettings,
    device: Any = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], dict[str, SliceSet]]:
    """One fold: generators on ``train_items``, segmentation trained on each set and scored on the whole
    ``test_item`` volume (every axial slice predicted, BraTS Dice and HD95 per region in 3D).

    Returns:
        ``(fold report, {"real": ..., "singanseg": ..., "pix2pix": ...})`` (the slice sets, for sample grids).
    """
    num_classes = len(BRATS_LABEL_VALUES)
    t0 = time.perf_counter()
    data = load_fold(train_items, test_item, settings)
    real, test = data.real, data.test
    timing: dict[str, float] = {"load": time.perf_counter() - t0}
    log(
        f"  {len(real)} real training slices ({len(data.tumour)} with tumour), {len(data.validation)} validation "
        f"slices; test case {test.name} ({len(test.indices)} brain slices)"
    )
    fold_dir = model_dir / prefix
    small_slices = [slice_number(real.names[i]) for i in data.small_order[: max(settings.k_values, default=1)]]
    synthetic = make_synthetic_sets(data.items, small_slices, fold_dir, settings, device, overwrite, log)
    timing.update(synthetic.timing)
    log(
        f"  {len(synthetic.sets['singanseg'])} SinGAN-Seg and {len(synthetic.sets['pix2pix'])} pix2pix slices; "
        "scoring them"
    )
    t0 = time.perf_counter()
    real_tumour = real.subset(data.tumour)
    quality = quality_of_sets(synthetic.sets, real_tumour, test, num_classes, settings)
    timing["quality"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sets = training_sets(data, synthetic, settings)
    runs = segmentation_runs(sets, data, settings, device, progress, f"{prefix} segmentation runs", log)
    timing["segmentation"] = time.perf_counter() - t0
    present = case_scores(test.target, test.target, BRATS_LABEL_VALUES).items()
    report = {
        "train_cases": [it["name"] for it in data.items],
        "test_case": test.name,
        "num_real_train": len(real),
        "num_real_train_tumour": len(data.tumour),
        "num_validation": len(data.validation),
        "num_test": len(test.indices),
        "test_regions_present": {r: not v["empty_reference"] for r, v in present if r != "mean"},
        "small_data_slices": [real.names[i] for i in data.small_order[: max(settings.k_values, default=0)]],
        "singanseg_slices": [f"{e['case']}:{e['slice']}" for e in synthetic.manifest["entries"]],
        "generators": {name: str(fold_dir / name) for name in ("singanseg", "small_singanseg", "pix2pix")},
        "quality": quality,
        "runs": runs,
        "seconds": timing,
    }
    grids = {"real": real_tumour, **{name: s for name, s in synthetic.sets.items() if name != "synthetic"}}
    return report, grids
