"""2D segmentation networks from MONAI, trained and applied on in-memory slice tensors.

The downstream-utility experiment trains the same network, with the same number of optimisation
steps, on different training sets (real, synthetic, mixed) and compares them on real test slices.
Networks: ``BasicUNetPlusPlus`` (``"unetpp"``, the network of the SinGAN-Seg paper, default),
``BasicUNet`` (``"basicunet"``), ``UNet`` (``"unet"``) and 2D ``SwinUNETR`` (``"swinunetr"``, as in
Akbar et al. 2024; MONAI needs the optional package ``einops`` for it). They learn either the label classes (softmax,
Dice + cross-entropy) or, with ``regions``, the nested BraTS regions WT ⊃ TC ⊃ ET (one sigmoid each, Dice + binary
cross-entropy: nnU-Net's region-based training for BraTS) through :class:`NestedRegionNet`, whose output is class
log-probabilities, so prediction and scoring are the same for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss
from monai.networks.nets import BasicUNet, BasicUNetPlusPlus, SwinUNETR, UNet
from monai.utils import optional_import
from tqdm.auto import tqdm

from monai_singanseg.device import resolve_device
from monai_singanseg.evaluation.augmentation import SliceAugmentation
from monai_singanseg.evaluation.regions import BRATS_REGIONS
from monai_singanseg.options import Settings, check_options, option
from monai_singanseg.rng import forked_rng
from monai_singanseg.transforms.labels import BRATS_LABEL_VALUES

__all__ = [
    "SEGMENTATION_NETWORKS",
    "SegmentationSettings",
    "NestedRegionNet",
    "nested_region_levels",
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
    regions: bool = option(
        False,
        help="learn the nested BraTS regions WT, TC, ET (a sigmoid each from a prior of 0.01, batch Dice + binary "
        "cross-entropy; nnU-Net's region-based training) instead of the label classes (softmax)",
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


def nested_region_levels(
    label_values: Sequence[int] = BRATS_LABEL_VALUES, regions: Mapping[str, Sequence[int]] = BRATS_REGIONS
) -> tuple[int, ...]:
    """How many of the nested ``regions`` (outermost first) each class index lies in: BraTS ``(0, 1, 2, 4)`` with
    WT ⊃ TC ⊃ ET gives ``(0, 2, 1, 3)`` (background none; label 1 in WT and TC; label 2 in WT; label 4 in all three).

    Raises:
        ValueError: a class lies in an inner region but not in an outer one (the regions are not nested).
    """
    levels = []
    for value in label_values:
        inside = [int(value) in {int(v) for v in members} for members in regions.values()]
        level = sum(inside)
        if inside != [True] * level + [False] * (len(inside) - level):
            raise ValueError(
                f"regions {dict(regions)} are not nested outermost first: label {value} lies in {inside} of them"
            )
        levels.append(level)
    return tuple(levels)


class NestedRegionNet(torch.nn.Module):
    """A network with one sigmoid output per nested region whose ``forward`` returns class log-probabilities.

    A class lying in the first ``m`` of the ``R`` regions has probability ``p_1 ... p_m (1 - p_(m+1))`` (no last
    factor when ``m = R``), ``p_j`` the sigmoid of region ``j``; the classes' probabilities sum to 1, so the softmax
    of the output is the class probabilities and its argmax keeps a voxel in a region where ``p_j > 1/2`` along the
    nesting. Training reads :meth:`region_logits`.

    Args:
        net: a network returning ``R`` region logits.
        levels: the number of regions each class index lies in (:func:`nested_region_levels`).
        prior: the share of pixels a region is taken to hold before training: the network's logits are offset by
            ``logit(prior)``, so an untrained network predicts (almost) no tumour instead of a coin toss per pixel
            (RetinaNet's prior initialisation; it keeps the first validations from peaking on noise).
    """

    def __init__(self, net: torch.nn.Module, levels: Sequence[int], prior: float = 0.01) -> None:
        super().__init__()
        if not 0.0 < prior < 1.0:
            raise ValueError(f"prior must be in (0, 1), got {prior}")
        self.net = net
        self.offset = math.log(prior / (1.0 - prior))
        self.register_buffer("levels", torch.as_tensor(levels, dtype=torch.long), persistent=False)

    def region_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The regions' logits ``(N, R, H, W)``."""
        return _logits(self.net, x) + self.offset

    def region_targets(self, labels: torch.Tensor) -> torch.Tensor:
        """Class indices ``(N, 1, H, W)`` -> region masks ``(N, R, H, W)`` float."""
        num_regions = int(self.levels.max())
        depth = self.levels.to(labels.device)[labels.long()]
        return (depth > torch.arange(num_regions, device=labels.device).view(1, -1, 1, 1)).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.region_logits(x)
        inside = torch.cumsum(F.logsigmoid(z), 1)  # log p(in regions 1..j)
        outside = F.logsigmoid(-z)  # log (1 - p_j)
        zero = torch.zeros_like(z[:, :1])
        inside, outside = torch.cat([zero, inside], 1), torch.cat([outside, zero], 1)  # index m: m regions deep
        depth = self.levels.tolist()
        return torch.stack([inside[:, m] + outside[:, m] for m in depth], 1)


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
    class_levels: Sequence[int] | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train a network on slices with Dice + cross-entropy loss (of the classes, or with ``settings.regions`` of the
    nested regions); deterministic under ``seed``.

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
        class_levels: with ``settings.regions``, the nested regions each class lies in (:func:`nested_region_levels`;
            None: BraTS's, for its 4 classes).

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
        if s.regions:
            levels = nested_region_levels() if class_levels is None else tuple(class_levels)
            if len(levels) != num_classes:
                raise ValueError(f"class_levels {list(levels)} must give one level per class ({num_classes})")
            inner = build_segmentation_network(s.network, images.shape[1], max(levels), s.features)
            net: torch.nn.Module = NestedRegionNet(inner, levels).to(dev)
        else:
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


def _training_loss(net: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss of ``net`` on a batch ``(images, class indices)``: soft Dice over the whole batch + binary
    cross-entropy of each region for a :class:`NestedRegionNet` (nnU-Net's region-based loss; a Dice per slice would
    push every tumour-free slice's outputs to zero), else Dice + cross-entropy of the classes."""
    if isinstance(net, NestedRegionNet):
        dice, bce = DiceLoss(sigmoid=True, batch=True), torch.nn.BCEWithLogitsLoss()

        def region_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            logits, target = net.region_logits(x), net.region_targets(y)
            return dice(logits, target) + bce(logits, target)

        return region_loss
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
    return lambda x, y: dice_ce(_logits(net, x), y)


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
    loss_fn = _training_loss(net)
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
        loss = loss_fn(x.to(dev), y.to(dev))
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
