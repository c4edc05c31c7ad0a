"""What a dataset synthesis does: its settings (the run record every process and every resumed run must share) and
the files it owns in its output folder."""

from __future__ import annotations

from dataclasses import dataclass, field

from monai_singanseg.engines.pix2pix import Pix2PixSettings
from monai_singanseg.engines.singanseg import VOLUME_DEFAULTS, SinGANSegSettings
from monai_singanseg.farm.datalists import channel_order_option, check_channel_order, val_fraction_option
from monai_singanseg.options import MAX_SEED, Settings, check_options, option
from monai_singanseg.synthesis import (
    SLICE_MAX_SIZE,
    TUMOUR_BOX_MARGIN,
    VOLUME_BOXES,
    VOLUME_MAX_SIZE,
    SinGANSegSynthesisSettings,
    default_box,
    default_max_size,
)

__all__ = ["DatasetSettings", "RUN_FILE", "GENERATORS", "OWN_FOLDERS", "OWN_FILES"]

RUN_FILE = "synthesize.json"
GENERATORS = ("singanseg", "pix2pix")
DESCRIPTIONS = {
    "singanseg": "monai-singanseg synthetic dataset (SinGAN-Seg, one model per slice)",
    "singanseg-3d": "monai-singanseg synthetic dataset (3D SinGAN-Seg, one model per volume)",
    "pix2pix": "monai-singanseg synthetic dataset (pix2pix renders of deformed label volumes, one model)",
}
#: the folders and files a synthesis writes in its output folder (removed by ``overwrite``; nothing else is).
OWN_FOLDERS = ("models", "cases", "claims", "done", "failed")
OWN_FILES = (RUN_FILE, "manifest.json", "datalist.json", "preview.png", "report.md")


@dataclass
class DatasetSettings(Settings):
    """What a dataset synthesis does (stored in ``synthesize.json``; a resumed run must use the same).

    The fields holding other settings: ``training`` (SinGAN-Seg training; model ``i`` is trained with ``seed + i``),
    ``options`` (sampling, finishing and style of the synthesis pipeline), ``pix2pix`` (pix2pix training, for
    ``generator="pix2pix"`` without a given model) and ``label_map`` (label values replaced on load, e.g. ``{3: 1}``:
    BRATS-2013 -> BraTS). Every other field is an option declared with its help and bounds
    (:mod:`monai_singanseg.options`); ``max_size`` None gets :func:`~monai_singanseg.synthesis.default_max_size`.
    """

    slices_per_case: int | None = option(
        1,
        low=1,
        high=10**5,
        help="models per volume on slices spread over the tumour (None: every tumour slice)",
    )
    samples_per_model: int = option(10, low=1, high=10**5, help="synthetic cases drawn from each model")
    max_size: int | None = option(
        None,
        low=8,
        high=4096,
        help=f"long side of the finest scale: of the slice (default {SLICE_MAX_SIZE}), or with --volume of the "
        f"model's box (default {VOLUME_MAX_SIZE})",
    )
    label_values: tuple[int, ...] = option(
        (0, 1, 2, 4), low=0, high=255, help="label values after --label-map, background first (default 0 1 2 4)"
    )
    label_map: dict[int, int] = field(default_factory=dict)
    channel_names: tuple[str, ...] | None = option(
        None, help="names of the image channels (default: from the files: BraTS modalities, RGB or ch<i>)"
    )
    channel_order: tuple[str, ...] | None = channel_order_option()
    val_fraction: float = val_fraction_option()
    training: SinGANSegSettings = field(default_factory=SinGANSegSettings)
    options: SinGANSegSynthesisSettings = field(default_factory=SinGANSegSynthesisSettings)
    seed: int = option(0, low=0, high=MAX_SEED, help="base seed of training and sampling (model i: seed + i)")
    memorisation_threshold: float = option(
        0.95,
        low=0.0,
        high=1.0,
        help="a sample whose nearest-neighbour correlation with its training data exceeds this is flagged",
    )
    claim_timeout: float = option(
        900.0,
        low=1.0,
        high=1e7,
        help="seconds without a heartbeat before another host's claim is taken over",
    )
    generator: str = option(
        "singanseg",
        choices=GENERATORS,
        help="singanseg: one model per tumour slice (or per volume with --volume); pix2pix: one model for the "
        "dataset, rendering --per-case deformed label volumes of every case",
    )
    pix2pix: Pix2PixSettings = field(default_factory=Pix2PixSettings)
    per_case: int = option(10, low=1, high=10**4, help="pix2pix renders per case")
    volume: bool = option(
        False,
        help=f"SinGAN-Seg: one 3D model per case, trained on its whole brain at isotropic voxels (--max-size on the "
        f"long side; by default {VOLUME_MAX_SIZE}, {VOLUME_DEFAULTS['base_features']} base features, "
        f"{VOLUME_DEFAULTS['iters']} iterations: about half an hour on 2 CPU cores), whose samples are whole volumes",
    )
    box: str | None = option(
        None,
        choices=VOLUME_BOXES,
        help=f"with --volume: the working box, the tumour with {TUMOUR_BOX_MARGIN} voxels around it (default: it "
        "reconstructs the tumour core in place, with finer voxels) or the whole brain (more anatomy, coarser voxels)",
    )

    def __post_init__(self) -> None:
        self.label_values = tuple(int(v) for v in self.label_values)
        self.label_map = {int(k): int(v) for k, v in self.label_map.items()}
        if self.channel_names is not None:
            self.channel_names = tuple(self.channel_names)
        if self.channel_order is not None:
            self.channel_order = tuple(str(c) for c in self.channel_order)
            if self.channel_names is not None:
                check_channel_order(self.channel_order, self.channel_names, "channel_order")
        check_options(self)
        if self.volume and self.generator != "singanseg":
            raise ValueError(
                f"volume (one 3D model per case) is a SinGAN-Seg setting, not one of generator={self.generator!r}"
            )
        if self.box not in (None, "brain") and not self.volume:
            raise ValueError(f"box {self.box!r}: other than 'brain' only with volume (3D models)")
        if self.box is None:
            self.box = default_box(self.volume)
        if self.max_size is None:
            self.max_size = default_max_size(self.volume)
        unknown = sorted(set(self.label_map.values()) - set(self.label_values))
        if unknown:
            raise ValueError(f"label map targets {unknown} are not label values {list(self.label_values)}")

    @property
    def description(self) -> str:
        """The datalist's description of a dataset made with these settings."""
        return DESCRIPTIONS["singanseg-3d" if self.volume else self.generator]
