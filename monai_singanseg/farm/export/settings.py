"""What an export does: one settings dataclass, every option declared once."""

from __future__ import annotations

from dataclasses import dataclass, field

from monai_singanseg.farm.datalists import channel_order_option, val_fraction_option
from monai_singanseg.io.names import check_name
from monai_singanseg.options import MAX_SEED, Settings, check_options, option

__all__ = ["ExportSettings", "FORMATS", "RECORD_FILE"]

FORMATS = ("nnunet", "monai")
#: the record of an export in its folder (what a resumed export compares).
RECORD_FILE = "export.json"


@dataclass
class ExportSettings(Settings):
    """How a synthetic dataset (and real cases beside it) is written for a segmentation trainer.

    ``label_map`` (label values replaced in real cases, e.g. ``{3: 1}`` for BRATS-2013 labels) is given on the command
    line as ``--label-map``; every other field is an option.
    """

    format: str = option(
        "nnunet", choices=FORMATS, help="nnunet: an nnU-Net v2 raw dataset; monai: a MONAI decathlon datalist"
    )
    dataset_id: int = option(500, low=1, high=999, help="nnunet: the dataset's number (DatasetNNN_Name)")
    name: str = option("SinGANSeg", help="the dataset's name (nnunet: DatasetNNN_<name>; monai: its datalist's name)")
    channel_order: tuple[str, ...] | None = channel_order_option()
    val_fraction: float = val_fraction_option()
    classes: bool = option(
        False, help="nnunet: BraTS labels as classes, not as nnU-Net's regions (whole tumour, tumour core, enhancing)"
    )
    link: bool = option(
        False, help="hard-link (else symlink) the files that need no change instead of copying them, where possible"
    )
    seed: int = option(0, low=0, high=MAX_SEED, help="seed of the validation split and the folds")
    label_map: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.channel_order is not None:
            self.channel_order = tuple(str(c) for c in self.channel_order)
        self.label_map = {int(k): int(v) for k, v in self.label_map.items()}
        check_options(self)
        check_name(self.name, "--name (the dataset's name)")
