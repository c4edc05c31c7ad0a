"""Style transfer (issue 8): the VGG-19 loader, histogram matching and Gatys optimisation on real BraTS slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_singanseg.data import load_case
from monai_singanseg.networks import RandomFeatures, VGG19Features, load_vgg19_features
from monai_singanseg.transforms import (
    ExtractTumourSlicesd,
    HistogramMatch,
    HistogramMatchd,
    IntensityToTanhRange,
    SquareForegroundCropd,
    StyleTransfer,
    StyleTransferd,
    style_distance,
    tanh_foreground,
)

SIZE = 64


def _tumour_slice(root: Path, name: str) -> tuple[MetaTensor, MetaTensor]:
    """The slice of a real BraTS case with most tumour, brain cropped to 64x64: (image in [-1, 1], class-index
    label)."""
    case_dir = root / "brats_tcga" / name
    case = load_case(
        {
            "image": [str(case_dir / f"{name}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")],
            "label": str(case_dir / f"{name}_seg.nii.gz"),
            "name": name,
        }
    )
    item = SquareForegroundCropd(spatial_size=SIZE)(ExtractTumourSlicesd(num_slices=1)(case)[0])
    return IntensityToTanhRange()(item["image"]), item["label"]


@pytest.fixture(scope="module")
def content(shared_data):
    return _tumour_slice(shared_data, "TCGA-FG-6692")


@pytest.fixture(scope="module")
def style(shared_data):
    return _tumour_slice(shared_data, "TCGA-DU-7294")[0]


@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory):
    """A random-weight VGG19Features and its weights saved in torchvision's full-model and features-only layouts."""
    torch.manual_seed(0)
    net = VGG19Features().eval()
    folder = tmp_path_factory.mktemp("vgg")
    full = {f"features.{k}": v for k, v in net.state_dict().items()}
    full.update(
        {"classifier.0.weight": torch.zeros(3, 2), "classifier.0.bias": torch.zeros(3)}
    )  # ignored by the loader
    torch.save(full, folder / "vgg19_full.pth")
    torch.save(net.state_dict(), folder / "vgg19_features.pt")
    return net, folder


def test_vgg19_loader_reads_both_layouts_and_gives_identical_outputs(vgg_files):
    net, folder = vgg_files
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    layers = ["relu1_1", "conv3_1", "relu5_1"]
    expected = net.activations(x, layers)
    assert [t.shape[1] for t in expected.values()] == [64, 256, 512]
    for name in ("vgg19_full.pth", "vgg19_features.pt"):
        loaded = load_vgg19_features(folder / name)
        assert not any(p.requires_grad for p in loaded.parameters())
        got = loaded.activations(x, layers)
        for layer in layers:
            assert torch.equal(got[layer], expected[layer]), (name, layer)
        assert torch.equal(loaded(x), net(x))  # forward is torchvision's: pool5 features


def test_vgg19_loader_errors_name_the_file_and_the_problem(vgg_files, tmp_path):
    net, _ = vgg_files
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(FileNotFoundError, match=r"nowhere.*vgg19\.pth.*torchvision\.models\.vgg19"):
        load_vgg19_features(missing)
    state = dict(net.state_dict())
    state["10.weight"] = torch.zeros(256, 128, 5, 5)
    torch.save(state, tmp_path / "wrong_shape.pt")
    with pytest.raises(ValueError, match=r"wrong_shape\.pt.*'10\.weight'.*\(256, 128, 5, 5\).*\(256, 128, 3, 3\)"):
        load_vgg19_features(tmp_path / "wrong_shape.pt")
    torch.save({"0.weight": state["0.weight"]}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"partial\.pt.*missing"):
        load_vgg19_features(tmp_path / "partial.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt.*state dict"):
        load_vgg19_features(tmp_path / "list.pt")


def test_vgg19_method_needs_a_weights_file_before_any_work(vgg_files, content, style, tmp_path):
    with pytest.raises(ValueError, match="weights_path"):
        StyleTransfer(style, method="vgg19")
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        StyleTransfer(style, method="vgg19", weights_path=tmp_path / "absent.pth")
    image = content[0]
    styled = StyleTransfer(style, method="vgg19", weights_path=vgg_files[1] / "vgg19_full.pth", steps=2)(image)
    assert styled.shape == image.shape and not torch.equal(styled, image)


def test_random_feature_style_transfer_moves_towards_the_style_and_keeps_label_and_background(content, style):
    image, label = content
    judge = RandomFeatures(seed=99)  # other weights than the transfer's: not the quantity that was optimised
    before = style_distance(image, style, judge)
    rng_state = torch.get_rng_state()
    transfer = StyleTransferd(["image"], style_key="style", method="random", steps=30, lr=0.02)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the random network's weights leave the global RNG alone
    out = transfer({"image": image, "label": label, "style": style})
    styled = out["image"]
    assert isinstance(styled, MetaTensor) and torch.equal(styled.affine, image.affine)
    assert styled.shape == image.shape and not torch.equal(styled, image)
    assert style_distance(styled, style, judge) < 0.1 * before
    assert out["label"] is label and torch.equal(out["label"], content[1])
    assert out["style"] is style
    background = ~tanh_foreground(image)[0]
    assert background.any() and bool((styled[:, background] == image[:, background]).all())
    assert bool((styled[:, background] == -1.0).all())  # a real slice's background is exactly -1
    assert float(styled.min()) >= -1.0 and float(styled.max()) <= 1.0
    again = transfer({"image": image, "label": label, "style": style})["image"]
    assert torch.equal(again, styled)  # deterministic


def test_histogram_matching_takes_the_reference_distribution(content, style):
    image, label = content
    matched = HistogramMatch(style)(image)
    fg, ref_fg = tanh_foreground(image)[0], tanh_foreground(style)[0]
    q = torch.linspace(0.02, 0.98, 25, dtype=torch.float64)
    for c in range(image.shape[0]):
        got = torch.quantile(matched[c][fg].double(), q)
        want = torch.quantile(style[c][ref_fg].double(), q)
        before = torch.quantile(image[c][fg].double(), q)
        assert float((got - want).abs().max()) < 0.02, c
        assert float((before - want).abs().max()) > 0.05, c  # the two cases really differ
        order = torch.argsort(image[c][fg], stable=True)  # a monotone map: the order of intensities is kept
        assert bool((matched[c][fg][order].diff() >= 0).all())
    assert torch.equal(matched[:, ~fg], image[:, ~fg])
    label_bytes = np.asarray(label).tobytes()
    out = HistogramMatchd("image", reference_key="style")({"image": image, "label": label, "style": style})
    assert torch.equal(out["image"], matched) and np.asarray(out["label"]).tobytes() == label_bytes


def test_combined_method_and_custom_extractor_and_bad_input(content, style):
    image = content[0]
    combined = StyleTransfer(style, method="histogram+random", steps=3)(image.numpy())
    assert isinstance(combined, np.ndarray) and combined.shape == image.shape
    custom = RandomFeatures(channels=(8,), num_scales=2, seed=3)
    styled = StyleTransfer(style, method=custom, steps=3)(image)
    assert not torch.equal(styled, image)
    with pytest.raises(ValueError, match="unknown style method"):
        StyleTransfer(style, method="picasso")
    with pytest.raises(ValueError, match="4 channels"):
        StyleTransfer(style[:2], method="histogram")(image)
    with pytest.raises(ValueError, match="no style image"):
        StyleTransfer(method="histogram")(image)
