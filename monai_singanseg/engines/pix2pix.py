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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from monai.handlers import LrScheduleHandler, TensorBoardStatsHandler
from torch.optim.lr_scheduler import LambdaLR

from monai_singanseg.device import resolve_device
from monai_singanseg.engines.common import require_tensorboard, tensor_digest
from monai_singanseg.engines.distributed import distributed_loader, distributed_module, distributed_rank
from monai_singanseg.engines.handlers import (
    EpochCallback,
    EpochLossHistory,
    ModelFileCheckpoint,
    ProgressBar,
    close_when_done,
)
from monai_singanseg.engines.pix2pix_trainer import (
    ITERATION_LOSSES,
    AugmentedPairs,
    PairedSlices,
    Pix2PixTrainer,
    paired_loader,
)
from monai_singanseg.inferers.pix2pix import generator_from_config
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.model_config import PIX2PIX_KIND, ConditionConfig, Pix2PixModelConfig
from monai_singanseg.io.modelfile import ModelFileError, load_model_file, save_model_file
from monai_singanseg.networks.pix2pix import Pix2PixCritic, max_critic_scales
from monai_singanseg.rng import forked_rng
from monai_singanseg.transforms.condition.array import condition_channel_names
from monai_singanseg.transforms.intensity.array import IntensityStats

__all__ = [
    "Pix2PixSettings",
    "Pix2PixSlices",
    "Pix2PixNetworks",
    "resume_settings",
    "pix2pix_networks",
    "pix2pix_trainer",
    "train_pix2pix",
]


@dataclass
class Pix2PixSettings:
    """Training settings (all stored in the model file).

    Args:
        size: working resolution (power of two; 128 default, 256 supported).
        epochs: total epochs (the second half decays the learning rate linearly to 0, as in pix2pix).
        decay_epochs: epochs of linear decay at the end (None: half of ``epochs``).
        batch_size: slices per step.
        lr: Adam learning rate.
        beta1: Adam beta1.
        l1_weight: weight of the L1 term (100 in pix2pix).
        generator_channels: ``ngf`` (pix2pix uses 64; 32 is the CPU default: about 4x faster to render,
            with render quality measured equal in ``benchmarks/pix2pix.py``).
        critic_channels: ``ndf``.
        dropout: dropout of the 3 innermost decoder blocks.
        upsample: the generator's decoder upsampling, ``"resize"`` (nearest x2 + 3x3 convolution) or
            ``"transposed"`` (the reference's 4x4 stride-2 transposed convolutions, which leave a checkerboard).
        context_slices: neighbouring slices on each side whose condition the generator also reads (2.5D;
            0: each slice alone).
        critic_scales: critics of pix2pixHD's multi-scale critic (1: pix2pix's single PatchGAN); at most as
            many as the working size allows (each halves it, the coarsest needs 32 pixels: 2 need 64).
        feature_matching_weight: weight of pix2pixHD's feature matching loss (0: off; 10 in pix2pixHD).
        all_brain_slices: train on every slice holding brain, not only tumour-bearing ones.
        min_brain_fraction: with ``all_brain_slices``, skip slices whose brain covers less than this
            fraction of the largest brain slice.
        tissue_classes: 0, or the number of tissue classes (3) added to the condition.
        tissue_modality: the modality clustered into tissue classes.
        margin: background voxels kept around the brain's in-plane box.
        flip: random left-right flips.
        rotate_degrees: maximum random in-plane rotation.
        seed: random seed (None: not deterministic).
        checkpoint_every: write the model file every N epochs (and at the end).
    """

    size: int = 128
    epochs: int = 60
    decay_epochs: int | None = None
    batch_size: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 100.0
    generator_channels: int = 32
    critic_channels: int = 32
    dropout: float = 0.5
    upsample: str = "resize"
    context_slices: int = 1
    critic_scales: int = 2
    feature_matching_weight: float = 10.0
    all_brain_slices: bool = False
    min_brain_fraction: float = 0.1
    tissue_classes: int = 0
    tissue_modality: str = "t1"
    margin: int = 4
    flip: bool = True
    rotate_degrees: float = 10.0
    seed: int | None = 0
    checkpoint_every: int = 1


@dataclass
class Pix2PixSlices:
    """Training pairs: ``condition`` ``(N, C, S, S)`` in {0, 1}, ``image`` ``(N, M, S, S)`` in [-1, 1].

    Args:
        condition: condition slices.
        image: image slices.
        stats: each case's intensity statistics.
        names: each case's name.
        source_dtype: the cases' dtype on disk.
        label_values: label values, background first.
        modalities: names of the image channels.
        settings: the settings the slices were prepared with (size, margin, slices, tissue classes).
    """

    condition: torch.Tensor
    image: torch.Tensor
    stats: list[IntensityStats]
    names: list[str]
    source_dtype: str
    label_values: tuple[int, ...]
    modalities: tuple[str, ...]
    settings: Pix2PixSettings


#: the values of settings added with the fidelity work, for model files written before them.
_SETTINGS_BEFORE_FIDELITY = {
    **{name: getattr(Pix2PixModelConfig, name) for name in ("upsample", "context_slices", "critic_scales")},
    "feature_matching_weight": 0.0,
}


def _merged_stats(stats: Sequence[IntensityStats], dtype: str) -> IntensityStats:
    """The rendering range: the per-modality mean of the training cases' ranges."""
    n = len(stats)
    low = [sum(s.low[c] for s in stats) / n for c in range(len(stats[0].low))]
    high = [sum(s.high[c] for s in stats) / n for c in range(len(stats[0].high))]
    background = [sum(s.background[c] for s in stats) / n for c in range(len(stats[0].background))]
    return IntensityStats(low=low, high=high, dtype=dtype, background=background)


def _lr_factor(epoch: int, settings: Pix2PixSettings) -> float:
    decay = settings.epochs // 2 if settings.decay_epochs is None else settings.decay_epochs
    start = settings.epochs - decay
    return 1.0 if epoch < start else max(0.0, 1.0 - (epoch - start + 1) / float(decay + 1))


def _flatten_optimizer(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for pid, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            out[f"{prefix}.{pid}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], prefix: str) -> None:
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)


def _model_config(settings: Pix2PixSettings, data: Pix2PixSlices) -> Pix2PixModelConfig:
    tissue = settings.tissue_classes
    return Pix2PixModelConfig(
        size=settings.size,
        generator_channels=settings.generator_channels,
        critic_channels=settings.critic_channels,
        dropout=settings.dropout,
        norm="INSTANCE",
        margin=settings.margin,
        modalities=list(data.modalities),
        condition=ConditionConfig(
            channels=condition_channel_names(data.label_values, tissue),
            label_values=[int(v) for v in data.label_values],
            tissue_classes=tissue,
            tissue_modality=settings.tissue_modality if tissue else None,
            tissue_method="1D k-means inside the brain, tumour excluded, classes sorted dark to bright"
            if tissue
            else None,
        ),
        intensity_stats=_merged_stats(data.stats, data.source_dtype).to_dict(),
        case_intensity_stats={n: s.to_dict() for n, s in zip(data.names, data.stats)},
        training_cases=list(data.names),
        num_slices=int(data.condition.shape[0]),
        settings=asdict(settings),
        data_hash=tensor_digest(data.condition, data.image),
        upsample=settings.upsample,
        context_slices=settings.context_slices,
        critic_scales=min(settings.critic_scales, max_critic_scales(settings.size)),
    )


def resume_settings(out: str | os.PathLike, settings: Pix2PixSettings | None = None) -> Pix2PixSettings | None:
    """The settings a resumed run of ``out`` trains with (the checkpoint's; ``settings.epochs`` may extend them).

    Returns None when ``out`` does not exist (the run starts afresh with ``settings``). Prepare the slices
    with the returned settings, then call :func:`train_pix2pix` with ``resume=True``.

    Raises:
        ModelFileError: ``out`` is not a pix2pix model file, or an inference-only copy.
    """
    if not Path(out).exists():
        return None
    resumed = load_model_file(out, expected_kind=PIX2PIX_KIND)
    _check_not_inference_copy(Path(out), resumed.config)
    saved = {**_SETTINGS_BEFORE_FIDELITY, **resumed.config.settings}
    if settings is not None:
        saved["epochs"] = max(settings.epochs, saved["epochs"])  # resuming may extend training
    return Pix2PixSettings(**saved)


@dataclass
class Pix2PixNetworks:
    """The generator and critic of a run, initialised on the run's own random stream.

    Args:
        generator: the U-Net generator (condition -> image).
        critic: the multi-scale conditional critic.
        random_state: the CPU random stream's state after initialisation (training continues it).
    """

    generator: torch.nn.Module
    critic: torch.nn.Module
    random_state: torch.Tensor


def _checked_config(data: Pix2PixSlices, settings: Pix2PixSettings) -> Pix2PixModelConfig:
    """The model config of a run on ``data`` (checks that the slices were prepared with ``settings``)."""
    if settings.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {settings.epochs}")
    if data.condition.shape[0] == 0:
        raise ValueError("no training slices (no case has a tumour-bearing slice)")
    config = _model_config(settings, data)
    if data.condition.shape[1] != config.generator_in_channels:
        raise ValueError(
            f"the slices hold {data.condition.shape[1]} condition channels, but "
            f"context_slices={settings.context_slices} "
            f"needs {config.generator_in_channels}: prepare them with these settings"
        )
    return config


def pix2pix_networks(
    data: Pix2PixSlices, settings: Pix2PixSettings | None = None, device: str | torch.device | None = None
) -> Pix2PixNetworks:
    """A new generator and critic for ``data``, initialised from ``settings.seed`` (the caller's stream untouched).

    Bundles build them first so that an evaluator can share the generator with the trainer
    (:func:`pix2pix_trainer` ``networks=``).
    """
    settings = settings or data.settings
    return _new_networks(_checked_config(data, settings), data, settings, resolve_device(device))


def _new_networks(
    config: Pix2PixModelConfig, data: Pix2PixSlices, settings: Pix2PixSettings, dev: torch.device
) -> Pix2PixNetworks:
    """:func:`pix2pix_networks` for an already checked config (the data fingerprint is not computed again)."""
    with forked_rng(dev, settings.seed):
        generator = generator_from_config(config).to(dev)
        critic = Pix2PixCritic(
            2,
            data.condition.shape[1],
            data.image.shape[1],
            channels=settings.critic_channels,
            scales=config.critic_scales,
            size=settings.size,
        ).to(dev)
        return Pix2PixNetworks(generator, critic, torch.get_rng_state())


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
            ``data`` with :func:`resume_settings` and pass those settings.
        overwrite: replace an existing ``out`` when not resuming.
        networks: networks from :func:`pix2pix_networks` (None: made here, the same way).
        train_handlers: more handlers, attached after the product's own.
        tensorboard: TensorBoard log folder (per-epoch losses and learning rate).
        progress: show a progress bar over epochs.
        on_epoch: called with each epoch's losses; returning True stops training after that epoch.
        distributed: train data-parallel over the initialised process group (every rank calls this and
            ``run()``; DDP, a ``DistributedSampler`` shard per rank, rank 0 writes ``out``). Off by default:
            a process of a ``torchrun`` job that trains a model of its own (the dataset farm) is not DDP.

    Raises:
        ModelFileError: resuming a checkpoint of other data or another condition layout, or an inference copy.
        OutputExistsError: ``out`` exists and neither ``resume`` nor ``overwrite`` is set.
        ValueError: ``data`` holds no slices, or was prepared with other settings.
    """
    out = Path(out)
    settings = settings or data.settings
    if max_epochs is not None:
        settings = replace(settings, epochs=int(max_epochs))
    config = _checked_config(data, settings)
    resumed = None
    if resume and out.exists():
        resumed = load_model_file(out, expected_kind=PIX2PIX_KIND)
        _check_resumable(out, resumed.config, config)
    elif not resume:
        check_outputs_free([out], overwrite)
    dev = resolve_device(device)
    if tensorboard is not None:
        require_tensorboard()
    rank, world = distributed_rank() if distributed else (0, 1)
    nets = networks or _new_networks(config, data, settings, dev)
    gen_net, critic = nets.generator.to(dev), nets.critic.to(dev)
    opt_g = torch.optim.Adam(gen_net.parameters(), lr=settings.lr, betas=(settings.beta1, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=settings.lr, betas=(settings.beta1, 0.999))
    # each rank augments its own shard differently (rank 0 = a single-process run)
    aug_gen = torch.Generator().manual_seed((0 if settings.seed is None else settings.seed) + rank)
    random_state, history, start_epoch = nets.random_state, [], 0
    if resumed is not None:
        gen_net.load_state_dict(resumed.state["generator"])
        critic.load_state_dict(resumed.state["critic"])
        _restore_optimizer(opt_g, resumed.tensors, "opt_g")
        _restore_optimizer(opt_d, resumed.tensors, "opt_d")
        aug_gen.set_state(resumed.tensors["rng.augment"])
        random_state = resumed.tensors["rng.torch"]
        start_epoch = resumed.config.epochs_done
        history = list(resumed.config.history)
    loss_history = EpochLossHistory(ITERATION_LOSSES, opt_g, history=history)

    def checkpoint(engine: Pix2PixTrainer) -> None:
        config.epochs_done = engine.state.epoch
        config.history = loss_history.history
        tensors = {**_flatten_optimizer(opt_g, "opt_g"), **_flatten_optimizer(opt_d, "opt_d")}
        tensors["rng.augment"] = aug_gen.get_state()
        tensors["rng.torch"] = torch.get_rng_state()  # inside run(): the run's own stream
        save_model_file(out, config, {"generator": gen_net.state_dict(), "critic": critic.state_dict()}, tensors)

    handlers: list[Any] = [loss_history]
    if on_epoch is not None:
        handlers.append(EpochCallback(on_epoch))
    if rank == 0:  # one process writes the model file
        handlers.append(ModelFileCheckpoint(checkpoint, settings.checkpoint_every))
    # pix2pix's schedule, counted from the resumed epoch (the schedulers hold no state a checkpoint needs)
    handlers += [
        LrScheduleHandler(LambdaLR(opt, lambda e: _lr_factor(e + start_epoch, settings)), print_lr=False)
        for opt in (opt_g, opt_d)
    ]
    handlers.append(ProgressBar("pix2pix", _last_epoch_losses, disable=not progress or rank > 0))
    tensorboard_handler = None
    if tensorboard is not None and rank == 0:
        tensorboard_handler = TensorBoardStatsHandler(log_dir=str(tensorboard), iteration_log=False, epoch_log=True)
        handlers.append(tensorboard_handler)
    dataset = PairedSlices(data.condition, data.image)
    if world > 1:  # DDP: each rank a shard per epoch (MONAI's workflow sets the sampler's epoch), gradients averaged
        loader = distributed_loader(dataset, settings.batch_size, 0 if settings.seed is None else settings.seed)
        train_gen, train_critic = distributed_module(gen_net, dev), distributed_module(critic, dev)
    else:
        loader = paired_loader(dataset, settings.batch_size, aug_gen)
        train_gen, train_critic = gen_net, critic
    trainer = Pix2PixTrainer(
        dev,
        settings.epochs,
        loader,
        train_gen,
        opt_g,
        train_critic,
        opt_d,
        l1_weight=settings.l1_weight,
        feature_matching_weight=settings.feature_matching_weight,
        prepare_batch=AugmentedPairs(settings.flip, settings.rotate_degrees, aug_gen),
        train_handlers=[*handlers, *train_handlers],
        random_state=random_state,
    )
    trainer.state.epoch = start_epoch
    trainer.state.iteration = start_epoch * len(loader)
    trainer.state.history = loss_history.history
    if tensorboard_handler is not None:
        close_when_done(trainer, tensorboard_handler.close)
    return trainer


def _last_epoch_losses(engine: Pix2PixTrainer) -> dict[str, float]:
    """The progress bar's figures: the last epoch's L1 and critic loss."""
    return {"l1": engine.state.metrics["l1"], "d": engine.state.metrics["loss_d"]}


def _check_not_inference_copy(out: Path, config: Pix2PixModelConfig) -> None:
    """Raise :class:`ModelFileError` if ``out`` is an inference-only copy (no critic or optimiser state)."""
    if config.inference_only:
        raise ModelFileError(f"{out}: an inference-only copy (no critic or optimiser state) cannot be resumed")


def _check_resumable(out: Path, old: Pix2PixModelConfig, config: Pix2PixModelConfig) -> None:
    """Raise :class:`ModelFileError` unless the checkpoint ``out`` can continue a run on this data."""
    _check_not_inference_copy(out, old)
    if old.condition.channels != config.condition.channels:
        raise ModelFileError(f"{out}: cannot resume, the saved condition channels differ from the data's")
    if old.data_hash is not None and old.data_hash != config.data_hash:
        raise ModelFileError(
            f"{out}: cannot resume: it was trained on other data (cases {', '.join(old.training_cases)}) than this "
            f"run's (cases {', '.join(config.training_cases)}) or with other slice settings; pass the same data, or "
            "--overwrite to start afresh"
        )


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
        resume: continue from ``out``; prepare ``data`` with :func:`resume_settings` and pass those settings.
        overwrite: replace an existing ``out`` when not resuming.
        tensorboard: TensorBoard log folder.
        progress: show a progress bar.
        on_epoch: called with each epoch's losses; returning True stops training early.
        handlers: more MONAI or ignite handlers to attach to the trainer.

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
    )
    trainer.run()
    return {
        "path": str(out),
        "epochs_done": trainer.state.epoch,
        "history": trainer.state.history,
        "num_slices": len(data.image),
    }
