"""New tumour layouts for SinGAN-Seg samples: the displacement warp on a real BraTS slice and in the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.synthesis import singanseg_training_input
from monai_singanseg.transforms.gan import RandTumourDisplacement, RandTumourDisplacementd, tumour_background_contact
from monai_singanseg.transforms.gan.layout import MIN_IN_FRAME

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "bundles" / "singanseg" / "models" / "singanseg.pt"
NUM_IMAGE_CHANNELS = 4


@pytest.fixture(scope="module")
def slice_gan(brats_item) -> torch.Tensor:
    """The real tumour slice of a TCGA case as a GAN tensor (4 MR channels + 3 tumour channels) at 64 px."""
    gan, _ = singanseg_training_input(brats_item["image"], brats_item["label"], "auto", max_size=64)
    return gan


def _parts(t: RandTumourDisplacement, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return t.tumour(x), t.foreground(x) | t.tumour(x)


def _large_components(mask: torch.Tensor) -> int:
    """Connected components holding at least 10 % of the mask."""
    labels, n = ndimage.label(mask.numpy())
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes >= 0.1 * sizes.sum()).sum())


def _centre(mask: torch.Tensor) -> np.ndarray:
    return np.array(ndimage.center_of_mass(mask.numpy()))


def test_displacement_moves_and_reshapes_the_tumour_inside_the_brain(slice_gan):
    t = RandTumourDisplacement(NUM_IMAGE_CHANNELS)
    tumour, foreground = _parts(t, slice_gan)
    contact = tumour_background_contact(tumour, foreground)
    components = _large_components(tumour)
    shifts, ious = [], []
    for seed in range(12):
        out = t.set_random_state(seed)(slice_gan)
        assert out.shape == slice_gan.shape and out.dtype == torch.float32
        moved, moved_fg = _parts(t, out)
        area = float(moved.sum()) / float(tumour.sum())
        assert 0.4 < area < 2.0  # the tumour is kept (its size changes by at most 1.2x in radius, plus the outline)
        assert tumour_background_contact(moved, moved_fg) <= max(contact, 0.1)  # no more outside the brain than before
        assert _large_components(moved) <= components  # an invertible warp: no copy left at the old site
        shifts.append(np.linalg.norm(_centre(moved) - _centre(tumour)))
        ious.append(float((moved & tumour).sum()) / float((moved | tumour).sum()))
    assert np.mean(shifts) > 1.5  # pixels at 64 px
    assert np.mean(ious) < 0.7
    # the labels move with the image: the moved tumour is still bright on FLAIR, as the real one is
    out = t.set_random_state(0)(slice_gan)
    moved = t.tumour(out)
    assert float(out[0][moved].mean()) > float(out[0][t.foreground(out) & ~moved].mean())


def test_polyp_may_move_partly_out_of_the_endoscopy_frame(shared_data):
    """The frame cuts the view, not the body: a Kvasir-SEG polyp may be moved partly out of the frame (at most
    1 - MIN_IN_FRAME of it), and the black vignette corners count as background."""
    name = "cju0qkwl35piu0993l0dewei2"
    kvasir = shared_data / "kvasir_seg"
    gan, _ = singanseg_training_input(
        kvasir / "images" / f"{name}.jpg", kvasir / "masks" / f"{name}.jpg", "auto", max_size=64
    )
    t = RandTumourDisplacement(3)  # RGB + one polyp channel
    polyp = t.tumour(gan)

    def at_frame(mask: torch.Tensor) -> bool:
        return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())

    assert not at_frame(polyp)
    smallest = 0.9 * MIN_IN_FRAME * (1.0 - t.scale_range) ** 2 * float(polyp.sum())  # 0.9: 64 px pixelation
    moved = [t.tumour(t.set_random_state(seed)(gan)) for seed in range(12)]
    assert all(float(m.sum()) >= smallest for m in moved)
    assert sum(at_frame(m) for m in moved) >= 3
    # the contact rule: beyond a frame that cuts through tissue is tissue; beyond a brain's slice is background
    assert tumour_background_contact(polyp, t.foreground(gan) | polyp) < 0.1
    edge = torch.zeros_like(polyp)
    edge[:5, 20:30] = True
    assert tumour_background_contact(edge, t.foreground(gan) | edge) == 0.0
    brain = torch.zeros_like(polyp)
    brain[:, 10:40] = True  # an object on a background: most of the border is background
    assert tumour_background_contact(edge, brain) > 0.3


def test_displacement_is_reproducible_and_respects_prob_and_inputs(slice_gan):
    a = RandTumourDisplacement(NUM_IMAGE_CHANNELS).set_random_state(3)(slice_gan)
    b = RandTumourDisplacement(NUM_IMAGE_CHANNELS).set_random_state(3)(slice_gan)
    c = RandTumourDisplacement(NUM_IMAGE_CHANNELS).set_random_state(4)(slice_gan)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(RandTumourDisplacement(NUM_IMAGE_CHANNELS, prob=0.0)(slice_gan), slice_gan)
    no_tumour = slice_gan.clone()
    no_tumour[NUM_IMAGE_CHANNELS:] = -1.0
    assert torch.equal(RandTumourDisplacement(NUM_IMAGE_CHANNELS)(no_tumour), no_tumour)
    d = RandTumourDisplacementd("gan", num_image_channels=NUM_IMAGE_CHANNELS).set_random_state(3)(
        {"gan": slice_gan, "x": 1}
    )
    assert torch.equal(d["gan"], a) and d["x"] == 1
    with pytest.raises(ValueError, match="expected a \\(C, H, W\\) GAN tensor"):
        RandTumourDisplacement(NUM_IMAGE_CHANNELS)(slice_gan[:NUM_IMAGE_CHANNELS])
    with pytest.raises(ValueError, match="max_shift must lie in \\[0, 1\\]"):
        RandTumourDisplacement(NUM_IMAGE_CHANNELS, max_shift=1.5)


def test_shipped_model_samples_vary_the_tumour_layout():
    """50 samples from start scale 0 of the shipped model: with new layouts the tumour overlaps the model's own less."""
    sampler = SinGANSegSampler(MODEL)
    _, reference = sampler.split(sampler.reconstruction())
    real = reference[0, 0] > 0

    def layout(shift):
        _, labels = sampler.split(sampler.sample(24, seed=0, batch_size=12, tumour_shift=shift))
        masks = labels[:, 0] > 0
        kept = float(masks.flatten(1).any(1).float().mean())
        iou = ((masks & real).flatten(1).sum(1) / (masks | real).flatten(1).sum(1).clamp_min(1)).float().mean()
        return kept, float(iou)

    kept_own, iou_own = layout(None)
    kept_new, iou_new = layout(0.15)
    assert kept_own == kept_new == 1.0
    assert iou_new < iou_own - 0.15
    # reproducible, and sample i does not depend on the batch size (up to float rounding: on some CPUs the
    # convolution kernels for a batch of 3 and of 1 round differently, by about 1e-5)
    a = sampler.sample(3, seed=5, batch_size=3, tumour_shift=0.15)
    assert torch.equal(a, sampler.sample(3, seed=5, batch_size=3, tumour_shift=0.15))
    torch.testing.assert_close(a, sampler.sample(3, seed=5, batch_size=1, tumour_shift=0.15), rtol=0.0, atol=1e-4)
