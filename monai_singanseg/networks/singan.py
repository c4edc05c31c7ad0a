"""SinGAN-Seg networks: per-scale generator and patch critic, and the multi-scale generator pyramid.

Every scale holds a small fully-convolutional generator that refines the upsampled output of the scale
below: ``out = up(prev) + G(z + up(prev))`` (residual), and a patch critic of the same shape with a
1-channel head. The tensor they see is image channels followed by one-hot tumour-class channels, all in
[-1, 1], so every sample is an (image, label) pair. Both 2D (the product) and 3D work (``spatial_dims``).

The convolutions pad with zeros. In the GAN range the background of every channel is -1 and 0 is a tumour
probability of 0.5, so with ``pad_as_background`` the networks see their input shifted by +1: the padding of the
input then reads as the background beyond the slice's edge, as it does in the image itself (the hidden layers still
pad their features with zeros).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn

__all__ = [
    "SinGANGenerator",
    "SinGANCritic",
    "SinGANPyramid",
    "SinGANSampleNetwork",
    "scale_features",
    "resize_to",
]

_ACT = ("leakyrelu", {"negative_slope": 0.2})

#: PyTorch runs a CPU float32 3D convolution of ONE volume on its native kernel, not MKL-DNN, while batch x channels
#: x the first two spatial sizes is at most this (``ConvParams::use_mkldnn``); that kernel measured 4-6x slower here.
_NATIVE_CONV3D_LIMIT = 20480


def _two_volume_input(module: nn.Module, args: tuple) -> tuple | None:
    """Forward pre-hook of a ``Conv3d``: one CPU float32 volume below the limit runs as a batch of two views of it."""
    x = args[0]
    module._one_of_two = (  # type: ignore[assignment]
        x.ndim == 5
        and x.shape[0] == 1
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.shape[1] * x.shape[2] * x.shape[3] <= _NATIVE_CONV3D_LIMIT
    )
    return (x.expand(2, *x.shape[1:]), *args[1:]) if module._one_of_two else None


def _first_of_two(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
    """Forward hook of a ``Conv3d``: the one volume's output again."""
    return output[:1] if getattr(module, "_one_of_two", False) else None


def use_fast_cpu_conv3d(module: nn.Module) -> nn.Module:
    """Route the single-volume 3D convolutions of ``module`` to MKL-DNN on CPU (weights and results unchanged).

    A 3D SinGAN-Seg model trains on one volume (batch 1). For small and middle-sized volumes PyTorch then picks its
    native 3D convolution, which was 4-6x slower than the MKL-DNN one it uses for two volumes (a 31 x 36 x 28
    volume, 16 features: 0.18 s vs 0.03 s for forward + backward, 1 thread); computing the volume twice as a batch of
    two expanded views and keeping the first is still 2.4-3.9x faster per critic step with gradient penalty (measured
    on the generator + critic, 18 x 21 x 16 to 31 x 36 x 28). Larger volumes, batches and GPUs are left alone.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            m.register_forward_pre_hook(_two_volume_input)
            m.register_forward_hook(_first_of_two)
    return module


def scale_features(scale: int, base: int = 32, double_every: int = 4, max_features: int = 128) -> int:
    """Feature width at ``scale`` (0 = coarsest): ``base`` doubling every ``double_every`` scales, capped."""
    return int(min(base * 2 ** (scale // double_every), max_features))


def resize_to(x: torch.Tensor, size: Sequence[int], smooth: bool = True) -> torch.Tensor:
    """Resize a batch ``(N, C, *spatial)`` to ``size`` in torch, anti-aliased when shrinking.

    Args:
        x: the batch.
        size: target spatial size.
        smooth: bilinear/trilinear interpolation (anti-aliased in 2D); False uses area averaging, which is
            how label channels are shrunk (they stay soft, e.g. 0.5 on a boundary).

    Returns:
        The resized batch (``x`` itself if the size already matches).
    """
    size = tuple(int(s) for s in size)
    if tuple(x.shape[2:]) == size:
        return x
    ndim = x.ndim - 2
    shrinking = any(s < c for s, c in zip(size, x.shape[2:]))
    if not smooth:
        if shrinking:
            return F.adaptive_avg_pool2d(x, size) if ndim == 2 else F.adaptive_avg_pool3d(x, size)
        return F.interpolate(x, size=size, mode="bilinear" if ndim == 2 else "trilinear", align_corners=False)
    if ndim == 2:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrinking)
    if shrinking:  # torch has no anti-aliased trilinear: area averaging is the anti-aliased 3D shrink
        return F.adaptive_avg_pool3d(x, size)
    return F.interpolate(x, size=size, mode="trilinear", align_corners=False)


def _conv_stack(spatial_dims: int, in_channels: int, features: int, num_layers: int) -> nn.Sequential:
    """``num_layers - 1`` blocks of Conv3x3-BatchNorm-LeakyReLU(0.2) (the head and body of SinGAN's nets)."""
    blocks = []
    for i in range(num_layers - 1):
        blocks.append(
            Convolution(
                spatial_dims,
                in_channels if i == 0 else features,
                features,
                kernel_size=3,
                norm="batch",
                act=_ACT,
                adn_ordering="NA",
            )
        )
    return nn.Sequential(*blocks)


class SinGANGenerator(nn.Module):
    """One scale's generator: residual refinement of the upsampled coarser output.

    ``forward(z, prev) = prev + tanh(tail(body(z + prev)))``; ``z`` is the (already amplitude-scaled) noise.

    Args:
        spatial_dims: 2 or 3.
        channels: channels of the GAN tensor (image channels + one-hot label channels).
        features: feature width of the hidden layers.
        num_layers: convolutions in total (SinGAN: 5 = 4 Conv-BN-LeakyReLU blocks + the Tanh head).
        pad_as_background: shift the input by +1 so that its zero padding reads as background (-1).
    """

    def __init__(
        self, spatial_dims: int, channels: int, features: int = 32, num_layers: int = 5, pad_as_background: bool = False
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if num_layers < 2:
            raise ValueError(f"num_layers must be >= 2, got {num_layers}")
        self.spatial_dims = spatial_dims
        self.channels = channels
        self.input_shift = 1.0 if pad_as_background else 0.0
        self.body = _conv_stack(spatial_dims, channels, features, num_layers)
        self.head = Convolution(spatial_dims, features, channels, kernel_size=3, act="tanh", adn_ordering="A")
        use_fast_cpu_conv3d(self)

    def forward(self, z: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
        z: noise ``(N, channels, *spatial)`` (already multiplied by the scale's amplitude).
        prev: upsampled output of the coarser scale, same shape (None: zeros, as at the coarsest scale).
        """
        if prev is None:
            prev = torch.zeros_like(z)
        return prev + self.head(self.body(z + prev + self.input_shift))


class SinGANCritic(nn.Module):
    """One scale's patch critic (WGAN): the generator's stack with a 1-channel linear head.

    Args:
        spatial_dims: 2 or 3.
        channels: channels of the GAN tensor.
        features: feature width.
        num_layers: convolutions in total, head included.
        pad_as_background: shift the input by +1 so that its zero padding reads as background (-1).
    """

    def __init__(
        self, spatial_dims: int, channels: int, features: int = 32, num_layers: int = 5, pad_as_background: bool = False
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.input_shift = 1.0 if pad_as_background else 0.0
        self.body = _conv_stack(spatial_dims, channels, features, num_layers)
        self.head = Convolution(spatial_dims, features, 1, kernel_size=3, conv_only=True)
        use_fast_cpu_conv3d(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A patch score map ``(N, 1, *spatial)``."""
        return self.head(self.body(x + self.input_shift))


class SinGANPyramid(nn.Module):
    """The multi-scale generator: one :class:`SinGANGenerator` per scale, coarse to fine.

    Args:
        spatial_dims: 2 or 3.
        channels: channels of the GAN tensor.
        features: feature width of each scale's generator (its length is the number of scales).
        num_layers: convolutions per generator.
        pad_as_background: every generator's input is shifted by +1 so that the zero padding reads as background.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        features: Sequence[int] = (),
        num_layers: int = 5,
        pad_as_background: bool = False,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.channels = channels
        self.num_layers = num_layers
        self.pad_as_background = pad_as_background
        self.generators = nn.ModuleList()
        for f in features:
            self.add_scale(f)

    @property
    def num_scales(self) -> int:
        """Number of scales built so far."""
        return len(self.generators)

    def add_scale(self, features: int) -> SinGANGenerator:
        """Append a finer scale's generator; it starts from the previous scale's weights when widths agree."""
        gen = SinGANGenerator(self.spatial_dims, self.channels, features, self.num_layers, self.pad_as_background)
        if self.generators:
            last = self.generators[-1]
            if all(a.shape == b.shape for a, b in zip(last.state_dict().values(), gen.state_dict().values())):
                gen.load_state_dict(last.state_dict())
        self.generators.append(gen)
        return gen

    def forward(
        self,
        noise: Sequence[torch.Tensor],
        amplitudes: Sequence[float],
        sizes: Sequence[Sequence[int]],
        start: torch.Tensor | None = None,
        first_scale: int = 0,
        last_scale: int | None = None,
    ) -> torch.Tensor:
        """Run scales ``first_scale..last_scale`` (inclusive) coarse to fine.

        Args:
            noise: unit noise per scale (indexed by scale; entries below ``first_scale`` are unused).
            amplitudes: noise amplitude per scale.
            sizes: spatial size per scale.
            start: output of scale ``first_scale - 1`` (None = zeros at the coarsest scale).
            first_scale: first scale to run.
            last_scale: last scale to run (default: the finest built).

        Returns:
            The output of ``last_scale``.
        """
        last_scale = self.num_scales - 1 if last_scale is None else last_scale
        x = start
        for k in range(first_scale, last_scale + 1):
            z = noise[k]
            prev = torch.zeros_like(z) if x is None else resize_to(x, sizes[k])
            x = self.generators[k](amplitudes[k] * z, prev)
        if x is None:
            raise ValueError("no scale to run: first_scale > last_scale")
        return x


class SinGANSampleNetwork(SinGANPyramid):
    """A trained pyramid with its scale sizes and noise amplitudes as one network: coarsest noise in, sample out.

    MONAI's bundle tools (``ckpt_export``, ``verify_net_in_out``, ``CheckpointLoader``) take a network whose
    ``forward`` has one tensor input; this is the pyramid's random path from scale 0, without the product
    sampler's tumour layouts, start scales or output sizes
    (:class:`~monai_singanseg.inferers.SinGANSegSampler`). Its state dict is the pyramid's.

    Args:
        spatial_dims: 2 or 3.
        channels: channels of the GAN tensor.
        features: feature width of each scale's generator.
        sizes: spatial size of each scale, coarse to fine.
        amplitudes: noise amplitude of each scale.
        num_layers: convolutions per generator.
        pad_as_background: as :class:`SinGANPyramid`.

    Raises:
        ValueError: ``features``, ``sizes`` and ``amplitudes`` differ in length or are empty.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        features: Sequence[int],
        sizes: Sequence[Sequence[int]],
        amplitudes: Sequence[float],
        num_layers: int = 5,
        pad_as_background: bool = False,
    ) -> None:
        if not len(features) == len(sizes) == len(amplitudes) > 0:
            raise ValueError(
                f"features, sizes and amplitudes need one entry per scale, got {len(features)}, {len(sizes)} and "
                f"{len(amplitudes)}"
            )
        super().__init__(spatial_dims, channels, features, num_layers, pad_as_background)
        self.sizes = [[int(s) for s in size] for size in sizes]
        self.amplitudes = [float(a) for a in amplitudes]

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Args:
        z: unit noise of the coarsest scale ``(N, channels, *sizes[0])``; the finer scales draw theirs from
            torch's global generator.

        Returns:
            The samples ``(N, channels, *sizes[-1])`` (image channels then label channels, about [-1, 1]).
        """
        noise = [z] + [
            torch.randn((z.shape[0], self.channels, *s), dtype=z.dtype, device=z.device) for s in self.sizes[1:]
        ]
        return super().forward(noise, self.amplitudes, self.sizes)
