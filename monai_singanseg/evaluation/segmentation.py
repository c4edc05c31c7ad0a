"""2D segmentation networks from MONAI, trained and applied on in-memory slice tensors.

The downstream-utility experiment trains the same network, with the same number of optimisation
steps, on different training sets (real, synthetic, mixed) and compares them on real test slices.
Networks: ``BasicUNetPlusPlus`` (``"unetpp"``, the network of the SinGAN-Seg paper, default),
``BasicUNet`` (``"basicunet"``), ``UNet`` (``"unet"``) and 2D ``SwinUNETR`` (``"swinunetr"``, as in
Akbar et al. 2024; MONAI needs the optional package ``einops`` for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet, BasicUNetPlusPlus, SwinUNETR, UNet
from monai.utils import optional_import
from tqdm.auto import tqdm

from monai_singanseg.device import resolve_device
from monai_singanseg.evaluation.augmentation import SliceAugmentation
from monai_singanseg.options import Settings, check_options, option
from monai_singanseg.rng import forked_rng

__all__ = [
    "SEGMENTATION_NETWORKS",
    "SegmentationSettings",
    "build_segmentation_network",
    "train_segmentation",
    "predict",
    "predict_probabilities",
    "validation_dice",
]

SEGMENTATION_NETWORKS = ("unetpp", "basicunet", "unet", "swinunetr")


@dataclass
class SegmentationSettings(Settings):
    """How a segmentation network is built and trained (the same for every training set).

    Every field is an option declared with its help and bounds (:mod:`monai_singanseg.options`).
    """

    network: str = option("unetpp", choices=SEGMENTATION_NETWORKS, help="segmentation network")
    features: int = option(
        16, low=2, high=1024, help="segmentation network width (first level; feature_size for SwinUNETR)"
    )
    steps: int = option(
        300,
        low=1,
        high=10**7,
        help="segmentation training steps at most (with validation slices, training stops earlier on a plateau)",
    )
    batch_size: int = option(8, low=1, high=4096, help="segmentation slices per step (drawn with replacement)")
    lr: float = option(1e-3, low=0.0, high=1.0, low_open=True, help="Adam learning rate (cosine-annealed to 0)")
    flip: bool = option(True, help="random flips along both in-plane axes")
    augment: bool = option(
        False,
        help="random rotation and zoom, per-channel contrast (gamma), noise and blur of each training slice "
        "(MONAI transforms, after nnU-Net's augmentation)",
    )
    keep_largest: bool = option(
        False,
        help="keep only the largest connected tumour component of each predicted test case, all tumour classes "
        "together (MONAI KeepLargestConnectedComponent; one of nnU-Net's post-processing steps)",
    )
    val_every: int = option(50, low=1, high=10**6, help="segmentation steps between validations")
    patience: int = option(
        4,
        low=0,
        high=10**4,
        help="validations without a better validation Dice before segmentation training stops (0: never)",
    )

    def __post_init__(self) -> None:
        check_options(self)


def build_segmentation_network(name: str, in_channels: int, out_channels: int, features: int = 16) -> torch.nn.Module:
    """A 2D MONAI segmentation network returning logits ``(N, out_channels, H, W)``.

    Args:
        name: one of :data:`SEGMENTATION_NETWORKS`.
        in_channels: image channels.
        out_channels: classes including background.
        features: width of the first level.

    Raises:
        ValueError: unknown name.
        RuntimeError: ``"swinunetr"`` without the ``einops`` package.
    """
    f = int(features)
    widths = (f, f, 2 * f, 4 * f, 8 * f, f)
    if name == "unetpp":
        return BasicUNetPlusPlus(2, in_channels, out_channels, features=widths)
    if name == "basicunet":
        return BasicUNet(2, in_channels, out_channels, features=widths)
    if name == "unet":
        return UNet(2, in_channels, out_channels, channels=(f, 2 * f, 4 * f, 8 * f), strides=(2, 2, 2), num_res_units=2)
    if name == "swinunetr":
        if not optional_import("einops")[1]:
            raise RuntimeError("the swinunetr network needs the 'einops' package (pip install einops)")
        return SwinUNETR(
            in_channels=in_channels, out_channels=out_channels, spatial_dims=2, feature_size=max(12, f - f % 12)
        )
    raise ValueError(f"network must be one of {SEGMENTATION_NETWORKS}, got {name!r}")


def _logits(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    return out[0] if isinstance(out, (list, tuple)) else out  # BasicUNetPlusPlus returns a list


def _check_pairs(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    if images.ndim != 4 or labels.ndim != 4 or labels.shape[1] != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected images (N, C, H, W) and labels (N, 1, H, W), got {tuple(images.shape)} and {tuple(labels.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError("the training set is empty")
    if images.shape[2:] != labels.shape[2:]:
        raise ValueError(f"image size {tuple(images.shape[2:])} and label size {tuple(labels.shape[2:])} differ")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must be class indices 0..{num_classes - 1}")
    if not torch.isfinite(images).all():
        raise ValueError("training images hold NaN or infinite values")


def train_segmentation(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    settings: SegmentationSettings | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "segmentation",
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train a network on slices with Dice + cross-entropy loss; deterministic under ``seed``.

    With ``validation`` slices, the mean foreground Dice on them is measured every ``settings.val_every`` steps;
    training stops after ``settings.patience`` validations without improvement and the best weights are returned.

    Args:
        images: ``(N, C, H, W)`` float (e.g. MR channels in [-1, 1]).
        labels: ``(N, 1, H, W)`` class indices.
        num_classes: classes including background.
        settings: network and optimisation settings.
        seed: seeds the weights, the batch draws, the flips and the augmentation.
        device: torch device (None: CUDA if available).
        progress: show a tqdm bar.
        desc: the bar's title.
        validation: held-in ``(images, labels)`` that decide when to stop (None: train ``settings.steps`` steps).

    Returns:
        ``(network in eval mode, {"losses": loss of every step, "steps": steps run, "best_step": the kept weights'
        step, "validation": [(step, Dice), ...]})``.
    """
    s = settings or SegmentationSettings()
    _check_pairs(images, labels, num_classes)
    if validation is not None:
        _check_pairs(*validation, num_classes)
    dev = resolve_device(device)
    with forked_rng(dev, seed):  # the caller's random state is untouched
        net = build_segmentation_network(s.network, images.shape[1], num_classes, s.features).to(dev)
        return _fit_segmentation(net, images, labels, s, seed, dev, progress, desc, validation, num_classes)


def validation_dice(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean Dice of the foreground classes over the pooled validation slices (a class absent from both scores 1)."""
    pred = predict(net, images)
    dice = []
    for k in range(1, num_classes):
        p, t = pred == k, labels == k
        total = int(p.sum() + t.sum())
        dice.append(1.0 if total == 0 else 2.0 * int((p & t).sum()) / total)
    return sum(dice) / len(dice)


def _fit_segmentation(
    net: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    s: SegmentationSettings,
    seed: int,
    dev: torch.device,
    progress: bool,
    desc: str,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    num_classes: int = 2,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The training loop of :func:`train_segmentation`."""
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.steps)
    gen = torch.Generator().manual_seed(seed)
    augment = SliceAugmentation(seed) if s.augment else None
    images, labels = images.float(), labels.long()
    losses: list[float] = []
    history: list[tuple[int, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor] | None] = (-1.0, 0, None)
    net.train()
    bar = tqdm(range(s.steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for step in bar:
        pick = torch.randint(0, images.shape[0], (s.batch_size,), generator=gen)
        x, y = images[pick], labels[pick]
        if s.flip:
            for axis in (2, 3):
                flip = torch.rand(s.batch_size, generator=gen) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(axis), x)
                y = torch.where(flip.view(-1, 1, 1, 1), y.flip(axis), y)
        if augment is not None:
            x, y = augment(x, y)
        loss = loss_fn(_logits(net, x.to(dev)), y.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach().item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
        if validation is not None and ((step + 1) % s.val_every == 0 or step + 1 == s.steps):
            dice = validation_dice(net, *validation, num_classes)
            net.train()
            history.append((step + 1, dice))
            if dice > best[0]:
                best = (dice, step + 1, {k: v.detach().clone() for k, v in net.state_dict().items()})
            elif s.patience and len(history) - [h[0] for h in history].index(best[1]) > s.patience:
                break
    if best[2] is not None:
        net.load_state_dict(best[2])
    return net.eval(), {
        "losses": losses,
        "steps": len(losses),
        "best_step": best[1] or len(losses),
        "validation": history,
    }


@torch.no_grad()
def predict_probabilities(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Class probabilities ``(N, K, H, W)`` (softmax of the logits) for ``images`` ``(N, C, H, W)``, on the CPU."""
    dev = next(net.parameters()).device
    net.eval()
    out = [
        torch.softmax(_logits(net, images[i : i + batch_size].float().to(dev)), 1).cpu()
        for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(out)


def predict(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Class indices ``(N, 1, H, W)`` (argmax of the logits) for ``images`` ``(N, C, H, W)``."""
    return predict_probabilities(net, images, batch_size).argmax(1, keepdim=True)
