"""The SPADE generator: the network, its training through the same trainer as the U-Net, appearance codes, rendering
many contrasts of one label map, and the errors of models and codes that do not fit."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import run_cli

from monai_singanseg.data import demo_case
from monai_singanseg.engines.pix2pix import Pix2PixSettings, resume_settings, train_pix2pix
from monai_singanseg.engines.pix2pix.losses import critic_loss, generator_adversarial_loss
from monai_singanseg.inferers import Pix2PixRender, generator_from_config
from monai_singanseg.io import load_model_file
from monai_singanseg.metrics import diversity, fine_detail_ratio, fine_detail_share
from monai_singanseg.networks.spade import (
    SPADE,
    NoiseInjection,
    SPADEGenerator,
    kl_divergence,
    resize_label,
    spade_widths,
)
from monai_singanseg.synthesis import pix2pix_training_slices

TINY = {"size": 32, "batch_size": 8, "generator_channels": 8, "critic_channels": 8, "seed": 3}
DEMO_DIR = Path(demo_case()["label"]).parent
DEMO_LABEL = Path(demo_case()["label"])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_spade_generator_shapes_and_the_label_reaches_every_scale(spatial_dims):
    torch.manual_seed(0)
    size = 16
    net = SPADEGenerator(spatial_dims, 5, 2, size=size, channels=4, max_channels=16, style_channels=3)
    cond = torch.zeros(2, 5, *(size,) * spatial_dims)
    cond[:, 0] = 1
    out = net.eval()(cond, torch.zeros(1, 3))
    assert out.shape == (2, 2, *(size,) * spatial_dims) and out.abs().max() <= 1
    # one pixel of the label changes the output around it: the label is injected at the finest scale too
    moved = cond.clone()
    moved[(0, 1, *(size // 2,) * spatial_dims)] = 1
    diff = (net(moved, torch.zeros(1, 3)) - out).abs()[0].sum(0)
    assert diff[(size // 2,) * spatial_dims] > 0
    # the appearance code changes the render; the same code renders the same image
    assert not torch.allclose(net(cond, torch.ones(1, 3)), out)
    assert torch.equal(net(cond, torch.zeros(1, 3)), out)
    state = torch.get_rng_state()
    assert torch.equal(net(cond), out)  # no code: the mean appearance, and no random number drawn
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ValueError, match="appearance code of length 4.*3 values"):
        net(cond, torch.zeros(1, 4))


def test_a_thin_structure_is_a_small_share_of_a_coarse_pixel_never_a_whole_sampled_column():
    """Nearest sampling 32 -> 4 px reads columns 0, 8, 16, 24: a one-pixel line at column 16 (the falx) became a
    full-strength column 8 pixels wide at that scale, drawn as a streak. Area shares keep it 1/8 strong."""
    label = torch.zeros(1, 1, 32, 32)
    label[..., 16] = 1
    coarse = resize_label(label, (4, 4))
    assert float(coarse.max()) == pytest.approx(1 / 8) and float(coarse.mean()) == pytest.approx(float(label.mean()))
    assert resize_label(label, (32, 32)) is label


def test_spade_modulation_widths_and_kl():
    layer = SPADE(2, channels=3, label_channels=2, hidden=4)
    x = torch.randn(1, 3, 8, 8)
    label = torch.zeros(1, 2, 4, 4)  # resized to the feature map
    assert layer(x, label).shape == x.shape
    assert spade_widths(128, 32, 256) == [256, 256, 256, 128, 64, 32]
    with pytest.raises(ValueError, match="power of two"):
        spade_widths(48, 32, 256)
    assert float(kl_divergence(torch.zeros(4, 3), torch.zeros(4, 3))) == 0.0
    assert float(kl_divergence(torch.ones(4, 3), torch.zeros(4, 3))) == pytest.approx(1.5)
    without = SPADEGenerator(2, 2, 1, size=8, channels=2, max_channels=4)
    with pytest.raises(ValueError, match="no appearance code"):
        without(torch.zeros(1, 2, 8, 8), torch.zeros(1, 4))


def test_noise_inputs_vary_the_render_under_their_seed_and_are_off_in_eval_without_a_source():
    torch.manual_seed(0)
    net = SPADEGenerator(2, 3, 1, size=16, channels=4, max_channels=8, noise=True)
    assert sum(isinstance(m, NoiseInjection) for m in net.modules()) == 2 * len(net.blocks)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, NoiseInjection):
                m.strength.fill_(0.5)  # trained strengths (they start at zero)
    cond = torch.zeros(2, 3, 16, 16)
    cond[:, 0] = 1
    net.eval()
    state = torch.get_rng_state()
    mean = net(cond)
    assert torch.equal(net(cond), mean) and torch.equal(torch.get_rng_state(), state)  # no source: no noise
    seeded = net(cond, noise=torch.Generator().manual_seed(1))
    assert torch.equal(net(cond, noise=torch.Generator().manual_seed(1)), seeded)
    assert not torch.allclose(net(cond, noise=torch.Generator().manual_seed(2)), seeded)
    assert not torch.allclose(seeded, mean)
    assert not torch.allclose(seeded[0], seeded[1])  # every sample its own maps
    net.train()
    state = torch.get_rng_state()
    net(cond)
    assert not torch.equal(torch.get_rng_state(), state)  # training: drawn from the global stream (seeded by the run)
    without = SPADEGenerator(2, 3, 1, size=16, channels=4, max_channels=8)
    with pytest.raises(ValueError, match="no noise inputs"):
        without(cond, noise=torch.Generator())
    with pytest.raises(ValueError, match="--noise.*--architecture spade"):
        Pix2PixSettings(noise=True)


def test_a_spade_model_with_noise_trains_its_strengths_and_renders_new_detail_each_time(tmp_path):
    path = tmp_path / "noise.pt"
    tiny = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    args = ["--architecture", "spade", "--style-channels", "0", "--noise", "--epochs", "1", *tiny, "--quiet"]
    res = run_cli("train-pix2pix", "--data", str(DEMO_DIR), "--out", str(path), *args)
    assert res.returncode == 0, res.stderr
    model = load_model_file(path, expected_kind="pix2pix")
    assert model.config.noise is True
    strengths = [v for k, v in model.state["generator"].items() if k.endswith("strength")]
    assert strengths and all(bool(s.abs().sum() > 0) for s in strengths)  # learnt away from their zero start
    from monai_singanseg.data import load_image
    from monai_singanseg.transforms.intensity import foreground_mask

    item = demo_case()
    label = load_image(item["label"], 3, "label")
    brain = foreground_mask(torch.cat([load_image(p).as_tensor() for p in item["image"]])).to(torch.uint8)
    renderer = Pix2PixRender(path)
    renderer.set_random_state(7)
    first, second = torch.as_tensor(renderer(label, brain)), torch.as_tensor(renderer(label, brain))
    renderer.set_random_state(7)
    assert torch.equal(torch.as_tensor(renderer(label, brain)), first)
    assert not torch.equal(first, second)  # no appearance code: the noise alone makes the difference
    # render --num: every render its own noise, drawn by the pipeline's random step, the same again under the seed
    flairs = []
    for out in (tmp_path / "a", tmp_path / "b"):
        res = run_cli("render", "--model", str(path), "--label", str(DEMO_LABEL), "--num", "2", "--out", str(out))
        assert res.returncode == 0, res.stderr
        flairs.append([np.asarray(nib.load(out / f"TCGA-FG-6692_p2p_{i:03d}_flair.nii.gz").dataobj) for i in (0, 1)])
    assert not np.array_equal(flairs[0][0], flairs[0][1])
    assert all(np.array_equal(a, b) for a, b in zip(*flairs))


def test_hinge_and_bce_losses():
    high, low = [[torch.full((1, 1, 2, 2), 2.0)]], [[torch.full((1, 1, 2, 2), -2.0)]]
    assert float(critic_loss(high, low, "hinge")) == 0.0  # real above 1, generated below -1: nothing to learn
    assert float(critic_loss(low, high, "hinge")) == pytest.approx(3.0)
    assert float(generator_adversarial_loss(high, "hinge")) == -2.0
    assert float(critic_loss(high, low, "bce")) < float(critic_loss(low, high, "bce"))


def test_settings_defaults_follow_the_architecture_and_refuse_codes_for_the_unet():
    unet, spade = Pix2PixSettings(), Pix2PixSettings(architecture="spade")
    assert (unet.gan_loss, unet.l1_weight, unet.style_channels) == ("bce", 100.0, 0)
    assert (spade.gan_loss, spade.l1_weight, spade.style_channels) == ("hinge", 0.0, 16)
    assert Pix2PixSettings(architecture="spade", l1_weight=5.0, style_channels=0).l1_weight == 5.0
    with pytest.raises(ValueError, match="--architecture spade"):
        Pix2PixSettings(style_channels=8)
    with pytest.raises(ValueError, match="architecture.*unet.*spade"):
        Pix2PixSettings(architecture="resnet")


@pytest.fixture(scope="module")
def spade_model(tmp_path_factory):
    settings = Pix2PixSettings(epochs=2, architecture="spade", style_channels=4, **TINY)
    path = tmp_path_factory.mktemp("spade") / "spade.pt"
    data = pix2pix_training_slices([demo_case()], settings, progress=False)
    result = train_pix2pix(data, path, settings, progress=False)
    return path, result, data


def test_spade_trains_resumes_exactly_and_records_its_architecture(spade_model, tmp_path):
    path, result, data = spade_model
    assert result["epochs_done"] == 2
    assert all(np.isfinite(h["kl"]) and h["kl"] > 0 for h in result["history"])  # the encoder is trained
    model = load_model_file(path, expected_kind="pix2pix")
    assert (model.config.architecture, model.config.style_channels) == ("spade", 4)
    assert isinstance(generator_from_config(model.config), SPADEGenerator)
    half = tmp_path / "half.pt"
    settings = Pix2PixSettings(epochs=1, architecture="spade", style_channels=4, **TINY)
    train_pix2pix(data, half, settings, progress=False)
    resumed = resume_settings(half, Pix2PixSettings(epochs=2, **TINY))
    assert (resumed.architecture, resumed.gan_loss, resumed.style_channels) == ("spade", "hinge", 4)
    train_pix2pix(data, half, resumed, resume=True, progress=False)
    state, reference = load_model_file(half).state["generator"], model.state["generator"]
    assert all(torch.equal(state[k], reference[k]) for k in reference)


def test_spade_renders_many_contrasts_of_one_label_and_repeats_under_a_seed(spade_model):
    path, _, _ = spade_model
    renderer = Pix2PixRender(path)
    item = demo_case()
    from monai_singanseg.data import load_image
    from monai_singanseg.transforms.intensity import foreground_mask

    label = load_image(item["label"], 3, "label")
    brain = foreground_mask(torch.cat([load_image(p).as_tensor() for p in item["image"]])).to(torch.uint8)
    renderer.set_random_state(5)
    first, second = renderer(label, brain), renderer(label, brain)
    renderer.set_random_state(5)
    again = renderer(label, brain)
    assert torch.equal(torch.as_tensor(first), torch.as_tensor(again))
    assert not torch.equal(torch.as_tensor(first), torch.as_tensor(second))
    z = int(torch.nonzero(torch.as_tensor(label)[0]).float().mean(0)[2])
    slices = torch.stack([torch.as_tensor(r)[:, :, :, z].float() for r in (first, second)])
    spread = (slices - slices.mean()) / slices.std()
    assert diversity(spread.tanh()) > 0  # the project's diversity metric over renders of one label
    with pytest.raises(ValueError, match="length 3.*4 values"):
        renderer(label, brain, appearance=torch.zeros(3))


def test_render_num_gives_distinct_renders_and_refuses_a_model_without_codes(spade_model, tmp_path):
    path, _, _ = spade_model
    out = tmp_path / "renders"
    res = run_cli("render", "--model", str(path), "--label", str(DEMO_LABEL), "--num", "3", "--out", str(out))
    assert res.returncode == 0, res.stderr
    flairs = [np.asarray(nib.load(out / f"TCGA-FG-6692_p2p_{i:03d}_flair.nii.gz").dataobj) for i in range(3)]
    assert not np.array_equal(flairs[0], flairs[1]) and not np.array_equal(flairs[1], flairs[2])
    labels = [np.asarray(nib.load(out / f"TCGA-FG-6692_p2p_{i:03d}_seg.nii.gz").dataobj) for i in range(3)]
    assert all(np.array_equal(labels[0], lab) for lab in labels)  # one label map, many appearances
    shipped = Path(__file__).resolve().parents[1] / "bundles" / "pix2pix" / "models" / "pix2pix.pt"
    refused = tmp_path / "refused"
    res = run_cli("render", "--model", str(shipped), "--label", str(DEMO_LABEL), "--num", "2", "--out", str(refused))
    assert res.returncode == 1 and "without an appearance code" in res.stderr and "--deform" in res.stderr
    assert not refused.exists()
    res = run_cli(
        "render", "--model", str(path), "--label", str(DEMO_LABEL), "--num", "2", "--deform", "2", "--out", str(refused)
    )
    assert res.returncode == 1 and "one at a time" in res.stderr and not refused.exists()


def test_a_model_of_an_unknown_architecture_is_a_clear_error(spade_model, tmp_path):
    path, _, _ = spade_model
    blob = torch.load(path, weights_only=False)
    blob["config"]["architecture"] = "transformer"
    odd = tmp_path / "odd.pt"
    torch.save(blob, odd)
    res = run_cli("render", "--model", str(odd), "--label", str(DEMO_LABEL), "--out", str(tmp_path / "o"))
    assert res.returncode == 1 and "transformer" in res.stderr and "unet, spade" in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()


def test_fine_detail_share_sees_blur():
    torch.manual_seed(0)
    sharp = torch.rand(3, 2, 32, 32)
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1)
    masks = torch.zeros(3, 32, 32)
    masks[:, 4:28, 4:28] = 1
    assert (fine_detail_share(sharp, masks) > 0.5).all()
    ratio = fine_detail_ratio(blurred, sharp, masks, masks)
    assert ratio.shape == (2,) and (ratio < 0.6).all()  # a 3x3 box blur keeps about 0.45 of it
    assert torch.allclose(fine_detail_ratio(sharp, sharp, masks, masks), torch.ones(2))
    assert float(fine_detail_share(torch.ones(1, 1, 8, 8))[0]) == 0.0  # no power at all
    with pytest.raises(ValueError, match="masks must have shape"):
        fine_detail_share(sharp, masks[:2])
    with pytest.raises(ValueError, match="cutoff"):
        fine_detail_share(sharp, cutoff=0.9)


def test_resume_refuses_options_that_differ_from_the_run(spade_model, tmp_path):
    """``--resume`` continues a run with its own settings: an option given with another value is an error naming it,
    and the checkpoint is left as it was; the same options (or none) resume."""
    path, _, _ = spade_model
    copy = tmp_path / "run.pt"
    copy.write_bytes(path.read_bytes())
    res = run_cli(
        "train-pix2pix", "--data", str(DEMO_DIR), "--out", str(copy), "--resume", "--epochs", "3",
        "--style-channels", "8", "--size", "64", "--quiet",
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "--style-channels 8 (the run: 4)" in res.stderr and "--size 64 (the run: 32)" in res.stderr
    assert copy.read_bytes() == path.read_bytes()
    res = run_cli("train-pix2pix", "--data", str(DEMO_DIR), "--out", str(copy), "--resume", "--epochs", "3", "--quiet")
    assert res.returncode == 0, res.stderr
    assert load_model_file(copy).config.epochs_done == 3


def test_a_perceptual_term_from_a_vgg19_file_trains_and_is_recorded(tmp_path):
    """--vgg-weights turns on pix2pixHD's perceptual term (weight 10 by default): it is reported, changes the training
    from a run without it, and the model file records it (a resumed run loads the file again)."""
    from monai_singanseg.engines.pix2pix import PerceptualLoss
    from monai_singanseg.networks import VGG19Features, load_vgg19_features

    torch.manual_seed(0)
    vgg = tmp_path / "vgg19_features.pt"
    torch.save(VGG19Features().state_dict(), vgg)
    loss = PerceptualLoss(load_vgg19_features(vgg))
    real = torch.rand(2, 4, 32, 32) * 2 - 1
    assert loss(real, real).item() == 0.0 and loss(real.flip(-1), real).item() > 0.0
    data = pix2pix_training_slices([demo_case()], Pix2PixSettings(**TINY), progress=False)
    runs = {}
    for name, extra in (("plain", {}), ("perceptual", {"vgg_weights": str(vgg)})):
        settings = Pix2PixSettings(epochs=1, architecture="spade", style_channels=0, **TINY, **extra)
        runs[name] = train_pix2pix(data, tmp_path / f"{name}.pt", settings, progress=False)["history"][-1]
    assert runs["plain"]["perceptual"] == 0.0 and runs["perceptual"]["perceptual"] > 0.0
    assert runs["plain"]["loss_g"] != runs["perceptual"]["loss_g"]
    recorded = resume_settings(tmp_path / "perceptual.pt")
    assert (recorded.vgg_weights, recorded.perceptual_weight) == (str(vgg), 10.0)
    assert resume_settings(tmp_path / "plain.pt").perceptual_weight == 0.0


def test_a_perceptual_term_without_a_vgg19_file_is_refused_before_any_work(spade_model, tmp_path):
    """A weight without a file, a missing file and a file that is not VGG-19 weights (a pix2pix model file): each a
    clear error naming the file and what was expected, nothing written."""
    path, _, _ = spade_model
    cases = [
        (["--perceptual-weight", "5"], "needs a VGG-19 weights file"),
        (["--vgg-weights", str(tmp_path / "none.pt")], "VGG-19 weights file not found"),
        (["--vgg-weights", str(path)], "expected a state dict"),
    ]
    for extra, message in cases:
        out = tmp_path / "p2p.pt"
        res = run_cli("train-pix2pix", "--data", str(DEMO_DIR), "--out", str(out), "--size", "32", *extra, "--quiet")
        assert res.returncode == 1 and message in res.stderr, (extra, res.stderr[-800:])
        assert not out.exists()
