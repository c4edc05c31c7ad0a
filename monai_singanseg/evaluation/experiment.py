"""Downstream utility: do SinGAN-Seg / pix2pix samples train a segmentation network as well as real data?

Protocol (one fold per case held out; with two cases: train on one, test on the other, then swap):

1. **Real slices.** Every case goes through the product's data path: ``load_case`` ->
   ``ExtractTumourSlicesd`` (all tumour-bearing axial slices) -> ``SquareForegroundCropd`` (brain crop,
   ``size`` x ``size``) -> ``IntensityToTanhRange`` (per channel to [-1, 1] inside the brain).
2. **Small-data subsets.** The training slices whose tumour covers at least ``pool_fraction`` of the
   largest tumour section are ordered by farthest-point sampling along the axial axis (start: the
   largest tumour slice), so the first ``k`` slices are spread over the tumour; ``real{k}`` uses them.
3. **Generators** see only the training case(s): one SinGAN-Seg model per slice of the ``k = 5`` subset
   (``singan_slices``), sampled from ``singan_start_scale``; one pix2pix model on every tumour slice,
   rendering randomly deformed label volumes (``RandDeformCondition``) whose tumour slices go through
   the same data path as the real ones.
4. **Training sets**: ``real`` (all training slices), ``singanseg``, ``pix2pix``, ``synthetic`` (both),
   ``real+synthetic``, and for every ``k``: ``real{k}`` and ``real{k}+singanseg``.
5. **Segmentation**: the same network and number of steps for every set and seed
   (:mod:`~monai_singanseg.evaluation.segmentation`); tested on every tumour slice of the held-out case;
   Dice/IoU/precision/recall per BraTS region (:mod:`~monai_singanseg.evaluation.regions`).
6. **Synthetic-set quality**: SWD against the real training slices, diversity (synthetic and real),
   memorisation (nearest-neighbour correlation against ALL real training slices, flagged above a
   threshold), label statistics; the held-out slices' own nearest-neighbour scores as a baseline.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from monai_singanseg.data import load_case
from monai_singanseg.device import resolve_device
from monai_singanseg.engines.pix2pix import Pix2PixSettings, train_pix2pix
from monai_singanseg.engines.singan import SinGANSegSettings, SinGANSegTrainer
from monai_singanseg.metrics.diversity import diversity
from monai_singanseg.metrics.label_stats import compare_label_statistics
from monai_singanseg.metrics.memorisation import flag_memorised, memorisation_scores
from monai_singanseg.evaluation.scoring import SCORE_NAMES, case_scores, regions_for
from monai_singanseg.evaluation.statistics import paired_ratio_ci
from monai_singanseg.evaluation.volumes import CaseSlices, case_slices, score_case
from monai_singanseg.evaluation.segmentation import (
    SegmentationSettings,
    build_segmentation_network,
    train_segmentation,
)
from monai_singanseg.metrics.swd import sliced_wasserstein_distance
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.synthesis import (
    SinGANSegSynthesisOptions,
    default_channel_names,
    pix2pix_synthesis,
    pix2pix_training_slices,
    singanseg_synthesis,
    singanseg_training_input,
)
from monai_singanseg.transforms.gan import ToGANTensor
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES, LabelToIndex
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
        singan_slices: SinGAN-Seg models, one per slice of the first ``singan_slices`` small-data slices.
        singan_iters: iterations per SinGAN-Seg scale (None: the default schedule's).
        singan_samples: SinGAN-Seg samples in all (spread over the models).
        singan_start_scale: scale where sampling noise starts (higher = closer to the training slice); 0, the
            product's default.
        style_methods: style-transfer methods compared on the SinGAN-Seg samples (each adds the training sets
            ``singanseg+style:M`` and ``real{k}+singanseg+style:M``; the style step is the product's: the style
            image is the model's reconstruction of its training slice); see
            :data:`~monai_singanseg.transforms.style.STYLE_METHODS`.
        style_steps: optimisation steps of the network-based style methods.
        style_weights: VGG-19 weights file for the ``vgg19`` style methods.
        pix2pix_epochs: pix2pix training epochs.
        pix2pix_volumes: deformed label volumes rendered by pix2pix.
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
    singan_samples: int = 100
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
        """A CPU budget of minutes: 64 px, one seed, short generator and segmentation training."""
        base: dict[str, Any] = dict(
            size=64, seeds=(0,), singan_slices=2, singan_iters=20, singan_samples=40, pix2pix_epochs=4,
            pix2pix_volumes=1, pix2pix_samples=40,
            segmentation=SegmentationSettings(features=8, steps=80, val_every=20, patience=2),
        )  # fmt: skip
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
        """Image channels + one-hot tumour channels mapped to [-1, 1] ``(N, C + K - 1, S, S)`` (the generators' space)."""
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
    return (SliceSet(cs.images[train], cs.labels[train], cs.names(train)),
            SliceSet(cs.images[val], cs.labels[val], cs.names(val)))  # fmt: skip


def style_set_name(base: str, method: str) -> str:
    """Name of the training set ``base`` with its SinGAN-Seg samples style-transferred by ``method``."""
    return f"{base}+style:{method}"


def training_set_names(k_values: Sequence[int], style_methods: Sequence[str] = ()) -> list[str]:
    """Every training set of the experiment, in report order."""
    styled = [style_set_name("singanseg", m) for m in style_methods]
    small = [
        n for k in k_values
        for n in (f"real{k}", f"real{k}+singanseg", *(style_set_name(f"real{k}+singanseg", m) for m in style_methods))
    ]  # fmt: skip
    return ["real", "singanseg", *styled, "pix2pix", "synthetic", "real+synthetic"] + small


def _slice_number(name: str) -> int:
    return int(name.rsplit(":", 1)[1])


# ----------------------------------------------------------------------------------------- generators
def _train_singanseg(
    items: Sequence[Mapping[str, Any]], real: SliceSet, positions: Sequence[int], model_dir: Path, prefix: str,
    settings: ExperimentSettings, device: Any, overwrite: bool, log: Callable[[str], None], progress: bool = True,
) -> list[Path]:  # fmt: skip
    """One SinGAN-Seg model per chosen real slice (through the product's prepare step)."""
    by_name = {str(it.get("name")): it for it in items}
    paths = []
    gan_settings = SinGANSegSettings(iters=settings.singan_iters)
    for j, pos in enumerate(positions):
        case_name, index = real.names[pos].rsplit(":", 1)
        item = by_name[case_name]
        out = model_dir / f"{prefix}_singanseg_{j}.pt"
        log(f"  SinGAN-Seg model {j + 1}/{len(positions)} on {case_name} slice {index} -> {out.name}")
        gan, meta = singanseg_training_input(item["image"], item["label"], int(index), max_size=settings.size,
                                             label_map=settings.label_map)  # fmt: skip
        SinGANSegTrainer(gan_settings, device=device, progress=progress).fit(gan, out, meta, overwrite=overwrite)
        paths.append(out)
    return paths


def _sample_singanseg(
    models: Sequence[Path], settings: ExperimentSettings, seed: int, device: Any, style: str = "none"
) -> SliceSet:
    """Samples of every model through the product's synthesis pipeline, in GAN space (no writer, no finish)."""
    per_model = math.ceil(settings.singan_samples / len(models))
    images, labels, names = [], [], []
    for j, path in enumerate(models):
        options = SinGANSegSynthesisOptions(
            start_scale=settings.singan_start_scale, style=style, style_steps=settings.style_steps,
            style_weights=settings.style_weights,
        )
        pipeline = singanseg_synthesis(path, None, options, finish=False, device=device)
        pipeline.set_random_state(seed + 1000 * j)
        for i in range(per_model):
            d = pipeline({})
            images.append(torch.as_tensor(d["image"]).as_subclass(torch.Tensor).float().cpu())
            labels.append(torch.as_tensor(d["label"]).as_subclass(torch.Tensor).long().cpu())
            names.append(f"singanseg{j}:{i}")
    out = SliceSet(torch.stack(images), torch.stack(labels), names)
    return out.subset(range(min(len(out), settings.singan_samples)))


def _render_pix2pix(
    model: Path, cases: Sequence[Mapping[str, Any]], settings: ExperimentSettings, seed: int, device: Any
) -> SliceSet:
    """Render deformed label volumes of the training cases (the product's pipeline) and cut their tumour slices."""
    pipeline = pix2pix_synthesis(model, None, deform=True, device=device)
    to_index = LabelToIndex(pipeline.label_values)
    sets = []
    for v in range(settings.pix2pix_volumes):
        case = cases[v % len(cases)]
        pipeline.set_random_state(seed + v)
        d = pipeline({"image": case["image"], "label": case["label"]})
        synthetic_case = {"image": d["image"], "label": to_index(d["label"]), "name": f"pix2pix{v}"}
        sets.append(tumour_slices(synthetic_case, settings.size))
    rendered = SliceSet.concat(sets)
    keep = torch.linspace(0, len(rendered) - 1, min(len(rendered), settings.pix2pix_samples)).round().long().tolist()
    return rendered.subset(keep)


# --------------------------------------------------------------------------------------- quality
def synthetic_quality(
    synthetic: SliceSet, real_train: SliceSet, num_classes: int, settings: ExperimentSettings, seed: int = 0
) -> dict[str, Any]:
    """Fidelity, diversity, memorisation and label statistics of a synthetic set against the real training slices.

    Memorisation compares every sample with ALL real training slices (image + label channels); samples
    whose nearest-neighbour correlation exceeds ``settings.memorisation_threshold`` are listed.
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
            "flagged": [
                {"sample": synthetic.names[i], "nearest_real": real_train.names[int(nearest.indices[i])], "score": float(nearest.scores[i])}
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
    """Per region and metric: mean, sample sd and count over runs (:func:`~monai_singanseg.evaluation.scoring.case_scores` results)."""
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
    areas = [float((real.labels[i] > 0).sum()) for i in tumour]
    order = [tumour[p] for p in spread_order([_slice_number(real.names[i]) for i in tumour], areas, settings.pool_fraction)]
    timing["load"] = time.perf_counter() - t0
    log(f"  {len(real)} real training slices ({len(tumour)} with tumour), {len(validation)} validation slices; "
        f"test case {test.name} ({len(test.indices)} brain slices)")  # fmt: skip

    t0 = time.perf_counter()
    chosen = order[: settings.singan_slices]
    models = _train_singanseg(items, real, chosen, model_dir, prefix, settings, device, overwrite, log, progress)
    timing["singanseg_training"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p2p_path = model_dir / f"{prefix}_pix2pix.pt"
    log(f"  pix2pix on {len(items)} case(s), {settings.pix2pix_epochs} epochs -> {p2p_path.name}")
    p2p_settings = Pix2PixSettings(size=settings.size, epochs=settings.pix2pix_epochs)
    channels = _channel_names(train_cases[0], train_items[0], settings)
    p2p_data = pix2pix_training_slices(items, p2p_settings, label_values, channels, progress=progress, label_map=settings.label_map)
    train_pix2pix(p2p_data, p2p_path, p2p_settings, device=device, overwrite=overwrite, progress=progress)
    timing["pix2pix_training"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    synthetic = {"singanseg": _sample_singanseg(models, settings, 0, device), "pix2pix": _render_pix2pix(p2p_path, train_cases, settings, 0, device)}
    synthetic["synthetic"] = SliceSet.concat([synthetic["singanseg"], synthetic["pix2pix"]])
    timing["sampling"] = time.perf_counter() - t0
    for method in settings.style_methods:
        t0 = time.perf_counter()
        log(f"  style transfer '{method}' of the SinGAN-Seg samples")
        synthetic[style_set_name("singanseg", method)] = _sample_singanseg(models, settings, 0, device, style=method)
        timing[f"style:{method}"] = time.perf_counter() - t0
    log(f"  {len(synthetic['singanseg'])} SinGAN-Seg and {len(synthetic['pix2pix'])} pix2pix samples; scoring them")

    t0 = time.perf_counter()
    quality = {name: synthetic_quality(s, real_tumour, num_classes, settings) for name, s in synthetic.items()}
    test_tumour = test.tumour()
    held_out = memorisation_scores(
        SliceSet(test.images[test_tumour], test.labels[test_tumour], test.names(test_tumour)).gan_tensor(num_classes),
        real_tumour.gan_tensor(num_classes),
    ).scores
    quality["held_out_real_baseline"] = {"memorisation_mean": float(held_out.mean()), "memorisation_max": float(held_out.max())}
    timing["quality"] = time.perf_counter() - t0

    sets: dict[str, SliceSet] = {"real": real, **synthetic, "real+synthetic": SliceSet.concat([real, synthetic["synthetic"]])}
    for k in settings.k_values:
        small = real.subset(order[:k])
        sets[f"real{k}"] = small
        sets[f"real{k}+singanseg"] = SliceSet.concat([small, synthetic["singanseg"]])
        for method in settings.style_methods:
            name = style_set_name("singanseg", method)
            sets[style_set_name(f"real{k}+singanseg", method)] = SliceSet.concat([small, synthetic[name]])
    known = training_set_names(settings.k_values, settings.style_methods)
    wanted = [n for n in known if settings.training_sets is None or n in settings.training_sets]
    runs: dict[str, Any] = {}
    t0 = time.perf_counter()
    jobs = [(name, seed) for name in wanted for seed in settings.seeds]
    bar = tqdm(jobs, desc=f"{prefix} segmentation runs", disable=not progress)
    for name, seed in bar:
        bar.set_postfix_str(f"{name} seed {seed}", refresh=True)
        net, info = train_segmentation(
            sets[name].images, sets[name].labels, num_classes, settings.segmentation, seed, device, progress, desc=name,
            validation=(validation.images, validation.labels),
        )  # fmt: skip
        scores = score_case(net, test, label_values)
        entry = runs.setdefault(name, {"num_slices": len(sets[name]), "runs": {}})
        entry["runs"][str(seed)] = {**scores, "steps": info["steps"], "best_step": info["best_step"],
                                    "final_loss": info["losses"][-1]}  # fmt: skip
        log(f"  {name:<22} seed {seed}: WT Dice {scores['WT']['dice']:.3f}, HD95 {scores['WT']['hd95']:.1f} mm "
            f"(mean of regions {scores['mean']['dice']:.3f}; {info['steps']} steps, best at {info['best_step']})")  # fmt: skip
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
        "test_regions_present": {r: not v["empty_reference"] for r, v in case_scores(test.target, test.target, label_values).items() if r != "mean"},
        "small_data_slices": [real.names[i] for i in order[: max(settings.k_values, default=0)]],
        "singanseg_slices": [real.names[i] for i in order[: settings.singan_slices]],
        "generators": {"singanseg": [str(p) for p in models], "pix2pix": str(p2p_path)},
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
    names = [n for n in training_set_names(settings.k_values, settings.style_methods) if any(n in fold["runs"] for fold in folds)]
    return {
        name: summarise(
            [_region_scores(run) for fold in folds for run in fold["runs"].get(name, {}).get("runs", {}).values()]
        )
        for name in names
    }


def paired_values(folds: Sequence[Mapping[str, Any]], name: str, region: str = "WT", metric: str = "dice") -> dict[tuple[int, str], float]:
    """``{(fold, seed): score}`` of one training set: one value per (fold, seed, test case), for paired statistics."""
    out = {}
    for f, fold in enumerate(folds):
        for seed, run in fold["runs"].get(name, {}).get("runs", {}).items():
            out[(f, seed)] = float(run[region][metric])
    return out


def paired_ratio(folds: Sequence[Mapping[str, Any]], numerator: str, denominator: str, region: str = "WT") -> dict[str, Any] | None:
    """Bootstrap 95 % interval of ``mean Dice(numerator) / mean Dice(denominator)`` over paired runs (same fold, seed
    and test case); None when fewer than 2 pairs exist."""
    a, b = paired_values(folds, numerator, region), paired_values(folds, denominator, region)
    keys = sorted(set(a) & set(b))
    if len(keys) < 2 or sum(b[k] for k in keys) <= 0:
        return None
    interval = paired_ratio_ci([a[k] for k in keys], [b[k] for k in keys])
    return {"estimate": interval.estimate, "low": interval.low, "high": interval.high, "n": interval.n}


def headline(
    summary: Mapping[str, Any], k: int = 5, style_methods: Sequence[str] = (), region: str = "WT",
    folds: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The two headline ratios of mean ``region`` Dice (over folds and seeds), with paired bootstrap intervals.

    ``synthetic_over_real`` = Dice(synthetic only: SinGAN-Seg + pix2pix) / Dice(all real slices);
    ``small_plus_synthetic_over_small`` = Dice(k real + SinGAN-Seg) / Dice(k real). Per style method,
    ``style[M]`` holds Dice(SinGAN-Seg + style) / Dice(SinGAN-Seg) and the same for k real + SinGAN-Seg.
    With ``folds``, ``intervals`` holds each ratio's 95 % bootstrap interval over the paired runs (same fold,
    seed and test case) and ``resolved`` says whether it lies wholly above or below its target.
    """

    def dice(name: str) -> float:
        return float(summary.get(name, {}).get(region, {}).get("dice", {}).get("mean", math.nan))

    def ratio(a: float, b: float) -> float:
        return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan

    out: dict[str, Any] = {
        "region": region,
        "dice_real": dice("real"),
        "dice_synthetic": dice("synthetic"),
        "synthetic_over_real": ratio(dice("synthetic"), dice("real")),
        "k": k,
        f"dice_real{k}": dice(f"real{k}"),
        f"dice_real{k}+singanseg": dice(f"real{k}+singanseg"),
        "small_plus_synthetic_over_small": ratio(dice(f"real{k}+singanseg"), dice(f"real{k}")),
        "target_real_dice": 0.75,
        "target_synthetic_over_real": 0.9,
        "target_small_plus_synthetic_over_small": 1.3,
        "style": {
            m: {
                "dice_singanseg": dice("singanseg"),
                "dice_singanseg+style": dice(style_set_name("singanseg", m)),
                "styled_over_plain": ratio(dice(style_set_name("singanseg", m)), dice("singanseg")),
                f"dice_real{k}+singanseg+style": dice(style_set_name(f"real{k}+singanseg", m)),
                "small_styled_over_small_plain": ratio(dice(style_set_name(f"real{k}+singanseg", m)), dice(f"real{k}+singanseg")),
            }
            for m in style_methods
        },
    }
    if folds is not None:
        intervals = {
            "synthetic_over_real": (paired_ratio(folds, "synthetic", "real", region), 0.9),
            "small_plus_synthetic_over_small": (paired_ratio(folds, f"real{k}+singanseg", f"real{k}", region), 1.3),
        }
        out["intervals"] = {name: ci for name, (ci, _) in intervals.items()}
        out["resolved"] = {
            name: "unresolved (fewer than 2 paired runs)" if ci is None
            else "above target" if ci["low"] > target else "below target" if ci["high"] < target else "unresolved"
            for name, (ci, target) in intervals.items()
        }  # fmt: skip
    return out


def check_cases(
    items: Sequence[Mapping[str, Any]], label_values: Sequence[int], progress: bool = True, label_map: Mapping[int, int] | None = None
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
    """Every file :func:`run_experiment` writes (checked free before any work starts)."""
    out = Path(out_dir)
    from monai_singanseg.evaluation.report import report_files

    models = [out / "models" / f"fold{f}_singanseg_{j}.pt" for f in range(num_folds) for j in range(settings.singan_slices)]
    models += [out / "models" / f"fold{f}_pix2pix.pt" for f in range(num_folds)]
    return report_files(out, num_folds) + models


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
    build_segmentation_network(seg.network, 4, len(BRATS_LABEL_VALUES), seg.features)  # e.g. swinunetr without einops: fail now
    for method in settings.style_methods:  # e.g. vgg19 without its weights file: fail now
        StyleTransfer(method=method, weights_path=settings.style_weights, steps=0)
    out = Path(out_dir)
    num_folds = len(items) if settings.max_folds is None else min(settings.max_folds, len(items))
    check_cases(items, BRATS_LABEL_VALUES, progress, settings.label_map)  # every case, before anything is trained or written
    check_outputs_free(planned_outputs(out, num_folds, settings), overwrite)
    (out / "models").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    folds, grids = [], []
    for f, test_item in enumerate(items[:num_folds]):
        train_items = [it for i, it in enumerate(items) if i != f]
        log(f"[fold {f + 1}/{num_folds}] test case {test_item.get('name', test_item['label'])}")
        fold, slice_sets = run_fold(train_items, test_item, out / "models", f"fold{f}", settings, device, overwrite, progress, log)
        folds.append(fold)
        grids.append(slice_sets)
    summary = summarise_folds(folds, settings)
    report = {
        "regions": {k: list(v) for k, v in regions_for(BRATS_LABEL_VALUES).items()},
        "settings": settings.to_dict(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "channel_names": _channel_names(load_case(items[0], BRATS_LABEL_VALUES, 3, settings.label_map), items[0], settings),
        "folds": folds,
        "summary": summary,
        "headline": headline(summary, 5 if 5 in settings.k_values else max(settings.k_values), settings.style_methods,
                             settings.headline_region, folds),
        "seconds": time.perf_counter() - start,
    }
    write_report(out, report, grids, overwrite=overwrite)
    log(f"wrote {out / 'report.json'}, {out / 'report.md'} and plots")
    return report
