"""pix2pix networks and condition transforms on real BraTS data."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from torch import nn

from monai_singanseg.metrics import periodic_power
from monai_singanseg.networks import Pix2PixCritic, Pix2PixGenerator, num_unet_levels
from monai_singanseg.networks.pix2pix import UPSAMPLE_MODES
from monai_singanseg.transforms.condition import (
    BuildCondition,
    BuildConditiond,
    ConditionError,
    RandDeformCondition,
    RandDeformConditiond,
    SplitCondition,
    TissueClasses,
    TumourTransplant,
    TumourTransplantd,
    condition_channel_names,
)


@pytest.mark.parametrize("size, levels", [(32, 5), (64, 6), (128, 7), (256, 8)])
def test_generator_levels_and_shape(size, levels):
    assert num_unet_levels(size) == levels
    gen = Pix2PixGenerator(2, in_channels=5, out_channels=4, size=size, channels=4)
    out = gen(torch.rand(2, 5, size, size))
    assert out.shape == (2, 4, size, size)
    assert out.abs().max() <= 1.0  # Tanh output
    assert sum(isinstance(m, nn.Dropout) for m in gen.modules()) == 3


def test_generator_reference_size_and_init():
    gen = Pix2PixGenerator(2, in_channels=3, out_channels=3, size=256, channels=64, upsample="transposed")
    # the reference unet_256 has 54.4M parameters
    assert abs(sum(p.numel() for p in gen.parameters()) / 1e6 - 54.4) < 0.1
    conv_weights = torch.cat(
        [m.weight.flatten() for m in gen.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    ).detach()
    assert abs(float(conv_weights.std()) - 0.02) < 0.002


def test_generator_rejects_bad_size():
    with pytest.raises(ValueError, match="power of two"):
        Pix2PixGenerator(2, 5, 4, size=100)
    gen = Pix2PixGenerator(2, 5, 4, size=32, channels=4)
    with pytest.raises(ValueError, match="32x32"):
        gen(torch.rand(1, 5, 64, 64))


def test_resize_decoder_leaves_no_checkerboard():
    """On a constant condition, transposed convolutions print a stride-2 grid; resize + convolution does not."""
    shares = {}
    for mode in UPSAMPLE_MODES:
        torch.manual_seed(0)
        gen = Pix2PixGenerator(2, in_channels=3, out_channels=2, size=64, channels=8, dropout=0.0, upsample=mode).eval()
        with torch.no_grad():
            out = gen(torch.ones(1, 3, 64, 64))
        shares[mode] = periodic_power(out)
        kinds = {type(m) for m in gen.modules()}
        assert (nn.ConvTranspose2d in kinds) == (mode == "transposed")
    assert shares["transposed"] > 0.05
    assert shares["resize"] < shares["transposed"] / 10
    with pytest.raises(ValueError, match="upsample must be one of resize, transposed"):
        Pix2PixGenerator(2, 3, 2, size=32, upsample="deconv")


def test_critic_sees_condition_and_image():
    critic = Pix2PixCritic(2, condition_channels=5, image_channels=4, channels=8)
    (outputs,) = critic(torch.rand(2, 5, 64, 64), torch.rand(2, 4, 64, 64))
    assert outputs[-1].shape == (2, 1, 6, 6)
    first_conv = next(m for m in critic.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == 9
    with pytest.raises(RuntimeError):
        critic(torch.rand(2, 4, 64, 64), torch.rand(2, 4, 64, 64))  # a channel short


def test_multiscale_critic_judges_pooled_pairs_and_reads_single_critic_weights():
    critic = Pix2PixCritic(2, condition_channels=5, image_channels=4, channels=8, scales=2)
    fine, coarse = critic(torch.rand(2, 5, 64, 64), torch.rand(2, 4, 64, 64))
    assert fine[-1].shape == (2, 1, 6, 6) and coarse[-1].shape == (2, 1, 2, 2)  # the second sees a 32x32 pair
    assert len(fine) == len(coarse) == 5  # 4 hidden feature maps (for feature matching) + logits
    assert fine[0].shape[-1] == 2 * coarse[0].shape[-1]
    # a model file written before the multi-scale critic kept one PatchDiscriminator under "net."
    single = Pix2PixCritic(2, condition_channels=5, image_channels=4, channels=8)
    old_state = {"net." + k[len("critics.0.") :]: v for k, v in single.state_dict().items()}
    fresh = Pix2PixCritic(2, condition_channels=5, image_channels=4, channels=8)
    fresh.load_state_dict(old_state)
    x = (torch.rand(1, 5, 64, 64), torch.rand(1, 4, 64, 64))
    assert torch.equal(fresh(*x)[0][-1], single(*x)[0][-1])
    with pytest.raises(ValueError, match="critic scales must be >= 1"):
        Pix2PixCritic(2, 5, 4, scales=0)


def test_condition_round_trip(demo):
    names = condition_channel_names((0, 1, 2, 4), tissue_classes=3)
    assert names == ["brain", "tumour_1", "tumour_2", "tumour_4", "tissue_1", "tissue_2", "tissue_3"]
    tissue = TissueClasses(3)(demo["image"][1:2], demo["brain"], demo["label"] > 0)
    # classes sorted dark -> bright on T1
    means = [float(demo["image"][1][tissue[0] == k].mean()) for k in (1, 2, 3)]
    assert means == sorted(means)
    cond = BuildCondition(4, tissue_classes=3)(demo["label"], demo["brain"], tissue)
    assert cond.shape == (7, *demo["label"].shape[1:])
    assert set(torch.unique(cond).tolist()) == {0.0, 1.0}
    label, brain, tis = SplitCondition(4, 3)(cond)
    assert torch.equal(label.as_tensor(), demo["label"].as_tensor())
    keep = (demo["label"] == 0).as_tensor()
    assert torch.equal(torch.as_tensor(tis)[keep], torch.as_tensor(tissue)[keep])
    d = BuildConditiond(num_label_classes=4)({"label": demo["label"], "brain_mask": demo["brain"]})
    assert d["condition"].shape[0] == 4


def test_condition_bad_inputs(demo):
    build = BuildCondition(4)
    with pytest.raises(ConditionError, match="empty"):
        build(demo["label"], torch.zeros_like(demo["brain"]))
    with pytest.raises(ConditionError, match="shape"):
        build(demo["label"], demo["brain"][:, :-1])
    shifted = MetaTensor(demo["brain"], affine=demo["label"].affine.clone())
    shifted.affine[0, 3] += 5.0
    with pytest.raises(ConditionError, match="affine"):
        build(demo["label"], shifted)
    with pytest.raises(ConditionError, match="tissue"):
        build(demo["label"], demo["brain"], torch.ones_like(demo["brain"]))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_deformation_keeps_labels_inside_brain_and_is_seeded(demo, spatial_dims):
    cond = BuildCondition(4)(demo["label"], demo["brain"])
    if spatial_dims == 2:
        cond = cond[..., 10]
    out = RandDeformCondition(spatial_dims).set_random_state(3)(cond)
    again = RandDeformCondition(spatial_dims).set_random_state(3)(cond)
    other = RandDeformCondition(spatial_dims).set_random_state(4)(cond)
    assert torch.equal(out, again) and not torch.equal(out, other)
    assert not torch.equal(out, cond)  # it did move
    brain, tumour = out[0] > 0.5, out[1:].amax(0) > 0.5
    assert tumour.any() and not (tumour & ~brain).any()
    assert set(torch.unique(out).tolist()) <= {0.0, 1.0}
    d = RandDeformConditiond(keys="condition", spatial_dims=spatial_dims).set_random_state(3)({"condition": cond})
    assert torch.equal(d["condition"], out)


def test_tumour_transplant_into_other_case_brain(demo, brats_item, shared_data):
    from monai_singanseg.data import load_image

    other = shared_data / "brats_tcga" / "TCGA-DU-7294" / "TCGA-DU-7294_t1.nii.gz"
    recipient_brain = (load_image(other)[..., 80] != 0).to(torch.uint8)  # one real axial slice
    recipient_label = torch.zeros_like(recipient_brain, dtype=torch.int64)
    donor = demo["label"][..., 10]
    out = TumourTransplant(margin=3).set_random_state(0)(donor, recipient_label, recipient_brain)
    assert out.shape == recipient_brain.shape
    for k in (1, 2, 3):  # every class moved, voxel for voxel
        assert int((out == k).sum()) == int((donor == k).sum())
    from scipy import ndimage

    inner = ndimage.binary_erosion(recipient_brain[0].numpy() > 0, iterations=3)
    assert inner[out[0].numpy() > 0].all()  # inside the brain, away from its border
    d = TumourTransplantd(margin=3).set_random_state(0)(
        {"label": recipient_label, "brain_mask": recipient_brain, "donor_label": donor}
    )
    assert torch.equal(d["label"], out)
    with pytest.raises(ConditionError, match="no tumour"):
        TumourTransplant()(torch.zeros_like(donor), recipient_label, recipient_brain)


def test_rand3delastic_variant_keeps_labels_inside_brain(demo):
    cond = BuildCondition(4)(demo["label"], demo["brain"])[
        :, ::2, ::2, :
    ]  # MONAI's Rand3DElastic is slow: keep it small
    out = RandDeformCondition(3, elastic="gaussian").set_random_state(0)(cond)
    assert out.shape == cond.shape and not torch.equal(out, cond)
    assert not ((out[1:].amax(0) > 0.5) & (out[0] < 0.5)).any()
