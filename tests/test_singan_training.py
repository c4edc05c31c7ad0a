"""SinGAN-Seg training, model file, sampler and MONAI transforms on a real BraTS slice (tiny settings)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.data import MetaTensor
from monai.engines import Trainer

from monai_singanseg.engines.singanseg import SinGANSegSettings, SinGANSegTrainer, SinGANSegWorkflow, with_iterations
from monai_singanseg.inferers import SinGANSegSample, SinGANSegSampled, SinGANSegSampler
from monai_singanseg.io.atomic import OutputExistsError
from monai_singanseg.io.modelfile import ModelFileError, load_model_file
from monai_singanseg.synthesis import SinGANSegTrainingSet, singanseg_training_input
from monai_singanseg.transforms.gan import ToGANTensor, remove_small_components

TINY = {"min_size": 12, "iters": 4, "num_stages": 3, "critic_steps": 1, "generator_steps": 2, "base_features": 8}


@pytest.fixture(scope="module")
def real_slice(brats_item):
    return singanseg_training_input(brats_item["image"], brats_item["label"], "auto", max_size=32)


@pytest.fixture(scope="module")
def tiny_model(real_slice, tmp_path_factory) -> Path:
    gan, meta = real_slice
    out = tmp_path_factory.mktemp("singan") / "model.pt"
    return SinGANSegTrainer(SinGANSegSettings(**TINY), device="cpu", progress=False).fit(gan, out, meta)


def test_training_input_from_real_slice(real_slice, brats_item):
    gan, meta = real_slice
    assert gan.shape == (7, 32, 32)
    assert gan.min() >= -1 and gan.max() <= 1
    assert meta["image_channels"] == ["flair", "t1", "t1ce", "t2"]
    assert meta["label_values"] == [0, 1, 2, 4] and meta["num_label_channels"] == 3
    assert (gan[4:] > 0).any()  # tumour present in the label channels
    assert meta["intensity_stats"]["dtype"] == "int16"
    seg = nib.load(brats_item["label"]).get_fdata()
    assert (seg[:, :, meta["source_slice_index"]] > 0).any()  # the chosen axial slice holds tumour


def test_tiny_training_gives_loadable_complete_model(tiny_model):
    payload = torch.load(tiny_model, weights_only=True)  # no pickled classes
    assert payload["kind"] == "singanseg"
    model = load_model_file(tiny_model, expected_kind="singanseg")
    cfg = model.config
    assert cfg.complete and cfg.finished_scales == cfg.num_scales == 3
    assert len(cfg.noise_amplitudes) == 3 and cfg.noise_amplitudes[0] == 1.0
    assert all(0 < a < 1 for a in cfg.noise_amplitudes[1:])
    assert cfg.scale_sizes[-1] == [32, 32] and min(cfg.scale_sizes[0]) == 12
    assert np.asarray(cfg.source_affine).shape == (4, 4)
    assert model.tensors["reconstruction_noise"].shape == (1, 7, 12, 12)
    assert cfg.training["schedule"] == "fast"


def test_pad_as_background_is_recorded_and_files_without_it_keep_their_zero_padding(real_slice, tiny_model, tmp_path):
    """A model trained with ``pad_as_background`` records it and samples with it; the default model and a file written
    before the option (no such key) run with plain zero padding."""
    from monai_singanseg.inferers import SinGANSegSampler

    gan, meta = real_slice
    shifted = SinGANSegTrainer(SinGANSegSettings(**TINY, pad_as_background=True), device="cpu", progress=False).fit(
        gan, tmp_path / "shifted.pt", meta
    )
    cfg = load_model_file(shifted, expected_kind="singanseg").config
    assert cfg.pad_as_background is True and cfg.training["pad_as_background"] is True
    sampler = SinGANSegSampler(shifted)
    assert all(g.input_shift == 1.0 for g in sampler.pyramid.generators)
    assert load_model_file(tiny_model).config.pad_as_background is False
    payload = torch.load(shifted, weights_only=True)
    del payload["config"]["pad_as_background"]
    del payload["config"]["training"]["pad_as_background"]
    older = tmp_path / "older.pt"
    torch.save(payload, older)
    old = SinGANSegSampler(older)
    assert old.config.pad_as_background is False and all(g.input_shift == 0.0 for g in old.pyramid.generators)
    assert not torch.allclose(old.reconstruction(), sampler.reconstruction())  # the same weights, another padding
    payload["config"]["pad_as_background"] = "yes"
    torch.save(payload, older)
    with pytest.raises(ValueError, match="pad_as_background.*true or false"):
        load_model_file(older, expected_kind="singanseg")


def test_training_is_deterministic_and_refuses_to_overwrite(real_slice, tiny_model, tmp_path):
    gan, meta = real_slice
    again = SinGANSegTrainer(SinGANSegSettings(**TINY), device="cpu", progress=False).fit(gan, tmp_path / "m.pt", meta)
    a, b = load_model_file(tiny_model), load_model_file(again)
    for name, tensor in a.state["generator"].items():
        assert torch.equal(tensor, b.state["generator"][name]), name
    before = again.read_bytes()
    with pytest.raises(OutputExistsError):
        SinGANSegTrainer(SinGANSegSettings(**TINY), progress=False).fit(gan, again, meta)
    assert again.read_bytes() == before


def test_training_penalises_with_the_one_gradient_penalty(real_slice, tiny_model, tmp_path, monkeypatch):
    # every critic step of training goes through losses.gradient_penalty (the function the network tests check):
    # counted here, with weights bit-identical to the unpatched run
    from monai_singanseg.engines.singanseg import losses

    calls = []
    original = losses.gradient_penalty

    def counting(*args):
        calls.append(tuple(args[1].shape))
        return original(*args)

    monkeypatch.setattr(losses, "gradient_penalty", counting)
    settings = SinGANSegSettings(**TINY)
    gan, meta = real_slice
    out = SinGANSegTrainer(settings, device="cpu", progress=False).fit(gan, tmp_path / "m.pt", meta)
    num_scales = load_model_file(out).config.num_scales
    assert len(calls) == settings.critic_steps * (settings.coarsest_iters + (num_scales - 1) * settings.iters)
    assert {c[:3] for c in calls} == {(1, 1, 7)}  # (models, samples, channels)
    trained, reference = load_model_file(out).state["generator"], load_model_file(tiny_model).state["generator"]
    assert all(torch.equal(trained[k], reference[k]) for k in reference)


def test_with_iterations_sets_every_scale_and_keeps_the_coarsest_ratio():
    fast = SinGANSegSettings()  # 200 per scale, 600 at the coarsest
    assert (fast.iters, fast.coarsest_iters) == (200, 600)
    assert (with_iterations(fast, 4).iters, with_iterations(fast, 4).coarsest_iters) == (4, 12)
    assert with_iterations(fast, 200) is fast
    paper = SinGANSegSettings(schedule="singan")
    assert with_iterations(paper, 10).coarsest_iters == 10
    with pytest.raises(ValueError, match="max_epochs"):
        with_iterations(fast, 0)


def test_workflow_of_a_datalist_entry_trains_the_same_model_as_the_trainer(brats_item, tiny_model, tmp_path):
    """The bundle's path (training set of a datalist, workflow, max_epochs) equals the trainer's on the same slice."""
    data = SinGANSegTrainingSet([brats_item], max_size=32)
    settings = SinGANSegSettings(
        **{**TINY, "iters": 8}
    )  # max_epochs 4 brings it back to TINY: 4 per scale, 12 coarsest
    workflow = SinGANSegWorkflow(data, tmp_path / "m.pt", settings, max_epochs=4, device="cpu", progress=False)
    a, b = load_model_file(tiny_model), load_model_file(workflow.run())
    assert b.config.training == a.config.training
    for name, tensor in a.state["generator"].items():
        assert torch.equal(tensor, b.state["generator"][name]), name
    with pytest.raises(ValueError, match="got 2 datalist entries"):
        SinGANSegWorkflow([data[0], data[0]], tmp_path / "two.pt")
    with pytest.raises(ValueError, match="needs 'image' and 'label'"):
        SinGANSegTrainingSet([{"image": brats_item["image"]}])
    with pytest.raises(ValueError, match="empty"):
        SinGANSegTrainingSet([])


def test_singan_schedule_trains_more_scales(real_slice, tmp_path):
    gan, meta = real_slice
    settings = SinGANSegSettings(
        schedule="singan", min_size=20, iters=1, critic_steps=1, generator_steps=1, base_features=4
    )
    cfg = load_model_file(SinGANSegTrainer(settings, progress=False).fit(gan, tmp_path / "s.pt", meta)).config
    assert cfg.complete and cfg.training["schedule"] == "singan" and cfg.num_scales == 3


def test_same_seed_same_samples(tiny_model):
    sampler = SinGANSegSampler(tiny_model, device="cpu")
    a = sampler.sample(5, seed=7, batch_size=2)
    b = sampler.sample(5, seed=7, batch_size=2)
    c = sampler.sample(5, seed=8, batch_size=2)
    assert a.shape == (5, 7, 32, 32)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    torch.testing.assert_close(a, sampler.sample(5, seed=7, batch_size=5), atol=1e-4, rtol=0)
    assert a.min() >= -1 and a.max() <= 1


def test_start_scale_and_other_size(tiny_model):
    sampler = SinGANSegSampler(tiny_model)
    rec = sampler.reconstruction()
    far = (sampler.sample(4, start_scale=0, seed=1) - rec).abs().mean()
    near = (sampler.sample(4, start_scale=2, seed=1) - rec).abs().mean()
    assert near < far
    wide = sampler.sample(2, size=(24, 48), seed=1)
    assert wide.shape == (2, 7, 24, 48)
    assert sampler.affine_for((24, 48))[0, 1] == pytest.approx(sampler.affine[0, 1] * 32 / 48)
    with pytest.raises(ValueError, match="start_scale"):
        sampler.sample(1, start_scale=3)


def test_split_and_back_to_source_units(tiny_model):
    sampler = SinGANSegSampler(tiny_model)
    image, label = sampler.split(sampler.sample(6, seed=3))
    assert image.shape == (6, 4, 32, 32) and label.shape == (6, 1, 32, 32)
    assert set(label.unique().tolist()) <= {0, 1, 2, 3}
    src_image, values = sampler.to_source(image[0], label[0])
    assert src_image.dtype == np.int16 and values.dtype == np.uint8
    assert set(np.unique(values).tolist()) <= {0, 1, 2, 4}


def test_remove_small_components():
    label = torch.zeros(1, 20, 20, dtype=torch.int64)
    label[0, 2:8, 2:8] = 2
    label[0, 15, 15] = 3
    out = remove_small_components(label, 4)
    assert out[0, 15, 15] == 0 and (out[0, 2:8, 2:8] == 2).all()


def test_monai_transforms_draw_pairs_with_source_geometry(tiny_model):
    sampler = SinGANSegSampler(tiny_model)
    t = SinGANSegSample(sampler, label_values=True).set_random_state(5)
    image, label = t()
    assert isinstance(image, MetaTensor) and isinstance(label, MetaTensor)
    assert image.shape == (4, 32, 32) and label.shape == (1, 32, 32)
    torch.testing.assert_close(image.affine, sampler.affine)
    assert set(label.unique().tolist()) <= {0, 1, 2, 4} and image.meta["synthetic"]
    d1 = SinGANSegSampled(("image", "label"), sampler, source_units=True).set_random_state(11)({"other": 1})
    d2 = SinGANSegSampled(("image", "label"), sampler, source_units=True).set_random_state(11)({})
    assert d1["other"] == 1 and d1["image"].dtype == torch.int16
    assert torch.equal(d1["image"], d2["image"])
    assert not torch.equal(t()[0], t()[0])


def test_bad_inputs(brats_item, tmp_path, tiny_model):
    no_tumour = 5  # an axial slice far below the brain
    with pytest.raises(ValueError, match="no tumour"):
        singanseg_training_input(brats_item["image"], brats_item["label"], no_tumour, max_size=32)
    gan, meta = ToGANTensor(4)(torch.zeros(4, 12, 12), torch.zeros(1, 12, 12, dtype=torch.int64)), {}
    with pytest.raises(ValueError, match="too small"):
        SinGANSegTrainer(SinGANSegSettings(), progress=False).fit(gan, tmp_path / "small.pt", meta)
    assert not (tmp_path / "small.pt").exists()
    not_ours = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, not_ours)
    with pytest.raises(ModelFileError, match="not a monai-singanseg model"):
        SinGANSegSampler(not_ours)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(Path(tiny_model).read_bytes()[:2000])
    with pytest.raises(ModelFileError, match="truncated"):
        SinGANSegSampler(truncated)


def test_3d_training_code_path(tmp_path):
    image = torch.rand(2, 14, 14, 14) * 2 - 1
    label = torch.zeros(1, 14, 14, 14, dtype=torch.int64)
    label[0, 4:9, 4:9, 4:9] = 1
    gan = ToGANTensor(2)(image, label)
    settings = SinGANSegSettings(min_size=8, num_stages=2, iters=1, critic_steps=1, generator_steps=1, base_features=4)
    out = SinGANSegTrainer(settings, progress=False).fit(
        gan,
        tmp_path / "m3d.pt",
        {
            "num_image_channels": 2,
            "label_values": [0, 1],
            "intensity_stats": {"low": [0, 0], "high": [1, 1]},
            "source_affine": np.eye(4).tolist(),
        },
    )
    sampler = SinGANSegSampler(out)
    image_s, label_s = sampler.split(sampler.sample(2, seed=0))
    assert image_s.shape == (2, 2, 14, 14, 14) and label_s.shape == (2, 1, 14, 14, 14)


def test_monai_handlers_attach_to_every_scale_engine_and_change_nothing(real_slice, tiny_model, tmp_path):
    """Each scale is a MONAI Trainer; a handler attached through ``handlers=`` sees every scale's iterations and
    per-model losses, and the weights equal those of the same training without it."""
    gan, meta = real_slice
    seen: list[tuple[int, dict]] = []

    class Recorder:
        def attach(self, engine):
            assert isinstance(engine, Trainer)
            engine.add_event_handler(
                Events.ITERATION_COMPLETED, lambda e: seen.append((e.state.iteration, e.state.output))
            )

    out = SinGANSegTrainer(SinGANSegSettings(**TINY), device="cpu", progress=False, handlers=[Recorder()]).fit(
        gan, tmp_path / "m.pt", meta
    )
    cfg = load_model_file(out).config
    iters = [cfg.training["coarsest_iters"]] + [cfg.training["iters"]] * (cfg.num_scales - 1)
    assert len(seen) == sum(iters) and [i for i, _ in seen[: iters[0]]] == list(range(1, iters[0] + 1))
    assert all(set(o) == {"critic", "adv", "rec"} and o["rec"].shape == (1,) for _, o in seen)
    reference, state = load_model_file(tiny_model).state, load_model_file(out).state
    assert all(torch.equal(state[n][k], reference[n][k]) for n in reference for k in reference[n])
