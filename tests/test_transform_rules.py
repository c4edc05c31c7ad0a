"""MONAI's transform rules, kept: per-item invertibility, ``prob``/``randomize`` of random transforms, and
numpy / torch inputs (MONAI's ``TEST_NDARRAYS``) for every public array transform of intensity, labels,
condition, slices and style, on the embedded real demo case."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, InvertibleTransform
from monai.utils import TransformBackends, convert_to_numpy

from monai_singanseg.transforms.condition import (
    BuildCondition,
    RandDeformCondition,
    RandDeformConditiond,
    SplitCondition,
    TissueClasses,
    TumourTransplant,
    TumourTransplantd,
)
from monai_singanseg.transforms.intensity import (
    ForegroundMask,
    IntensityFromTanhRange,
    IntensityToTanhRange,
    IntensityToTanhRanged,
    foreground_mask,
)
from monai_singanseg.transforms.labels import (
    BinarizeMask,
    BinarizeMaskd,
    IndexToLabel,
    IndexToLabeld,
    IndexToOneHot,
    IndexToOneHotd,
    LabelToIndex,
    LabelToIndexd,
    OneHotToIndex,
    OneHotToIndexd,
)
from monai_singanseg.transforms.slices import ExtractSlice, SlicesToVolume
from monai_singanseg.transforms.style import HistogramMatch, StyleTransfer, tanh_foreground

#: MONAI's tests/utils.py ``TEST_NDARRAYS``, plus CUDA where there is one
TEST_NDARRAYS: tuple[Callable, ...] = (np.array, torch.as_tensor)
if torch.cuda.is_available():
    TEST_NDARRAYS = TEST_NDARRAYS + (lambda x: torch.as_tensor(x, device="cuda"),)
SLICE = 10  # an axial slice of the demo case with all three tumour classes


@pytest.fixture(scope="module")
def demo(demo):
    """The demo case (conftest) with its condition."""
    return {**demo, "condition": BuildCondition(4)(demo["label"], demo["brain"])}


def _plain(x):
    """A MetaTensor/tensor/array as a CPU numpy array (for comparing values)."""
    return convert_to_numpy(x.as_tensor() if isinstance(x, MetaTensor) else x)


# ---------------------------------------------------------------------------------------------------------------
# 1. each item is inverted with its own statistics


def test_intensity_inverse_uses_each_items_own_statistics(demo):
    img = demo["image"]
    brain = demo["brain"]
    other = MetaTensor((img.as_tensor() * 3 + 250) * brain, meta=dict(img.meta))  # another range, same dtype
    t = IntensityToTanhRanged("image", mask_key="brain")
    first = t({"image": img, "brain": brain})
    second = t({"image": other, "brain": brain})
    assert first["image"].meta["intensity_stats"]["high"] != second["image"].meta["intensity_stats"]["high"]
    for scaled, source in ((first, img), (second, other)):  # the first item after the instance saw the second
        back = t.inverse(scaled)["image"]
        assert isinstance(back, MetaTensor) and back.dtype == torch.int16
        assert torch.equal(back.as_tensor().to(torch.int32), source.as_tensor().to(torch.int32))
        assert back.applied_operations == []  # the trace entry was consumed


def test_intensity_inverse_of_plain_arrays_uses_their_trace(demo):
    brain = demo["brain"].numpy()
    t = IntensityToTanhRanged("image", mask_key="brain")
    items = [demo["image"].numpy()[..., SLICE], demo["image"].numpy()[..., SLICE] * 0.25 + 10 * brain[..., SLICE]]
    scaled = [t({"image": x, "brain": brain[..., SLICE]}) for x in items]
    fresh = IntensityToTanhRanged("image", mask_key="brain")  # e.g. built again from the same config
    for x, s, inverter in zip(items, scaled, (t, fresh)):
        assert isinstance(s["image"], np.ndarray) and "image_transforms" in s  # no metadata: MONAI's dict trace
        back = inverter.inverse(s)["image"]
        assert s["image_transforms"] == []
        assert isinstance(back, np.ndarray) and back.dtype == x.dtype
        np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-5 * float(np.abs(x).max()))


# ---------------------------------------------------------------------------------------------------------------
# 2. the dictionary twins are InvertibleTransforms: Compose.inverse undoes them


def test_compose_inverse_restores_image_and_label(demo):
    values = IndexToLabel((0, 1, 2, 4))(demo["label"])
    pipeline = Compose(
        [
            IntensityToTanhRanged("image", mask_key="brain"),
            LabelToIndexd("label", (0, 1, 2, 4)),
            IndexToOneHotd("label", num_classes=4),
        ]
    )
    assert all(isinstance(t, InvertibleTransform) for t in pipeline.transforms)
    out = pipeline({"image": demo["image"], "label": values, "brain": demo["brain"]})
    assert out["label"].shape[0] == 3 and float(out["image"].min()) == -1.0 and float(out["image"].max()) == 1.0
    back = pipeline.inverse(out)
    assert back["image"].dtype == torch.int16
    assert torch.equal(back["image"].as_tensor().to(torch.int32), demo["image"].as_tensor().to(torch.int32))
    assert torch.equal(back["label"].as_tensor().to(torch.int64), values.as_tensor().to(torch.int64))
    assert torch.equal(back["label"].affine, demo["label"].affine)
    assert back["image"].applied_operations == [] and back["label"].applied_operations == []


def test_compose_inverse_of_index_to_label_and_plain_tensors(demo):
    label = demo["label"].as_tensor()  # no metadata: the trace goes to d["label_transforms"]
    pipeline = Compose(
        [IndexToLabeld("label", (0, 1, 2, 4)), LabelToIndexd("label", (0, 1, 2, 4)), IndexToLabeld("label")]
    )
    out = pipeline({"label": label})
    assert len(out["label_transforms"]) == 3
    back = pipeline.inverse(out)
    assert torch.equal(back["label"].to(torch.int64), label.to(torch.int64)) and back["label_transforms"] == []


def test_lossy_label_twins_are_not_invertible():
    assert not isinstance(OneHotToIndexd("label"), InvertibleTransform)
    assert not isinstance(BinarizeMaskd("label"), InvertibleTransform)


# ---------------------------------------------------------------------------------------------------------------
# 3. random transforms: prob, randomize(), one draw for every key, unchanged random streams


def _fingerprint(x) -> tuple[list[float], float]:
    t = torch.as_tensor(_plain(x)).double()
    weights = torch.arange(t.numel(), dtype=torch.float64).reshape(t.shape) % 9973
    return t.sum(dim=tuple(range(1, t.ndim))).tolist(), float((t * weights).sum())


def test_seeded_outputs_are_those_of_the_releases_before_prob(demo):
    """Fingerprints of the outputs before ``prob`` existed (the shipped bundles' renders depend on them)."""
    cond = demo["condition"]
    assert _fingerprint(RandDeformCondition(2).set_random_state(3)(cond[..., SLICE])) == (
        [19192.0, 72.0, 620.0, 480.0],
        100244276.0,
    )
    assert _fingerprint(RandDeformCondition(3).set_random_state(3)(cond)) == (
        [309130.0, 1281.0, 10657.0, 5607.0],
        1622143163.0,
    )
    transplant = TumourTransplant(margin=2).set_random_state(3)
    out = transplant(demo["label"][..., SLICE], demo["label"][..., 16], demo["brain"][..., 16])
    assert _fingerprint(out) == ([2434.0], 14043969.0)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_rand_deform_prob_zero_leaves_input_unchanged(demo, spatial_dims):
    cond = demo["condition"][..., SLICE] if spatial_dims == 2 else demo["condition"][:, ::2, ::2]
    assert RandDeformCondition(spatial_dims, prob=0.0).set_random_state(0)(cond) is cond
    d = {"condition": cond}
    assert RandDeformConditiond(spatial_dims=spatial_dims, prob=0.0).set_random_state(0)(d)["condition"] is cond
    # prob in (0, 1): some calls deform, some don't, reproducibly
    t = RandDeformCondition(spatial_dims, prob=0.5).set_random_state(1)
    moved = [not torch.equal(torch.as_tensor(t(cond)), cond) for _ in range(8)]
    assert any(moved) and not all(moved)
    again = RandDeformCondition(spatial_dims, prob=0.5).set_random_state(1)
    assert [not torch.equal(torch.as_tensor(again(cond)), cond) for _ in range(8)] == moved


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_rand_deform_dictionary_draws_once_for_all_keys(demo, spatial_dims):
    cond = demo["condition"][..., SLICE] if spatial_dims == 2 else demo["condition"][:, ::2, ::2]
    t = RandDeformConditiond(("a", "b"), spatial_dims=spatial_dims).set_random_state(7)
    d = t({"a": cond, "b": cond.clone()})
    assert torch.equal(d["a"], d["b"]) and not torch.equal(d["a"], cond)
    # a second call draws a new deformation, again shared
    d2 = t({"a": cond, "b": cond.clone()})
    assert torch.equal(d2["a"], d2["b"]) and not torch.equal(d2["a"], d["a"])
    # one key: the same as the array transform with the same seed
    single = RandDeformConditiond("a", spatial_dims=spatial_dims).set_random_state(7)({"a": cond})["a"]
    assert torch.equal(single, RandDeformCondition(spatial_dims).set_random_state(7)(cond))


def test_rand_deform_randomize_then_apply(demo):
    cond = demo["condition"][..., SLICE]
    t = RandDeformCondition(2).set_random_state(5)
    t.randomize(cond.shape[1:])
    first = t(cond, randomize=False)
    assert torch.equal(t(cond.clone(), randomize=False), first)  # no random number drawn in __call__
    assert torch.equal(first, RandDeformCondition(2).set_random_state(5)(cond))
    with pytest.raises(RuntimeError, match="randomize"):
        t(cond[:, :-1], randomize=False)


def test_tumour_transplant_prob_zero_leaves_label_unchanged(demo):
    donor, rec, brain = demo["label"][..., SLICE], demo["label"][..., 16], demo["brain"][..., 16]
    assert TumourTransplant(margin=2, prob=0.0).set_random_state(0)(donor, rec, brain) is rec
    d = {"label": rec, "brain_mask": brain, "donor_label": donor}
    assert TumourTransplantd(margin=2, prob=0.0).set_random_state(0)(d)["label"] is rec
    out = TumourTransplantd(margin=2).set_random_state(3)(d)["label"]
    assert torch.equal(out, TumourTransplant(margin=2).set_random_state(3)(donor, rec, brain))


# ---------------------------------------------------------------------------------------------------------------
# 4. numpy and torch inputs, outputs of the input's type with equal values


def _cases(demo) -> dict[str, Callable[[Callable], object]]:
    """Name -> function of an array constructor ``p`` that runs one transform on ``p``-made inputs."""
    img = _plain(demo["image"])[..., SLICE]
    label = _plain(demo["label"])[..., SLICE]
    brain = _plain(demo["brain"])[..., SLICE]
    values = np.where(label == 3, 4, label)
    onehot = IndexToOneHot(4)(torch.as_tensor(label)).numpy()
    scaler = IntensityToTanhRange()
    scaled = scaler(img)
    stats = scaler.last_stats
    cond2 = BuildCondition(4)(label, brain)
    cond3 = _plain(demo["condition"])[:, ::4, ::4]
    other = _plain(demo["image"])[..., SLICE + 3]
    ref = IntensityToTanhRange()(other)
    return {
        "ForegroundMask": lambda p: ForegroundMask()(p(img)),
        "foreground_mask": lambda p: foreground_mask(p(img)),
        "IntensityToTanhRange": lambda p: IntensityToTanhRange(0.5, 99.5)(p(img)),
        "IntensityFromTanhRange": lambda p: IntensityFromTanhRange(stats)(p(scaled), mask=p(brain)),
        "LabelToIndex": lambda p: LabelToIndex()(p(values)),
        "IndexToLabel": lambda p: IndexToLabel()(p(label)),
        "IndexToOneHot": lambda p: IndexToOneHot(4)(p(label)),
        "OneHotToIndex": lambda p: OneHotToIndex()(p(onehot)),
        "BinarizeMask": lambda p: BinarizeMask(0.5)(p(brain.astype(np.float32))),
        "TissueClasses": lambda p: TissueClasses(3)(p(img[1:2]), p(brain), p(label > 0)),
        "BuildCondition": lambda p: BuildCondition(4)(p(label), p(brain)),
        "SplitCondition": lambda p: SplitCondition(4)(p(cond2))[0],
        "SplitCondition.brain": lambda p: SplitCondition(4)(p(cond2))[1],
        "RandDeformCondition2D": lambda p: RandDeformCondition(2).set_random_state(0)(p(cond2)),
        "RandDeformCondition3D": lambda p: RandDeformCondition(3).set_random_state(0)(p(cond3)),
        "TumourTransplant": lambda p: TumourTransplant(margin=2).set_random_state(0)(p(label), p(label), p(brain)),
        "ExtractSlice": lambda p: ExtractSlice(axis=2)(p(_plain(demo["image"])), SLICE),
        "tanh_foreground": lambda p: tanh_foreground(p(scaled)),
        "HistogramMatch": lambda p: HistogramMatch(p(ref))(p(scaled)),
        "StyleTransfer": lambda p: StyleTransfer(p(ref), method="histogram+random", steps=2)(p(scaled)),
    }


_NAMES = [
    "ForegroundMask",
    "foreground_mask",
    "IntensityToTanhRange",
    "IntensityFromTanhRange",
    "LabelToIndex",
    "IndexToLabel",
    "IndexToOneHot",
    "OneHotToIndex",
    "BinarizeMask",
    "TissueClasses",
    "BuildCondition",
    "SplitCondition",
    "SplitCondition.brain",
    "RandDeformCondition2D",
    "RandDeformCondition3D",
    "TumourTransplant",
    "ExtractSlice",
    "tanh_foreground",
    "HistogramMatch",
    "StyleTransfer",
]


@pytest.fixture(scope="module")
def cases(demo):
    return _cases(demo)


@pytest.mark.parametrize("name", _NAMES)
def test_numpy_and_torch_inputs_give_their_own_type_and_equal_values(cases, name):
    outputs = []
    for p in TEST_NDARRAYS:
        out = cases[name](p)
        sample = p(np.zeros(1))
        if isinstance(sample, np.ndarray):
            assert isinstance(out, np.ndarray), f"{name}: numpy in, {type(out).__name__} out"
        else:
            assert isinstance(out, torch.Tensor) and out.device == sample.device, f"{name}: torch in, {type(out)} out"
        outputs.append(_plain(out))
    for other in outputs[1:]:
        assert other.dtype == outputs[0].dtype and other.shape == outputs[0].shape
        np.testing.assert_allclose(other, outputs[0], rtol=1e-6, atol=1e-6)


def test_metatensor_in_metatensor_out(demo):
    img = demo["image"][..., SLICE]  # a MetaTensor with an affine
    img.meta["marker"] = "kept"
    for out in (ForegroundMask()(img), IntensityToTanhRange()(img), HistogramMatch(IntensityToTanhRange()(img))(img)):
        assert isinstance(out, MetaTensor) and out.meta["marker"] == "kept"
    lab = demo["label"][..., SLICE]
    for out in (IndexToOneHot(4)(lab), IndexToLabel()(lab), BuildCondition(4)(lab, demo["brain"][..., SLICE])):
        assert isinstance(out, MetaTensor) and torch.equal(out.affine, lab.affine)


ARRAY_TRANSFORMS = [
    ForegroundMask,
    IntensityToTanhRange,
    IntensityFromTanhRange,
    LabelToIndex,
    IndexToLabel,
    IndexToOneHot,
    OneHotToIndex,
    BinarizeMask,
    TissueClasses,
    BuildCondition,
    SplitCondition,
    RandDeformCondition,
    TumourTransplant,
    ExtractSlice,
    SlicesToVolume,
    HistogramMatch,
    StyleTransfer,
]


@pytest.mark.parametrize("cls", ARRAY_TRANSFORMS, ids=lambda c: c.__name__)
def test_transforms_declare_their_backend(cls):
    assert TransformBackends.TORCH in cls.backend


def test_compose_inverse_through_the_slice_crop(demo):
    """The GAN-ready pipeline of a slice is undone back to the slice's grid and units."""
    from monai_singanseg.transforms.slices import ExtractTumourSlicesd, SquareForegroundCropd

    item = ExtractTumourSlicesd(num_slices=1)({"image": demo["image"], "label": demo["label"]})[0]
    pipeline = Compose(
        [SquareForegroundCropd(spatial_size=64), IntensityToTanhRanged("image"), IndexToOneHotd("label", num_classes=4)]
    )
    out = pipeline(item)
    assert out["image"].shape == (4, 64, 64) and out["label"].shape == (3, 64, 64)
    back = pipeline.inverse(out)
    assert back["image"].shape == item["image"].shape
    peak = float(item["image"].max())  # back in source units (MONAI's resize inverse interpolates in float)
    assert abs(float(back["image"].max()) - peak) < 0.2 * peak
    assert torch.allclose(back["image"].affine, item["image"].affine)
    assert back["label"].shape == item["label"].shape and torch.allclose(back["label"].affine, item["label"].affine)
