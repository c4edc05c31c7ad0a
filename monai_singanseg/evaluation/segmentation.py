"""2D segmentation networks from MONAI, trained and applied on in-memory slice tensors.

The downstream-utility experiment trains the same network, with the same number of optimisation
steps, on different training sets (real, synthetic, mixed) and compares them on real test slices.
Networks: ``BasicUNetPlusPlus`` (``"unetpp"``, the network of the SinGAN-Seg paper, default),
``BasicUNet`` (``"basicunet"``), ``UNet`` (``"unet"``) and 2D ``SwinUNETR`` (``"swinunetr"``, as in
Akbar et al. 2024; MONAI needs the optional package ``einops`` for it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from monai.losses import DiceCELoss
from monai.networks.nets import BasicUNet, BasicUNetPlusPlus, SwinUNETR, UNet
from monai.utils import optional_import
from tqdm.auto import tqdm

from monai_singanseg.device import resolve_device
from monai_singanseg.rng import forked_rng

__all__ = ["SEGMENTATION_NETWORKS", "SegmentationSettings", "build_segmentation_network", "train_segmentation", "predict"]

SEGMENTATION_NETWORKS = ("unetpp", "basicunet", "unet", "swinunetr")


@dataclass
class SegmentationSettings:
    """How a segmentation network is built and trained (the same for every training set).

    Args:
        network: one of :data:`SEGMENTATION_NETWORKS`.
        features: width of the first level (doubling per level; ``feature_size`` for SwinUNETR).
        steps: optimisation steps (fixed, whatever the size of the training set).
        batch_size: slices per step (drawn at random with replacement).
        lr: Adam learning rate (cosine-annealed to 0 over ``steps``).
        flip: random flips along both in-plane axes.
    """

    network: str = "unetpp"
    features: int = 16
    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-3
    flip: bool = True

    def __post_init__(self) -> None:
        if self.network not in SEGMENTATION_NETWORKS:
            raise ValueError(f"network must be one of {SEGMENTATION_NETWORKS}, got {self.network!r}")
        if self.steps < 1 or self.batch_size < 1 or self.features < 2:
            raise ValueError("steps and batch_size must be >= 1 and features >= 2")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


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
        return SwinUNETR(in_channels=in_channels, out_channels=out_channels, spatial_dims=2, feature_size=max(12, f - f % 12))
    raise ValueError(f"network must be one of {SEGMENTATION_NETWORKS}, got {name!r}")


def _logits(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    return out[0] if isinstance(out, (list, tuple)) else out  # BasicUNetPlusPlus returns a list


def _check_pairs(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
    if images.ndim != 4 or labels.ndim != 4 or labels.shape[1] != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"expected images (N, C, H, W) and labels (N, 1, H, W), got {tuple(images.shape)} and {tuple(labels.shape)}")
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
) -> tuple[torch.nn.Module, list[float]]:
    """Train a network on slices with Dice + cross-entropy loss; deterministic under ``seed``.

    Args:
        images: ``(N, C, H, W)`` float (e.g. MR channels in [-1, 1]).
        labels: ``(N, 1, H, W)`` class indices.
        num_classes: classes including background.
        settings: network and optimisation settings.
        seed: seeds the weights, the batch draws and the flips.
        device: torch device (None: CUDA if available).
        progress: show a tqdm bar.
        desc: the bar's title.

    Returns:
        ``(network in eval mode, loss of every step)``.
    """
    s = settings or SegmentationSettings()
    _check_pairs(images, labels, num_classes)
    dev = resolve_device(device)
    with forked_rng(dev, seed):  # the caller's random state is untouched
        net = build_segmentation_network(s.network, images.shape[1], num_classes, s.features).to(dev)
        return _fit_segmentation(net, images, labels, s, seed, dev, progress, desc)


def _fit_segmentation(
    net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, s: SegmentationSettings, seed: int,
    dev: torch.device, progress: bool, desc: str,
) -> tuple[torch.nn.Module, list[float]]:  # fmt: skip
    """The training loop of :func:`train_segmentation`."""
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=s.steps)
    gen = torch.Generator().manual_seed(seed)
    images, labels = images.float(), labels.long()
    losses: list[float] = []
    net.train()
    bar = tqdm(range(s.steps), desc=desc, disable=not progress, leave=False, mininterval=1.0)
    for _ in bar:
        pick = torch.randint(0, images.shape[0], (s.batch_size,), generator=gen)
        x, y = images[pick], labels[pick]
        if s.flip:
            for axis in (2, 3):
                flip = torch.rand(s.batch_size, generator=gen) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(axis), x)
                y = torch.where(flip.view(-1, 1, 1, 1), y.flip(axis), y)
        loss = loss_fn(_logits(net, x.to(dev)), y.to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach().item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    return net.eval(), losses


@torch.no_grad()
def predict(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Class indices ``(N, 1, H, W)`` (argmax of the logits) for ``images`` ``(N, C, H, W)``."""
    dev = next(net.parameters()).device
    net.eval()
    out = [_logits(net, images[i : i + batch_size].float().to(dev)).argmax(1, keepdim=True).cpu() for i in range(0, images.shape[0], batch_size)]
    return torch.cat(out)
