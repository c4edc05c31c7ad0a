"""Paired pix2pix training: condition slices (brain + tumour [+ tissue]) -> multi-modal MR slices.

The trainer takes prepared slices (:class:`Pix2PixSlices`, made from a datalist by
:func:`monai_singanseg.synthesis.pix2pix_training_slices`: intensities in [-1, 1] per modality inside the
brain, condition, the tumour-bearing axial slices cut to the square box around the brain at the working
size, the same geometry the renderer uses), never paths. Training is the reference recipe, GAN (BCE,
PatchGAN) + 100 x L1, Adam 2e-4 with beta1 0.5, constant learning rate for the first half of the epochs
then linear decay to 0, with pix2pixHD's additions against blur: a multi-scale critic and a feature
matching loss (L1 between the critics' features of the real and the generated pair). The generator
upsamples by resize + convolution (no checkerboard) and reads the condition of the neighbouring slices
too (2.5D), so that neighbouring rendered slices agree. Random flips and small rotations of each pair;
deterministic under a seed; the model file is rewritten atomically after every ``checkpoint_every``
epochs and training resumes from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from monai.handlers import LrScheduleHandler, TensorBoardStatsHandler
from torch.optim.lr_scheduler import LambdaLR

from monai_singanseg.device import resolve_device
from monai_singanseg.engines.common import require_tensorboard
from monai_singanseg.engines.distributed import distributed_loader, distributed_module, distributed_rank
from monai_singanseg.engines.handlers import (
    EpochCallback,
    EpochLossHistory,
    ModelFileCheckpoint,
    ProgressBar,
    close_when_done,
)
from monai_singanseg.engines.pix2pix.checkpoint import TrainingState, check_resumable
from monai_singanseg.engines.pix2pix.data import AugmentedPairs, PairedSlices, Pix2PixSlices, paired_loader
from monai_singanseg.engines.pix2pix.engine import Pix2PixTrainer
from monai_singanseg.engines.pix2pix.losses import ITERATION_LOSSES, PerceptualLoss, perceptual_loss
from monai_singanseg.engines.pix2pix.networks import Pix2PixNetworks, checked_config, new_networks
from monai_singanseg.engines.pix2pix.settings import Pix2PixSettings, lr_factor
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.model_config import PIX2PIX_KIND
from monai_singanseg.io.modelfile import load_model_file

__all__ = ["pix2pix_trainer", "train_pix2pix"]


def pix2pix_trainer(
    data: Pix2PixSlices,
    out: str | os.PathLike,
    settings: Pix2PixSettings | None = None,
    max_epochs: int | None = None,
    device: str | torch.device | None = None,
    resume: bool = False,
    overwrite: bool = False,
    networks: Pix2PixNetworks | None = None,
    train_handlers: Sequence[Any] = (),
    tensorboard: str | os.PathLike | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], bool | None] | None = None,
    distributed: bool = False,
    perceptual: PerceptualLoss | None = None,
) -> Pix2PixTrainer:
    """A :class:`Pix2PixTrainer` that trains on ``data`` and writes the model file ``out``; call its ``run()``.

    A resumed trainer whose checkpoint already holds ``max_epochs`` epochs runs nothing.

    The product's handlers come first: each epoch's loss means (``engine.state.metrics`` and
    ``engine.state.history``), ``on_epoch``, the model-file checkpoint (atomic, with optimiser and random
    states, every ``settings.checkpoint_every`` epochs), pix2pix's learning-rate schedule (constant, then
    linear decay to 0, one ``LrScheduleHandler`` per optimiser), a progress bar and TensorBoard; then
    ``train_handlers`` (any MONAI or ignite handler: ``StatsHandler``, ``ValidationHandler``, ...).

    Args:
        data: the training slices (:func:`monai_singanseg.synthesis.pix2pix_training_slices`).
        out: the model file (rewritten atomically at every checkpoint).
        settings: training settings (None: the settings ``data`` was prepared with).
        max_epochs: total epochs, replacing ``settings.epochs`` (the bundles' ``train#trainer#max_epochs``).
        device: torch device (None: CUDA if available).
        resume: continue from ``out`` (its weights, optimiser and random states) when it exists; prepare
            ``data`` with :func:`~monai_singanseg.engines.pix2pix.resume_settings` and pass those settings.
        overwrite: replace an existing ``out`` when not resuming.
        networks: networks from :func:`~monai_singanseg.engines.pix2pix.pix2pix_networks` (None: made here, the
            same way).
        train_handlers: more handlers, attached after the product's own.
        tensorboard: TensorBoard log folder (per-epoch losses and learning rate).
        progress: show a progress bar over epochs.
        on_epoch: called with each epoch's losses; returning True stops training after that epoch.
        distributed: train data-parallel over the initialised process group (every rank calls this and
            ``run()``; DDP, a ``DistributedSampler`` shard per rank, rank 0 writes ``out``). Off by default:
            a process of a ``torchrun`` job that trains a model of its own (the dataset farm) is not DDP.
        perceptual: the perceptual term, already loaded (None: loaded here from ``settings.vgg_weights`` when its
            weight is not 0).

    Raises:
        ModelFileError: resuming a checkpoint of other data or another condition layout, or an inference copy.
        OutputExistsError: ``out`` exists and neither ``resume`` nor ``overwrite`` is set.
        ValueError: ``data`` holds no slices, was prepared with other settings, or ``settings.vgg_weights`` is not
            VGG-19 weights.
        FileNotFoundError: ``settings.vgg_weights`` does not exist.
    """
    out = Path(out)
    settings = settings or data.settings
    if max_epochs is not None:
        settings = replace(settings, epochs=int(max_epochs))
    config = checked_config(data, settings)
    resumed = None
    if resume and out.exists():
        resumed = load_model_file(out, expected_kind=PIX2PIX_KIND)
        check_resumable(out, resumed.config, config)
    elif not resume:
        check_outputs_free([out], overwrite)
    dev = resolve_device(device)
    if tensorboard is not None:
        require_tensorboard()
    if perceptual is None and settings.perceptual_weight:
        perceptual = perceptual_loss(settings.vgg_weights, dev)
    rank, world = distributed_rank() if distributed else (0, 1)
    nets = networks or new_networks(config, data, settings, dev)
    gen_net, critic = nets.generator.to(dev), nets.critic.to(dev)
    state = TrainingState(
        out,
        config,
        gen_net,
        critic,
        torch.optim.Adam(gen_net.parameters(), lr=settings.lr, betas=(settings.beta1, 0.999)),
        torch.optim.Adam(critic.parameters(), lr=settings.lr, betas=(settings.beta1, 0.999)),
        # each rank augments its own shard differently (rank 0 = a single-process run)
        torch.Generator().manual_seed((0 if settings.seed is None else settings.seed) + rank),
        nets.random_state,
    )
    if resumed is not None:
        state.restore(resumed)
    handlers, loss_history, tensorboard_handler = _product_handlers(
        state, settings, rank, progress, on_epoch, tensorboard
    )
    dataset = PairedSlices(data.condition, data.image)
    if world > 1:  # DDP: each rank a shard per epoch (MONAI's workflow sets the sampler's epoch), gradients averaged
        loader = distributed_loader(dataset, settings.batch_size, 0 if settings.seed is None else settings.seed)
        train_gen, train_critic = distributed_module(gen_net, dev), distributed_module(critic, dev)
    else:
        loader = paired_loader(dataset, settings.batch_size, state.augment)
        train_gen, train_critic = gen_net, critic
    trainer = Pix2PixTrainer(
        dev,
        settings.epochs,
        loader,
        train_gen,
        state.opt_g,
        train_critic,
        state.opt_d,
        l1_weight=settings.l1_weight,
        feature_matching_weight=settings.feature_matching_weight,
        gan_loss=settings.gan_loss,
        kl_weight=settings.kl_weight,
        perceptual=perceptual.to(dev) if perceptual is not None else None,
        perceptual_weight=settings.perceptual_weight,
        prepare_batch=AugmentedPairs(settings.flip, settings.rotate_degrees, state.augment),
        train_handlers=[*handlers, *train_handlers],
        random_state=state.random_state,
    )
    trainer.state.epoch = state.epochs_done
    trainer.state.iteration = state.epochs_done * len(loader)
    trainer.state.history = loss_history.history
    if tensorboard_handler is not None:
        close_when_done(trainer, tensorboard_handler.close)
    return trainer


def _product_handlers(
    state: TrainingState,
    settings: Pix2PixSettings,
    rank: int,
    progress: bool,
    on_epoch: Callable[[dict[str, float]], bool | None] | None,
    tensorboard: str | os.PathLike | None,
) -> tuple[list[Any], EpochLossHistory, TensorBoardStatsHandler | None]:
    """The product's handlers, in order: epoch loss means, ``on_epoch``, the model-file checkpoint (rank 0),
    pix2pix's learning-rate schedule, progress and TensorBoard (rank 0).

    Returns:
        The handlers, the loss history among them, and the TensorBoard handler (None without ``tensorboard``).
    """
    loss_history = EpochLossHistory(ITERATION_LOSSES, state.opt_g, history=state.history)
    handlers: list[Any] = [loss_history]
    if on_epoch is not None:
        handlers.append(EpochCallback(on_epoch))
    if rank == 0:  # one process writes the model file
        handlers.append(
            ModelFileCheckpoint(
                lambda engine: state.save(engine.state.epoch, loss_history.history), settings.checkpoint_every
            )
        )
    # pix2pix's schedule, counted from the resumed epoch (the schedulers hold no state a checkpoint needs)
    start = state.epochs_done
    handlers += [
        LrScheduleHandler(LambdaLR(opt, lambda e: lr_factor(e + start, settings)), print_lr=False)
        for opt in (state.opt_g, state.opt_d)
    ]
    handlers.append(ProgressBar("pix2pix", _last_epoch_losses, disable=not progress or rank > 0))
    tensorboard_handler = None
    if tensorboard is not None and rank == 0:
        tensorboard_handler = TensorBoardStatsHandler(log_dir=str(tensorboard), iteration_log=False, epoch_log=True)
        handlers.append(tensorboard_handler)
    return handlers, loss_history, tensorboard_handler


def _last_epoch_losses(engine: Pix2PixTrainer) -> dict[str, float]:
    """The progress bar's figures: the last epoch's L1 and critic loss."""
    return {"l1": engine.state.metrics["l1"], "d": engine.state.metrics["loss_d"]}


def train_pix2pix(
    data: Pix2PixSlices,
    out: str | os.PathLike,
    settings: Pix2PixSettings | None = None,
    device: str | torch.device | None = None,
    resume: bool = False,
    overwrite: bool = False,
    tensorboard: str | os.PathLike | None = None,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], bool | None] | None = None,
    handlers: Sequence[Any] = (),
    perceptual: PerceptualLoss | None = None,
) -> dict[str, Any]:
    """Train pix2pix on prepared slices and write the model file ``out`` (:func:`pix2pix_trainer`, then run).

    The caller's random state is untouched: network initialisation, dropout and augmentation draw from
    the run's own streams (seeded by ``settings.seed``; restored from the checkpoint on resume), so a
    resumed run ends with exactly the weights of an uninterrupted one.

    Args:
        data: the training slices (:func:`monai_singanseg.synthesis.pix2pix_training_slices`).
        out: the model file (rewritten atomically at every checkpoint).
        settings: training settings (None: the settings ``data`` was prepared with).
        device: torch device (None: CUDA if available).
        resume: continue from ``out``; prepare ``data`` with
            :func:`~monai_singanseg.engines.pix2pix.resume_settings` and pass those settings.
        overwrite: replace an existing ``out`` when not resuming.
        tensorboard: TensorBoard log folder.
        progress: show a progress bar.
        on_epoch: called with each epoch's losses; returning True stops training early.
        handlers: more MONAI or ignite handlers to attach to the trainer.
        perceptual: the perceptual term, already loaded (None: loaded from ``settings.vgg_weights`` if needed).

    Returns:
        ``{"path", "epochs_done", "history": [per-epoch losses and seconds], "num_slices"}``.

    Raises:
        ModelFileError: resuming a checkpoint of other data or another condition layout.
        ValueError: ``data`` holds no slices.
    """
    trainer = pix2pix_trainer(
        data,
        out,
        settings,
        device=device,
        resume=resume,
        overwrite=overwrite,
        train_handlers=handlers,
        tensorboard=tensorboard,
        progress=progress,
        on_epoch=on_epoch,
        perceptual=perceptual,
    )
    trainer.run()
    return {
        "path": str(out),
        "epochs_done": trainer.state.epoch,
        "history": trainer.state.history,
        "num_slices": len(data.image),
    }
