"""A fixed random-weight multi-scale CNN: texture (style) statistics without pretrained weights.

Gram matrices of the ReLU responses of random convolution filters at several scales describe texture well
enough for texture synthesis and style transfer (Ustyuzhaninov et al., "Texture synthesis using shallow
convolutional networks with random filters", 2016; He et al., "A powerful generative model using random
weights for the deep image representation", NeurIPS 2016). Nothing has to be downloaded, any number of
spatial dimensions works, and the weights are a pure function of the seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution
from monai.networks.layers.factories import Pool
from torch import nn

__all__ = ["RandomFeatures"]


class RandomFeatures(nn.Module):
    """Random-weight convolution stacks on an average-pooled image pyramid, returning named activations.

    Scale ``k`` average-pools the input by ``2**k`` and runs its own stack of ``len(channels)``
    ``kernel_size`` convolutions + ReLU (``monai.networks.blocks.Convolution``, no normalisation), so
    the receptive fields grow from a few pixels at scale 0 to ``2**(num_scales - 1)`` times that.
    Weights are He-normal, biases zero, drawn from a ``torch.Generator`` seeded with ``seed`` (the
    global random state is left as it was); the network is frozen.

    The input is grey (or multi-channel) images in [-1, 1] with the background at -1; it is shifted to
    [0, 1] so that the background matches the convolutions' zero padding.

    Outputs are named ``"scale{k}_{i}"`` (``i`` = 1-based layer index). :attr:`style_layers` are the
    last layer of each scale (weight 1 each) and :attr:`content_layer` is the last layer of the coarsest
    scale, the deepest representation.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (1: one grey image per item).
        channels: output channels of the layers of each scale's stack.
        num_scales: number of pyramid levels.
        kernel_size: convolution kernel size.
        seed: seed of the weights.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32),
        num_scales: int = 4,
        kernel_size: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if num_scales < 1 or not channels:
            raise ValueError("need num_scales >= 1 and at least one layer")
        self.spatial_dims = spatial_dims
        self.num_scales = num_scales
        self.seed = seed
        with torch.random.fork_rng(devices=[]):  # the layers' default initialisation draws from the global RNG
            self.scales = nn.ModuleList(
                nn.Sequential(
                    *[
                        Convolution(spatial_dims, c_in, c_out, kernel_size=kernel_size, act="RELU", norm=None)
                        for c_in, c_out in zip([in_channels, *channels[:-1]], channels)
                    ]
                )
                for _ in range(num_scales)
            )
        self.pool = Pool[Pool.AVG, spatial_dims](kernel_size=2, stride=2)
        self._init_weights(seed)
        self.requires_grad_(False).eval()
        last = len(channels)
        self.style_layers: dict[str, float] = {f"scale{k}_{last}": 1.0 for k in range(num_scales)}
        self.content_layer = f"scale{num_scales - 1}_{last}"

    @torch.no_grad()
    def _init_weights(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(int(seed))
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Conv1d)):
                fan_in = module.weight[0].numel()
                weight = torch.randn(module.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in)
                module.weight.copy_(weight)
                if module.bias is not None:
                    module.bias.zero_()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, in_channels, *spatial)`` in [-1, 1] -> ``{"scale{k}_{i}": activation}``.

        Raises:
            ValueError: the image is too small for ``num_scales`` levels.
        """
        if min(x.shape[2:]) < 2 ** (self.num_scales - 1):
            raise ValueError(f"image {tuple(x.shape[2:])} too small for {self.num_scales} scales")
        out: dict[str, torch.Tensor] = {}
        level = (x + 1.0) * 0.5
        for k, stack in enumerate(self.scales):
            if k > 0:
                level = self.pool(level)
            h = level
            for i, layer in enumerate(stack, start=1):
                h = layer(h)
                out[f"scale{k}_{i}"] = h
        return out
