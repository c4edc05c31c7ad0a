"""SPADE: a label-to-image generator that injects the label map at every decoder scale, with an appearance code.

After Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization" (CVPR 2019), as brainSPADE
(Fernandez et al., 2022) uses it for multi-contrast brain MRI:

- :class:`SPADE` normalises a feature map (instance norm without affine) and modulates it with a scale and a bias
  predicted per pixel from the label map resized to the feature map (:func:`resize_label`: each class's share of a
  coarse pixel), so the layout is never washed out by normalisation and needs no encoder;
- :class:`SPADEResBlock` is two SPADE -> LeakyReLU -> 3x3 convolution steps with a residual (a learnt 1x1 shortcut
  when the width changes), spectral norm on the convolutions; with ``noise=True`` each convolution's output gets
  :class:`NoiseInjection` (StyleGAN's per-pixel noise at a learnt strength per channel), a source of fine detail
  that the label map does not determine (texture, small vessels and sulci);
- :class:`SPADEGenerator` starts from the label map at 4 pixels a side, doubles the resolution (bilinear resize: no
  checkerboard and no blocks) with a SPADE block at every scale up to the working size (each narrowing to the next
  scale's width before the resize, so that wide blocks run at small sizes), and ends in a 3x3 convolution and tanh.
  With ``style_channels > 0`` an appearance code (a vector) adds a learnt map to the start: one label map then
  renders with as many contrasts as codes. :class:`StyleEncoder` encodes a real image into that code's Gaussian
  (mean, log-variance) for training as a VAE (brainSPADE), so a code drawn from N(0, I) renders a plausible
  contrast.

Every module takes ``spatial_dims`` first (2: slices; 3 works the same).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers import Conv, Norm
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "GENERATOR_ARCHITECTURES",
    "SPADE",
    "NoiseInjection",
    "SPADEResBlock",
    "SPADEGenerator",
    "StyleEncoder",
    "spade_widths",
    "resize_label",
    "kl_divergence",
]

#: the label-to-image generators: pix2pix's U-Net (:class:`~monai_singanseg.networks.Pix2PixGenerator`) and SPADE.
GENERATOR_ARCHITECTURES = ("unet", "spade")
_SLOPE = 0.2
#: side of the generator's first feature map (the label map is resized to it).
START_SIZE = 4


def spade_widths(size: int, channels: int, max_channels: int) -> list[int]:
    """Feature widths from the 4-pixel start to ``size``: ``channels`` at the working size, doubling per halving,
    capped at ``max_channels``."""
    if size < 2 * START_SIZE or size & (size - 1):
        raise ValueError(f"SPADE's working size must be a power of two >= {2 * START_SIZE}, got {size}")
    levels = int(math.log2(size // START_SIZE))
    return [min(max_channels, channels * 2 ** (levels - i)) for i in range(levels + 1)]


def resize_label(label: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A label map (one-hot channels) at ``size``: each class's share of the area a coarse pixel covers.

    Nearest-neighbour sampling would read one fine pixel per coarse pixel, so a thin structure (the falx, a
    ventricle's rim) that a sampled column happens to hit is drawn along the whole column: streaks.
    """
    if tuple(label.shape[2:]) == tuple(size):
        return label
    return F.interpolate(label, size=tuple(size), mode="area")


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: ``norm(x) * (1 + gamma(label)) + beta(label)``.

    Args:
        spatial_dims: 2 or 3.
        channels: channels of the normalised feature map.
        label_channels: channels of the label map (one-hot classes, brain mask, ...).
        hidden: channels of the shared convolution over the label map.
    """

    def __init__(self, spatial_dims: int, channels: int, label_channels: int, hidden: int) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.norm = Norm[Norm.INSTANCE, spatial_dims](channels, affine=False)
        self.shared = nn.Sequential(conv(label_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = conv(hidden, channels, 3, padding=1)
        self.beta = conv(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        features = self.shared(resize_label(label, x.shape[2:]))
        return self.norm(x) * (1 + self.gamma(features)) + self.beta(features)


class NoiseInjection(nn.Module):
    """``x + strength * noise``: one N(0, 1) map per sample, shared by the channels and scaled by a learnt strength
    per channel that starts at zero (StyleGAN's noise inputs).

    Args:
        spatial_dims: 2 or 3.
        channels: channels of the feature map.
    """

    def __init__(self, spatial_dims: int, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, *(1,) * spatial_dims))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """``noise``: ``(B, 1, *spatial)`` (None: ``x`` unchanged)."""
        return x if noise is None else x + self.strength * noise


def draw_noise(like: torch.Tensor, source: torch.Generator | None) -> torch.Tensor:
    """A ``(B, 1, *spatial)`` N(0, 1) map for a feature map ``like``, drawn from ``source`` (a CPU generator, so the
    draw is the same on every device) or, with None, from the global stream of ``like``'s device."""
    shape = (like.shape[0], 1, *like.shape[2:])
    if source is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    return torch.randn(shape, generator=source).to(like)


class SPADEResBlock(nn.Module):
    """Residual block of two SPADE -> LeakyReLU(0.2) -> 3x3 convolution steps (spectral norm on the convolutions),
    with :class:`NoiseInjection` after each convolution when ``noise``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (a learnt 1x1 shortcut when they differ).
        label_channels: channels of the label map.
        noise: add per-pixel noise after each convolution.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, out_channels: int, label_channels: int, noise: bool = False
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        middle = min(in_channels, out_channels)
        self.norm_0 = SPADE(spatial_dims, in_channels, label_channels, hidden=min(64, in_channels))
        self.conv_0 = spectral_norm(conv(in_channels, middle, 3, padding=1))
        self.norm_1 = SPADE(spatial_dims, middle, label_channels, hidden=min(64, middle))
        self.conv_1 = spectral_norm(conv(middle, out_channels, 3, padding=1))
        self.noise_0 = NoiseInjection(spatial_dims, middle) if noise else None
        self.noise_1 = NoiseInjection(spatial_dims, out_channels) if noise else None
        self.shortcut: nn.Module | None = None
        if in_channels != out_channels:
            self.norm_s = SPADE(spatial_dims, in_channels, label_channels, hidden=min(64, in_channels))
            self.shortcut = spectral_norm(conv(in_channels, out_channels, 1, bias=False))

    def forward(
        self, x: torch.Tensor, label: torch.Tensor, noise: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """``noise``: the two ``(B, 1, *spatial)`` maps of a block built with ``noise`` (None: none added)."""
        skip = x if self.shortcut is None else self.shortcut(self.norm_s(x, label))
        y = self.conv_0(F.leaky_relu(self.norm_0(x, label), _SLOPE))
        if self.noise_0 is not None and noise is not None:
            y = self.noise_0(y, noise[0])
        y = self.conv_1(F.leaky_relu(self.norm_1(y, label), _SLOPE))
        if self.noise_1 is not None and noise is not None:
            y = self.noise_1(y, noise[1])
        return skip + y


class StyleEncoder(nn.Module):
    """A real image -> the mean and log-variance of its appearance code (stride-2 3x3 convolutions down to 4 pixels
    a side, instance norm, LeakyReLU, then two linear heads).

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        style_channels: length of the code.
        size: the image's side (a power of two).
        channels: width of the first convolution (doubling per halving, up to 8x).
    """

    def __init__(self, spatial_dims: int, in_channels: int, style_channels: int, size: int, channels: int) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        layers: list[nn.Module] = []
        width, side = in_channels, size
        i = 0
        while side > START_SIZE:
            out = channels * 2 ** min(i, 3)
            layers += [
                conv(width, out, 3, stride=2, padding=1),
                Norm[Norm.INSTANCE, spatial_dims](out, affine=True),
                nn.LeakyReLU(_SLOPE),
            ]
            width, side, i = out, side // 2, i + 1
        self.features = nn.Sequential(*layers, nn.Flatten())
        flat = width * START_SIZE**spatial_dims
        self.mean = nn.Linear(flat, style_channels)
        self.log_variance = nn.Linear(flat, style_channels)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(image)
        return self.mean(features), self.log_variance(features)


def kl_divergence(mean: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_variance)) || N(0, I)), summed over the code and averaged over the batch."""
    return (-0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(dim=1)).mean()


class SPADEGenerator(nn.Module):
    """Label map -> image, the label injected by :class:`SPADE` at every scale; optional appearance code.

    ``forward(condition, appearance=None, noise=None)``: ``appearance`` is None (the zero code: the mean appearance,
    so a plain ``net(condition)`` call, e.g. a validator's, is deterministic and draws no random numbers), a code
    ``(B or 1, style_channels)``, or a real image ``(B, out_channels, ...)`` whose code is sampled from
    :class:`StyleEncoder`'s Gaussian (training: the KL term of that encoding is left in :attr:`kl_loss`). Draw codes
    from N(0, I) for new appearances (:class:`~monai_singanseg.inferers.Pix2PixRender` does, one per volume).
    A generator built with ``noise`` draws its noise maps from ``noise`` (a ``torch.Generator``), or, with None,
    from the global stream while training and none at all in eval mode (deterministic again).

    Args:
        spatial_dims: 2 or 3.
        in_channels: condition channels.
        out_channels: image channels (MR sequences).
        size: working size (a power of two >= 8).
        channels: feature width at the working size (doubling per halving).
        max_channels: the widest feature map.
        style_channels: length of the appearance code (0: none).
        noise: per-pixel noise after every convolution (:class:`NoiseInjection`).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        size: int = 128,
        channels: int = 32,
        max_channels: int = 256,
        style_channels: int = 0,
        noise: bool = False,
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.spatial_dims, self.size, self.style_channels, self.noise = spatial_dims, size, style_channels, noise
        self.upsample_mode = "bilinear" if spatial_dims == 2 else "trilinear"
        widths = spade_widths(size, channels, max_channels)
        self.head = conv(in_channels, widths[0], 3, padding=1)
        self.code = nn.Linear(style_channels, widths[0] * START_SIZE**spatial_dims) if style_channels else None
        self.encoder = (
            StyleEncoder(spatial_dims, out_channels, style_channels, size, channels) if style_channels else None
        )
        # each scale's block narrows to the next scale's width before the resize, so the wide blocks run small
        self.blocks = nn.ModuleList(
            [SPADEResBlock(spatial_dims, a, b, in_channels, noise) for a, b in zip(widths[:-1], widths[1:])]
            + [SPADEResBlock(spatial_dims, widths[-1], widths[-1], in_channels, noise)]
        )
        self.out = conv(widths[-1], out_channels, 3, padding=1)
        self.kl_loss: torch.Tensor | None = None

    def appearance_code(self, appearance: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The ``(B, style_channels)`` code of ``appearance`` (see the class docstring)."""
        self.kl_loss = None
        if appearance is None:
            return torch.zeros(batch, self.style_channels, device=like.device, dtype=like.dtype)
        if appearance.ndim == 2:
            if appearance.shape[1] != self.style_channels:
                raise ValueError(
                    f"appearance code of length {appearance.shape[1]} given; this model's codes have "
                    f"{self.style_channels} values"
                )
            return appearance.to(like).expand(batch, -1)
        mean, log_variance = self.encoder(appearance)
        self.kl_loss = kl_divergence(mean, log_variance)
        return mean + torch.randn_like(mean) * (0.5 * log_variance).exp()

    def noise_maps(self, x: torch.Tensor, source: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """A block's two noise maps for its input ``x`` (None: no noise; see the class docstring)."""
        if not self.noise or (source is None and not self.training):
            return None
        return draw_noise(x, source), draw_noise(x, source)

    def forward(
        self,
        condition: torch.Tensor,
        appearance: torch.Tensor | None = None,
        noise: torch.Generator | None = None,
    ) -> torch.Tensor:
        if noise is not None and not self.noise:
            raise ValueError("a noise source was given, but this model has no noise inputs (trained without noise)")
        start = (START_SIZE,) * self.spatial_dims
        x = self.head(resize_label(condition, start))
        if self.code is not None:
            z = self.appearance_code(appearance, condition.shape[0], x)
            x = x + self.code(z).view(x.shape)
        elif appearance is not None:
            raise ValueError("this model has no appearance code (it was trained with style_channels 0)")
        for i, block in enumerate(self.blocks):
            x = block(x, condition, self.noise_maps(x, noise))
            if i < len(self.blocks) - 1:
                x = F.interpolate(x, scale_factor=2, mode=self.upsample_mode, align_corners=False)
        return torch.tanh(self.out(F.leaky_relu(x, _SLOPE)))
