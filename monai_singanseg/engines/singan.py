"""SinGAN-Seg training: a multi-scale single-image GAN on image channels + one-hot label channels.

Two schedules (:mod:`~monai_singanseg.engines.singan_schedule`):

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

One training loop serves one model and many: :class:`BatchedSinGANSegTrainer` trains M models whose GAN tensors
share one shape in lock-step (one SinGAN-Seg stage is a stack of small convolutions, so a GPU trains one model at
a few percent use), and :class:`SinGANSegTrainer` is its M = 1 case. The M copies of every generator and critic
are stacked along a leading model dimension and run with ``torch.vmap`` over ``torch.func.functional_call``
(grouped convolutions; batch norm normalises and tracks running statistics per model). Everything that belongs
to a model stays its own:

- random numbers: model ``m`` draws its initial weights, noise maps and gradient-penalty weights from its own
  stream, seeded with ``seeds[m] + k`` at scale ``k``;
- losses: each model's losses are computed apart and their sum is back-propagated (a model's parameters only
  reach its own loss, so the gradient of the sum is each model's own gradient);
- optimiser state: one Adam over the stacked parameters; Adam is elementwise, so it is M independent Adams with
  the same per-stage learning rates and the same MultiStepLR decay.

So model ``m`` of a batch equals the model trained alone with ``seed=seeds[m]``: to ~1e-9 in float64; in float32
the rounding differs (batched reductions add in another order) by ~1e-3 after a short training, as much as one
model trained with 1 and with 2 CPU threads differs from itself. GAN tensors of different shapes are refused
(:func:`check_same_shapes`), not padded.

Each scale runs as a MONAI engine (``monai.engines.Trainer``, one epoch of the scale's iterations, the
iteration training the concurrent stages of every model): the learning-rate decay is MONAI's
``LrScheduleHandler``, TensorBoard is ``TensorBoardStatsHandler``, and any MONAI or ignite handler attaches
to every scale (``handlers=``). Resume stays per scale: the model file, written after every scale, is the
checkpoint (moving to the engine changed no weight: bit-identical before and after on a 3-scale run).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from ignite.engine import Engine
from monai.engines import Trainer
from monai.handlers import LrScheduleHandler, TensorBoardStatsHandler
from torch import nn
from torch.func import functional_call

from monai_singanseg.device import resolve_device
from monai_singanseg.engines.common import optional_summary_writer, tensor_digest
from monai_singanseg.engines.handlers import ProgressBar
from monai_singanseg.engines.singan_schedule import (
    MODEL_KIND,
    RESUME_KEYS,
    SCHEDULES,
    SinGANSegSettings,
    gradient_penalty,
    label_area_loss,
    pyramid_sizes,
    real_pyramid,
)
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.model_config import SinGANSegModelConfig
from monai_singanseg.io.modelfile import ModelFileError, load_model_file, save_model_file
from monai_singanseg.networks.singan import SinGANCritic, SinGANPyramid, resize_to, scale_features
from monai_singanseg.rng import forked_rng

__all__ = [
    "MODEL_KIND",
    "SCHEDULES",
    "SinGANSegSettings",
    "SinGANSegTrainer",
    "BatchedSinGANSegTrainer",
    "StackedModules",
    "check_same_shapes",
    "pyramid_sizes",
    "real_pyramid",
    "label_area_loss",
    "gradient_penalty",
    "mean_losses",
]

logger = logging.getLogger(__name__)


def check_same_shapes(reals: Sequence[torch.Tensor], num_image_channels: Sequence[int]) -> None:
    """Refuse a batch of GAN tensors that cannot train together.

    Models of different shapes are refused, not padded: padding would change what the critic sees (its
    patches would score the padding) and the pyramid sizes, so a padded model would not equal the model
    trained alone.

    Args:
        reals: the GAN tensors ``(C, *spatial)``.
        num_image_channels: image channels of each (the rest are label channels).

    Raises:
        ValueError: naming the shapes (or the image channel counts) when they differ.
    """
    shapes = [tuple(int(d) for d in r.shape) for r in reals]
    if len(set(shapes)) > 1:
        raise ValueError(
            f"batched SinGAN-Seg training needs GAN tensors of one shape (channels and size), got {shapes}; "
            "slices of different sizes are refused, not padded (padding would change what the critic sees): "
            "group the slices by shape and train each group on its own"
        )
    if len(set(num_image_channels)) > 1:
        raise ValueError(
            f"batched SinGAN-Seg training needs one number of image channels, got {list(num_image_channels)} "
            f"for GAN tensors of shape {shapes[0]}"
        )


class StackedModules:
    """M modules of one architecture run as one: parameters and buffers stacked along a leading model dim.

    Calling it maps ``functional_call`` of the first module (the template: its structure and its train/eval
    mode) over the model dimension with ``torch.vmap``; batch-norm running statistics are updated in the
    stacked buffers in place, per model.

    Args:
        modules: the M modules (same parameter and buffer names and shapes).
        trainable: make the stacked parameters leaves that require gradients.
    """

    def __init__(self, modules: Sequence[nn.Module], trainable: bool) -> None:
        self.template = modules[0]
        self.num_models = len(modules)
        single = self.num_models == 1
        self.params = (
            dict(self.template.named_parameters()) if single else _stack([dict(m.named_parameters()) for m in modules])
        )
        self.buffers = (
            dict(self.template.named_buffers()) if single else _stack([dict(m.named_buffers()) for m in modules])
        )
        self.requires_grad_(trainable)
        self._vmapped = torch.vmap(self._call_one)

    def _call_one(
        self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], *args: torch.Tensor
    ) -> torch.Tensor:
        return functional_call(self.template, (params, buffers), args)

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        """Run every model on its slice of ``args`` (each ``(M, ...)``); returns ``(M, ...)``.

        One model is the module itself (its own parameters are the optimiser's leaves, nothing is stacked): the
        single-model trainer runs as fast as a plain module.
        """
        if self.num_models == 1:
            return self.template(*(a[0] for a in args)).unsqueeze(0)
        return self._vmapped(self.params, self.buffers, *args)

    def parameters(self) -> list[torch.Tensor]:
        """The stacked parameters (optimiser leaves when trainable)."""
        return list(self.params.values())

    def requires_grad_(self, flag: bool) -> None:
        """Switch gradients of the stacked parameters on or off."""
        for p in self.params.values():
            p.requires_grad_(flag)

    @torch.no_grad()
    def write_back(self, modules: Sequence[nn.Module]) -> None:
        """Copy model ``m``'s slice of the parameters and buffers into ``modules[m]`` (one model: it is the module)."""
        if self.num_models == 1 and modules[0] is self.template:
            return
        for m, module in enumerate(modules):
            for name, t in (*module.named_parameters(), *module.named_buffers()):
                stacked = self.params[name] if name in self.params else self.buffers[name]
                t.copy_(stacked[m])


def _stack(dicts: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack same-named tensors of M dicts into fresh leaf tensors ``(M, ...)``."""
    return {name: torch.stack([d[name].detach() for d in dicts]).clone() for name in dicts[0]}


def _capture_stream(device: torch.device) -> torch.Generator:
    """A generator that continues the current (forked) default random stream of ``device``."""
    gen = torch.Generator(device=device)
    gen.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return gen


def _per_model_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of each model's slice: ``(M, ...) -> (M,)``."""
    return x.flatten(1).mean(1)


def _resize_models(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """:func:`resize_to` of an ``(M, N, C, *spatial)`` batch (model and sample dims folded together)."""
    return resize_to(x.flatten(0, 1), size).unflatten(0, x.shape[:2])


@dataclass
class _Model:
    """What belongs to one model of the batch."""

    seed: int
    out: Path
    config: SinGANSegModelConfig
    pyramid: SinGANPyramid
    rec_noise: torch.Tensor
    critic: SinGANCritic | None = None
    critic_state: dict[str, torch.Tensor] | None = None
    stream: torch.Generator | None = None


class BatchedSinGANSegTrainer:
    """Trains M same-shaped SinGAN-Seg models together on one device and writes one model file each.

    The schedule and maths are those of :class:`~monai_singanseg.engines.singan.SinGANSegTrainer` (the same
    :class:`~monai_singanseg.engines.singan.SinGANSegSettings`); model ``m`` uses ``settings.seed``
    replaced by ``seeds[m]``, and its file equals, to float tolerance, the single trainer's for that seed.
    GAN tensors of different shapes (or channel counts) are refused, not padded (see :func:`check_same_shapes`).
    The files are rewritten after every scale, like the single trainer's, so an interrupted batch can be
    finished model by model with ``SinGANSegTrainer(..., resume=True)``; this trainer does not resume.

    Args:
        settings: training settings shared by the models (the seed is per model, see :meth:`fit_many`).
        device: ``"cpu"``, ``"cuda"``, ``"auto"``/None (CUDA if available).
        progress: show tqdm progress bars (scale, iteration, mean losses over the models).
        log_dir: optional TensorBoard folder (scalars ``model_<m>/scale_<k>/<loss>``, every 25 iterations).
        handlers: MONAI or ignite handlers attached to every scale's engine (a MONAI ``Trainer`` running the
            scale's iterations; its output holds each model's ``critic``, ``adv`` and ``rec`` losses).
    """

    def __init__(
        self,
        settings: SinGANSegSettings | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
        log_dir: str | os.PathLike | None = None,
        handlers: Sequence[Any] = (),
    ) -> None:
        self.settings = settings or SinGANSegSettings()
        self.device = resolve_device(device)
        self.progress = progress
        self.log_dir = log_dir
        self.handlers = tuple(handlers)

    # ------------------------------------------------------------------ public
    def fit_many(
        self,
        reals: Sequence[torch.Tensor],
        outs: Sequence[str | os.PathLike],
        metadatas: Sequence[dict[str, Any]],
        seeds: Sequence[int] | None = None,
        overwrite: bool = False,
        on_scale: Callable[[int], None] | None = None,
        resume: bool = False,
    ) -> list[Path]:
        """Train M models together and write ``outs[m]`` for each (rewritten after every scale).

        The caller's random state is untouched: model ``m`` draws at scale ``k`` from its own stream seeded
        with ``seeds[m] + k`` (its reconstruction noise from ``seeds[m]``), as the single trainer does.

        Args:
            reals: M GAN tensors ``(C, *spatial)`` in [-1, 1], all of one shape.
            outs: M distinct model files to write.
            metadatas: M metadata dicts (source fields of the model config), as for ``SinGANSegTrainer.fit``.
            seeds: M seeds (None: ``settings.seed`` for every model, so each equals the single trainer's
                model with these very settings).
            overwrite: replace existing files (when not resuming).
            on_scale: called with the index of every finished scale, after all M files are rewritten.
            resume: continue from the scales already in ``outs`` (checked: same data and settings; every
                existing file must have finished the same number of scales); starts afresh where none exists.

        Returns:
            The model file paths, in the order of ``reals``.

        Raises:
            ValueError: lists of different lengths or empty, repeated outputs, bad input (NaN, wrong
                dimensions, too small), or GAN tensors of different shapes or image channel counts
                (refused, not padded). Nothing is written then.
            OutputExistsError: an output exists and ``overwrite`` is False.
        """
        s = self.settings
        reals, outs, seeds = self._check_inputs(reals, outs, metadatas, seeds)
        sizes = pyramid_sizes(reals[0].shape[1:], s)
        features = [scale_features(k, s.base_features, s.double_every, s.max_features) for k in range(len(sizes))]
        configs = [self._model_config(r, meta, sizes, features, seed) for r, meta, seed in zip(reals, metadatas, seeds)]
        check_same_shapes(reals, [c.num_image_channels for c in configs])
        if not resume:
            check_outputs_free(outs, overwrite)
        dev = self.device
        pyr_reals = [
            torch.stack(t)
            for t in zip(*(real_pyramid(r[None].to(dev), sizes, c.num_image_channels) for r, c in zip(reals, configs)))
        ]
        models = []
        for seed, out, config in zip(seeds, outs, configs):
            pyramid = SinGANPyramid(config.spatial_dims, config.channels, (), s.num_layers).to(dev)
            if resume and out.exists():
                with forked_rng(dev):  # the finished scales' initial weights are overwritten by the checkpoint's
                    model = self._load_checkpoint(seed, out, config, pyramid)
            else:
                with forked_rng(dev, seed):
                    rec_noise = torch.randn(pyr_reals[0].shape[1:], device=dev)
                model = _Model(seed, out, config, pyramid, rec_noise)
            models.append(model)
        finished = {m.config.finished_scales for m in models}
        if len(finished) > 1:
            raise ValueError(
                f"cannot resume a batch whose models finished different numbers of scales ({sorted(finished)}): "
                "resume them one by one"
            )
        with optional_summary_writer(self.log_dir) as writer:
            for k in range(finished.pop(), len(sizes)):
                start = time.perf_counter()
                self._train_scale(k, models, pyr_reals, sizes, features, writer)
                self._save(models, k, len(sizes), time.perf_counter() - start)
                logger.info(
                    "batched SinGAN-Seg scale %d/%d (%s, %d models) trained in %.1f s",
                    k + 1,
                    len(sizes),
                    "x".join(map(str, sizes[k])),
                    len(models),
                    time.perf_counter() - start,
                )
                if on_scale is not None:
                    on_scale(k)
        return outs

    # ------------------------------------------------------------- preparation
    def _check_inputs(
        self,
        reals: Sequence[torch.Tensor],
        outs: Sequence[str | os.PathLike],
        metadatas: Sequence[dict[str, Any]],
        seeds: Sequence[int] | None,
    ) -> tuple[list[torch.Tensor], list[Path], list[int]]:
        """Lengths, outputs, seeds and tensors checked; returns float tensors, paths and seeds."""
        seeds = [self.settings.seed] * len(reals) if seeds is None else [int(x) for x in seeds]
        if not reals:
            raise ValueError("fit_many needs at least one GAN tensor")
        if not len(reals) == len(outs) == len(metadatas) == len(seeds):
            raise ValueError(
                f"fit_many needs one output, metadata and seed per GAN tensor: got {len(reals)} tensors, "
                f"{len(outs)} outputs, {len(metadatas)} metadata dicts and {len(seeds)} seeds"
            )
        paths = [Path(o) for o in outs]
        if len({p.resolve() for p in paths}) != len(paths):
            raise ValueError(f"fit_many needs distinct output files, got {[str(p) for p in paths]}")
        tensors = []
        for m, real in enumerate(reals):
            real = torch.as_tensor(real).float().as_subclass(torch.Tensor)
            if real.ndim not in (3, 4):
                raise ValueError(
                    f"GAN tensor {m}: expected a channel-first 2D or 3D tensor, got shape {tuple(real.shape)}"
                )
            if not torch.isfinite(real).all():
                raise ValueError(f"GAN tensor {m} holds NaN or infinite values")
            tensors.append(real)
        check_same_shapes(tensors, [0] * len(tensors))
        return tensors, paths, seeds

    def _model_config(
        self, real: torch.Tensor, metadata: dict[str, Any], sizes: list[list[int]], features: list[int], seed: int
    ) -> SinGANSegModelConfig:
        """The model config ``SinGANSegTrainer.fit`` builds for ``real`` with ``seed`` (no scale finished)."""
        meta = dict(metadata)
        meta.pop("num_label_channels", None)
        n_img = int(meta.get("num_image_channels", len(meta.get("image_channels", [])) or real.shape[0] - 1))
        meta.update(num_image_channels=n_img)
        meta.setdefault("image_channels", [f"ch{i}" for i in range(n_img)])
        meta.setdefault("label_values", list(range(int(real.shape[0]) - n_img + 1)))
        meta.setdefault("intensity_stats", {"low": [-1.0] * n_img, "high": [1.0] * n_img})
        settings = dataclasses.replace(self.settings, seed=seed)
        config = SinGANSegModelConfig(
            **meta,
            spatial_dims=real.ndim - 1,
            channels=int(real.shape[0]),
            scale_sizes=sizes,
            features=features,
            num_layers=settings.num_layers,
            noise_amplitudes=[],
            finished_scales=0,
            num_scales=len(sizes),
            training=settings.to_dict(),
            data_hash=tensor_digest(real),
        )
        config.validate()
        return config

    def _load_checkpoint(self, seed: int, path: Path, config: SinGANSegModelConfig, pyramid: SinGANPyramid) -> _Model:
        """The model as ``path`` holds it, after checking it is this run's (same data, layout and settings)."""
        model = load_model_file(path, expected_kind=MODEL_KIND)
        old: SinGANSegModelConfig = model.config
        if old.inference_only:
            raise ModelFileError(f"{path}: an inference-only copy (no critic state) cannot be resumed")
        for key in ("channels", "num_image_channels", "scale_sizes", "spatial_dims"):
            if getattr(old, key) != getattr(config, key):
                raise ModelFileError(
                    f"{path}: cannot resume: its {key} {getattr(old, key)} differs from this run's "
                    f"{getattr(config, key)} "
                    "(pass --overwrite to start afresh)"
                )
        if old.data_hash is not None and old.data_hash != config.data_hash:
            raise ModelFileError(
                f"{path}: cannot resume: it was trained on other data ({old.source_name}, training tensor "
                f"sha256 {old.data_hash[:12]}...) than this run's ({config.source_name}, "
                f"{str(config.data_hash)[:12]}...); "
                "pass the same inputs, or --overwrite to start afresh"
            )
        old_train, new_train = dict(old.training), config.training
        # settings added later: what files written before them did
        old_train.setdefault("coarsest_iters", old_train.get("iters"))
        old_train.setdefault("label_area_weight", 0.0)
        for key in RESUME_KEYS:
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
        rec_noise = model.tensors["reconstruction_noise"].to(self.device)
        return _Model(seed, path, config, pyramid, rec_noise, critic_state=model.state.get("critic") or None)

    def _save(self, models: list[_Model], k: int, num_scales: int, seconds: float) -> None:
        """Rewrite every model file after scale ``k`` (``train_seconds`` counts the batch's wall time)."""
        for model in models:
            config = model.config
            config.finished_scales = k + 1
            config.complete = k + 1 == num_scales
            config.train_seconds = float(config.train_seconds) + seconds
            state = {"generator": model.pyramid.state_dict(), "critic": model.critic_state or {}}
            save_model_file(model.out, config, state, {"reconstruction_noise": model.rec_noise})

    # ---------------------------------------------------------------- training
    def _add_scale(
        self, k: int, models: list[_Model], pyr_reals: list[torch.Tensor], sizes: list[list[int]], feat: int
    ) -> None:
        """Per model as the single trainer: noise amplitude, then (in its stream ``seed + k``) the new scale's
        generator and critic; the stream is kept for the model's draws during the scale."""
        s = self.settings
        dev = self.device
        for m, model in enumerate(models):
            amps = model.config.noise_amplitudes
            rec_zeros = self._rec_zeros(model.rec_noise, sizes)
            model.pyramid.eval()
            if k == 0:
                amps.append(1.0)
            else:
                with torch.no_grad():
                    rec_prev = resize_to(model.pyramid(rec_zeros, amps, sizes, last_scale=k - 1), sizes[k])
                    amps.append(float(s.noise_ratio * torch.sqrt(F.mse_loss(rec_prev, pyr_reals[k][m]))))
            with forked_rng(dev, model.seed + k):
                model.pyramid.add_scale(feat).to(dev)
                critic = SinGANCritic(model.pyramid.spatial_dims, model.pyramid.channels, feat, s.num_layers).to(dev)
                state = model.critic_state
                if state and all(critic.state_dict()[n].shape == v.shape for n, v in state.items()):
                    critic.load_state_dict(state)
                model.critic = critic
                model.stream = _capture_stream(dev)

    def _rec_zeros(self, rec_noise: torch.Tensor, sizes: list[list[int]]) -> list[torch.Tensor]:
        """The reconstruction noise: the fixed map at the coarsest scale, zeros above."""
        return [rec_noise] + [torch.zeros((1, rec_noise.shape[1], *sz), device=self.device) for sz in sizes[1:]]

    def _draw(self, models: list[_Model], shape: Sequence[int], uniform: bool = False) -> torch.Tensor:
        """One ``shape`` draw per model from its own stream, stacked ``(M, *shape)``."""
        fn = torch.rand if uniform else torch.randn
        return torch.stack([fn(tuple(shape), generator=m.stream, device=self.device) for m in models])

    def _train_scale(
        self,
        k: int,
        models: list[_Model],
        pyr_reals: list[torch.Tensor],
        sizes: list[list[int]],
        features: list[int],
        writer: Any,
    ) -> None:
        """Add scale ``k`` to every model and train the concurrent stages of all models together."""
        s = self.settings
        self._add_scale(k, models, pyr_reals, sizes, features[k])
        first = max(0, k - s.active_stages + 1)
        for model in models:
            for j, gen in enumerate(model.pyramid.generators):
                gen.train(j >= first)
                gen.requires_grad_(j >= first)
        gens = [StackedModules([m.pyramid.generators[j] for m in models], trainable=j >= first) for j in range(k + 1)]
        critic = StackedModules([m.critic for m in models], trainable=True)
        amps = torch.tensor([m.config.noise_amplitudes for m in models], dtype=torch.float64, device=self.device)
        loop = _ScaleLoop(self, k, first, models, gens, critic, amps, pyr_reals, sizes)
        loop.run(writer, self.handlers)
        for j in range(first, k + 1):
            gens[j].write_back([m.pyramid.generators[j] for m in models])
        critic.write_back([m.critic for m in models])
        for model in models:
            model.pyramid.eval()
            model.pyramid.requires_grad_(False)
            model.critic_state = model.critic.state_dict()
            model.stream = None


class _ScaleLoop:
    """The iterations of one scale for all models (the loop of ``SinGANSegTrainer._train_scale``, batched).

    Args:
        trainer: the batched trainer (settings, device, progress).
        k: the scale.
        first: the lowest trained (concurrent) stage.
        models: the models.
        gens: stacked generators of scales ``0..k`` (those below ``first`` frozen, in eval mode).
        critic: the stacked critics of scale ``k``.
        amps: noise amplitudes ``(M, k + 1)`` (float64, like the single trainer's Python floats).
        pyr_reals: stacked real pyramids ``(M, 1, C, *size)`` per scale.
        sizes: spatial sizes per scale.
    """

    def __init__(
        self,
        trainer: BatchedSinGANSegTrainer,
        k: int,
        first: int,
        models: list[_Model],
        gens: list[StackedModules],
        critic: StackedModules,
        amps: torch.Tensor,
        pyr_reals: list[torch.Tensor],
        sizes: list[list[int]],
    ) -> None:
        self.trainer, self.s, self.dev = trainer, trainer.settings, trainer.device
        self.k, self.first, self.models, self.gens, self.critic = k, first, models, gens, critic
        self.amps, self.sizes, self.real = amps, sizes, pyr_reals[k]
        self.n_img = models[0].config.num_image_channels
        self.rec_zeros = [torch.stack([m.rec_noise for m in models])] + [
            torch.zeros((len(models), 1, self.real.shape[2], *sz), device=self.dev) for sz in sizes[1:]
        ]
        self.rec_base = self._rec_base() if first > 0 else None

    def _rec_base(self) -> torch.Tensor:
        """Frozen part of the reconstruction path (per model with its pyramid, exactly as the single trainer)."""
        with torch.no_grad():
            outs = [
                m.pyramid(
                    self.trainer._rec_zeros(m.rec_noise, self.sizes),
                    m.config.noise_amplitudes,
                    self.sizes,
                    last_scale=self.first - 1,
                )
                for m in self.models
            ]
        return torch.stack(outs)

    def _pyramid(self, noise: list[torch.Tensor], start: torch.Tensor | None, first: int, last: int) -> torch.Tensor:
        """``SinGANPyramid.forward`` over the stacked models: scales ``first..last`` on ``(M, N, C, *size)`` noise."""
        x = start
        for j in range(first, last + 1):
            z = noise[j]
            prev = torch.zeros_like(z) if x is None else _resize_models(x, self.sizes[j])
            amp = self.amps[:, j].to(z.dtype).view(-1, *([1] * (z.ndim - 1)))  # as a Python float times z
            x = self.gens[j](amp * z, prev)
        if x is None:
            raise ValueError("no scale to run: first_scale > last_scale")
        return x

    def generate(self, noise: list[torch.Tensor], base: torch.Tensor | None) -> torch.Tensor:
        """The trained stages on ``noise`` from the frozen stages' output ``base``."""
        return self._pyramid(noise, base, self.first, self.k)

    def random_fake(self) -> torch.Tensor:
        """One random sample per model ``(M, 1, C, *size)`` (noise from each model's stream, scale by scale)."""
        noise = [self.trainer._draw(self.models, (1, self.real.shape[2], *sz)) for sz in self.sizes[: self.k + 1]]
        base = None
        if self.first > 0:
            with torch.no_grad():
                base = self._pyramid(noise, None, 0, self.first - 1)
        return self.generate(noise, base)

    def gradient_penalty(self, fake: torch.Tensor) -> torch.Tensor:
        """Per-model WGAN-GP ``(M,)`` (as :func:`~monai_singanseg.engines.singan.gradient_penalty`)."""
        real = self.real
        alpha = self.trainer._draw(self.models, (real.shape[1],) + (1,) * (real.ndim - 2), uniform=True)
        interp = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
        score = self.critic(interp)
        (grads,) = torch.autograd.grad(score.sum(), interp, create_graph=True)
        return _per_model_mean((grads.norm(2, dim=2) - 1.0) ** 2)

    def critic_step(self, opt: torch.optim.Optimizer) -> torch.Tensor:
        """One critic update of every model; returns the per-model critic losses."""
        with torch.no_grad():
            fake = self.random_fake()
        loss = _per_model_mean(self.critic(fake)) - _per_model_mean(self.critic(self.real))
        loss = loss + self.s.gp_weight * self.gradient_penalty(fake)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        return loss.detach()

    def generator_step(self, opt: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """One generator update of every model; returns the per-model adversarial and reconstruction losses."""
        s = self.s
        fake = self.random_fake()
        loss_adv = -_per_model_mean(self.critic(fake))
        loss_rec = torch.vmap(F.mse_loss)(self.generate(self.rec_zeros, self.rec_base), self.real)
        loss = loss_adv + s.rec_weight * loss_rec
        if s.label_area_weight > 0 and self.n_img < self.real.shape[2]:
            n = self.n_img
            loss = loss + s.label_area_weight * torch.vmap(label_area_loss)(fake[:, :, n:], self.real[:, :, n:])
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        return loss_adv.detach(), loss_rec.detach()

    def _optimisers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer, list[Any], int]:
        """Adam over the stacked parameters (per-stage learning rates), MultiStepLR, iteration count."""
        s, k = self.s, self.k
        groups = [
            {"params": self.gens[j].parameters(), "lr": s.lr * s.lr_scale ** (k - j)} for j in range(self.first, k + 1)
        ]
        opt_g = torch.optim.Adam(groups, lr=s.lr, betas=s.betas)
        opt_d = torch.optim.Adam(self.critic.parameters(), lr=s.lr, betas=s.betas)
        iters = s.coarsest_iters if k == 0 else s.iters
        milestone = [max(1, int(s.lr_decay_at * iters))]
        scheds = [torch.optim.lr_scheduler.MultiStepLR(o, milestone, gamma=0.1) for o in (opt_g, opt_d)]
        return opt_g, opt_d, scheds, iters

    def iteration(self, engine: Engine, batchdata: Any = None) -> dict[str, torch.Tensor]:
        """One iteration (the scale engine's ``iteration_update``): critic steps, then generator steps, every model.

        Returns:
            Per-model losses ``{"critic", "adv", "rec"}`` (each ``(M,)``, on the device).
        """
        s = self.s
        zeros = torch.zeros(len(self.models), device=self.dev)
        loss_d = loss_adv = loss_rec = zeros
        self.critic.requires_grad_(True)
        for _ in range(s.critic_steps):
            loss_d = self.critic_step(self.opt_d)
        self.critic.requires_grad_(False)
        for _ in range(s.generator_steps):
            loss_adv, loss_rec = self.generator_step(self.opt_g)
        return {"critic": loss_d, "adv": loss_adv, "rec": loss_rec}

    def _scalars(self, output: dict[str, torch.Tensor]) -> dict[str, float]:
        """TensorBoard scalars of an iteration: ``model_<m>/scale_<k>/<loss>``."""
        return {
            f"model_{m}/scale_{self.k}/{name}": float(v[m])
            for name, v in output.items()
            for m in range(len(self.models))
        }

    def run(self, writer: Any, handlers: Sequence[Any] = ()) -> None:
        """All iterations of the scale, as a MONAI ``Trainer`` (one epoch of ``iters`` iterations).

        The learning rates decay through MONAI's ``LrScheduleHandler`` (per iteration); progress, TensorBoard
        (every 25 iterations) and ``handlers`` (any MONAI or ignite handler) attach to the scale's engine.
        """
        k = self.k
        self.opt_g, self.opt_d, scheds, iters = self._optimisers()
        desc = f"scale {k + 1}/{len(self.sizes)} {'x'.join(map(str, self.sizes[k]))} x{len(self.models)} models"
        engine_handlers: list[Any] = [LrScheduleHandler(sched, epoch_level=False, print_lr=False) for sched in scheds]
        engine_handlers.append(
            ProgressBar(desc, _mean_losses, per="iteration", every=25, disable=not self.trainer.progress, leave=False)
        )
        if writer is not None:
            engine_handlers.append(
                TensorBoardStatsHandler(
                    summary_writer=writer, iteration_log=25, epoch_log=False, output_transform=self._scalars
                )
            )
        engine = Trainer(
            device=self.dev,
            max_epochs=1,
            data_loader=range(iters),
            epoch_length=iters,
            iteration_update=self.iteration,
            handlers=[*engine_handlers, *handlers],
            decollate=False,
        )
        engine.run()


def mean_losses(output: dict[str, torch.Tensor]) -> dict[str, float]:
    """A scale engine's output as scalars: each loss averaged over the models (e.g. a ``StatsHandler``'s
    ``output_transform``)."""
    return {name: v.mean().item() for name, v in output.items()}


def _mean_losses(engine: Engine) -> dict[str, float]:
    """The progress bar's figures: the last iteration's :func:`mean_losses`."""
    return mean_losses(engine.state.output)


class SinGANSegTrainer(BatchedSinGANSegTrainer):
    """Trains a :class:`SinGANPyramid` on one (image, label) GAN tensor and writes the model file (the M = 1 case
    of :class:`BatchedSinGANSegTrainer`, with the same constructor arguments).
    """

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

        The caller's random state is untouched: every scale runs on its own random stream seeded with
        ``settings.seed + k`` (so a resumed run reproduces the uninterrupted run exactly).

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
        return self.fit_many([real], [out], [metadata], [self.settings.seed], overwrite, on_scale, resume)[0]
