"""Style transfer of SinGAN-Seg's second stage: give synthetic samples the look of the real training image.

Images are channel-first ``(C, *spatial)`` in the generators' [-1, 1] range with the background at -1
(SinGAN-Seg samples, or real slices after :class:`~monai_singanseg.transforms.IntensityToTanhRange`). Every
channel (MR modality) is styled on its own, from the same channel of the reference. Pixels outside the
image's foreground keep their values exactly; labels are never touched (the transforms only see images).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor
from torch import nn

from monai_singanseg.device import resolve_device
from monai_singanseg.transforms.style.gatys import optimise_style

__all__ = [
    "HistogramMatch",
    "StyleTransfer",
    "make_style_extractor",
    "match_histogram",
    "tanh_foreground",
    "STYLE_METHODS",
    "FOREGROUND_LEVEL",
]

#: the methods :class:`StyleTransfer` knows by name.
STYLE_METHODS = ("histogram", "random", "histogram+random", "vgg19", "histogram+vgg19")

#: a pixel is foreground when any channel exceeds this level: real slices have their background at exactly
#: -1, SinGAN-Seg samples hold faint noise in [-1, -0.95] around the brain.
FOREGROUND_LEVEL = -0.95


def tanh_foreground(img: NdarrayOrTensor, level: float = FOREGROUND_LEVEL) -> NdarrayOrTensor:
    """``(1, *spatial)`` bool: pixels where any channel of a [-1, 1] image ``(C, *spatial)`` exceeds ``level``.

    A numpy image gives a numpy mask, a tensor a tensor on its device.
    """
    if isinstance(img, np.ndarray):
        return (img > level).any(axis=0, keepdims=True)
    return (img > level).any(dim=0, keepdim=True)


def match_histogram(values: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Quantile mapping of 1D ``values`` onto the distribution of 1D ``reference`` values.

    Each distinct value goes to the reference quantile at its empirical CDF level (linear interpolation
    between reference quantiles, as ``skimage.exposure.match_histograms``); ties stay tied and the order
    is kept.
    """
    src, inverse, counts = np.unique(values.double().cpu().numpy(), return_inverse=True, return_counts=True)
    ref, ref_counts = np.unique(reference.double().cpu().numpy(), return_counts=True)
    src_cdf = np.cumsum(counts) / values.numel()
    ref_cdf = np.cumsum(ref_counts) / reference.numel()
    mapped = np.interp(src_cdf, ref_cdf, ref)[inverse.reshape(-1)]
    return torch.from_numpy(mapped).to(values.dtype).to(values.device)


class HistogramMatch(Transform):
    """Map each channel's foreground intensities onto the reference's foreground distribution.

    Per channel, the values at the image's foreground pixels are quantile-mapped (:func:`match_histogram`)
    onto the values at the reference's foreground pixels; everything else is returned unchanged.

    Args:
        reference: ``(C, *spatial')`` image in [-1, 1] whose distribution to take (or give it at call time).
        foreground_level: a pixel is foreground when any channel exceeds this level (both images).

    Numpy arrays and torch tensors (any device) are accepted; the output has the input's type, dtype and device.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, reference: NdarrayOrTensor | None = None, foreground_level: float = FOREGROUND_LEVEL) -> None:
        self.reference = reference
        self.foreground_level = foreground_level

    def __call__(self, img: NdarrayOrTensor, reference: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        """Args:
        img: ``(C, *spatial)`` in [-1, 1].
        reference: overrides the constructor's reference.
        """
        ref = _as_image(reference if reference is not None else self.reference, "reference", img)
        t = convert_to_tensor(img, track_meta=False).float()
        fg = tanh_foreground(t, self.foreground_level)[0]
        ref_fg = tanh_foreground(ref, self.foreground_level)[0]
        if not ref_fg.any():
            raise ValueError(f"the reference has no foreground (no pixel above {self.foreground_level})")
        out = t.clone()
        if fg.any():
            for c in range(t.shape[0]):
                out[c][fg] = match_histogram(t[c][fg], ref[c][ref_fg].to(t.device))
        return convert_to_dst_type(out, img)[0]


def _as_image(x: NdarrayOrTensor | None, name: str, img: NdarrayOrTensor) -> torch.Tensor:
    """A reference/style image as a float tensor, checked against ``img``."""
    if x is None:
        raise ValueError(f"no {name} image: give it to the constructor or the call")
    t = convert_to_tensor(x, track_meta=False).float()
    channels = np.shape(img)[0]
    if t.ndim != len(np.shape(img)) or t.shape[0] != channels:
        raise ValueError(
            f"the {name} image has shape {tuple(t.shape)}; expected {channels} channels and "
            f"{len(np.shape(img)) - 1} spatial dimensions like the image {tuple(np.shape(img))}"
        )
    return t


def make_style_extractor(
    name: str, weights_path: str | os.PathLike | None = None, seed: int = 0, spatial_dims: int = 2
) -> nn.Module:
    """The feature extractor of a method's network part: ``"vgg19"`` or ``"random"``.

    Args:
        name: ``"vgg19"`` (needs ``weights_path``) or ``"random"``.
        weights_path: VGG-19 weights file (see :func:`~monai_singanseg.networks.vgg.load_vgg19_features`).
        seed: seed of the random network.
        spatial_dims: spatial dimensions of the images (VGG-19: 2 only).

    Raises:
        ValueError: unknown name, VGG-19 without a weights path or for 3D images.
        FileNotFoundError: the weights file is missing (naming it and how to make it).
    """
    from monai_singanseg.networks.random_features import RandomFeatures
    from monai_singanseg.networks.vgg import VGG19StyleExtractor, load_vgg19_features

    if name == "random":
        return RandomFeatures(spatial_dims, seed=seed)
    if name == "vgg19":
        if weights_path is None:
            raise ValueError(
                "style method 'vgg19' needs weights_path= (a local VGG-19 weights file; nothing is downloaded)"
            )
        if spatial_dims != 2:
            raise ValueError(f"VGG-19 works on 2D images only, got spatial_dims={spatial_dims}")
        return VGG19StyleExtractor(load_vgg19_features(weights_path))
    raise ValueError(f"unknown style extractor {name!r}; choose 'random' or 'vgg19'")


class StyleTransfer(Transform):
    """SinGAN-Seg's style transfer: the image is the content, a real image the style, per MR channel.

    Methods:

    - ``"histogram"``: :class:`HistogramMatch` only (per-channel foreground quantile mapping; instant);
    - ``"random"`` / ``"vgg19"``: Gatys optimisation of the image (initialised from it, Adam) with the
      content term at the extractor's deepest layer and Gram-matrix style terms at several layers, using a
      fixed random-weight multi-scale CNN (:class:`~monai_singanseg.networks.RandomFeatures`, no download)
      or VGG-19 with ImageNet weights from ``weights_path``
      (:class:`~monai_singanseg.networks.vgg.VGG19StyleExtractor`: the reference's layers and weights);
    - ``"histogram+random"`` / ``"histogram+vgg19"``: histogram matching, then the optimisation from there;
    - an ``nn.Module``: a custom extractor mapping ``(N, 1, *spatial)`` in [-1, 1] to ``{layer: activation}``
      (optionally with ``style_layers`` / ``content_layer`` attributes).

    Pixels outside the image's foreground keep their values exactly; the label is not an input.

    Args:
        style: the style (real) image ``(C, *spatial')`` in [-1, 1], or give it at call time.
        method: a name from :data:`STYLE_METHODS` or an extractor module.
        weights_path: VGG-19 weights file for the ``vgg19`` methods (checked here, before any work).
        steps: Adam steps of the optimisation. The reference runs 1000 (with VGG-19 on a GPU); 100 with the
            random network take about 4 s per 4-channel 128x128 sample on one CPU thread and give most of the
            gain of 200 (``benchmarks/style_transfer.py``, ``docs/style_transfer.md``).
        lr: Adam learning rate in the image's [-1, 1] units (0.03: measured best of 0.01/0.03 at 100 steps).
            The reference's 0.01 acts on ImageNet-normalised RGB, about ``0.01 * 2 * 0.226 = 0.0045`` in these
            units: ``lr=0.0045, steps=1000`` with ``"vgg19"`` approximates the reference.
        content_weight: weight of the content term (reference: 1).
        style_weight: weight of the style term (reference: 1000).
        style_layers: layer -> style weight, overriding the extractor's.
        content_layer: content layer, overriding the extractor's.
        foreground_level: a pixel is foreground (may change) when any channel exceeds this level.
        seed: seed of the random extractor's weights (the optimisation itself draws no random numbers).
        spatial_dims: spatial dimensions of the images.
        device: where to run the optimisation; results come back on the input's device and type.
        progress: show a tqdm bar per image.
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        style: NdarrayOrTensor | None = None,
        method: str | nn.Module = "histogram+random",
        weights_path: str | os.PathLike | None = None,
        steps: int = 100,
        lr: float = 0.03,
        content_weight: float = 1.0,
        style_weight: float = 1000.0,
        style_layers: Mapping[str, float] | None = None,
        content_layer: str | None = None,
        foreground_level: float = FOREGROUND_LEVEL,
        seed: int = 0,
        spatial_dims: int = 2,
        device: str | torch.device | None = "cpu",
        progress: bool = False,
    ) -> None:
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.device = resolve_device(device)
        self.histogram: HistogramMatch | None = None
        self.extractor: nn.Module | None = None
        if isinstance(method, nn.Module):
            self.extractor = method
        elif isinstance(method, str) and method in STYLE_METHODS:
            parts = method.split("+")
            if parts[0] == "histogram":
                self.histogram = HistogramMatch(foreground_level=foreground_level)
            if parts[-1] != "histogram":
                self.extractor = make_style_extractor(parts[-1], weights_path, seed, spatial_dims)
        else:
            raise ValueError(f"unknown style method {method!r}; choose one of {STYLE_METHODS} or pass an nn.Module")
        if self.extractor is not None:
            self.extractor = self.extractor.to(self.device).eval().requires_grad_(False)
        self.method = method if isinstance(method, str) else type(method).__name__
        self.style = style
        self.steps = steps
        self.foreground_level = foreground_level
        #: the keyword arguments of :func:`optimise_style`
        self.options = {
            "steps": steps,
            "lr": lr,
            "content_weight": content_weight,
            "style_weight": style_weight,
            "style_layers": style_layers,
            "content_layer": content_layer,
            "progress": progress,
        }

    def __call__(self, img: NdarrayOrTensor, style: NdarrayOrTensor | None = None) -> NdarrayOrTensor:
        """Args:
        img: ``(C, *spatial)`` in [-1, 1], the content (e.g. a SinGAN-Seg sample's image channels).
        style: overrides the constructor's style image.

        Returns:
            The styled image, same type, shape, device and metadata as ``img``.
        """
        ref = _as_image(style if style is not None else self.style, "style", img)
        content = convert_to_tensor(img, track_meta=False).float()
        if self.histogram is not None:
            content_in = self.histogram(content, ref)
        else:
            content_in = content
        if self.extractor is not None and self.steps > 0:
            fg = tanh_foreground(content, self.foreground_level)
            device = self.device
            out = optimise_style(content_in.to(device), ref.to(device), self.extractor, fg.to(device), **self.options)
            out = out.to(content.device)
        else:
            out = content_in
        return convert_to_dst_type(out, img)[0]
