"""A tiny real pix2pix training run on real BraTS slices, and rendering real label volumes with it."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.data import MetaTensor
from monai.engines import AdversarialTrainer, SupervisedEvaluator
from monai.handlers import IgniteMetricHandler, MeanAbsoluteError, StatsHandler, ValidationHandler, from_engine
from monai.metrics import SSIMMetric

from monai_singanseg.data import brats_datalist, demo_case, load_image
from monai_singanseg.engines.pix2pix import (
    PairsToDevice,
    Pix2PixSettings,
    pix2pix_networks,
    pix2pix_trainer,
    resume_settings,
    train_pix2pix,
    validation_loader,
)
from monai_singanseg.inferers import Pix2PixRender, Pix2PixRenderd
from monai_singanseg.io import ModelFileError, OutputExistsError, load_model_file
from monai_singanseg.networks import Pix2PixCritic
from monai_singanseg.synthesis import Pix2PixTrainingSet, pix2pix_training_slices
from monai_singanseg.transforms.condition import ConditionError, TissueClasses
from monai_singanseg.transforms.intensity import foreground_mask
from monai_singanseg.transforms.labels import LabelValueError

TINY = {"size": 32, "batch_size": 8, "generator_channels": 8, "critic_channels": 8, "seed": 7}


def _train(path, settings, **kwargs):
    """The demo case through the product's prepare step, then the trainer (as the CLI and the bundle do)."""
    return train_pix2pix(
        pix2pix_training_slices([demo_case()], settings, progress=False), path, settings, progress=False, **kwargs
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """2 epochs on the 20 tumour slices of the embedded real case (TCGA-FG-6692, cropped)."""
    path = tmp_path_factory.mktemp("p2p") / "p2p.pt"
    result = _train(path, Pix2PixSettings(epochs=2, **TINY))
    return path, result


@pytest.fixture(scope="module")
def demo_volumes():
    item = demo_case()
    label = load_image(item["label"], 3, "label")  # label VALUES 0/1/2/4, as on disk
    image = torch.cat([load_image(p).as_tensor() for p in item["image"]])
    return label, MetaTensor(foreground_mask(image).to(torch.uint8), meta=dict(label.meta)), image


def test_training_writes_loadable_model(trained):
    path, result = trained
    assert result["epochs_done"] == 2 and result["num_slices"] == 20
    assert all(torch.isfinite(torch.tensor(h["l1"])) for h in result["history"])
    model = load_model_file(path, expected_kind="pix2pix")
    cfg = model.config
    assert cfg.size == 32 and cfg.epochs_done == 2
    assert cfg.condition.channels == ["brain", "tumour_1", "tumour_2", "tumour_4"]
    assert cfg.condition.label_values == [0, 1, 2, 4]
    assert cfg.modalities == ["flair", "t1", "t1ce", "t2"]
    stats = cfg.intensity_stats
    assert stats["dtype"] == "int16" and len(stats["low"]) == 4
    assert all(lo < hi for lo, hi in zip(stats["low"], stats["high"]))
    assert set(model.state) == {"generator", "critic"}
    with pytest.raises(ModelFileError, match="pix2pix"):
        load_model_file(path, expected_kind="singanseg")


def test_training_is_deterministic_and_resumes_exactly(trained, tmp_path):
    path, _ = trained
    reference = load_model_file(path).state["generator"]
    half = tmp_path / "half.pt"
    _train(half, Pix2PixSettings(epochs=1, **TINY))
    with pytest.raises(OutputExistsError):
        _train(half, Pix2PixSettings(epochs=1, **TINY))
    # resuming to 2 epochs gives exactly the weights of the uninterrupted 2-epoch run (same seed)
    resumed = _train(half, Pix2PixSettings(epochs=2, **TINY), resume=True)
    assert resumed["epochs_done"] == 2 and len(resumed["history"]) == 2
    state = load_model_file(half).state["generator"]
    assert all(torch.equal(state[k], reference[k]) for k in reference)


def test_render_real_label_volume(trained, demo_volumes):
    path, _ = trained
    label, brain, _ = demo_volumes
    renderer = Pix2PixRender(path)
    out = renderer(label, brain)
    assert out.shape == (4, *label.shape[1:])
    assert torch.equal(out.affine, label.affine)
    assert out.dtype == torch.int16
    inside = brain[0].bool() | (label[0] > 0)
    assert int(out[:, ~inside].abs().max()) == 0  # background outside the brain
    stats = renderer.stats
    for c in range(4):  # per-modality intensities in the training range
        values = out[c][inside].float()
        assert stats.low[c] - 0.5 <= float(values.min()) and float(values.max()) <= stats.high[c] + 0.5
        assert float(values.std()) > 0
    # a deterministic function of the condition: same input -> same render
    assert torch.equal(Pix2PixRender(path)(label, brain), out)
    d = Pix2PixRenderd(path)({"label": label, "brain_mask": brain})
    assert torch.equal(d["image"], out)


def test_render_bad_inputs(trained, demo_volumes):
    path, _ = trained
    label, brain, image = demo_volumes
    renderer = Pix2PixRender(path)
    with pytest.raises(ConditionError, match="shape"):
        renderer(label, brain[..., :-1])
    moved = MetaTensor(brain.as_tensor(), affine=label.affine.clone())
    moved.affine[1, 3] += 2.0
    with pytest.raises(ConditionError, match="affine"):
        renderer(label, moved)
    with pytest.raises(LabelValueError, match=r"\[3\]"):
        renderer(torch.where(label == 4, 3, label), brain)
    with pytest.raises(ConditionError, match="empty"):
        renderer(label, torch.zeros_like(brain))
    tissue = TissueClasses(3)(image[1:2], brain, label > 0)
    with pytest.raises(ConditionError, match="tissue"):
        renderer(label, brain, tissue)  # a condition channel the model was not trained with


def test_tissue_condition_model(tmp_path, demo_volumes):
    path = tmp_path / "tissue.pt"
    _train(path, Pix2PixSettings(epochs=1, tissue_classes=3, all_brain_slices=True, **TINY))
    cfg = load_model_file(path).config
    assert cfg.condition.channels[-3:] == ["tissue_1", "tissue_2", "tissue_3"]
    assert cfg.num_slices == 20  # the cropped demo case: every brain slice holds tumour
    label, brain, image = demo_volumes
    renderer = Pix2PixRender(path)
    with pytest.raises(ConditionError, match="tissue"):
        renderer(label, brain)
    out = renderer(label, brain, TissueClasses(3)(image[1:2], brain, label > 0))
    assert out.shape == (4, *label.shape[1:])


def test_model_files_from_before_the_fidelity_work_render_and_resume(tmp_path, demo_volumes):
    """A file without upsample/context/critic-scale fields (transposed decoder, one critic under "net.") still works."""
    legacy = {"upsample": "transposed", "context_slices": 0, "critic_scales": 1, "feature_matching_weight": 0.0}
    path = tmp_path / "new.pt"
    _train(path, Pix2PixSettings(epochs=1, **{**TINY, **legacy}))
    payload = torch.load(path, weights_only=True)
    for key in ("upsample", "context_slices", "critic_scales"):
        del payload["config"][key]
    for key in legacy:
        del payload["config"]["settings"][key]
    payload["state"]["critic"] = {"net." + k[len("critics.0.") :]: v for k, v in payload["state"]["critic"].items()}
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    config = load_model_file(old).config
    assert (config.upsample, config.context_slices, config.critic_scales) == ("transposed", 0, 1)
    label, brain, _ = demo_volumes
    assert torch.equal(Pix2PixRender(old)(label, brain), Pix2PixRender(path)(label, brain))
    settings = resume_settings(old, Pix2PixSettings(epochs=2, **TINY))
    assert (settings.upsample, settings.context_slices, settings.critic_scales, settings.feature_matching_weight) == (
        "transposed",
        0,
        1,
        0.0,
    )
    resumed = _train(old, settings, resume=True)
    assert resumed["epochs_done"] == 2


def test_default_model_is_2_5d_with_resize_decoder_and_multiscale_critic(tmp_path):
    """Defaults: the condition of 3 slices (2.5D), resize + convolution decoding, 2 critics with feature matching."""
    settings = Pix2PixSettings(epochs=1, size=64, batch_size=8, generator_channels=8, critic_channels=8)
    result = _train(tmp_path / "default.pt", settings)
    config = load_model_file(tmp_path / "default.pt").config
    assert (config.upsample, config.context_slices, config.critic_scales) == ("resize", 1, 2)
    assert config.generator_in_channels == 3 * len(config.condition.channels)
    assert result["history"][0]["feature_matching"] > 0
    data = pix2pix_training_slices([demo_case()], settings, progress=False)
    flat = Pix2PixSettings(epochs=1, size=64, context_slices=0)
    with pytest.raises(ValueError, match="context_slices=0 needs 4"):
        train_pix2pix(data, tmp_path / "flat.pt", flat, progress=False)
    small = _train(
        tmp_path / "small.pt",
        Pix2PixSettings(epochs=1, size=32, critic_scales=3, generator_channels=8, critic_channels=8),
    )
    assert load_model_file(small["path"]).config.critic_scales == 1  # 32 pixels leave room for one critic only
    with pytest.raises(ValueError, match="critic scales 2 need a working size of at least 64"):
        Pix2PixCritic(2, 4, 4, scales=2, size=32)


def test_monai_handlers_attach_and_validating_leaves_training_unchanged(trained, tmp_path, shared_data):
    """A ValidationHandler (SupervisedEvaluator: MAE and SSIM on another patient's slices) and a StatsHandler
    attach to the trainer; the weights equal those of the same run without them (validation draws nothing
    from the run's random stream)."""
    path, _ = trained
    settings = Pix2PixSettings(epochs=2, **TINY)
    data = pix2pix_training_slices([demo_case()], settings, progress=False)
    other = [c for c in brats_datalist(shared_data / "brats_tcga") if c["name"] != "TCGA-FG-6692"]
    held_out = Pix2PixTrainingSet(other, settings, progress=False)
    networks = pix2pix_networks(data, settings)
    metric_pair = from_engine(["pred", "label"])
    evaluator = SupervisedEvaluator(
        device="cpu",
        val_data_loader=validation_loader(held_out, 8),
        network=networks.generator,
        prepare_batch=PairsToDevice(),
        key_val_metric={"val_mae": MeanAbsoluteError(output_transform=metric_pair)},
        additional_metrics={
            "val_ssim": IgniteMetricHandler(SSIMMetric(spatial_dims=2, data_range=2.0), output_transform=metric_pair)
        },
    )
    epochs_seen = []
    evaluator.add_event_handler(Events.COMPLETED, lambda e: epochs_seen.append(dict(e.state.metrics)))
    handlers = [
        ValidationHandler(interval=1, validator=evaluator, epoch_level=True),
        StatsHandler(iteration_log=False, name="t"),
    ]
    trainer = pix2pix_trainer(
        data, tmp_path / "validated.pt", settings, networks=networks, train_handlers=handlers, progress=False
    )
    assert isinstance(trainer, AdversarialTrainer)
    trainer.run()
    assert len(epochs_seen) == 2 and len(held_out) > 20
    assert all(0 < m["val_mae"] < 2 and -1 <= m["val_ssim"] <= 1 for m in epochs_seen)
    assert set(trainer.state.metrics) >= {"l1", "loss_d", "loss_g", "feature_matching", "lr"}
    reference = load_model_file(path).state["generator"]
    state = load_model_file(tmp_path / "validated.pt").state["generator"]
    assert all(torch.equal(state[k], reference[k]) for k in reference)
    # a trainer whose checkpoint holds all its epochs runs nothing (ignite alone would start again at epoch 0)
    again = pix2pix_trainer(data, tmp_path / "validated.pt", settings, resume=True, progress=False)
    again.run()
    assert again.state.epoch == 2 and load_model_file(tmp_path / "validated.pt").config.epochs_done == 2


def test_an_error_during_training_propagates_and_keeps_the_last_checkpoint(tmp_path):
    """A handler that fails in epoch 2 stops the run with its own error; the model file holds epoch 1, resumable."""
    settings = Pix2PixSettings(epochs=3, **TINY)
    data = pix2pix_training_slices([demo_case()], settings, progress=False)

    class FailInEpoch2:
        def attach(self, engine):
            engine.add_event_handler(Events.ITERATION_COMPLETED, self)

        def __call__(self, engine):
            if engine.state.epoch == 2:
                raise RuntimeError("disk on fire")

    out = tmp_path / "p2p.pt"
    with pytest.raises(RuntimeError, match="disk on fire"):
        train_pix2pix(data, out, settings, progress=False, handlers=[FailInEpoch2()])
    assert load_model_file(out).config.epochs_done == 1
    resumed = train_pix2pix(data, out, settings, progress=False, resume=True)
    assert resumed["epochs_done"] == 3 and len(resumed["history"]) == 3
