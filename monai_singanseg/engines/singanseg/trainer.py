"""SinGAN-Seg training: a multi-scale single-image GAN on image channels + one-hot label channels.

Two schedules (:mod:`~monai_singanseg.engines.singanseg`):

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
checkpoint.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from monai_singanseg.device import resolve_device
from monai_singanseg.engines.common import optional_summary_writer
from monai_singanseg.engines.singanseg.checkpoint import (
    ModelInTraining,
    load_checkpoint,
    new_model_config,
    save_checkpoints,
)
from monai_singanseg.engines.singanseg.pyramid import pyramid_sizes, real_pyramid
from monai_singanseg.engines.singanseg.scale_loop import ScaleLoop, reconstruction_noise
from monai_singanseg.engines.singanseg.settings import SinGANSegSettings
from monai_singanseg.engines.singanseg.stacked import StackedModules, check_same_shapes
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.networks.singan import SinGANCritic, SinGANPyramid, resize_to, scale_features
from monai_singanseg.rng import forked_rng

__all__ = ["SinGANSegTrainer", "BatchedSinGANSegTrainer"]

logger = logging.getLogger(__name__)


def _capture_stream(device: torch.device) -> torch.Generator:
    """A generator that continues the current (forked) default random stream of ``device``."""
    gen = torch.Generator(device=device)
    gen.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return gen


class BatchedSinGANSegTrainer:
    """Trains M same-shaped SinGAN-Seg models together on one device and writes one model file each.

    The schedule and maths are those of :class:`~monai_singanseg.engines.singanseg.SinGANSegTrainer` (the same
    :class:`~monai_singanseg.engines.singanseg.SinGANSegSettings`); model ``m`` uses ``settings.seed``
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
        configs = [
            new_model_config(s, r, meta, sizes, features, seed) for r, meta, seed in zip(reals, metadatas, seeds)
        ]
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
            pyramid = SinGANPyramid(
                config.spatial_dims, config.channels, (), s.num_layers, config.pad_as_background
            ).to(dev)
            if resume and out.exists():
                with forked_rng(dev):  # the finished scales' initial weights are overwritten by the checkpoint's
                    model = load_checkpoint(seed, out, config, pyramid, dev)
            else:
                with forked_rng(dev, seed):
                    rec_noise = torch.randn(pyr_reals[0].shape[1:], device=dev)
                model = ModelInTraining(seed, out, config, pyramid, rec_noise)
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
                save_checkpoints(models, k, len(sizes), time.perf_counter() - start)
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

    # ---------------------------------------------------------------- training
    def _add_scale(
        self, k: int, models: list[ModelInTraining], pyr_reals: list[torch.Tensor], sizes: list[list[int]], feat: int
    ) -> None:
        """Per model as the single trainer: noise amplitude, then (in its stream ``seed + k``) the new scale's
        generator and critic; the stream is kept for the model's draws during the scale."""
        s = self.settings
        dev = self.device
        for m, model in enumerate(models):
            amps = model.config.noise_amplitudes
            rec_zeros = reconstruction_noise(model.rec_noise, sizes)
            model.pyramid.eval()
            if k == 0:
                amps.append(1.0)
            else:
                with torch.no_grad():
                    rec_prev = resize_to(model.pyramid(rec_zeros, amps, sizes, last_scale=k - 1), sizes[k])
                    amps.append(float(s.noise_ratio * torch.sqrt(F.mse_loss(rec_prev, pyr_reals[k][m]))))
            with forked_rng(dev, model.seed + k):
                model.pyramid.add_scale(feat).to(dev)
                critic = SinGANCritic(
                    model.pyramid.spatial_dims,
                    model.pyramid.channels,
                    feat,
                    s.num_layers,
                    model.pyramid.pad_as_background,
                ).to(dev)
                state = model.critic_state
                if state and all(critic.state_dict()[n].shape == v.shape for n, v in state.items()):
                    critic.load_state_dict(state)
                model.critic = critic
                model.stream = _capture_stream(dev)

    def _train_scale(
        self,
        k: int,
        models: list[ModelInTraining],
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
        loop = ScaleLoop(s, self.device, self.progress, k, first, models, gens, critic, amps, pyr_reals, sizes)
        loop.run(writer, self.handlers)
        for j in range(first, k + 1):
            gens[j].write_back([m.pyramid.generators[j] for m in models])
        critic.write_back([m.critic for m in models])
        for model in models:
            model.pyramid.eval()
            model.pyramid.requires_grad_(False)
            model.critic_state = model.critic.state_dict()
            model.stream = None


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
