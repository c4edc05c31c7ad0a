"""SinGAN-Seg's schedules and losses: the training settings, the pyramid of scale sizes, the real pyramid,
the label-area loss and the gradient penalty (what every SinGAN-Seg trainer shares)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from monai_singanseg.io.model_config import SINGANSEG_KIND
from monai_singanseg.networks.singan import resize_to

__all__ = [
    "MODEL_KIND",
    "SCHEDULES",
    "RESUME_KEYS",
    "VOLUME_DEFAULTS",
    "SinGANSegSettings",
    "pyramid_sizes",
    "real_pyramid",
    "label_area_loss",
    "gradient_penalty",
]

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
    "concurrent_stages",
    "lr_scale",
    "seed",
)


@dataclass
class SinGANSegSettings:
    """Training settings (stored in the model file).

    Args:
        schedule: ``"fast"`` (ConSinGAN-style concurrent stages) or ``"singan"`` (one scale at a time).
        min_size: short side of the coarsest scale (None: 25 for ``"singan"``, 16 for ``"fast"``, whose
            coarsest generator then sees most of the slice and learns its global layout).
        scale_factor: nominal scale factor between scales (``"singan"``).
        num_stages: number of stages (``"fast"``).
        iters: iterations per scale (None: 2000 for ``"singan"``, 200 for ``"fast"``).
        coarsest_iters: iterations of the coarsest scale (None: ``iters`` for ``"singan"``, 3 x ``iters`` for
            ``"fast"``); it is cheap and sets the global layout of samples from start scale 0.
        critic_steps: critic updates per iteration.
        generator_steps: generator updates per iteration.
        lr: Adam learning rate.
        betas: Adam betas.
        lr_decay_at: fraction of the iterations after which the learning rate is divided by 10.
        gp_weight: WGAN gradient-penalty weight.
        rec_weight: reconstruction loss weight (alpha).
        label_area_weight: weight of the label-area loss of random samples: the L1 distance between a
            sample's soft area per tumour class and the training slice's, relative to its total tumour area
            (0: off, the reference). A patch critic alone lets random samples drop a small tumour.
        noise_ratio: noise amplitude = ``noise_ratio`` x RMSE(real, upsampled reconstruction).
        base_features: feature width of the coarsest scales.
        max_features: cap on the feature width.
        double_every: the width doubles every this many scales.
        num_layers: convolutions per generator/critic.
        concurrent_stages: stages trained together (``"fast"``).
        lr_scale: learning-rate factor per lower concurrent stage (``"fast"``).
        seed: random seed; scale ``k`` runs in a forked torch RNG seeded with ``seed + k``.
    """

    schedule: str = "fast"
    min_size: int | None = None
    scale_factor: float = 0.75
    num_stages: int = 4
    iters: int | None = None
    coarsest_iters: int | None = None
    critic_steps: int = 3
    generator_steps: int = 3
    lr: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lr_decay_at: float = 0.8
    gp_weight: float = 0.1
    rec_weight: float = 10.0
    label_area_weight: float = 1.0
    noise_ratio: float = 0.1
    base_features: int = 32
    max_features: int = 128
    double_every: int = 4
    num_layers: int = 5
    concurrent_stages: int = 3
    lr_scale: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.iters is None:
            self.iters = 2000 if self.schedule == "singan" else 200
        if self.coarsest_iters is None:
            self.coarsest_iters = self.iters if self.schedule == "singan" else 3 * self.iters
        if self.min_size is None:
            self.min_size = 25 if self.schedule == "singan" else 16
        if self.iters < 1 or self.coarsest_iters < 1 or self.critic_steps < 1 or self.generator_steps < 1:
            raise ValueError("iters, critic_steps and generator_steps must be >= 1")
        if self.min_size < 4:
            raise ValueError(f"min_size must be >= 4, got {self.min_size}")
        if not 0.0 < self.scale_factor < 1.0:
            raise ValueError(f"scale_factor must lie in (0, 1), got {self.scale_factor}")
        if self.num_stages < 1 or self.concurrent_stages < 1:
            raise ValueError("num_stages and concurrent_stages must be >= 1")
        self.betas = (float(self.betas[0]), float(self.betas[1]))

    @classmethod
    def for_volume(cls, **settings: Any) -> SinGANSegSettings:
        """Settings of a 3D model: :data:`VOLUME_DEFAULTS` where ``settings`` leaves a field out or None."""
        return cls(**{**VOLUME_DEFAULTS, **{k: v for k, v in settings.items() if v is not None}})

    @property
    def active_stages(self) -> int:
        """How many of the newest stages train together."""
        return self.concurrent_stages if self.schedule == "fast" else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SinGANSegSettings:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def pyramid_sizes(shape: Sequence[int], settings: SinGANSegSettings) -> list[list[int]]:
    """Spatial size of every scale, coarse to fine; the finest is ``shape`` itself.

    Args:
        shape: spatial shape of the training tensor.
        settings: the schedule and its sizes.

    Raises:
        ValueError: the image is too small for the pyramid (short side below ``min_size``).
    """
    shape = [int(s) for s in shape]
    short = min(shape)
    if short < settings.min_size:
        raise ValueError(
            f"image of size {shape} is too small for the SinGAN-Seg pyramid: its short side must be at least "
            f"min_size={settings.min_size} (use a larger slice/--max-size or a smaller --min-size)"
        )
    ratio = settings.min_size / short
    if settings.schedule == "singan":
        num = max(1, int(math.ceil(math.log(ratio) / math.log(settings.scale_factor))) + 1) if ratio < 1 else 1
        factor = ratio ** (1.0 / (num - 1)) if num > 1 else 1.0
        scales = [factor ** (num - 1 - i) for i in range(num)]
    else:  # ConSinGAN: stages spaced densely at low resolution
        stop = settings.num_stages - 1
        if stop < 1 or ratio >= 1:
            scales = [1.0]
        elif stop == 1:
            scales = [ratio, 1.0]
        else:
            factor = ratio ** (1.0 / stop)
            scales = [factor ** ((stop - 1) / math.log(stop) * math.log(stop - i) + 1) for i in range(stop)] + [1.0]
    sizes: list[list[int]] = []
    for s in scales:
        size = [max(1, int(round(d * s))) for d in shape]
        if not sizes or size != sizes[-1]:
            sizes.append(size)
    return sizes


def real_pyramid(real: torch.Tensor, sizes: Sequence[Sequence[int]], num_image_channels: int) -> list[torch.Tensor]:
    """The training tensor ``(1, C, *spatial)`` at every scale: image channels anti-aliased, labels by area.

    Label channels are averaged (area), so they stay soft at the coarse scales.
    """
    out = []
    for size in sizes:
        img = resize_to(real[:, :num_image_channels], size, smooth=True)
        lab = resize_to(real[:, num_image_channels:], size, smooth=False)
        out.append(torch.cat([img, lab], dim=1).clamp(-1.0, 1.0))
    return out


def label_area_loss(fake: torch.Tensor, real: torch.Tensor, sharpness: float = 10.0) -> torch.Tensor:
    """L1 distance between per-class label areas of ``fake`` samples and ``real``, relative to real's total.

    A pixel counts as ``sigmoid(sharpness * x)`` (x in [-1, 1], 0.5 at the 0.5 threshold of ``(x + 1) / 2``),
    a differentiable stand-in for thresholding, so faint diffuse label values do not count as tumour.

    Args:
        fake: label channels ``(N, K, *spatial)`` in [-1, 1].
        real: label channels ``(1, K, *spatial)`` in [-1, 1].
        sharpness: slope of the soft threshold.

    Returns:
        Mean over samples of ``sum_c |area_c(fake) - area_c(real)| / sum_c area_c(real)`` (areas as fractions).
    """
    area_fake = torch.sigmoid(sharpness * fake).flatten(2).mean(2)
    area_real = torch.sigmoid(sharpness * real).flatten(2).mean(2)
    return ((area_fake - area_real).abs().sum(1) / area_real.sum(1).clamp_min(1e-6)).mean()


def gradient_penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty ``(||grad critic(x_hat)||_2 - 1)^2`` per location, on random interpolates (as SinGAN)."""
    alpha = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
    interp = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    score = critic(interp)
    (grads,) = torch.autograd.grad(score.sum(), interp, create_graph=True)
    return ((grads.norm(2, dim=1) - 1.0) ** 2).mean()
