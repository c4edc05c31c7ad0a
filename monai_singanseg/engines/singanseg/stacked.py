"""M same-shaped SinGAN-Seg models run as one: their modules stacked along a leading model dimension."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["StackedModules", "check_same_shapes"]


def check_same_shapes(reals: Sequence[torch.Tensor], num_image_channels: Sequence[int]) -> None:
    """Refuse a batch of GAN tensors that cannot train together.

    Models of different shapes are refused, not padded: padding would change what the critic sees (its
    patches would score the padding) and the pyramid sizes, so a padded model would not equal the model
    trained alone.

    Args:
        reals: the GAN tensors ``(C, *spatial)``.
        num_image_channels: image channels of each (the rest are label channels).

    Raises:
        ValueError: naming the shapes (or the image channel counts) when they differ.
    """
    shapes = [tuple(int(d) for d in r.shape) for r in reals]
    if len(set(shapes)) > 1:
        raise ValueError(
            f"batched SinGAN-Seg training needs GAN tensors of one shape (channels and size), got {shapes}; "
            "slices of different sizes are refused, not padded (padding would change what the critic sees): "
            "group the slices by shape and train each group on its own"
        )
    if len(set(num_image_channels)) > 1:
        raise ValueError(
            f"batched SinGAN-Seg training needs one number of image channels, got {list(num_image_channels)} "
            f"for GAN tensors of shape {shapes[0]}"
        )


class StackedModules:
    """M modules of one architecture run as one: parameters and buffers stacked along a leading model dim.

    Calling it maps ``functional_call`` of the first module (the template: its structure and its train/eval
    mode) over the model dimension with ``torch.vmap``; batch-norm running statistics are updated in the
    stacked buffers in place, per model.

    Args:
        modules: the M modules (same parameter and buffer names and shapes).
        trainable: make the stacked parameters leaves that require gradients.
    """

    def __init__(self, modules: Sequence[nn.Module], trainable: bool) -> None:
        self.template = modules[0]
        self.num_models = len(modules)
        single = self.num_models == 1
        self.params = (
            dict(self.template.named_parameters()) if single else _stack([dict(m.named_parameters()) for m in modules])
        )
        self.buffers = (
            dict(self.template.named_buffers()) if single else _stack([dict(m.named_buffers()) for m in modules])
        )
        self.requires_grad_(trainable)
        self._vmapped = torch.vmap(self._call_one)

    def _call_one(
        self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], *args: torch.Tensor
    ) -> torch.Tensor:
        return functional_call(self.template, (params, buffers), args)

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        """Run every model on its slice of ``args`` (each ``(M, ...)``); returns ``(M, ...)``.

        One model is the module itself (its own parameters are the optimiser's leaves, nothing is stacked): the
        single-model trainer runs as fast as a plain module.
        """
        if self.num_models == 1:
            return self.template(*(a[0] for a in args)).unsqueeze(0)
        return self._vmapped(self.params, self.buffers, *args)

    def parameters(self) -> list[torch.Tensor]:
        """The stacked parameters (optimiser leaves when trainable)."""
        return list(self.params.values())

    def requires_grad_(self, flag: bool) -> None:
        """Switch gradients of the stacked parameters on or off."""
        for p in self.params.values():
            p.requires_grad_(flag)

    @torch.no_grad()
    def write_back(self, modules: Sequence[nn.Module]) -> None:
        """Copy model ``m``'s slice of the parameters and buffers into ``modules[m]`` (one model: it is the module)."""
        if self.num_models == 1 and modules[0] is self.template:
            return
        for m, module in enumerate(modules):
            for name, t in (*module.named_parameters(), *module.named_buffers()):
                stacked = self.params[name] if name in self.params else self.buffers[name]
                t.copy_(stacked[m])


def _stack(dicts: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack same-named tensors of M dicts into fresh leaf tensors ``(M, ...)``."""
    return {name: torch.stack([d[name].detach() for d in dicts]).clone() for name in dicts[0]}
