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

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from monai.data import load_decathlon_datalist
from tqdm.auto import tqdm

from monai_singanseg.data import load_case
from monai_singanseg.device import resolve_device
from monai_singanseg.engines.pix2pix import Pix2PixSettings
from monai_singanseg.engines.singan import SinGANSegSettings
from monai_singanseg.evaluation.scoring import SCORE_NAMES, case_scores, regions_for
from monai_singanseg.evaluation.segmentation import (
    SegmentationSettings,
    build_segmentation_network,
    train_segmentation,
)
from monai_singanseg.evaluation.statistics import Interval, paired_ratio_ci
from monai_singanseg.evaluation.volumes import CaseSlices, case_slices, score_case
from monai_singanseg.farm import DatasetSettings, RankContext, synthesize_dataset
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.metrics.diversity import diversity
from monai_singanseg.metrics.label_stats import compare_label_statistics
from monai_singanseg.metrics.memorisation import flag_memorised, memorisation_scores
from monai_singanseg.metrics.swd import sliced_wasserstein_distance
from monai_singanseg.synthesis import (
    SinGANSegSynthesisOptions,
    default_channel_names,
    singanseg_synthesis,
    synthesise,
)
from monai_singanseg.transforms.gan import ToGANTensor
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES
from monai_singanseg.transforms.slices import spread_order
from monai_singanseg.transforms.style import STYLE_METHODS, StyleTransfer

__all__ = [
    "ExperimentSettings",
    "SliceSet",
    "tumour_slices",
    "spread_order",
    "training_set_names",
    "style_set_name",
    "synthetic_quality",
    "run_fold",
    "run_experiment",
    "summarise",
    "headline",
    "headline_ratios",
    "summarise_folds",
    "mean_sd",
    "planned_outputs",
    "check_cases",
]

GENERATOR_SETS = ("singanseg", "pix2pix", "synthetic")


@dataclass
class ExperimentSettings:
    """Everything that defines a downstream-utility run (stored in ``report.json``).

    Args:
        size: side of the square slices (generators and segmentation).
        seeds: segmentation seeds per training set (mean +- sd over seeds and folds).
        k_values: numbers of real slices of the small-data regime.
        pool_fraction: small-data slices hold at least this fraction of the largest tumour section.
        singan_slices: SinGAN-Seg models per training case of the synthetic dataset (``synthesize --slices-per-case``).
        singan_iters: iterations per SinGAN-Seg scale (None: the default schedule's).
        samples_per_model: SinGAN-Seg samples drawn from each model (``synthesize --samples-per-model``).
        singan_start_scale: scale where sampling noise starts (higher = closer to the training slice); 0, the
            product's default.
        style_methods: style-transfer methods compared on the SinGAN-Seg samples (each adds the training sets
            ``singanseg+style:M`` and ``real{k}+singanseg+style:M``; the style step is the product's: the style
            image is the model's reconstruction of its training slice); see
            :data:`~monai_singanseg.transforms.style.STYLE_METHODS`.
        style_steps: optimisation steps of the network-based style methods.
        style_weights: VGG-19 weights file for the ``vgg19`` style methods.
        pix2pix_epochs: pix2pix training epochs.
        pix2pix_volumes: deformed label volumes rendered by pix2pix per training case (``synthesize --per-case``).
        pix2pix_samples: pix2pix slices kept (evenly spaced over the rendered tumour slices).
        memorisation_threshold: nearest-neighbour correlation above which a sample is flagged as a copy.
        diversity_samples: samples used for the diversity (pairwise SSIM) figures.
        swd_projections: random directions of the sliced Wasserstein distance.
        segmentation: network and training settings of the segmentation runs.
        training_sets: restrict the runs to these training sets (None: all).
        max_folds: run only the first ``max_folds`` folds (None: every case is held out once).
        label_map: label values replaced on load (e.g. ``{3: 1}``: BRATS-2013 labels in the BraTS convention).
        channel_names: names of the image channels (None: the BraTS modalities for 4 files, else ``ch<i>``).
        validation_every: every ``validation_every``-th brain slice of each training case is held in for validation
            (it decides when segmentation training stops) and not trained on.
        headline_region: the BraTS region whose Dice the headline ratios compare.
    """

    size: int = 128
    seeds: tuple[int, ...] = (0, 1, 2)
    k_values: tuple[int, ...] = (1, 2, 5, 10)
    pool_fraction: float = 0.25
    singan_slices: int = 5
    singan_iters: int | None = None
    samples_per_model: int = 10
    singan_start_scale: int = 0
    style_methods: tuple[str, ...] = ()
    style_steps: int = 100
    style_weights: str | None = None
    pix2pix_epochs: int = 60
    pix2pix_volumes: int = 4
    pix2pix_samples: int = 100
    memorisation_threshold: float = 0.95
    diversity_samples: int = 50
    swd_projections: int = 256
    segmentation: SegmentationSettings = field(default_factory=SegmentationSettings)
    training_sets: tuple[str, ...] | None = None
    max_folds: int | None = None
    label_map: dict[int, int] = field(default_factory=dict)
    channel_names: tuple[str, ...] | None = None
    validation_every: int = 4
    headline_region: str = "WT"

    def __post_init__(self) -> None:
        self.label_map = {int(k): int(v) for k, v in dict(self.label_map).items()}
        if self.channel_names is not None:
            self.channel_names = tuple(str(c) for c in self.channel_names)
        if self.validation_every < 2:
            raise ValueError(f"validation_every must be >= 2 (every N-th slice held in), got {self.validation_every}")
        if isinstance(self.segmentation, Mapping):
            self.segmentation = SegmentationSettings(**self.segmentation)
        self.seeds = tuple(int(s) for s in self.seeds)
        self.k_values = tuple(int(k) for k in self.k_values)
        self.style_methods = tuple(str(m) for m in self.style_methods)
        unknown_styles = set(self.style_methods) - set(STYLE_METHODS)
        if unknown_styles:
            raise ValueError(f"unknown style methods {sorted(unknown_styles)}; known: {list(STYLE_METHODS)}")
        if not self.seeds or min(self.k_values, default=1) < 1 or self.singan_slices < 1:
            raise ValueError("at least one seed is needed; k_values and singan_slices must be >= 1")
        if self.size < 32 or self.pix2pix_epochs < 1 or self.pix2pix_volumes < 1:
            raise ValueError("size must be >= 32; pix2pix_epochs and pix2pix_volumes >= 1")
        if self.max_folds is not None and self.max_folds < 1:
            raise ValueError(f"max_folds (--folds) must be >= 1, got {self.max_folds}")
        if self.training_sets is not None:
            self.training_sets = tuple(self.training_sets)
            known = training_set_names(self.k_values, self.style_methods)
            unknown = set(self.training_sets) - set(known)
            if unknown:
                raise ValueError(f"unknown training sets {sorted(unknown)}; known: {known}")

    @classmethod
    def quick(cls, **overrides: Any) -> ExperimentSettings:
        """A CPU budget of minutes (a check of the whole pipeline, not figures): 64 px, one seed, k = 1 and 2, one
        SinGAN-Seg model per training case, short generator training, a width-8 BasicUNet for at most 80 steps."""
        base: dict[str, Any] = dict(
            size=64,
            seeds=(0,),
            k_values=(1, 2),
            singan_slices=1,
            singan_iters=10,
            samples_per_model=10,
            pix2pix_epochs=4,
            pix2pix_volumes=1,
            pix2pix_samples=40,
            segmentation=SegmentationSettings(network="basicunet", features=8, steps=80, val_every=20, patience=2),
        )
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = asdict(self)
        d["seeds"], d["k_values"], d["style_methods"] = list(self.seeds), list(self.k_values), list(self.style_methods)
        d["training_sets"] = None if self.training_sets is None else list(self.training_sets)
        d["label_map"] = {str(k): v for k, v in self.label_map.items()}
        d["channel_names"] = None if self.channel_names is None else list(self.channel_names)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentSettings:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class SliceSet:
    """2D training/test pairs: ``images`` ``(N, C, S, S)`` in [-1, 1], ``labels`` ``(N, 1, S, S)`` class indices."""

    images: torch.Tensor
    labels: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, indices: Sequence[int]) -> SliceSet:
        """The slices at ``indices``."""
        idx = [int(i) for i in indices]
        return SliceSet(self.images[idx], self.labels[idx], [self.names[i] for i in idx])

    @staticmethod
    def concat(sets: Sequence[SliceSet]) -> SliceSet:
        """All slices of ``sets``, in order."""
        return SliceSet(
            torch.cat([s.images for s in sets]), torch.cat([s.labels for s in sets]), [n for s in sets for n in s.names]
        )

    def gan_tensor(self, num_classes: int) -> torch.Tensor:
        """Image channels + one-hot tumour channels mapped to [-1, 1] ``(N, C + K - 1, S, S)`` (the generators'
        space)."""
        to_gan = ToGANTensor(num_classes)
        return torch.stack([to_gan(img, lab) for img, lab in zip(self.images, self.labels)])


def tumour_slices(case: Mapping[str, Any], size: int, min_area: int = 1) -> SliceSet:
    """The tumour-bearing axial slices of a loaded case on the segmentation networks' grid (:func:`case_slices`).

    Args:
        case: :func:`~monai_singanseg.data.load_case` output (image in source units, label class indices).
        size: output side.
        min_area: minimum tumour pixels of a slice (at the working size).
    """
    cs = case_slices(case, size)
    keep = [p for p in cs.tumour() if int((cs.labels[p] > 0).sum()) >= min_area]
    return SliceSet(cs.images[keep], cs.labels[keep], cs.names(keep))


def split_for_validation(cs: CaseSlices, every: int) -> tuple[SliceSet, SliceSet]:
    """A case's brain slices -> ``(training, validation)``: every ``every``-th slice (from the middle one of the
    first ``every``) is held in for validation."""
    positions = range(len(cs.indices))
    val = [p for p in positions if p % every == every // 2]
    train = [p for p in positions if p % every != every // 2]
    return (
        SliceSet(cs.images[train], cs.labels[train], cs.names(train)),
        SliceSet(cs.images[val], cs.labels[val], cs.names(val)),
    )


def style_set_name(base: str, method: str) -> str:
    """Name of the training set ``base`` with its SinGAN-Seg samples style-transferred by ``method``."""
    return f"{base}+style:{method}"


def training_set_names(k_values: Sequence[int], style_methods: Sequence[str] = ()) -> list[str]:
    """Every training set of the experiment, in report order."""
    styled = [style_set_name("singanseg", m) for m in style_methods]
    small = [
        n
        for k in k_values
        for n in (f"real{k}", f"real{k}+singanseg", *(style_set_name(f"real{k}+singanseg", m) for m in style_methods))
    ]
    return ["real", "singanseg", *styled, "pix2pix", "synthetic", "real+synthetic"] + small


def _slice_number(name: str) -> int:
    return int(name.rsplit(":", 1)[1])


# ----------------------------------------------------------------------------------------- generators
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


def _synthetic_slices(folders: Sequence[Path], settings: ExperimentSettings, tumour_only: bool = False) -> SliceSet:
    """The synthetic cases listed in each folder's ``datalist.json`` as training slices, on the segmentation grid and
    scaled as the real slices are (:func:`case_slices`): every brain slice (a SinGAN-Seg case is one slice, kept
    whether or not its sample holds tumour), or only the tumour slices (pix2pix volumes)."""
    sets = []
    for folder in folders:
        for item in load_decathlon_datalist(str(folder / "datalist.json"), data_list_key="training"):
            case = load_case(item, BRATS_LABEL_VALUES, 3)
            if tumour_only:
                sets.append(tumour_slices(case, settings.size))
            else:
                cs = case_slices(case, settings.size)
                sets.append(SliceSet(cs.images, cs.labels, cs.names()))
    return SliceSet.concat(sets)


def _evenly(slices: SliceSet, keep: int) -> SliceSet:
    """At most ``keep`` slices, evenly spaced over the set."""
    return slices.subset(torch.linspace(0, len(slices) - 1, min(len(slices), keep)).round().long().tolist())


def _singanseg_dataset(settings: ExperimentSettings, slices_per_case: int | None) -> DatasetSettings:
    return DatasetSettings(
        slices_per_case=slices_per_case,
        samples_per_model=settings.samples_per_model,
        max_size=settings.size,
        label_map=settings.label_map,
        channel_names=settings.channel_names,
        training=SinGANSegSettings(iters=settings.singan_iters),
        options=SinGANSegSynthesisOptions(start_scale=settings.singan_start_scale),
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
    options = SinGANSegSynthesisOptions(
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
        synthesise(
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


# --------------------------------------------------------------------------------------- quality
def synthetic_quality(
    synthetic: SliceSet,
    real_train: SliceSet,
    num_classes: int,
    settings: ExperimentSettings,
    seed: int = 0,
    held_out_max: float | None = None,
) -> dict[str, Any]:
    """Fidelity, diversity, memorisation and label statistics of a synthetic set against the real training slices.

    Memorisation compares every sample with ALL real training slices (image + label channels); samples
    whose nearest-neighbour correlation exceeds ``settings.memorisation_threshold`` are listed. With
    ``held_out_max`` (the highest nearest-neighbour correlation of an unseen patient's slices against the same
    training slices), ``memorisation["share_closer_than_held_out"]`` is the share of samples closer to a training
    slice than any slice of that other patient is.
    """
    syn, ref = synthetic.gan_tensor(num_classes), real_train.gan_tensor(num_classes)
    nearest = memorisation_scores(syn, ref)
    flags = flag_memorised(nearest, settings.memorisation_threshold)
    n_div = settings.diversity_samples
    return {
        "num_samples": len(synthetic),
        "swd": sliced_wasserstein_distance(ref, syn, num_projections=settings.swd_projections, seed=seed),
        "diversity": diversity(syn[:n_div]) if len(synthetic) > 1 else math.nan,
        "real_diversity": diversity(ref[:n_div]) if len(real_train) > 1 else math.nan,
        "memorisation": {
            "threshold": settings.memorisation_threshold,
            "mean": float(nearest.scores.mean()),
            "max": float(nearest.scores.max()),
            "num_flagged": int(flags.sum()),
            "share_closer_than_held_out": None
            if held_out_max is None
            else float((nearest.scores > held_out_max).float().mean()),
            "flagged": [
                {
                    "sample": synthetic.names[i],
                    "nearest_real": real_train.names[int(nearest.indices[i])],
                    "score": float(nearest.scores[i]),
                }
                for i in torch.nonzero(flags).flatten().tolist()
            ],
        },
        "labels": compare_label_statistics(synthetic.labels, real_train.labels, num_classes),
    }


# -------------------------------------------------------------------------------------------- runs
def mean_sd(values: Sequence[float | None]) -> dict[str, float]:
    """Mean, sample sd and count of the finite values (None/NaN: undefined scores, skipped)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]  # null: undefined in a reloaded report
    if not finite:
        return {"mean": math.nan, "sd": math.nan, "n": 0}
    mean = sum(finite) / len(finite)
    sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) if len(finite) > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": len(finite)}


def summarise(runs: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per region and metric: mean, sample sd and count over runs
    (:func:`~monai_singanseg.evaluation.scoring.case_scores`
    results).
    """
    if not runs:
        return {}
    return {region: {m: mean_sd([r[region][m] for r in runs]) for m in SCORE_NAMES} for region in runs[0]}


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
    label_values = BRATS_LABEL_VALUES
    num_classes = len(label_values)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    train_cases = [load_case(it, label_values, 3, settings.label_map) for it in train_items]
    items = [{**it, "name": c["name"]} for it, c in zip(train_items, train_cases)]
    splits = [split_for_validation(case_slices(c, settings.size), settings.validation_every) for c in train_cases]
    real = SliceSet.concat([train for train, _ in splits])
    validation = SliceSet.concat([val for _, val in splits])
    test_case = load_case(test_item, label_values, 3, settings.label_map)
    test = case_slices(test_case, settings.size)
    tumour = [i for i in range(len(real)) if bool((real.labels[i] > 0).any())]
    real_tumour = real.subset(tumour)
    # the small-data rows: k slices of ONE training case (spread over its tumour), as synthesize would pick them
    small_case = train_cases[0]["name"]
    own = [i for i in tumour if real.names[i].rsplit(":", 1)[0] == small_case]
    areas = [float((real.labels[i] > 0).sum()) for i in own]
    order = [own[p] for p in spread_order([_slice_number(real.names[i]) for i in own], areas, settings.pool_fraction)]
    timing["load"] = time.perf_counter() - t0
    log(
        f"  {len(real)} real training slices ({len(tumour)} with tumour), {len(validation)} validation slices; "
        f"test case {test.name} ({len(test.indices)} brain slices)"
    )

    t0 = time.perf_counter()
    fold_dir = model_dir / prefix
    log(f"  synthesize: SinGAN-Seg, {settings.singan_slices} model(s) per training case -> {fold_dir / 'singanseg'}")
    manifest = _synthesize(
        items, fold_dir / "singanseg", _singanseg_dataset(settings, settings.singan_slices), device, overwrite
    )
    small_slices = [_slice_number(real.names[i]) for i in order[: max(settings.k_values, default=1)]]
    small_item = {**items[0], "slices": small_slices}
    log(f"  synthesize: SinGAN-Seg on the small-data slices {small_slices} of {small_case}")
    small_manifest = _synthesize(
        [small_item], fold_dir / "small_singanseg", _singanseg_dataset(settings, None), device, overwrite
    )
    timing["singanseg"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    log(
        f"  synthesize: pix2pix on {len(items)} case(s), {settings.pix2pix_epochs} epochs, {settings.pix2pix_volumes} "
        "render(s) per case"
    )
    p2p = DatasetSettings(
        generator="pix2pix",
        per_case=settings.pix2pix_volumes,
        label_map=settings.label_map,
        channel_names=settings.channel_names,
        pix2pix=Pix2PixSettings(size=settings.size, epochs=settings.pix2pix_epochs),
    )
    _synthesize(items, fold_dir / "pix2pix", p2p, device, overwrite)
    timing["pix2pix"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    synthetic = {
        "singanseg": _synthetic_slices([fold_dir / "singanseg"], settings),
        "pix2pix": _evenly(
            _synthetic_slices([fold_dir / "pix2pix"], settings, tumour_only=True), settings.pix2pix_samples
        ),
    }
    synthetic["synthetic"] = SliceSet.concat([synthetic["singanseg"], synthetic["pix2pix"]])
    small_ids = [e["id"] for e in small_manifest["entries"]]  # in slice order; model of slice z: <case>_z<z>
    by_slice = {int(e["slice"]): e for e in small_manifest["entries"]}

    def small_synthetic(k: int, style: str | None = None) -> SliceSet:
        wanted = [by_slice[z]["id"] for z in small_slices[:k]]
        if style is None:
            return _synthetic_slices([fold_dir / "small_singanseg" / "cases" / w for w in wanted], settings)
        return _synthetic_slices([fold_dir / f"small_singanseg+style-{style}" / w for w in wanted], settings)

    timing["loading_synthetic"] = time.perf_counter() - t0
    for method in settings.style_methods:
        t0 = time.perf_counter()
        log(f"  style transfer '{method}' of the SinGAN-Seg samples")
        ids = [e["id"] for e in manifest["entries"]]
        folders = _styled(
            fold_dir / "singanseg", ids, method, fold_dir / f"singanseg+style-{method}", settings, device, overwrite
        )
        synthetic[style_set_name("singanseg", method)] = _synthetic_slices(folders, settings)
        _styled(
            fold_dir / "small_singanseg",
            small_ids,
            method,
            fold_dir / f"small_singanseg+style-{method}",
            settings,
            device,
            overwrite,
        )
        timing[f"style:{method}"] = time.perf_counter() - t0
    log(f"  {len(synthetic['singanseg'])} SinGAN-Seg and {len(synthetic['pix2pix'])} pix2pix slices; scoring them")

    t0 = time.perf_counter()
    test_tumour = test.tumour()
    held_out = memorisation_scores(
        SliceSet(test.images[test_tumour], test.labels[test_tumour], test.names(test_tumour)).gan_tensor(num_classes),
        real_tumour.gan_tensor(num_classes),
    ).scores
    baseline = float(held_out.max())
    quality: dict[str, Any] = {
        name: synthetic_quality(s, real_tumour, num_classes, settings, held_out_max=baseline)
        for name, s in synthetic.items()
    }
    quality["held_out_real_baseline"] = {"memorisation_mean": float(held_out.mean()), "memorisation_max": baseline}
    timing["quality"] = time.perf_counter() - t0

    sets: dict[str, SliceSet] = {
        "real": real,
        **synthetic,
        "real+synthetic": SliceSet.concat([real, synthetic["synthetic"]]),
    }
    for k in settings.k_values:
        small = real.subset(order[:k])
        sets[f"real{k}"] = small
        sets[f"real{k}+singanseg"] = SliceSet.concat([small, small_synthetic(k)])
        for method in settings.style_methods:
            sets[style_set_name(f"real{k}+singanseg", method)] = SliceSet.concat([small, small_synthetic(k, method)])
    known = training_set_names(settings.k_values, settings.style_methods)
    wanted = [n for n in known if settings.training_sets is None or n in settings.training_sets]
    runs: dict[str, Any] = {}
    t0 = time.perf_counter()
    jobs = [(name, seed) for name in wanted for seed in settings.seeds]
    bar = tqdm(jobs, desc=f"{prefix} segmentation runs", disable=not progress)
    for name, seed in bar:
        bar.set_postfix_str(f"{name} seed {seed}", refresh=True)
        net, info = train_segmentation(
            sets[name].images,
            sets[name].labels,
            num_classes,
            settings.segmentation,
            seed,
            device,
            progress,
            desc=name,
            validation=(validation.images, validation.labels),
        )
        scores = score_case(net, test, label_values)
        entry = runs.setdefault(name, {"num_slices": len(sets[name]), "runs": {}})
        entry["runs"][str(seed)] = {
            **scores,
            "steps": info["steps"],
            "best_step": info["best_step"],
            "final_loss": info["losses"][-1],
        }
        log(
            f"  {name:<22} seed {seed}: WT Dice {scores['WT']['dice']:.3f}, HD95 {scores['WT']['hd95']:.1f} mm "
            f"(mean of regions {scores['mean']['dice']:.3f}; {info['steps']} steps, best at {info['best_step']})"
        )
    for entry in runs.values():
        entry["summary"] = summarise([_region_scores(run) for run in entry["runs"].values()])
    timing["segmentation"] = time.perf_counter() - t0
    report = {
        "train_cases": [c["name"] for c in train_cases],
        "test_case": test.name,
        "num_real_train": len(real),
        "num_real_train_tumour": len(tumour),
        "num_validation": len(validation),
        "num_test": len(test.indices),
        "test_regions_present": {
            r: not v["empty_reference"]
            for r, v in case_scores(test.target, test.target, label_values).items()
            if r != "mean"
        },
        "small_data_slices": [real.names[i] for i in order[: max(settings.k_values, default=0)]],
        "singanseg_slices": [f"{e['case']}:{e['slice']}" for e in manifest["entries"]],
        "generators": {name: str(fold_dir / name) for name in ("singanseg", "small_singanseg", "pix2pix")},
        "quality": quality,
        "runs": runs,
        "seconds": timing,
    }
    return report, {"real": real_tumour, **{name: s for name, s in synthetic.items() if name != "synthetic"}}


def _region_scores(run: Mapping[str, Any]) -> dict[str, Any]:
    """A run's per-region scores (without its training figures)."""
    return {r: v for r, v in run.items() if isinstance(v, Mapping)}


def _channel_names(case: Mapping[str, Any], item: Mapping[str, Any], settings: ExperimentSettings) -> list[str]:
    if settings.channel_names is not None:
        return list(settings.channel_names)
    files = item["image"] if isinstance(item["image"], (list, tuple)) else [item["image"]]
    return default_channel_names(int(case["image"].shape[0]), len(files), False)


def summarise_folds(folds: Sequence[Mapping[str, Any]], settings: ExperimentSettings) -> dict[str, Any]:
    """Per training set, :func:`summarise` over every fold's runs (folds from one or several reports)."""
    names = [
        n
        for n in training_set_names(settings.k_values, settings.style_methods)
        if any(n in fold["runs"] for fold in folds)
    ]
    return {
        name: summarise(
            [_region_scores(run) for fold in folds for run in fold["runs"].get(name, {}).get("runs", {}).values()]
        )
        for name in names
    }


def paired_values(
    folds: Sequence[Mapping[str, Any]], name: str, region: str = "WT", metric: str = "dice"
) -> dict[tuple[int, str], float]:
    """``{(fold, seed): score}`` of one training set: one value per (fold, seed, test case), for paired statistics."""
    out = {}
    for f, fold in enumerate(folds):
        for seed, run in fold["runs"].get(name, {}).get("runs", {}).items():
            out[(f, seed)] = float(run[region][metric])
    return out


def paired_ratio(
    folds: Sequence[Mapping[str, Any]], numerator: str, denominator: str, region: str = "WT"
) -> dict[str, Any] | None:
    """Bootstrap 95 % interval of ``mean Dice(numerator) / mean Dice(denominator)`` over paired runs (same fold, seed
    and test case); None when fewer than 2 pairs exist."""
    a, b = paired_values(folds, numerator, region), paired_values(folds, denominator, region)
    keys = sorted(set(a) & set(b))
    if len(keys) < 2 or sum(b[k] for k in keys) <= 0:
        return None
    interval = paired_ratio_ci([a[k] for k in keys], [b[k] for k in keys])
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high, "n": interval.n}


def _verdict(ci: Mapping[str, Any] | None, target: float) -> str:
    """Where an interval of :func:`paired_ratio` lies against ``target`` (and against 1, when the target is not 1:
    whether the added data helps at all): e.g. ``"unresolved against 1.3; above 1"``."""
    if ci is None:
        return "unresolved (fewer than 2 paired runs)"
    interval = Interval(ci["estimate"], ci["low"], ci["high"], ci["n"])
    sides = [(target, interval.resolved_against(target))] + (
        [(1.0, interval.resolved_against(1.0))] if target != 1.0 else []
    )
    return "; ".join(
        f"{side} {value:g}" if side != "unresolved" else f"unresolved against {value:g}" for value, side in sides
    )


def headline_ratios(k_values: Sequence[int], style_methods: Sequence[str] = ()) -> dict[str, tuple[str, str, float]]:
    """The compared pairs of training sets: ``{name: (numerator set, denominator set, target ratio)}``.

    Targets: synthetic only reaches 0.9 of real; k real slices + their SinGAN-Seg samples reach 1.3 x k real slices
    alone; adding synthetic data to all real slices, and style transfer, should do better than without (> 1).
    """
    ratios = {
        "synthetic/real": ("synthetic", "real", 0.9),
        "real+synthetic/real": ("real+synthetic", "real", 1.0),
    }
    for k in sorted(k_values):
        ratios[f"real{k}+singanseg/real{k}"] = (f"real{k}+singanseg", f"real{k}", 1.3)
    for m in style_methods:
        ratios[f"singanseg+style:{m}/singanseg"] = (style_set_name("singanseg", m), "singanseg", 1.0)
        for k in sorted(k_values):
            styled = style_set_name(f"real{k}+singanseg", m)
            ratios[f"{styled}/real{k}+singanseg"] = (styled, f"real{k}+singanseg", 1.0)
    return ratios


def headline(
    summary: Mapping[str, Any],
    k_values: Sequence[int] = (5,),
    style_methods: Sequence[str] = (),
    region: str = "WT",
    folds: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The headline: real-only ``region`` Dice and the ratios of :func:`headline_ratios` (mean Dice over folds and
    seeds), each with its paired bootstrap 95 % interval and verdict against its target.

    Returns:
        ``{"region", "k" (the smallest k), "dice_real", "target_real_dice", "ratios": {name: {"numerator",
        "denominator", "dice_numerator", "dice_denominator", "ratio", "target", "interval", "verdict"}}}``; a ratio
        whose training sets were not run is left out; ``interval`` is None without ``folds`` or with fewer than 2
        paired runs (same fold, seed and test case), and the verdict is then "unresolved".
    """

    def dice(name: str) -> float:
        return float(summary.get(name, {}).get(region, {}).get("dice", {}).get("mean", math.nan))

    ratios: dict[str, Any] = {}
    for name, (num, den, target) in headline_ratios(k_values, style_methods).items():
        if num not in summary or den not in summary:
            continue
        a, b = dice(num), dice(den)
        ci = paired_ratio(folds, num, den, region) if folds is not None else None
        ratios[name] = {
            "numerator": num,
            "denominator": den,
            "dice_numerator": a,
            "dice_denominator": b,
            "ratio": a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan,
            "target": target,
            "interval": ci,
            "verdict": _verdict(ci, target),
        }
    return {
        "region": region,
        "k": min(k_values, default=0),
        "dice_real": dice("real"),
        "target_real_dice": 0.75,
        "ratios": ratios,
    }


def check_cases(
    items: Sequence[Mapping[str, Any]],
    label_values: Sequence[int],
    progress: bool = True,
    label_map: Mapping[int, int] | None = None,
) -> None:
    """Load every case once and check it can take part (a label with tumour, the same channels as the others).

    Raises:
        ValueError: naming every case that cannot, and why.
    """
    problems, channels = [], {}
    for item in tqdm(items, desc="checking cases", leave=False, disable=not progress):
        name = str(item.get("name", item.get("label", "case")))
        try:
            case = load_case(item, label_values, spatial_ndim=3, label_map=label_map)
        except (ValueError, OSError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if "label" not in case or not bool((case["label"] > 0).any()):
            problems.append(f"{name}: no tumour in its label (every case is a test case once)")
        channels[name] = int(case["image"].shape[0])
    if len(set(channels.values())) > 1:
        problems.append(f"the cases have different numbers of image channels: {channels}")
    if problems:
        raise ValueError(f"{len(problems)} case problem(s), nothing was trained:\n  " + "\n  ".join(problems))


def planned_outputs(out_dir: str | os.PathLike, num_folds: int, settings: ExperimentSettings) -> list[Path]:
    """Every report file :func:`run_experiment` writes and the run record of every synthetic dataset (checked free
    before any work starts)."""
    out = Path(out_dir)
    from monai_singanseg.evaluation.report import report_files

    datasets = [
        out / "models" / f"fold{f}" / name / "synthesize.json"
        for f in range(num_folds)
        for name in ("singanseg", "small_singanseg", "pix2pix")
    ]
    return report_files(out, num_folds) + datasets


def run_experiment(
    items: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike,
    settings: ExperimentSettings | None = None,
    device: Any = None,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Leave-one-case-out downstream experiment on BraTS-named cases; writes the report folder.

    Args:
        items: datalist entries (at least 2 labelled cases).
        out_dir: report folder (``report.json``, ``report.md``, PNG plots, sample grids, ``models/``).
        settings: the protocol's settings.
        device: torch device (None: CUDA if available).
        overwrite: replace existing outputs.
        progress: tqdm bars.
        log: progress messages.

    Returns:
        The report dictionary (also written as ``report.json``).

    Raises:
        ValueError: fewer than 2 cases.
        RuntimeError: the segmentation network cannot be built (``swinunetr`` without ``einops``).
        OutputExistsError: an output exists and ``overwrite`` is False (raised before any work).
    """
    from monai_singanseg.evaluation.report import write_report

    settings = settings or ExperimentSettings()
    if len(items) < 2:
        raise ValueError(f"the downstream experiment needs at least 2 labelled cases (one held out), got {len(items)}")
    device = resolve_device(device)
    seg = settings.segmentation
    build_segmentation_network(
        seg.network, 4, len(BRATS_LABEL_VALUES), seg.features
    )  # e.g. swinunetr without einops: fail now
    for method in settings.style_methods:  # e.g. vgg19 without its weights file: fail now
        StyleTransfer(method=method, weights_path=settings.style_weights, steps=0)
    out = Path(out_dir)
    num_folds = len(items) if settings.max_folds is None else min(settings.max_folds, len(items))
    check_cases(
        items, BRATS_LABEL_VALUES, progress, settings.label_map
    )  # every case, before anything is trained or written
    check_outputs_free(planned_outputs(out, num_folds, settings), overwrite)
    (out / "models").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    folds, grids = [], []
    for f, test_item in enumerate(items[:num_folds]):
        train_items = [it for i, it in enumerate(items) if i != f]
        log(f"[fold {f + 1}/{num_folds}] test case {test_item.get('name', test_item['label'])}")
        fold, slice_sets = run_fold(
            train_items, test_item, out / "models", f"fold{f}", settings, device, overwrite, progress, log
        )
        folds.append(fold)
        grids.append(slice_sets)
    summary = summarise_folds(folds, settings)
    report = {
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
