"""The downstream experiment's settings and the names of its training sets."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monai_singanseg.engines.pix2pix import Pix2PixSettings
from monai_singanseg.evaluation.segmentation import SegmentationSettings
from monai_singanseg.options import MAX_SEED, Settings, check_options, option, option_from
from monai_singanseg.synthesis import SinGANSegSynthesisSettings
from monai_singanseg.transforms.style import STYLE_METHODS

__all__ = [
    "GENERATOR_SETS",
    "RENDERER_SETS",
    "ExperimentSettings",
    "style_set_name",
    "training_set_names",
    "needed_generators",
    "small_data_models",
]

#: the label-to-image renderers' training sets and the generator architecture that renders each (one model per
#: fold on every training case, the same budget): the U-Net pix2pix and the SPADE generator.
RENDERER_SETS = {"pix2pix": "unet", "spade": "spade"}
#: the training sets made of synthetic slices only (``synthetic``: SinGAN-Seg and pix2pix together).
GENERATOR_SETS = ("singanseg", *RENDERER_SETS, "synthetic")


@dataclass
class ExperimentSettings(Settings):
    """Everything that defines a downstream-utility run (stored in ``report.json``).

    Every field but ``segmentation`` (the segmentation runs' own settings) and ``label_map`` is an option declared
    with its help and bounds (:mod:`monai_singanseg.options`).
    """

    size: int = option(128, low=32, high=1024, help="side of the square slices (generators and segmentation)")
    seeds: tuple[int, ...] = option(
        (0, 1, 2), low=0, high=MAX_SEED, help="segmentation seeds per training set (mean +- sd over seeds and folds)"
    )
    k_values: tuple[int, ...] = option(
        (1, 2, 5, 10), flag="--k", low=1, high=10**4, help="real slices of the small-data regime"
    )
    pool_fraction: float = option(
        0.25, low=0.0, high=1.0, help="small-data slices hold at least this fraction of the largest tumour section"
    )
    singan_slices: int = option(5, low=1, high=10**4, help="SinGAN-Seg models per training case")
    singan_iters: int | None = option(
        None, low=1, high=10**6, help="SinGAN-Seg iterations per scale (default: the schedule's)"
    )
    samples_per_model: int = option(10, low=1, high=10**6, help="SinGAN-Seg samples drawn from each model")
    singan_start_scale: int = option(
        0,
        flag="--start-scale",
        low=0,
        high=64,
        help="SinGAN-Seg sampling start scale (higher: closer to the training slice)",
    )
    style_methods: tuple[str, ...] = option(
        (),
        flag="--style",
        choices=STYLE_METHODS,
        metavar="METHOD",
        help="add SinGAN-Seg + style-transfer training sets (singanseg+style:M, real{k}+singanseg+style:M) for these "
        "methods; the style image is each model's reconstruction of its training slice",
    )
    style_steps: int = option_from(SinGANSegSynthesisSettings, "style_steps")
    style_weights: str | None = option_from(SinGANSegSynthesisSettings, "style_weights")
    tumour_shift: float | None = option_from(SinGANSegSynthesisSettings, "tumour_shift")
    pix2pix_epochs: int = option(
        60, low=1, high=10**5, help="training epochs of each renderer (the pix2pix U-Net and SPADE sets)"
    )
    pix2pix_volumes: int = option(
        4, low=1, high=10**4, help="deformed label volumes each renderer renders per training case"
    )
    pix2pix_samples: int = option(
        100,
        low=1,
        high=10**6,
        help="rendered slices kept per renderer and fold (evenly spaced over the rendered tumour slices)",
    )
    memorisation_threshold: float = option(
        0.95,
        flag="--threshold",
        low=0.0,
        high=1.0,
        help="nearest-neighbour correlation above which a sample is flagged as a copy",
    )
    diversity_samples: int = option(50, low=2, high=10**6, help="samples of the diversity (pairwise SSIM) figures")
    swd_projections: int = option(256, low=1, high=10**6, help="random directions of the sliced Wasserstein distance")
    segmentation: SegmentationSettings = field(default_factory=SegmentationSettings)
    training_sets: tuple[str, ...] | None = option(None, flag="--sets", help="only these training sets (default: all)")
    max_folds: int | None = option(None, flag="--folds", low=1, high=10**4, help="run only the first N folds")
    label_map: dict[int, int] = field(default_factory=dict)
    channel_names: tuple[str, ...] | None = option(
        None, help="names of the image channels (default: the BraTS modalities for 4 files, else ch<i>)"
    )
    validation_every: int = option(
        4,
        low=2,
        high=10**4,
        help="every N-th brain slice of each training case is held in for validation (it decides when segmentation "
        "training stops) and not trained on",
    )
    headline_region: str = option("WT", choices=("WT", "TC", "ET"), help="the BraTS region the headline compares")

    def renderer_settings(self, set_name: str) -> Pix2PixSettings:
        """The training settings of a renderer set of :data:`RENDERER_SETS` (working size, epochs, its generator; the
        rest are that generator's defaults)."""
        return Pix2PixSettings(size=self.size, epochs=self.pix2pix_epochs, architecture=RENDERER_SETS[set_name])

    def __post_init__(self) -> None:
        self.label_map = {int(k): int(v) for k, v in dict(self.label_map).items()}
        if self.channel_names is not None:
            self.channel_names = tuple(str(c) for c in self.channel_names)
        if isinstance(self.segmentation, Mapping):
            self.segmentation = SegmentationSettings(**self.segmentation)
        self.seeds = tuple(int(s) for s in self.seeds)
        self.k_values = tuple(int(k) for k in self.k_values)
        self.style_methods = tuple(str(m) for m in self.style_methods)
        if not self.seeds:
            raise ValueError("at least one seed is needed (--seeds)")
        check_options(self)
        # the generators' own settings, checked now rather than after hours of training
        for name in RENDERER_SETS:
            self.renderer_settings(name)
        for method in self.style_methods:
            SinGANSegSynthesisSettings(style=method, style_steps=self.style_steps, style_weights=self.style_weights)
        if self.training_sets is not None:
            self.training_sets = tuple(self.training_sets)
            known = training_set_names(self.k_values, self.style_methods)
            unknown = set(self.training_sets) - set(known)
            if unknown:
                raise ValueError(f"unknown training sets {sorted(unknown)}; known: {known}")

    def requested_sets(self) -> list[str]:
        """The training sets this run trains segmentation networks on (``training_sets``, else every one), in report
        order."""
        known = training_set_names(self.k_values, self.style_methods)
        return [n for n in known if self.training_sets is None or n in self.training_sets]

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
    return ["real", "singanseg", *styled, *RENDERER_SETS, "synthetic", "real+synthetic"] + small


def needed_generators(set_names: Sequence[str]) -> set[str]:
    """The synthetic datasets that the training sets ``set_names`` are made of: ``singanseg`` (models over every
    training case), ``small_singanseg`` (models of the small-data slices) and the renderers' (``pix2pix``,
    ``spade``)."""
    needed = set()
    for name in set_names:
        base = name.split("+style:")[0]
        if base in ("singanseg", "synthetic", "real+synthetic"):
            needed.add("singanseg")
        if base in ("pix2pix", "synthetic", "real+synthetic"):
            needed.add("pix2pix")
        if base in RENDERER_SETS:
            needed.add(base)
        if small_data_models([name]):
            needed.add("small_singanseg")
    return needed


def small_data_models(set_names: Sequence[str]) -> int:
    """How many of the small-data slices the training sets ``set_names`` need a SinGAN-Seg model of: the largest k of
    a ``real{k}+singanseg`` set among them (with or without style transfer), 0 without one."""
    counts = [re.fullmatch(r"real(\d+)\+singanseg", name.split("+style:")[0]) for name in set_names]
    return max((int(m.group(1)) for m in counts if m), default=0)
