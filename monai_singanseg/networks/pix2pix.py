"""pix2pix networks: U-Net generator (label condition -> image) and conditional patch critic.

Follows the reference implementation (junyanz/pytorch-CycleGAN-and-pix2pix): 4x4 stride-2
convolutions, LeakyReLU(0.2) encoder, ReLU decoder, skip concatenation, dropout 0.5 in the three
innermost decoder blocks as the only noise, Tanh output, weights drawn from N(0, 0.02).

The decoder upsamples in one of two ways:

- ``"resize"`` (default): nearest-neighbour resize x2 then a 3x3 convolution (MONAI's
  :class:`~monai.networks.blocks.UpSample` in ``"nontrainable"`` mode). Every output pixel sees the same
  number of kernel taps, so there is no checkerboard (Odena, Dumoulin & Olah, Distill 2016).
- ``"transposed"``: the reference's 4x4 stride-2 transposed convolutions (model files written before
  the resize decoder load with it); their uneven kernel overlap prints a stride-2 grid on the image.

The critic is MONAI's :class:`~monai.networks.nets.PatchDiscriminator` (a 70x70 PatchGAN with 3
layers) seeing the condition and the image concatenated along channels; with ``scales > 1``, pix2pixHD's
multi-scale critic (the same PatchGAN on the pair pooled 1, 2, ... times). Every layer's output is
returned, for pix2pixHD's feature matching loss.
"""

from __future__ import annotations

import math

import torch
from monai.networks.blocks import Convolution, UpSample
from monai.networks.layers import Pool
from monai.networks.nets import PatchDiscriminator
from torch import nn

__all__ = [
    "Pix2PixGenerator",
    "Pix2PixCritic",
    "init_pix2pix_weights",
    "num_unet_levels",
    "max_critic_scales",
    "UPSAMPLE_MODES",
]

_LEAKY = ("leakyrelu", {"negative_slope": 0.2})

#: the generator's decoder upsampling modes (see the module docstring).
UPSAMPLE_MODES = ("resize", "transposed")


def max_critic_scales(size: int, num_layers: int = 3) -> int:
    """How many critics of the multi-scale critic fit a working ``size``: each halves the pair and the coarsest
    needs ``2 ** (num_layers + 2)`` pixels (32 for 3 layers: 32 px -> 1, 64 px -> 2, 128 px -> 3)."""
    scales = 0
    while size // 2**scales >= 2 ** (num_layers + 2):
        scales += 1
    return max(1, scales)


def _check_upsample(upsample: str) -> str:
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {upsample!r}")
    return upsample


def _up_block(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    upsample: str,
    conv_only: bool = False,
    norm: str | tuple | None = None,
    dropout: float = 0.0,
) -> nn.Module:
    """x2 upsampling + convolution: resize then 3x3 convolution, or a 4x4 stride-2 transposed convolution."""
    kwargs: dict = (
        {"conv_only": True} if conv_only else {"act": "relu", "norm": norm, "dropout": dropout if dropout > 0 else None}
    )
    if upsample == "transposed":
        return Convolution(
            spatial_dims,
            in_channels,
            out_channels,
            strides=2,
            kernel_size=4,
            padding=1,
            output_padding=0,
            is_transposed=True,
            bias=True,
            **kwargs,
        )
    conv = Convolution(spatial_dims, in_channels, out_channels, kernel_size=3, padding=1, bias=True, **kwargs)
    return UpSample(
        spatial_dims,
        scale_factor=2,
        mode="nontrainable",
        interp_mode="nearest",
        pre_conv=None,
        post_conv=conv,
        align_corners=None,
    )


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
        upsample: str = "resize",
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
            out = out_channels if out_channels is not None else outer_channels
            self.up = nn.Sequential(_up_block(spatial_dims, up_in, out, upsample, conv_only=True), nn.Tanh())
        else:
            self.up = _up_block(spatial_dims, up_in, outer_channels, upsample, norm=norm, dropout=dropout)

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
        upsample: ``"resize"`` (nearest x2 + 3x3 convolution, no checkerboard) or ``"transposed"`` (the
            reference's 4x4 stride-2 transposed convolutions).
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
        upsample: str = "resize",
    ) -> None:
        super().__init__()
        upsample = _check_upsample(upsample)
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
                upsample=upsample,
            )
        self.model = _UNetLevel(
            spatial_dims,
            channels,
            widths[0],
            block,
            in_channels=in_channels,
            out_channels=out_channels,
            outermost=True,
            upsample=upsample,
        )
        init_pix2pix_weights(self)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        """Condition ``(B, in_channels, size, size)`` -> image ``(B, out_channels, size, size)`` in [-1, 1]."""
        for side in condition.shape[2:]:  # written so that torch.jit.script accepts it
            if side != self.size:
                raise ValueError(
                    "generator works at " + str(self.size) + "x" + str(self.size) + ", got another input size"
                )
        return self.model(condition)


class Pix2PixCritic(nn.Module):
    """Conditional PatchGAN critic(s) on MONAI's :class:`~monai.networks.nets.PatchDiscriminator`.

    With ``scales > 1`` this is pix2pixHD's multi-scale critic (Wang et al., CVPR 2018): critic ``i`` is the
    same PatchGAN seeing the pair average-pooled ``i`` times (3x3, stride 2), so the coarser critics judge
    larger structures at little extra cost.

    Args:
        spatial_dims: 2 for slices.
        condition_channels: channels of the condition.
        image_channels: channels of the image.
        channels: filters of the first layer (``ndf``; 64 in pix2pix).
        num_layers: strided layers of each critic (3 gives the 70x70 receptive field).
        norm: normalisation layer.
        scales: number of critics (1: pix2pix's single PatchGAN; 2 or 3 in pix2pixHD).
        size: working size of the pairs, if known: checked to leave the coarsest critic at least
            ``2 ** (num_layers + 2)`` pixels (32 for 3 layers).
    """

    def __init__(
        self,
        spatial_dims: int,
        condition_channels: int,
        image_channels: int,
        channels: int = 64,
        num_layers: int = 3,
        norm: str | tuple = "INSTANCE",
        scales: int = 1,
        size: int | None = None,
    ) -> None:
        super().__init__()
        if scales < 1:
            raise ValueError(f"critic scales must be >= 1, got {scales}")
        if size is not None and scales > max_critic_scales(size, num_layers):
            smallest = 2 ** (num_layers + 2)
            raise ValueError(
                f"critic scales {scales} need a working size of at least {smallest * 2 ** (scales - 1)} (each critic "
                "halves "
                f"the pair, the coarsest needs {smallest} pixels), got {size}: use fewer critic scales"
            )
        self.critics = nn.ModuleList(
            PatchDiscriminator(
                spatial_dims=spatial_dims,
                channels=channels,
                in_channels=condition_channels + image_channels,
                out_channels=1,
                num_layers_d=num_layers,
                norm=norm,
            )
            for _ in range(scales)
        )
        self.pool = Pool["avg", spatial_dims](kernel_size=3, stride=2, padding=1, count_include_pad=False)
        init_pix2pix_weights(self)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        """For each critic (finest first), its layer outputs; the last of each list is the patch logits."""
        x = torch.cat([condition, image], dim=1)
        outputs = []
        for i, critic in enumerate(self.critics):
            if i:
                x = self.pool(x)
            outputs.append(critic(x))
        return outputs

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        """Also reads the single critic of model files written before the multi-scale critic (``net.*`` keys)."""
        state = {(("critics.0." + k[4:]) if k.startswith("net.") else k): v for k, v in state_dict.items()}
        return super().load_state_dict(state, strict=strict, assign=assign)


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
