"""pix2pix networks: U-Net generator (label condition -> image) and conditional patch critic.

Follows the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix): 4x4 stride-2
convolutions, LeakyReLU(0.2) encoder, ReLU decoder, skip concatenation, dropout 0.5 in the three
innermost decoder blocks as the only noise, Tanh output, weights drawn from N(0, 0.02). The critic
is MONAI's :class:`~monai.networks.nets.PatchDiscriminator` (a 70x70 PatchGAN with 3 layers) seeing
the condition and the image concatenated along channels.
"""

from __future__ import annotations

import math

import torch
from monai.networks.blocks import Convolution
from monai.networks.nets import PatchDiscriminator
from torch import nn

__all__ = ["Pix2PixGenerator", "Pix2PixCritic", "init_pix2pix_weights", "num_unet_levels"]

_LEAKY = ("leakyrelu", {"negative_slope": 0.2})


def num_unet_levels(size: int) -> int:
    """Number of stride-2 levels that take ``size`` down to 1 (128 -> 7, 256 -> 8).

    Raises:
        ValueError: ``size`` is not a power of two of at least 16.
    """
    levels = int(round(math.log2(size))) if size > 0 else 0
    if size < 16 or 2**levels != size:
        raise ValueError(f"working size must be a power of two >= 16 (e.g. 128 or 256), got {size}")
    return levels


class _UNetLevel(nn.Module):
    """One U-Net level: down-convolution, the inner levels, up-convolution, and the skip concatenation."""

    def __init__(
        self,
        spatial_dims: int,
        outer_channels: int,
        inner_channels: int,
        inner: nn.Module | None,
        in_channels: int | None = None,
        out_channels: int | None = None,
        outermost: bool = False,
        dropout: float = 0.0,
        norm: str | tuple = "INSTANCE",
    ) -> None:
        super().__init__()
        in_channels = outer_channels if in_channels is None else in_channels
        innermost = inner is None
        self.outermost = outermost
        # encoder: the outermost and innermost convolutions carry no normalisation (as in pix2pix)
        self.down = Convolution(
            spatial_dims,
            in_channels,
            inner_channels,
            strides=2,
            kernel_size=4,
            padding=1,
            act=_LEAKY,
            norm=None if (outermost or innermost) else norm,
            bias=True,
        )
        self.inner = inner if inner is not None else nn.Identity()
        up_in = inner_channels if innermost else inner_channels * 2
        if outermost:
            self.up = nn.Sequential(
                Convolution(
                    spatial_dims,
                    up_in,
                    out_channels if out_channels is not None else outer_channels,
                    strides=2,
                    kernel_size=4,
                    padding=1,
                    output_padding=0,
                    is_transposed=True,
                    conv_only=True,
                    bias=True,
                ),
                nn.Tanh(),
            )
        else:
            self.up = Convolution(
                spatial_dims,
                up_in,
                outer_channels,
                strides=2,
                kernel_size=4,
                padding=1,
                output_padding=0,
                is_transposed=True,
                act="relu",
                norm=norm,
                dropout=dropout if dropout > 0 else None,
                bias=True,
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.inner(self.down(x)))
        return y if self.outermost else torch.cat([x, y], dim=1)


class Pix2PixGenerator(nn.Module):
    """U-Net generator sized to the working resolution (``size`` -> ``log2(size)`` levels down to 1x1).

    Args:
        spatial_dims: 2 for slices (3 works for small cubes).
        in_channels: condition channels (brain mask + tumour one-hot [+ tissue classes]).
        out_channels: image channels (4 BraTS modalities).
        size: working resolution, a power of two (128 default, 256 supported).
        channels: filters of the outermost level (``ngf``; 64 in pix2pix); doubles per level up to 8x.
        dropout: dropout of the three innermost decoder blocks (0.5 in pix2pix).
        norm: normalisation of the inner blocks (instance norm: independent of the batch size).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        size: int = 128,
        channels: int = 64,
        dropout: float = 0.5,
        norm: str | tuple = "INSTANCE",
    ) -> None:
        super().__init__()
        levels = num_unet_levels(size)
        self.size = size
        widths = [channels * min(2**i, 8) for i in range(levels)]  # outer -> inner
        block: nn.Module | None = None
        for i in range(levels - 1, 0, -1):
            # the three innermost decoder blocks that keep the widest width get dropout
            block = _UNetLevel(
                spatial_dims,
                widths[i - 1],
                widths[i],
                block,
                dropout=dropout if i >= levels - 3 else 0.0,
                norm=norm,
            )
        self.model = _UNetLevel(
            spatial_dims, channels, widths[0], block, in_channels=in_channels, out_channels=out_channels, outermost=True
        )
        init_pix2pix_weights(self)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        """Condition ``(B, in_channels, size, size)`` -> image ``(B, out_channels, size, size)`` in [-1, 1]."""
        for side in condition.shape[2:]:  # written so that torch.jit.script accepts it
            if side != self.size:
                raise ValueError("generator works at " + str(self.size) + "x" + str(self.size) + ", got another input size")
        return self.model(condition)


class Pix2PixCritic(nn.Module):
    """Conditional PatchGAN critic on :class:`monai.networks.nets.PatchDiscriminator`.

    Args:
        spatial_dims: 2 for slices.
        condition_channels: channels of the condition.
        image_channels: channels of the image.
        channels: filters of the first layer (``ndf``; 64 in pix2pix).
        num_layers: strided layers (3 gives the 70x70 receptive field).
        norm: normalisation layer.
    """

    def __init__(
        self,
        spatial_dims: int,
        condition_channels: int,
        image_channels: int,
        channels: int = 64,
        num_layers: int = 3,
        norm: str | tuple = "INSTANCE",
    ) -> None:
        super().__init__()
        self.net = PatchDiscriminator(
            spatial_dims=spatial_dims,
            channels=channels,
            in_channels=condition_channels + image_channels,
            out_channels=1,
            num_layers_d=num_layers,
            norm=norm,
        )
        init_pix2pix_weights(self)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Patch logits for the pair ``(condition, image)`` (the last item of PatchDiscriminator's outputs)."""
        return self.net(torch.cat([condition, image], dim=1))[-1]


def init_pix2pix_weights(module: nn.Module, gain: float = 0.02) -> None:
    """pix2pix initialisation: conv weights ~ N(0, gain), norm scales ~ N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.InstanceNorm3d)):
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
