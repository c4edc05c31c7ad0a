"""pix2pix training settings, their values in model files written before later settings, and the learning-rate
schedule."""

from __future__ import annotations

from dataclasses import dataclass

from monai_singanseg.engines.pix2pix.losses import GAN_LOSSES
from monai_singanseg.io.model_config import Pix2PixModelConfig
from monai_singanseg.networks.pix2pix import UPSAMPLE_MODES
from monai_singanseg.networks.spade import GENERATOR_ARCHITECTURES
from monai_singanseg.options import MAX_SEED, Settings, check_options, option

__all__ = [
    "Pix2PixSettings",
    "SETTINGS_BEFORE_FIDELITY",
    "SETTINGS_BEFORE_SPADE",
    "DEFAULT_STYLE_CHANNELS",
    "lr_factor",
]

#: the appearance code's length of a SPADE generator unless given.
DEFAULT_STYLE_CHANNELS = 16


@dataclass
class Pix2PixSettings(Settings):
    """Training settings (all stored in the model file).

    Every field is an option declared with its help and bounds (:mod:`monai_singanseg.options`).
    """

    size: int = option(
        128, low=32, high=512, power_of_two=True, help="working resolution, a power of two (256 supported)"
    )
    epochs: int = option(
        60, low=1, high=10**5, help="total epochs (the second half decays the learning rate linearly to 0)"
    )
    decay_epochs: int | None = option(
        None, low=0, high=10**5, help="epochs of linear decay at the end (default: half of --epochs)"
    )
    batch_size: int = option(4, low=1, high=4096, help="slices per step")
    lr: float = option(2e-4, low=0.0, high=1.0, low_open=True, help="Adam learning rate")
    beta1: float = option(0.5, low=0.0, high=1.0, high_open=True, help="Adam beta1")
    architecture: str = option(
        "unet",
        choices=GENERATOR_ARCHITECTURES,
        help="the generator: pix2pix's U-Net, or SPADE (the label map injected at every decoder scale, an "
        "appearance code per render; about 2x the U-Net's training time on a CPU)",
    )
    gan_loss: str | None = option(
        None, choices=GAN_LOSSES, help="adversarial loss (default: bce for unet, as pix2pix; hinge for spade, as SPADE)"
    )
    l1_weight: float | None = option(
        None,
        low=0.0,
        help="weight of the L1 term (default: 100 for unet, as pix2pix; 0 for spade: L1 pulls every pixel to the "
        "conditional mean, i.e. blur)",
    )
    style_channels: int | None = option(
        None,
        low=0,
        high=512,
        help="spade: length of the appearance code, trained as a VAE on the real images (default 16; 0: none, "
        "one render per label map)",
    )
    kl_weight: float = option(0.05, low=0.0, help="spade: weight of the appearance code's KL term (0.05 in SPADE)")
    noise: bool = option(
        False,
        help="spade: per-pixel noise after every convolution at a learnt strength (StyleGAN's noise inputs), a source "
        "of the fine detail that the label map does not determine",
    )
    generator_channels: int = option(
        32,
        low=1,
        high=1024,
        help="ngf: 64 as in pix2pix, for GPUs; 32 renders about 4x faster on a CPU with render quality measured "
        "equal (benchmarks/pix2pix.py)",
    )
    critic_channels: int = option(32, low=1, high=1024, help="ndf")
    dropout: float = option(0.5, low=0.0, high=1.0, high_open=True, help="dropout of the 3 innermost decoder blocks")
    upsample: str = option(
        "resize",
        choices=UPSAMPLE_MODES,
        help="decoder upsampling: resize + 3x3 conv (no checkerboard) or pix2pix's transposed conv",
    )
    context_slices: int = option(
        1, low=0, high=8, help="neighbouring slices on each side whose label the generator also reads (2.5D)"
    )
    critic_scales: int = option(
        2,
        low=1,
        high=4,
        help="critics of pix2pixHD's multi-scale critic (1: pix2pix's PatchGAN); each halves the working size and "
        "the coarsest needs 32 pixels",
    )
    feature_matching_weight: float = option(
        10.0, low=0.0, high=1000.0, help="weight of the critics' feature matching loss (0: off; 10 in pix2pixHD)"
    )
    vgg_weights: str | None = option(
        None,
        metavar="FILE",
        help="VGG-19 weights file (torchvision's vgg19 state dict, or its features part) for a perceptual term, as "
        "pix2pixHD and SPADE train with; never downloaded",
    )
    perceptual_weight: float | None = option(
        None, low=0.0, high=1000.0, help="weight of the perceptual term (default: 10 with --vgg-weights, as pix2pixHD)"
    )
    all_brain_slices: bool = option(False, help="train on every brain slice, not only tumour slices")
    min_brain_fraction: float = option(
        0.1,
        low=0.0,
        high=1.0,
        help="with --all-brain-slices, skip slices whose brain covers less than this fraction of the largest",
    )
    tissue_classes: int = option(0, low=0, high=16, help="add N coarse tissue classes (3) from T1 to the condition")
    tissue_modality: str = option("t1", help="the modality clustered into tissue classes")
    margin: int = option(4, low=0, high=1024, help="background voxels kept around the brain's in-plane box")
    flip: bool = option(True, help="random left-right flips")
    rotate_degrees: float = option(10.0, low=0.0, high=180.0, help="maximum random in-plane rotation")
    seed: int | None = option(0, low=0, high=MAX_SEED, help="random seed (None: not deterministic)")
    checkpoint_every: int = option(1, low=1, high=10**5, help="write the model file every N epochs (and at the end)")

    def __post_init__(self) -> None:
        check_options(self)
        spade = self.architecture == "spade"
        if self.gan_loss is None:
            self.gan_loss = "hinge" if spade else "bce"
        if self.l1_weight is None:
            self.l1_weight = 0.0 if spade else 100.0
        if self.style_channels is None:
            self.style_channels = DEFAULT_STYLE_CHANNELS if spade else 0
        if self.perceptual_weight is None:
            self.perceptual_weight = 10.0 if self.vgg_weights else 0.0
        if self.perceptual_weight and not self.vgg_weights:
            raise ValueError(
                f"perceptual_weight (--perceptual-weight) {self.perceptual_weight} needs a VGG-19 weights file "
                "(--vgg-weights FILE); none is downloaded"
            )
        if self.noise and not spade:
            raise ValueError("noise (--noise): noise inputs need --architecture spade; the U-Net has none")
        if self.style_channels and not spade:
            raise ValueError(
                f"style_channels (--style-channels) {self.style_channels}: appearance codes need --architecture "
                "spade; the U-Net has none (give 0)"
            )


#: what model files that predate these settings were trained with (their configs do not record them).
SETTINGS_BEFORE_FIDELITY = {
    **{name: getattr(Pix2PixModelConfig, name) for name in ("upsample", "context_slices", "critic_scales")},
    "feature_matching_weight": 0.0,
}
#: what model files that predate the SPADE generator were trained with.
SETTINGS_BEFORE_SPADE = {"architecture": "unet", "gan_loss": "bce", "style_channels": 0, "kl_weight": 0.05}


def lr_factor(epoch: int, settings: Pix2PixSettings) -> float:
    """pix2pix's learning-rate factor at ``epoch``: 1, then a linear decay to 0 over the last ``decay_epochs``."""
    decay = settings.epochs // 2 if settings.decay_epochs is None else settings.decay_epochs
    start = settings.epochs - decay
    return 1.0 if epoch < start else max(0.0, 1.0 - (epoch - start + 1) / float(decay + 1))
