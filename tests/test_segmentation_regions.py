"""Region-based segmentation training (``SegmentationSettings(regions=True)``, ``evaluate --regions``): one sigmoid per
nested BraTS region, read back as class probabilities."""

from __future__ import annotations

import pytest
import torch

from monai_singanseg.evaluation.regions import BRATS_REGIONS
from monai_singanseg.evaluation.segmentation import (
    NestedRegionNet,
    SegmentationSettings,
    nested_region_levels,
    predict,
    predict_probabilities,
    train_segmentation,
    validation_dice,
)


class _Fixed(torch.nn.Module):
    """A "network" whose region logits are given, the same at every pixel."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.view(1, -1, 1, 1).expand(x.shape[0], -1, *x.shape[2:])


def test_nested_region_levels_of_brats_and_regions_that_are_not_nested():
    assert nested_region_levels((0, 1, 2, 4), BRATS_REGIONS) == (0, 2, 1, 3)  # label 2 (oedema) lies in WT only
    assert nested_region_levels((0, 1), {"tumour": (1,)}) == (0, 1)
    with pytest.raises(ValueError, match="not nested outermost first: label 4"):
        nested_region_levels((0, 1, 2, 4), {"WT": (1, 2), "ET": (4,)})


@pytest.mark.parametrize(
    ("logits", "label"),
    [
        ([4.0, 4.0, -4.0], 1),  # in WT and TC, not ET: necrotic core (label 1, class index 1)
        ([4.0, -4.0, 4.0], 2),  # in WT only (the ET output cannot bring back a voxel outside TC): oedema (label 2)
        ([4.0, 4.0, 4.0], 4),  # in all three: enhancing tumour
        ([-4.0, 4.0, 4.0], 0),  # outside WT: background, whatever the inner regions say
    ],
)
def test_region_outputs_read_as_class_probabilities(logits, label):
    net = NestedRegionNet(_Fixed(logits), nested_region_levels(), prior=0.5)  # prior 1/2: the logits as given
    x = torch.zeros(2, 1, 4, 4)
    log_p = net(x)
    assert log_p.shape == (2, 4, 4, 4)
    assert torch.allclose(torch.logsumexp(log_p, 1), torch.zeros(2, 4, 4), atol=1e-6)  # they sum to 1
    probs = predict_probabilities(net, x)
    p = torch.sigmoid(torch.tensor(logits))
    expected = [1 - p[0], p[0] * p[1] * (1 - p[2]), p[0] * (1 - p[1]), p[0] * p[1] * p[2]]  # indices of (0, 1, 2, 4)
    assert torch.allclose(probs[0, :, 0, 0], torch.stack(expected), atol=1e-6)
    assert int(predict(net, x)[0, 0, 0, 0]) == (0, 1, 2, 4).index(label)
    targets = net.region_targets(torch.tensor([0, 1, 2, 3]).view(4, 1, 1, 1))[:, :, 0, 0]
    assert targets.tolist() == [[0, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1]]
    untrained = NestedRegionNet(_Fixed([0.0, 0.0, 0.0]), nested_region_levels(), prior=0.01)
    assert torch.allclose(torch.sigmoid(untrained.region_logits(x)), torch.full((2, 3, 4, 4), 0.01))
    assert int(predict(untrained, x).max()) == 0  # no tumour before training
    with pytest.raises(ValueError, match="prior must be in"):
        NestedRegionNet(_Fixed(logits), nested_region_levels(), prior=1.0)


def test_region_training_learns_nested_squares():
    """Oedema around a core around an enhancing centre, the image a noisy picture of the labels: the region-based
    network learns every class (validation Dice of the classes), and deterministically under its seed."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(16, 1, 32, 32, dtype=torch.long)
    for i in range(16):
        r, c = torch.randint(0, 14, (2,), generator=gen).tolist()
        labels[i, 0, r : r + 18, c : c + 18] = 2  # oedema: label 2 is class index 2
        labels[i, 0, r + 4 : r + 14, c + 4 : c + 14] = 1  # core (label 1)
        labels[i, 0, r + 7 : r + 11, c + 7 : c + 11] = 3  # enhancing (label 4)
    brightness = torch.tensor([-1.0, 0.3, 1.0, -0.3])  # per class index
    images = brightness[labels] + 0.2 * torch.randn(16, 1, 32, 32, generator=gen)
    settings = SegmentationSettings(network="basicunet", features=8, steps=150, batch_size=4, lr=1e-2, regions=True)
    net, info = train_segmentation(images[:12], labels[:12], 4, settings, seed=0, device="cpu", progress=False)
    assert isinstance(net, NestedRegionNet) and net.net.final_conv.out_channels == 3
    assert validation_dice(net, images[12:], labels[12:], 4) > 0.9
    again, info_again = train_segmentation(images[:12], labels[:12], 4, settings, seed=0, device="cpu", progress=False)
    assert info_again["losses"] == info["losses"]
    with pytest.raises(ValueError, match="one level per class"):
        train_segmentation(images, labels, 4, settings, class_levels=(0, 1), progress=False, device="cpu")
