"""VGG-19 feature stack (torchvision's ``vgg19().features`` layout) for style transfer, without torchvision.

The module indices are torchvision's, so the state dict of :class:`VGG19Features` is exactly the ``features.*``
part of torchvision's ``vgg19`` state dict (without the ``features.`` prefix): ImageNet weights saved on a
machine with internet load here offline with :func:`load_vgg19_features`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "VGG19Features",
    "VGG19StyleExtractor",
    "load_vgg19_features",
    "VGG19_LAYERS",
    "VGG19_STYLE_LAYERS",
    "VGG19_CONTENT_LAYER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_WEIGHTS_URL",
]

#: channel widths per block of VGG-19 (configuration "E" of Simonyan & Zisserman), each block ends in a max pool.
_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: torchvision's ImageNet VGG-19 weights (full model; the loader ignores the ``classifier.*`` entries).
VGG19_WEIGHTS_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"

#: how to make the weights file on a machine with internet (shown in error messages).
_HOW_TO_GET_WEIGHTS = (
    'make it on a machine with internet and torchvision: python -c "import torch, torchvision; '
    "torch.save(torchvision.models.vgg19(weights='IMAGENET1K_V1').features.state_dict(), 'vgg19_features.pt')\" "
    f"(or download torchvision's full model file {VGG19_WEIGHTS_URL}, which loads as it is)"
)


def _layer_names() -> dict[str, int]:
    names: dict[str, int] = {}
    index = 0
    for block, widths in enumerate(_BLOCKS, start=1):
        for conv in range(1, len(widths) + 1):
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            index += 2
        names[f"pool{block}"] = index
        index += 1
    return names


#: layer name -> module index in ``vgg19().features`` (conv1_1 = 0, relu1_1 = 1, ..., conv5_1 = 28, pool5 = 36).
VGG19_LAYERS: dict[str, int] = _layer_names()

#: style layers and weights of the SinGAN-Seg reference (singan_seg_polyp/style_transfer.py), see
#: :class:`VGG19StyleExtractor` for why these are the ReLU outputs.
VGG19_STYLE_LAYERS: dict[str, float] = {
    "relu1_1": 0.75,
    "relu2_1": 0.5,
    "relu3_1": 0.25,
    "relu4_1": 0.25,
    "relu5_1": 0.25,
}
VGG19_CONTENT_LAYER = "relu5_1"


class VGG19Features(nn.Sequential):
    """The 37-module ``features`` stack of torchvision's ``vgg19`` (3x3 convolutions, ReLU, 2x2 max pools).

    Same module indices as torchvision, so ``state_dict()`` keys are ``"0.weight"``, ``"0.bias"``, ...,
    ``"34.bias"``. The ReLUs are not in-place (torchvision's are), so that :meth:`activations` can return
    the output of any layer. ``forward`` is torchvision's: ImageNet-normalised RGB ``(N, 3, H, W)`` in,
    ``pool5`` features out.
    """

    def __init__(self) -> None:
        layers: list[nn.Module] = []
        in_channels = 3
        for widths in _BLOCKS:
            for width in widths:
                layers += [nn.Conv2d(in_channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                in_channels = width
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        super().__init__(*layers)

    def activations(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Outputs of the named layers (``"conv1_1"``, ``"relu1_1"``, ``"pool1"`` ... see :data:`VGG19_LAYERS`).

        Only the modules up to the deepest requested layer run.

        Args:
            x: ImageNet-normalised RGB batch ``(N, 3, H, W)``.
            layers: layer names.

        Raises:
            KeyError: an unknown layer name.
        """
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown:
            raise KeyError(f"unknown VGG-19 layer(s) {unknown}; known: {list(VGG19_LAYERS)}")
        wanted = {VGG19_LAYERS[name]: name for name in layers}
        out: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
            if index >= max(wanted):
                break
        return out


class VGG19StyleExtractor(nn.Module):
    """Grey images in [-1, 1] -> VGG-19 activations at the style and content layers (a style-transfer extractor).

    Each input channel is one grey image (an MR modality): it is mapped to [0, 1], replicated to RGB and
    ImageNet-normalised before :class:`VGG19Features`.

    The SinGAN-Seg reference names its layers ``conv1_1``, ``conv2_1``, ... (indices 0, 5, 10, 19, 28) and
    stores the module outputs at those indices, but torchvision's ReLUs are in-place, so the stored
    tensors are overwritten by the following ReLU: the reference's losses use the **ReLU outputs**
    ``relu1_1 ... relu5_1``. This class follows that effective behaviour (the defaults); conv outputs can
    be chosen by name.

    Args:
        features: the VGG-19 stack (e.g. from :func:`load_vgg19_features`).
        style_layers: layer -> style weight (default: the reference's 0.75/0.5/0.25/0.25/0.25 at relu1_1..relu5_1).
        content_layer: the content layer (default ``"relu5_1"``, the reference's deepest layer).
    """

    def __init__(
        self,
        features: VGG19Features,
        style_layers: Mapping[str, float] | None = None,
        content_layer: str = VGG19_CONTENT_LAYER,
    ) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.style_layers = dict(VGG19_STYLE_LAYERS if style_layers is None else style_layers)
        self.content_layer = content_layer
        unknown = [name for name in [*self.style_layers, content_layer] if name not in VGG19_LAYERS]
        if unknown:
            raise KeyError(f"unknown VGG-19 layer(s) {unknown}; known: {list(VGG19_LAYERS)}")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, 1, H, W)`` grey in [-1, 1] (or RGB ``(N, 3, H, W)``) -> ``{layer: activation}``."""
        rgb = ((x + 1.0) * 0.5).expand(-1, 3, -1, -1) if x.shape[1] == 1 else (x + 1.0) * 0.5
        return self.features.activations((rgb - self.mean) / self.std, [*self.style_layers, self.content_layer])


def load_vgg19_features(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> VGG19Features:
    """Load VGG-19 ``features`` weights saved with ``torch.save`` (read with ``weights_only=True``).

    Accepts torchvision's full ``vgg19`` state dict (``features.N.weight``; ``classifier.*`` is ignored,
    e.g. the file at :data:`VGG19_WEIGHTS_URL`) or a features-only state dict (``N.weight``).

    Args:
        path: the weights file.
        map_location: where to load the tensors.

    Returns:
        The network in eval mode, gradients off.

    Raises:
        FileNotFoundError: the file does not exist (the message says how to make it).
        ValueError: not a state dict, keys missing, or a tensor of the wrong shape (naming the key and both shapes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: VGG-19 weights file not found; {_HOW_TO_GET_WEIGHTS}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise ValueError(f"{path}: not a PyTorch state dict file ({type(e).__name__}: {e})") from e
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(
            f"{path}: expected a state dict (name -> tensor) of VGG-19 weights, got {type(state).__name__}"
        )
    if any(str(k).startswith("features.") for k in state):
        state = {str(k)[len("features.") :]: v for k, v in state.items() if str(k).startswith("features.")}
    with torch.device("meta"):
        net = VGG19Features()
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise ValueError(f"{path}: not VGG-19 features weights, missing {len(missing)} key(s): {missing[:6]}")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise ValueError(f"{path}: not VGG-19 features weights, unexpected key(s): {unexpected[:6]}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(
                f"{path}: VGG-19 weight '{key}' has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
            )
    net.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    return net.eval().requires_grad_(False)
