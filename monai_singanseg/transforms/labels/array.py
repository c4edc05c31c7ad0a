"""Label transforms: BraTS label values <-> class indices <-> one-hot tumour channels, binary masks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.config import NdarrayOrTensor
from monai.networks.utils import one_hot
from monai.transforms import InvertibleTransform, Transform
from monai.utils import TransformBackends, convert_to_tensor

from monai_singanseg.transforms.containers import like_input

__all__ = [
    "BRATS_LABEL_VALUES",
    "BRATS2023_LABEL_VALUES",
    "BINARY_LABEL_VALUES",
    "LabelValueError",
    "LabelToIndex",
    "IndexToLabel",
    "IndexToOneHot",
    "OneHotToIndex",
    "BinarizeMask",
    "check_label_values",
]

#: BraTS up to 2021: background, necrotic/non-enhancing core, oedema, enhancing tumour.
BRATS_LABEL_VALUES: tuple[int, ...] = (0, 1, 2, 4)
#: BraTS 2023 relabelled enhancing tumour as 3.
BRATS2023_LABEL_VALUES: tuple[int, ...] = (0, 1, 2, 3)
#: A binary mask (polyp / background).
BINARY_LABEL_VALUES: tuple[int, ...] = (0, 1)


def _listing(values: list[int], most: int = 12) -> str:
    """``values`` for a message: all of them, or the first ``most`` and how many in all (an image given as a label)."""
    if len(values) <= most:
        return str(values)
    return (
        f"[{', '.join(map(str, values[:most]))}, ...] ({len(values)} distinct values: is this an image, not a label?)"
    )


class LabelValueError(ValueError):
    """Raised when a label holds values outside the expected set."""


class LabelToIndex(InvertibleTransform):
    """Map label values to consecutive class indices, e.g. BraTS ``{0, 1, 2, 4}`` -> ``{0, 1, 2, 3}``.

    Unlike ``monai.transforms.MapLabelValue``, a value outside ``label_values`` is an error rather than
    passing through silently, because a silently wrong class is worse than a stopped run.

    Args:
        label_values: the label value of each class, class ``i`` having value ``label_values[i]``.
        dtype: integer dtype of the output.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, label_values: Sequence[int] = BRATS_LABEL_VALUES, dtype: torch.dtype = torch.int64) -> None:
        if len(set(label_values)) != len(label_values):
            raise ValueError(f"label_values must be distinct, got {label_values}")
        self.label_values = tuple(int(v) for v in label_values)
        self.dtype = dtype

    def __call__(self, label: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(label, track_meta=False)
        rounded = torch.round(t.float()).to(torch.int64)
        if t.is_floating_point() and not torch.equal(rounded.to(t.dtype), t):
            raise LabelValueError("label holds non-integer values; a label map must hold integer class values")
        if not rounded.numel():
            return like_input(rounded.to(self.dtype), label)
        # one look-up table over the known values' range: a gather, no sort of the whole volume
        low, high = min(self.label_values), max(self.label_values)
        inside = bool(rounded.min() >= low) and bool(rounded.max() <= high)
        lut = torch.full((high - low + 1,), -1, dtype=torch.int64, device=rounded.device)
        for idx, value in enumerate(self.label_values):
            lut[value - low] = idx
        out = lut[rounded.clamp(low, high) - low]
        if not inside or bool((out < 0).any()):
            unknown = sorted(set(torch.unique(rounded).tolist()) - set(self.label_values))
            raise LabelValueError(
                f"label holds values {_listing(unknown)} outside the expected set {list(self.label_values)}"
            )
        return like_input(out.to(self.dtype), label)

    def inverse(self, data: NdarrayOrTensor) -> NdarrayOrTensor:
        """Class indices back to label values."""
        return IndexToLabel(self.label_values)(data)


class IndexToLabel(InvertibleTransform):
    """Map class indices ``0..K-1`` back to label values (``{0, 1, 2, 3}`` -> BraTS ``{0, 1, 2, 4}``).

    Args:
        label_values: the label value of each class.
        dtype: integer dtype of the output (``uint8`` as BraTS segmentation files).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, label_values: Sequence[int] = BRATS_LABEL_VALUES, dtype: torch.dtype = torch.uint8) -> None:
        self.label_values = tuple(int(v) for v in label_values)
        self.dtype = dtype

    def __call__(self, index: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(index, track_meta=False).to(torch.int64)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= len(self.label_values)):
            raise LabelValueError(
                f"class indices must lie in [0, {len(self.label_values) - 1}], got [{int(t.min())}, {int(t.max())}]"
            )
        lut = torch.tensor(self.label_values, dtype=torch.int64, device=t.device)
        return like_input(lut[t].to(self.dtype), index)

    def inverse(self, data: NdarrayOrTensor) -> NdarrayOrTensor:
        """Label values back to class indices."""
        return LabelToIndex(self.label_values)(data)


class IndexToOneHot(InvertibleTransform):
    """Class-index map ``(1, *spatial)`` -> one-hot channels ``(K or K-1, *spatial)`` in float.

    Args:
        num_classes: number of classes including background.
        include_background: keep the background channel; the GAN input drops it (design: image channels
            + tumour-class channels).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, num_classes: int, include_background: bool = False) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.num_classes = num_classes
        self.include_background = include_background

    def __call__(self, index: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(index, track_meta=False)
        if t.shape[0] != 1:
            raise ValueError(f"expected a channel-first index map with 1 channel, got shape {tuple(t.shape)}")
        t = t.to(torch.int64)
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_classes):
            raise LabelValueError(f"class indices must lie in [0, {self.num_classes - 1}], got max {int(t.max())}")
        oh = one_hot(t[None], num_classes=self.num_classes, dim=1)[0].float()
        if not self.include_background:
            oh = oh[1:]
        return like_input(oh, index)

    def inverse(self, data: NdarrayOrTensor) -> NdarrayOrTensor:
        """One-hot channels back to the class-index map."""
        return OneHotToIndex(include_background=self.include_background)(data)


class OneHotToIndex(Transform):
    """One-hot or soft class channels -> class-index map ``(1, *spatial)``.

    With ``include_background=False`` the channels are the foreground classes ``1..K-1``; a voxel is
    background unless its largest channel exceeds ``threshold``. This is how generated soft label
    channels (``tanh`` output mapped to [0, 1]) become a label.

    Args:
        threshold: minimum foreground score for a voxel to get a foreground class.
        include_background: whether channel 0 is the background class.
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, threshold: float = 0.5, include_background: bool = False) -> None:
        self.threshold = threshold
        self.include_background = include_background

    def __call__(self, onehot: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(onehot, track_meta=False).float()
        if self.include_background:
            out = torch.argmax(t, dim=0, keepdim=True)
        else:
            score, arg = torch.max(t, dim=0, keepdim=True)
            out = torch.where(score > self.threshold, arg + 1, torch.zeros_like(arg))
        return like_input(out.to(torch.int64), onehot)


class BinarizeMask(Transform):
    """A noisy mask image (e.g. a JPEG mask, possibly RGB) -> binary ``(1, *spatial)`` mask of 0/1.

    Args:
        threshold: values strictly above it are foreground (127 for 8-bit JPEG masks).
    """

    backend = [TransformBackends.TORCH]

    def __init__(self, threshold: float = 127.0) -> None:
        self.threshold = threshold

    def __call__(self, mask: NdarrayOrTensor) -> NdarrayOrTensor:
        t = convert_to_tensor(mask, track_meta=False).float()
        out = (t.mean(dim=0, keepdim=True) > self.threshold).to(torch.uint8)
        return like_input(out, mask)


def check_label_values(label: NdarrayOrTensor, label_values: Sequence[int], name: str | None = None) -> list[int]:
    """Return the values present in ``label``; raise :class:`LabelValueError` naming ``name`` if any is unexpected."""
    present = [int(v) for v in torch.unique(convert_to_tensor(label, track_meta=False)).tolist()]
    unknown = sorted(set(present) - set(int(v) for v in label_values))
    if unknown:
        where = f"{name}: " if name else ""
        raise LabelValueError(
            f"{where}label holds values {_listing(unknown)} outside the expected set {list(label_values)}"
        )
    return present
