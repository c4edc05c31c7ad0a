"""Batched SinGAN-Seg training: M=3 models trained together equal three trained apart (same seeds).

Three tumour slices of the real BraTS case at 24x24, tiny settings. In float64 the batched and separate
trainings agree to ~1e-9 on every tensor: same random numbers, same maths. In float32 the first steps agree
to ~1e-7 except the biases of the convolutions that feed a batch norm. Their gradient is zero in exact maths,
and Adam scales its rounding noise up to steps of about ``lr``. That noise then spreads (running means, noise
amplitudes, weights with small gradients), so after the tiny training the float32 models differ by ~1e-3
at most, as the single trainer differs from itself between 1 and 2 CPU threads.
"""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_singanseg.engines.singanseg import BatchedSinGANSegTrainer, SinGANSegSettings, SinGANSegTrainer
from monai_singanseg.inferers import SinGANSegSampler
from monai_singanseg.io.modelfile import load_model_file
from monai_singanseg.synthesis import singanseg_training_input

TINY = {"min_size": 12, "iters": 3, "num_stages": 3, "critic_steps": 1, "generator_steps": 1, "base_features": 8}
SEEDS = [0, 1, 2]
#: tensors whose gradient is zero in exact maths (a conv bias before batch norm) and what tracks them
ZERO_GRAD = re.compile(r"body\.\d+\.conv\.bias$|running_mean$")


def _tumour_slices(label_path: str, count: int = 3) -> list[int]:
    """``count`` axial slices spread over the tumour's extent."""
    seg = nib.load(label_path).get_fdata()
    idx = np.nonzero((seg > 0).sum(axis=(0, 1)))[0]
    return [int(idx[int(len(idx) * q)]) for q in np.linspace(0.3, 0.7, count)]


@pytest.fixture(scope="module")
def slices(brats_item) -> list[tuple[torch.Tensor, dict]]:
    return [
        singanseg_training_input(brats_item["image"], brats_item["label"], i, max_size=24)
        for i in _tumour_slices(brats_item["label"])
    ]


def _train_both(slices, folder: Path) -> tuple[list[Path], list[Path], bool]:
    """Batched and separate trainings; also whether the caller's RNG state survived the batched one."""
    gans, metas = [g for g, _ in slices], [m for _, m in slices]
    before = torch.get_rng_state()
    batched = BatchedSinGANSegTrainer(SinGANSegSettings(**TINY), device="cpu", progress=False).fit_many(
        gans, [folder / f"batched_{m}.pt" for m in range(3)], metas, seeds=SEEDS
    )
    rng_kept = torch.equal(before, torch.get_rng_state())
    separate = [
        SinGANSegTrainer(SinGANSegSettings(**TINY, seed=seed), device="cpu", progress=False).fit(
            gans[m], folder / f"separate_{m}.pt", metas[m]
        )
        for m, seed in enumerate(SEEDS)
    ]
    return batched, separate, rng_kept


@pytest.fixture(scope="module")
def trained(slices, tmp_path_factory):
    return _train_both(slices, tmp_path_factory.mktemp("batched32"))


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], keep=lambda name: True) -> float:
    assert a.keys() == b.keys()
    return max((a[n].double() - b[n].double()).abs().max().item() for n in a if keep(n))


def test_slices_share_one_shape(slices):
    assert [tuple(g.shape) for g, _ in slices] == [(7, 24, 24)] * 3
    assert len({float(g.sum()) for g, _ in slices}) == 3  # three different slices


def _relative_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    names = [n for n in a if a[n].is_floating_point()]
    num = sum(((a[n].double() - b[n].double()) ** 2).sum() for n in names) ** 0.5
    return float(num / sum((b[n].double() ** 2).sum() for n in names) ** 0.5)


def test_batched_equals_separate_float32(trained):
    """float32, the product dtype: equal up to Adam-amplified rounding of zero gradients (see the docstring).

    The single trainer differs from itself by about as much (~2e-3 max abs) between 1 and 2 CPU threads.
    """
    batched, separate, _ = trained
    for b_path, s_path in zip(batched, separate):
        b, s = load_model_file(b_path), load_model_file(s_path)
        assert b.config.complete and b.config.num_scales == 3
        for key in (
            "scale_sizes",
            "features",
            "training",
            "data_hash",
            "image_channels",
            "label_values",
            "source_slice_index",
        ):
            assert getattr(b.config, key) == getattr(s.config, key), key
        assert b.config.noise_amplitudes[0] == s.config.noise_amplitudes[0] == 1.0
        np.testing.assert_allclose(b.config.noise_amplitudes, s.config.noise_amplitudes, atol=1e-3, rtol=0)
        assert torch.equal(b.tensors["reconstruction_noise"], s.tensors["reconstruction_noise"])
        for net in ("generator", "critic"):
            assert _max_diff(b.state[net], s.state[net]) < 0.05, net  # a few Adam steps of lr=5e-4 at most
            assert _relative_diff(b.state[net], s.state[net]) < 1e-2, net  # measured ~2e-3
        sample_b = SinGANSegSampler(b_path, device="cpu").sample(4, seed=5)
        sample_s = SinGANSegSampler(s_path, device="cpu").sample(4, seed=5)
        assert sample_b.shape == (4, 7, 24, 24)
        assert (sample_b - sample_s).abs().mean() < 1e-2  # measured ~1e-3
        torch.testing.assert_close(sample_b, sample_s, atol=0.1, rtol=0)


def test_first_steps_equal_in_float32(slices, tmp_path):
    """One scale, one iteration: every tensor but the zero-gradient biases agrees to float tolerance."""
    tiny = {**TINY, "num_stages": 1, "coarsest_iters": 1}
    gans, metas = [g for g, _ in slices], [m for _, m in slices]
    batched = BatchedSinGANSegTrainer(SinGANSegSettings(**tiny), device="cpu", progress=False).fit_many(
        gans, [tmp_path / f"b{m}.pt" for m in range(3)], metas, seeds=SEEDS
    )
    for m, seed in enumerate(SEEDS):
        single = SinGANSegTrainer(SinGANSegSettings(**tiny, seed=seed), device="cpu", progress=False)
        b, s = load_model_file(batched[m]), load_model_file(single.fit(gans[m], tmp_path / f"s{m}.pt", metas[m]))
        for net in ("generator", "critic"):
            assert _max_diff(b.state[net], s.state[net], lambda n: not ZERO_GRAD.search(n)) < 1e-5, net


def test_batched_equals_separate_float64(slices, tmp_path, monkeypatch):
    """In float64 the zero-gradient noise is far below Adam's eps: every tensor agrees to float tolerance."""
    monkeypatch.setattr(torch.Tensor, "float", torch.Tensor.double)  # the trainers cast their input with .float()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        batched, separate, _ = _train_both(slices, tmp_path)
    finally:
        torch.set_default_dtype(default)
    for b_path, s_path in zip(batched, separate):
        b, s = load_model_file(b_path), load_model_file(s_path)
        assert b.state["generator"]["generators.0.head.conv.weight"].dtype == torch.float64
        np.testing.assert_allclose(b.config.noise_amplitudes, s.config.noise_amplitudes, atol=1e-9, rtol=0)
        assert _max_diff(b.state["generator"], s.state["generator"]) < 1e-6
        assert _max_diff(b.state["critic"], s.state["critic"]) < 1e-6


def test_caller_rng_unchanged(trained):
    assert trained[2]


def test_mixed_shapes_are_refused_not_padded(slices, brats_item, tmp_path):
    (gan, meta), (other, other_meta) = slices[0], slices[1]
    smaller, smaller_meta = singanseg_training_input(brats_item["image"], brats_item["label"], "auto", max_size=20)
    trainer = BatchedSinGANSegTrainer(SinGANSegSettings(**TINY), device="cpu", progress=False)
    outs = [tmp_path / "a.pt", tmp_path / "b.pt"]
    before = torch.get_rng_state()
    with pytest.raises(ValueError, match=r"one shape.*\(7, 24, 24\), \(7, 20, 20\).*not padded"):
        trainer.fit_many([gan, smaller], outs, [meta, smaller_meta])
    with pytest.raises(ValueError, match=r"one shape.*\(7, 24, 24\), \(6, 24, 24\)"):
        trainer.fit_many([gan, other[:6]], outs, [meta, other_meta])
    with pytest.raises(ValueError, match="one output, metadata and seed"):
        trainer.fit_many([gan, other], outs, [meta, other_meta], seeds=[0])
    with pytest.raises(ValueError, match="distinct output"):
        trainer.fit_many([gan, other], [outs[0], outs[0]], [meta, other_meta])
    assert not any(tmp_path.iterdir())  # nothing written
    assert torch.equal(before, torch.get_rng_state())
