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

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from monai_singanseg.device import resolve_device
from monai_singanseg.engines.common import optional_summary_writer, tensor_digest
from monai_singanseg.rng import forked_rng
from monai_singanseg.inferers.pix2pix import generator_from_config
from monai_singanseg.io.atomic import check_outputs_free
from monai_singanseg.io.model_config import PIX2PIX_KIND, ConditionConfig, Pix2PixModelConfig
from monai_singanseg.io.modelfile import ModelFileError, load_model_file, save_model_file
from monai_singanseg.networks.pix2pix import Pix2PixCritic, max_critic_scales
from monai_singanseg.transforms.condition.array import condition_channel_names
from monai_singanseg.transforms.intensity.array import IntensityStats

__all__ = ["Pix2PixSettings", "Pix2PixSlices", "resume_settings", "train_pix2pix"]


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


def _augment(cond: torch.Tensor, img: torch.Tensor, settings: Pix2PixSettings, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random flip and rotation for each condition/image pair (condition: nearest, image: bilinear)."""
    n = cond.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(settings.rotate_degrees)
    flip = (torch.rand(n, generator=gen) < 0.5) if settings.flip else torch.zeros(n, dtype=torch.bool)
    if settings.rotate_degrees <= 0 and not flip.any():
        return cond, img
    sx = torch.where(flip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) * sx, -torch.sin(angle)
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) * sx, torch.cos(angle)
    grid = F.affine_grid(theta, list(cond.shape), align_corners=False)
    cond = F.grid_sample(cond, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    img = F.grid_sample(img + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0
    return cond, img


def _adversarial(outputs: Sequence[Sequence[torch.Tensor]], real: bool) -> torch.Tensor:
    """BCE of every critic's patch logits (the last of its outputs) against 1 (real) or 0, averaged over critics."""
    losses = [F.binary_cross_entropy_with_logits(o[-1], torch.full_like(o[-1], float(real))) for o in outputs]
    return torch.stack(losses).mean()


def _feature_matching(fake: Sequence[Sequence[torch.Tensor]], real: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """pix2pixHD's feature matching: L1 between the critics' hidden features of the generated and the real pair."""
    terms = [F.l1_loss(f, r.detach()) for fo, ro in zip(fake, real) for f, r in zip(fo[:-1], ro[:-1])]
    return torch.stack(terms).mean()


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
            tissue_method="1D k-means inside the brain, tumour excluded, classes sorted dark to bright" if tissue else None,
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
    if resumed.config.inference_only:
        raise ModelFileError(f"{out}: an inference-only copy (no critic or optimiser state) cannot be resumed")
    saved = {**_SETTINGS_BEFORE_FIDELITY, **resumed.config.settings}
    if settings is not None:
        saved["epochs"] = max(settings.epochs, saved["epochs"])  # resuming may extend training
    return Pix2PixSettings(**saved)


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
) -> dict[str, Any]:
    """Train pix2pix on prepared slices and write the model file ``out``.

    The caller's random state is untouched: network initialisation, dropout and augmentation draw from
    the run's own streams (seeded by ``settings.seed``; restored from the checkpoint on resume).

    Args:
        data: the training slices (:func:`monai_singanseg.synthesis.pix2pix_training_slices`).
        out: the model file (rewritten atomically at every checkpoint).
        settings: training settings (None: the settings ``data`` was prepared with).
        device: torch device (None: CUDA if available).
        resume: continue from ``out`` (its weights, optimiser and random states); prepare ``data`` with
            :func:`resume_settings` and pass those settings.
        overwrite: replace an existing ``out`` when not resuming.
        tensorboard: TensorBoard log folder.
        progress: show tqdm bars.
        on_epoch: called with each epoch's losses; returning True stops training early.

    Returns:
        ``{"path", "epochs_done", "history": [per-epoch losses and seconds], "num_slices"}``.

    Raises:
        ModelFileError: resuming a checkpoint of other data or another condition layout.
        ValueError: ``data`` holds no slices.
    """
    out = Path(out)
    settings = settings or data.settings
    if settings.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {settings.epochs}")
    if data.condition.shape[0] == 0:
        raise ValueError("no training slices (no case has a tumour-bearing slice)")
    resumed = None
    if resume and out.exists():
        resumed = load_model_file(out, expected_kind=PIX2PIX_KIND)
        if resumed.config.inference_only:
            raise ModelFileError(f"{out}: an inference-only copy (no critic or optimiser state) cannot be resumed")
    elif not resume:
        check_outputs_free([out], overwrite)
    dev = resolve_device(device)
    config = _model_config(settings, data)
    if data.condition.shape[1] != config.generator_in_channels:
        raise ValueError(
            f"the slices hold {data.condition.shape[1]} condition channels, but context_slices={settings.context_slices} "
            f"needs {config.generator_in_channels}: prepare them with these settings"
        )
    if resumed is not None:
        old: Pix2PixModelConfig = resumed.config
        if old.condition.channels != config.condition.channels:
            raise ModelFileError(f"{out}: cannot resume, the saved condition channels differ from the data's")
        if old.data_hash is not None and old.data_hash != config.data_hash:
            raise ModelFileError(
                f"{out}: cannot resume: it was trained on other data (cases {', '.join(old.training_cases)}) than this "
                f"run's (cases {', '.join(config.training_cases)}) or with other slice settings; pass the same data, or "
                "--overwrite to start afresh"
            )
    with forked_rng(dev, settings.seed), optional_summary_writer(tensorboard) as writer:
        return _fit(data, out, settings, config, resumed, dev, writer, progress, on_epoch)


def _fit(
    data: Pix2PixSlices,
    out: Path,
    settings: Pix2PixSettings,
    config: Pix2PixModelConfig,
    resumed: Any,
    dev: torch.device,
    writer: Any,
    progress: bool,
    on_epoch: Callable[[dict[str, float]], bool | None] | None,
) -> dict[str, Any]:
    """The training loop of :func:`train_pix2pix` (runs inside its forked random stream)."""
    gen_net = generator_from_config(config).to(dev)
    critic = Pix2PixCritic(
        2, data.condition.shape[1], data.image.shape[1], channels=settings.critic_channels, scales=config.critic_scales,
        size=settings.size,
    ).to(dev)
    opt_g = torch.optim.Adam(gen_net.parameters(), lr=settings.lr, betas=(settings.beta1, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=settings.lr, betas=(settings.beta1, 0.999))
    aug_gen = torch.Generator().manual_seed(0 if settings.seed is None else settings.seed)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resumed is not None:
        gen_net.load_state_dict(resumed.state["generator"])
        critic.load_state_dict(resumed.state["critic"])
        _restore_optimizer(opt_g, resumed.tensors, "opt_g")
        _restore_optimizer(opt_d, resumed.tensors, "opt_d")
        aug_gen.set_state(resumed.tensors["rng.augment"])
        torch.set_rng_state(resumed.tensors["rng.torch"])  # the forked stream of this run
        start_epoch = resumed.config.epochs_done
        history = list(resumed.config.history)
    n = data.condition.shape[0]
    epochs_done = start_epoch

    def checkpoint() -> None:
        config.epochs_done = epochs_done
        config.history = history
        tensors = {**_flatten_optimizer(opt_g, "opt_g"), **_flatten_optimizer(opt_d, "opt_d")}
        tensors["rng.augment"] = aug_gen.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        save_model_file(out, config, {"generator": gen_net.state_dict(), "critic": critic.state_dict()}, tensors)

    bar = tqdm(range(start_epoch, settings.epochs), desc="pix2pix", disable=not progress, initial=start_epoch, total=settings.epochs)
    for epoch in bar:
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = settings.lr * _lr_factor(epoch, settings)
        gen_net.train()
        critic.train()
        t0 = time.perf_counter()
        sums = {"loss_g": 0.0, "loss_d": 0.0, "l1": 0.0, "feature_matching": 0.0}
        order = torch.randperm(n, generator=aug_gen)
        for s in range(0, n, settings.batch_size):
            idx = order[s : s + settings.batch_size]
            cond, real = _augment(data.condition[idx], data.image[idx], settings, aug_gen)
            cond, real = cond.to(dev), real.to(dev)
            fake = gen_net(cond)
            # critics: real pairs -> 1, generated pairs -> 0
            opt_d.zero_grad(set_to_none=True)
            real_outs = critic(cond, real)
            loss_d = 0.5 * (_adversarial(real_outs, True) + _adversarial(critic(cond, fake.detach()), False))
            loss_d.backward()
            opt_d.step()
            # generator: fool the critics, match their features of the real pair, stay close to the real image
            opt_g.zero_grad(set_to_none=True)
            fake_outs = critic(cond, fake)
            l1 = F.l1_loss(fake, real)
            fm = _feature_matching(fake_outs, real_outs) if settings.feature_matching_weight > 0 else l1.new_zeros(())
            loss_g = _adversarial(fake_outs, True) + settings.l1_weight * l1 + settings.feature_matching_weight * fm
            loss_g.backward()
            opt_g.step()
            k = idx.numel()
            sums["loss_g"] += loss_g.item() * k
            sums["loss_d"] += loss_d.item() * k
            sums["l1"] += l1.item() * k
            sums["feature_matching"] += fm.item() * k
        record = {key: v / n for key, v in sums.items()}
        record.update(epoch=epoch + 1, seconds=time.perf_counter() - t0, lr=settings.lr * _lr_factor(epoch, settings))
        history.append(record)
        epochs_done = epoch + 1
        bar.set_postfix(l1=f"{record['l1']:.4f}", d=f"{record['loss_d']:.3f}")
        if writer is not None:
            for key in ("loss_g", "loss_d", "l1", "feature_matching", "lr"):
                writer.add_scalar(f"pix2pix/{key}", record[key], epochs_done)
        stop = bool(on_epoch(record)) if on_epoch is not None else False
        if stop or epochs_done % settings.checkpoint_every == 0 or epochs_done == settings.epochs:
            checkpoint()
        if stop:
            break
    if epochs_done == start_epoch and not out.exists():
        checkpoint()
    return {"path": str(out), "epochs_done": epochs_done, "history": history, "num_slices": n}
