"""SinGAN-Seg networks and pyramid geometry: shapes and channel layouts in 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from monai_singanseg.engines.singanseg import (
    SinGANSegSettings,
    StackedModules,
    gradient_penalty,
    label_area_loss,
    pyramid_sizes,
    real_pyramid,
)
from monai_singanseg.networks import SinGANCritic, SinGANGenerator, SinGANPyramid, resize_to, scale_features
from monai_singanseg.transforms.gan import ToGANTensor


@pytest.mark.parametrize("spatial_dims,channels,shape", [(2, 7, (25, 31)), (2, 4, (16, 16)), (3, 7, (9, 10, 11))])
def test_generator_and_critic_shapes(spatial_dims, channels, shape):
    gen = SinGANGenerator(spatial_dims, channels, features=8).eval()
    critic = SinGANCritic(spatial_dims, channels, features=8)
    z = torch.randn(2, channels, *shape)
    prev = torch.rand(2, channels, *shape) * 2 - 1
    out = gen(z, prev)
    assert out.shape == (2, channels, *shape)
    # residual: the generator adds a tanh-bounded correction to the upsampled previous output
    assert (out - prev).abs().max() <= 1.0
    assert critic(out).shape == (2, 1, *shape)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_with_pad_as_background_the_input_padding_reads_as_the_background(spatial_dims):
    """A background-only input (-1 in every channel): with ``pad_as_background`` the first convolution block of the
    generator and of the critic gives the same features at the border as inside, as for an image that goes on beyond
    its frame; without it the padding is a 0 (a tumour probability of 0.5) beside the -1 and the border differs."""
    torch.manual_seed(0)
    background = -torch.ones(1, 3, *(12,) * spatial_dims)
    for flag in (True, False):
        for net in (SinGANGenerator, SinGANCritic):
            module = net(spatial_dims, 3, features=8, pad_as_background=flag).eval()
            with torch.no_grad():
                features = module.body[0](background + module.input_shift).flatten(2)
            spread = float((features.amax(-1) - features.amin(-1)).amax())  # over space, per feature map
            assert (spread == 0.0) if flag else (spread > 0.1), (net.__name__, flag, spread)
    pyramid = SinGANPyramid(spatial_dims, 3, [8, 8], pad_as_background=True)
    assert all(g.input_shift == 1.0 for g in pyramid.generators)
    assert pyramid.add_scale(8).input_shift == 1.0
    assert SinGANPyramid(spatial_dims, 3, [8]).generators[0].input_shift == 0.0


def test_generator_is_conv_bn_lrelu_stack_with_tanh_head():
    gen = SinGANGenerator(2, 7, features=32, num_layers=5)
    convs = [m for m in gen.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in gen.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    acts = [m for m in gen.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(convs) == 5 and len(norms) == 4 and len(acts) == 4
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert all(a.negative_slope == pytest.approx(0.2) for a in acts)
    assert isinstance(list(gen.modules())[-1], torch.nn.Tanh)


def test_feature_width_doubles_every_four_scales_and_caps():
    assert [scale_features(k) for k in range(13)] == [32] * 4 + [64] * 4 + [128] * 5


def test_pyramid_runs_coarse_to_fine_and_new_scale_starts_from_last():
    sizes = [[12, 12], [17, 17], [25, 25]]
    pyr = SinGANPyramid(2, 7, [8, 8])
    pyr.add_scale(8)
    assert pyr.num_scales == 3
    torch.testing.assert_close(pyr.generators[2].state_dict(), pyr.generators[1].state_dict())
    pyr.eval()
    noise = [torch.randn(3, 7, *s) for s in sizes]
    assert pyr(noise, [1.0, 0.1, 0.1], sizes).shape == (3, 7, 25, 25)
    mid = pyr(noise, [1.0, 0.1, 0.1], sizes, last_scale=1)
    assert mid.shape == (3, 7, 17, 17)
    torch.testing.assert_close(
        pyr(noise, [1.0, 0.1, 0.1], sizes, start=mid, first_scale=2), pyr(noise, [1.0, 0.1, 0.1], sizes)
    )


def test_pyramid_3d():
    sizes = [[6, 6, 6], [9, 9, 9]]
    pyr = SinGANPyramid(3, 5, [4, 4]).eval()
    assert pyr([torch.randn(1, 5, *s) for s in sizes], [1.0, 0.1], sizes).shape == (1, 5, 9, 9, 9)


@pytest.mark.parametrize("schedule", ["fast", "singan"])
def test_pyramid_sizes(schedule):
    settings = SinGANSegSettings(schedule=schedule)
    sizes = pyramid_sizes([128, 100], settings)
    assert sizes[-1] == [128, 100]
    assert min(sizes[0]) == (16 if schedule == "fast" else 25)
    assert all(a[0] < b[0] for a, b in zip(sizes, sizes[1:]))
    if schedule == "fast":
        assert len(sizes) == settings.num_stages
        steps = [b[0] / a[0] for a, b in zip(sizes, sizes[1:])]
        assert steps[0] == min(steps) < max(steps)  # stages spaced densest at low resolution
    else:
        assert len(sizes) > SinGANSegSettings().num_stages
        assert all(b[0] / a[0] < 1.45 for a, b in zip(sizes, sizes[1:]))


def test_too_small_image_for_pyramid():
    with pytest.raises(ValueError, match="too small"):
        pyramid_sizes([12, 64], SinGANSegSettings())


def test_gan_tensor_layout_and_soft_labels_at_coarse_scales():
    image = torch.rand(4, 32, 32) * 2 - 1
    label = torch.zeros(1, 32, 32, dtype=torch.int64)
    label[0, 8:20, 9:21] = 2
    label[0, 12:15, 12:15] = 3
    gan = ToGANTensor(4)(image, label)
    assert gan.shape == (7, 32, 32)
    torch.testing.assert_close(gan[:4], image)
    assert set(gan[4:].unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(gan[5] > 0, label[0] == 2) and torch.equal(gan[6] > 0, label[0] == 3) and not (gan[4] > 0).any()
    coarse = real_pyramid(gan[None], [[13, 13], [32, 32]], 4)
    assert coarse[0].shape == (1, 7, 13, 13)
    soft = coarse[0][0, 5]
    assert ((soft > -0.99) & (soft < 0.99)).any()  # label edges kept soft, not snapped
    torch.testing.assert_close(coarse[1][0], gan)


def test_gan_tensor_bad_input():
    with pytest.raises(ValueError, match="differ"):
        ToGANTensor(4)(torch.zeros(4, 32, 32), torch.zeros(1, 30, 32, dtype=torch.int64))
    bad = torch.zeros(4, 32, 32)
    bad[0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ToGANTensor(4)(bad, torch.zeros(1, 32, 32, dtype=torch.int64))


def test_resize_antialiased_shrink():
    x = torch.zeros(1, 1, 64, 64)
    x[..., ::2, :] = 1.0  # stripes alias without anti-aliasing
    small = resize_to(x, [16, 16])
    assert small.std() < 0.05 and small.mean() == pytest.approx(0.5, abs=0.05)


def test_gradient_penalty_is_wgan_gp_per_location_and_per_model():
    # a linear critic per location: its gradient is the weight vector, so the penalty is (||w|| - 1)^2 exactly
    w = torch.tensor([3.0, 4.0]).view(1, 1, 2, 1, 1)  # ||w|| = 5
    scale = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1, 1)  # model 1's critic is twice model 0's: ||w|| = 10

    def critic(x):
        return (x * w * scale).sum(2, keepdim=True)

    real, fake = torch.rand(2, 3, 2, 4, 4), torch.rand(2, 3, 2, 4, 4)
    alpha = torch.rand(2, 3, 1, 1, 1)
    gp = gradient_penalty(critic, real, fake, alpha)
    assert gp.shape == (2,)
    assert torch.allclose(gp, torch.tensor([16.0, 81.0]))


def test_gradient_penalty_reaches_the_critic_parameters():
    critic = SinGANCritic(2, 3, features=4)
    stacked = StackedModules([critic], trainable=True)
    gp = gradient_penalty(stacked, torch.rand(1, 1, 3, 8, 8), torch.rand(1, 1, 3, 8, 8), torch.rand(1, 1, 1, 1, 1))
    assert gp.shape == (1,) and gp.item() >= 0
    gp.sum().backward()
    # every convolution's weights shape the input gradient (biases do not, so they get none)
    kernels = [p for p in critic.parameters() if p.ndim >= 3]
    assert kernels and all(p.grad is not None and p.grad.abs().sum() > 0 for p in kernels)


def test_label_area_loss_counts_thresholded_tumour_only():
    real = -torch.ones(1, 3, 16, 16)
    real[:, 1, 4:8, 4:8] = 1.0
    assert label_area_loss(real, real).item() < 1e-3
    faint = real.clone()
    faint[:, 1] = -0.6  # diffuse label values below the threshold are no tumour
    assert label_area_loss(faint, real).item() > 0.9
    moved = torch.roll(real, shifts=(5, 5), dims=(2, 3)).requires_grad_(True)
    assert label_area_loss(moved, real).item() < 1e-3  # area, not position
    none = (-torch.ones(2, 3, 16, 16)).requires_grad_(True)
    loss = label_area_loss(none, real)
    loss.backward()
    assert loss.item() > 0.99 and none.grad.abs().sum() > 0
