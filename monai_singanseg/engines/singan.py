"""SinGAN-Seg training: a multi-scale single-image GAN on image channels + one-hot label channels.

Two schedules:

- ``"singan"`` (the reference): coarsest short side ``min_size``, scale factor ~``scale_factor``, one new
  scale trained at a time with the scales below frozen.
- ``"fast"`` (default, ConSinGAN-style): fewer stages spaced densely at low resolution, the
  ``concurrent_stages`` newest stages trained together with the learning rate x ``lr_scale`` per lower
  stage, each new stage initialised from the last.

Both use WGAN-GP (penalty ``gp_weight``) plus the reconstruction MSE (weight ``rec_weight``) of a fixed
noise map at the coarsest scale and zeros above, noise amplitudes ``noise_ratio`` x RMSE(real, upsampled
reconstruction), Adam with the learning rate x0.1 at ``lr_decay_at`` of the iterations. After every scale
the model file is rewritten atomically, so a killed run loses at most the scale in progress and
``resume=True`` continues from the last finished scale, reproducing the uninterrupted run exactly.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from monai_singanseg.device import resolve_device
from monai_singanseg.engines.common import optional_summary_writer, tensor_digest
from monai_singanseg.rng import forked_rng
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.model_config import SINGANSEG_KIND, SinGANSegModelConfig
from monai_singanseg.io.modelfile import ModelFileError, load_model_file, save_model_file
from monai_singanseg.networks.singan import SinGANCritic, SinGANPyramid, resize_to, scale_features

__all__ = [
    "MODEL_KIND",
    "SCHEDULES",
    "SinGANSegSettings",
    "SinGANSegTrainer",
    "pyramid_sizes",
    "real_pyramid",
    "gradient_penalty",
    "label_area_loss",
]

logger = logging.getLogger(__name__)

#: the ``kind`` of SinGAN-Seg model files.
MODEL_KIND = SINGANSEG_KIND
SCHEDULES = ("fast", "singan")
#: settings that must agree between a checkpoint and a resumed run.
_RESUME_KEYS = (
    "schedule", "min_size", "scale_factor", "num_stages", "iters", "coarsest_iters", "critic_steps", "generator_steps", "lr",
    "betas", "lr_decay_at", "gp_weight", "rec_weight", "label_area_weight", "noise_ratio", "base_features", "max_features",
    "double_every", "num_layers", "concurrent_stages", "lr_scale", "seed",
)  # fmt: skip


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


class SinGANSegTrainer:
    """Trains a :class:`SinGANPyramid` on one (image, label) GAN tensor and writes the model file.

    Args:
        settings: training settings.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``/None (CUDA if available).
        progress: show tqdm progress bars (scale, iteration, losses).
        log_dir: optional TensorBoard folder.
    """

    def __init__(
        self,
        settings: SinGANSegSettings | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
        log_dir: str | os.PathLike | None = None,
    ) -> None:
        self.settings = settings or SinGANSegSettings()
        self.device = resolve_device(device)
        self.progress = progress
        self.log_dir = log_dir

    # ------------------------------------------------------------------ public
    def fit(
        self,
        real: torch.Tensor,
        out: str | os.PathLike,
        metadata: dict[str, Any],
        resume: bool = False,
        overwrite: bool = False,
        on_scale: Callable[[int], None] | None = None,
    ) -> Path:
        """Train all scales and write ``out`` (rewritten after every scale).

        The caller's random state is untouched: every scale runs in a forked torch RNG seeded with
        ``settings.seed + k`` (so a resumed run reproduces the uninterrupted one exactly).

        Args:
            real: the GAN tensor ``(C, *spatial)`` in [-1, 1] (see :class:`~monai_singanseg.transforms.ToGANTensor`).
            out: model file to write.
            metadata: the source fields of :class:`~monai_singanseg.io.SinGANSegModelConfig` (channel names, label
                values, intensity statistics, source geometry); the prepare step
                (:func:`~monai_singanseg.synthesis.singanseg_training_input`) makes them. Missing ones get neutral
                defaults (``ch<i>`` names, labels ``0..K-1``, statistics of [-1, 1]).
            resume: continue from the scales already in ``out`` (starts afresh if ``out`` does not exist).
            overwrite: replace an existing ``out`` when not resuming.
            on_scale: called with the index of every finished scale (e.g. a work claim's heartbeat).

        Returns:
            The model file path.

        Raises:
            OutputExistsError: ``out`` exists and neither ``resume`` nor ``overwrite`` was given.
            ValueError: bad input (NaN, wrong shape, too small) or a checkpoint of other data or settings.
        """
        s = self.settings
        out = Path(out)
        real = torch.as_tensor(real).float().as_subclass(torch.Tensor)
        if real.ndim not in (3, 4):
            raise ValueError(f"expected a channel-first 2D or 3D tensor, got shape {tuple(real.shape)}")
        if not torch.isfinite(real).all():
            raise ValueError("training tensor holds NaN or infinite values")
        sizes = pyramid_sizes(real.shape[1:], s)
        features = [scale_features(k, s.base_features, s.double_every, s.max_features) for k in range(len(sizes))]
        meta = dict(metadata)
        meta.pop("num_label_channels", None)
        n_img = int(meta.get("num_image_channels", len(meta.get("image_channels", [])) or real.shape[0] - 1))
        meta.update(num_image_channels=n_img)
        meta.setdefault("image_channels", [f"ch{i}" for i in range(n_img)])
        meta.setdefault("label_values", list(range(int(real.shape[0]) - n_img + 1)))
        meta.setdefault("intensity_stats", {"low": [-1.0] * n_img, "high": [1.0] * n_img})
        config = SinGANSegModelConfig(
            **meta,
            spatial_dims=real.ndim - 1,
            channels=int(real.shape[0]),
            scale_sizes=sizes,
            features=features,
            num_layers=s.num_layers,
            noise_amplitudes=[],
            finished_scales=0,
            num_scales=len(sizes),
            training=s.to_dict(),
            data_hash=tensor_digest(real),
        )
        config.validate()
        if not resume:
            check_outputs_free([out], overwrite)
        pyramid = SinGANPyramid(config.spatial_dims, config.channels, (), s.num_layers).to(self.device)
        critic_state: dict[str, torch.Tensor] | None = None
        rec_noise = None
        if resume and out.exists():
            with forked_rng(self.device):  # the finished scales' initial weights are overwritten by the checkpoint's
                config, critic_state, rec_noise = self._load_checkpoint(out, config, pyramid)
            if config.complete:
                return out
        reals = real_pyramid(real[None].to(self.device), sizes, config.num_image_channels)
        if rec_noise is None:
            with forked_rng(self.device, s.seed):
                rec_noise = torch.randn(reals[0].shape, device=self.device)
        rec_noise = rec_noise.to(self.device)
        with optional_summary_writer(self.log_dir) as writer:
            for k in range(config.finished_scales, len(sizes)):
                start = time.perf_counter()
                with forked_rng(self.device, s.seed + k):
                    critic = self._train_scale(k, pyramid, reals, sizes, features, config, rec_noise, critic_state, writer)
                critic_state = critic.state_dict()
                config.finished_scales = k + 1
                config.complete = k + 1 == len(sizes)
                config.train_seconds = float(config.train_seconds) + time.perf_counter() - start
                save_model_file(
                    out, config, {"generator": pyramid.state_dict(), "critic": critic_state}, {"reconstruction_noise": rec_noise}
                )
                logger.info(
                    "SinGAN-Seg scale %d/%d (%s) trained in %.1f s; wrote %s",
                    k + 1, len(sizes), "x".join(map(str, sizes[k])), time.perf_counter() - start, out,
                )
                if on_scale is not None:
                    on_scale(k)
        return out

    # ----------------------------------------------------------------- helpers
    def _load_checkpoint(
        self, path: Path, config: SinGANSegModelConfig, pyramid: SinGANPyramid
    ) -> tuple[SinGANSegModelConfig, dict[str, torch.Tensor], torch.Tensor]:
        model = load_model_file(path, expected_kind=MODEL_KIND)
        old: SinGANSegModelConfig = model.config
        if old.inference_only:
            raise ModelFileError(f"{path}: an inference-only copy (no critic state) cannot be resumed")
        for key in ("channels", "num_image_channels", "scale_sizes", "spatial_dims"):
            if getattr(old, key) != getattr(config, key):
                raise ModelFileError(
                    f"{path}: cannot resume: its {key} {getattr(old, key)} differs from this run's {getattr(config, key)} "
                    "(pass --overwrite to start afresh)"
                )
        if old.data_hash is not None and old.data_hash != config.data_hash:
            raise ModelFileError(
                f"{path}: cannot resume: it was trained on other data ({old.source_name}, training tensor "
                f"sha256 {old.data_hash[:12]}...) than this run's ({config.source_name}, {str(config.data_hash)[:12]}...); "
                "pass the same inputs, or --overwrite to start afresh"
            )
        old_train, new_train = dict(old.training), config.training
        # settings added later: what files written before them did
        old_train.setdefault("coarsest_iters", old_train.get("iters"))
        old_train.setdefault("label_area_weight", 0.0)
        for key in _RESUME_KEYS:
            if old_train.get(key) != new_train.get(key):
                raise ModelFileError(
                    f"{path}: cannot resume: training setting {key}={old_train.get(key)} differs from this run's "
                    f"{new_train.get(key)} (pass --overwrite to start afresh)"
                )
        for f in old.features[: old.finished_scales]:
            pyramid.add_scale(f)
        pyramid.load_state_dict(model.state["generator"])
        pyramid.to(self.device)
        for key in ("noise_amplitudes", "finished_scales", "complete", "train_seconds"):
            setattr(config, key, getattr(old, key))
        return config, model.state.get("critic", {}), model.tensors["reconstruction_noise"]

    def _train_scale(
        self,
        k: int,
        pyramid: SinGANPyramid,
        reals: list[torch.Tensor],
        sizes: list[list[int]],
        features: list[int],
        config: SinGANSegModelConfig,
        rec_noise: torch.Tensor,
        critic_state: dict[str, torch.Tensor] | None,
        writer: Any,
    ) -> SinGANCritic:
        """Add scale ``k`` and train it (with the concurrent stages below it); returns its critic."""
        s = self.settings
        dev = self.device
        amps: list[float] = config.noise_amplitudes
        rec_zeros = [rec_noise] + [torch.zeros((1, reals[0].shape[1], *sz), device=dev) for sz in sizes[1:]]
        # noise amplitude of the new scale from the current reconstruction
        pyramid.eval()
        if k == 0:
            amps.append(1.0)
        else:
            with torch.no_grad():
                rec_prev = resize_to(pyramid(rec_zeros, amps, sizes, last_scale=k - 1), sizes[k])
                amps.append(float(s.noise_ratio * torch.sqrt(F.mse_loss(rec_prev, reals[k]))))
        pyramid.add_scale(features[k]).to(dev)
        critic = SinGANCritic(pyramid.spatial_dims, pyramid.channels, features[k], s.num_layers).to(dev)
        if critic_state and all(critic.state_dict()[n].shape == v.shape for n, v in critic_state.items()):
            critic.load_state_dict(critic_state)

        first = max(0, k - s.active_stages + 1)
        for j, gen in enumerate(pyramid.generators):
            gen.train(j >= first)
            gen.requires_grad_(j >= first)
        groups = [
            {"params": pyramid.generators[j].parameters(), "lr": s.lr * s.lr_scale ** (k - j)} for j in range(first, k + 1)
        ]
        opt_g = torch.optim.Adam(groups, lr=s.lr, betas=s.betas)
        opt_d = torch.optim.Adam(critic.parameters(), lr=s.lr, betas=s.betas)
        iters = s.coarsest_iters if k == 0 else s.iters
        milestone = [max(1, int(s.lr_decay_at * iters))]
        sched_g = torch.optim.lr_scheduler.MultiStepLR(opt_g, milestone, gamma=0.1)
        sched_d = torch.optim.lr_scheduler.MultiStepLR(opt_d, milestone, gamma=0.1)

        real = reals[k]
        n_img = config.num_image_channels
        with torch.no_grad():  # frozen part of the reconstruction path is constant during this scale
            rec_base = pyramid(rec_zeros, amps, sizes, last_scale=first - 1) if first > 0 else None

        def generate(noise: list[torch.Tensor], base: torch.Tensor | None) -> torch.Tensor:
            return pyramid(noise, amps, sizes, start=base, first_scale=first, last_scale=k)

        def random_fake() -> torch.Tensor:
            noise = [torch.randn((1, real.shape[1], *sz), device=dev) for sz in sizes[: k + 1]]
            base = None
            if first > 0:
                with torch.no_grad():
                    base = pyramid(noise, amps, sizes, last_scale=first - 1)
            return generate(noise, base)

        desc = f"scale {k + 1}/{len(sizes)} {'x'.join(map(str, sizes[k]))}"
        bar = tqdm(range(iters), desc=desc, disable=not self.progress, leave=False, mininterval=1.0)
        loss_d = loss_adv = loss_rec = torch.zeros(())
        for it in bar:
            critic.requires_grad_(True)
            for _ in range(s.critic_steps):
                with torch.no_grad():
                    fake = random_fake()
                loss_d = critic(fake).mean() - critic(real).mean() + s.gp_weight * gradient_penalty(critic, real, fake)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
            critic.requires_grad_(False)
            for _ in range(s.generator_steps):
                fake = random_fake()
                loss_adv = -critic(fake).mean()
                loss_rec = F.mse_loss(generate(rec_zeros, rec_base), real)
                loss_g = loss_adv + s.rec_weight * loss_rec
                if s.label_area_weight > 0 and n_img < real.shape[1]:
                    loss_area = label_area_loss(fake[:, n_img:], real[:, n_img:])
                    loss_g = loss_g + s.label_area_weight * loss_area
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
            sched_g.step()
            sched_d.step()
            if it % 25 == 0 or it == iters - 1:
                losses = {"critic": loss_d.item(), "adv": loss_adv.item(), "rec": loss_rec.item()}
                bar.set_postfix({n: f"{v:.3f}" for n, v in losses.items()}, refresh=False)
                if writer is not None:
                    for n, v in losses.items():
                        writer.add_scalar(f"scale_{k}/{n}", v, it)
        bar.close()
        pyramid.eval()
        pyramid.requires_grad_(False)
        return critic
