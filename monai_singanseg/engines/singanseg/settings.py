"""SinGAN-Seg's training settings: the schedules, their defaults, what a 3D model changes and what a resumed run must
keep."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from monai_singanseg.io.model_config import SINGANSEG_KIND
from monai_singanseg.options import Settings, check_options, option

__all__ = ["MODEL_KIND", "SCHEDULES", "RESUME_KEYS", "VOLUME_DEFAULTS", "SinGANSegSettings", "with_iterations"]

#: the ``kind`` of SinGAN-Seg model files.
MODEL_KIND = SINGANSEG_KIND
SCHEDULES = ("fast", "singan")
#: what a 3D (whole-volume) model changes in the defaults, so that it trains in about half an hour on 2 CPU cores at
#: the default working size (``benchmarks/singanseg_3d.py``); on a GPU pass ``base_features=32`` and the 2D iterations.
VOLUME_DEFAULTS: dict[str, Any] = {"base_features": 16, "iters": 150}
#: settings that must agree between a checkpoint and a resumed run.
RESUME_KEYS = (
    "schedule",
    "min_size",
    "scale_factor",
    "num_stages",
    "iters",
    "coarsest_iters",
    "critic_steps",
    "generator_steps",
    "lr",
    "betas",
    "lr_decay_at",
    "gp_weight",
    "rec_weight",
    "label_area_weight",
    "noise_ratio",
    "base_features",
    "max_features",
    "double_every",
    "num_layers",
    "pad_as_background",
    "concurrent_stages",
    "lr_scale",
    "seed",
)


@dataclass
class SinGANSegSettings(Settings):
    """Training settings (stored in the model file).

    Every field is an option declared with its help, bounds and flag (:mod:`monai_singanseg.options`): the command
    line, the bundles and MONAI Label read them from here. ``min_size``, ``iters`` and ``coarsest_iters`` left None
    get the schedule's defaults.
    """

    schedule: str = option(
        "fast", choices=SCHEDULES, help="training schedule: fast (ConSinGAN-style concurrent stages) or singan"
    )
    min_size: int | None = option(
        None,
        low=4,
        high=4096,
        help="short side of the coarsest scale (default: 16 fast, 25 singan; the fast schedule's coarsest generator "
        "then sees most of the slice and learns its global layout)",
    )
    scale_factor: float = option(
        0.75, low=0.0, high=1.0, low_open=True, high_open=True, help="nominal scale factor between scales (singan)"
    )
    num_stages: int = option(4, flag="--stages", low=1, high=32, help="number of stages of the fast schedule")
    iters: int | None = option(
        None, low=1, high=10**6, help="iterations per scale (default: 200 fast, 2000 singan; 150 with --volume)"
    )
    coarsest_iters: int | None = option(
        None,
        low=1,
        high=10**6,
        help="iterations of the coarsest scale (default: 3x --iters fast, --iters singan); it is cheap and sets "
        "the global layout of samples from start scale 0",
    )
    critic_steps: int = option(3, low=1, high=100, help="critic updates per iteration")
    generator_steps: int = option(3, low=1, high=100, help="generator updates per iteration")
    lr: float = option(5e-4, low=0.0, high=1.0, low_open=True, help="Adam learning rate")
    betas: tuple[float, float] = option((0.5, 0.999), low=0.0, high=1.0, high_open=True, help="Adam betas")
    lr_decay_at: float = option(
        0.8, low=0.0, high=1.0, help="fraction of the iterations after which the learning rate is divided by 10"
    )
    gp_weight: float = option(0.1, low=0.0, help="WGAN gradient-penalty weight")
    rec_weight: float = option(10.0, low=0.0, help="reconstruction loss weight (alpha)")
    label_area_weight: float = option(
        1.0,
        low=0.0,
        high=1e6,
        help="weight of the loss keeping each random sample's tumour area per class: the L1 distance between a "
        "sample's soft area per tumour class and the training slice's, relative to its total tumour area (0: off, "
        "the reference; a patch critic alone lets random samples drop a small tumour)",
    )
    noise_ratio: float = option(
        0.1, low=0.0, help="noise amplitude = noise_ratio x RMSE(real, upsampled reconstruction)"
    )
    base_features: int = option(32, low=1, high=1024, help="feature width of the coarsest scales")
    max_features: int = option(128, low=1, high=4096, help="cap on the feature width")
    double_every: int = option(4, low=1, high=64, help="the width doubles every this many scales")
    num_layers: int = option(5, low=2, high=32, help="convolutions per generator and critic")
    pad_as_background: bool = option(
        False,
        help="shift the networks' input by +1 so that their convolutions' zero padding reads as the background (-1) "
        "of every channel instead of a tumour probability of 0.5 (measured at a small budget: no tumour line along "
        "the border of the model that drew one, fewer empty samples, but larger brains and a new border line in "
        "another model; docs/singanseg.md)",
    )
    concurrent_stages: int = option(3, low=1, high=32, help="stages trained together (fast)")
    lr_scale: float = option(0.1, low=0.0, help="learning-rate factor per lower concurrent stage (fast)")
    seed: int = option(
        0, low=0, high=2**32 - 1, help="random seed; scale k runs in a forked torch RNG seeded with seed + k"
    )

    def __post_init__(self) -> None:
        if self.iters is None:
            self.iters = 2000 if self.schedule == "singan" else 200
        if self.coarsest_iters is None:
            self.coarsest_iters = self.iters if self.schedule == "singan" else 3 * self.iters
        if self.min_size is None:
            self.min_size = 25 if self.schedule == "singan" else 16
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        check_options(self)

    @classmethod
    def for_volume(cls, **settings: Any) -> SinGANSegSettings:
        """Settings of a 3D model: :data:`VOLUME_DEFAULTS` where ``settings`` leaves a field out or None."""
        return cls(**{**VOLUME_DEFAULTS, **{k: v for k, v in settings.items() if v is not None}})

    @property
    def active_stages(self) -> int:
        """How many of the newest stages train together."""
        return self.concurrent_stages if self.schedule == "fast" else 1


def with_iterations(settings: SinGANSegSettings, iters: int) -> SinGANSegSettings:
    """``settings`` with ``iters`` iterations per scale; the coarsest scale keeps its ratio to the others.

    Raises:
        ValueError: ``iters`` < 1.
    """
    if int(iters) < 1:
        raise ValueError(f"max_epochs (iterations per scale) must be >= 1, got {iters}")
    if int(iters) == settings.iters:
        return settings
    coarsest = max(1, round(int(iters) * settings.coarsest_iters / settings.iters))
    return dataclasses.replace(settings, iters=int(iters), coarsest_iters=coarsest)
