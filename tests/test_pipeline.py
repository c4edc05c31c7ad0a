"""The foundation's transforms compose into an ordinary MONAI pipeline over a datalist file."""

from __future__ import annotations

import torch
from monai.data import Dataset, load_decathlon_datalist
from monai.transforms import Compose

from monai_singanseg.data import LoadCased, demo_case
from monai_singanseg.io.writers import write_datalist
from monai_singanseg.transforms import (
    ExtractTumourSlicesd,
    IndexToOneHotd,
    IntensityToTanhRanged,
    SquareForegroundCropd,
)


def test_datalist_to_gan_ready_slices(tmp_path):
    path = write_datalist(tmp_path / "cases.json", [demo_case()])
    items = load_decathlon_datalist(str(path), data_list_key="training")
    pipeline = Compose(
        [
            LoadCased(("image", "label")),
            ExtractTumourSlicesd(num_slices=2),
            SquareForegroundCropd(spatial_size=64),
            IntensityToTanhRanged("image"),
            IndexToOneHotd("label", num_classes=4),
        ]
    )
    slices = Dataset(items, pipeline)[0]
    assert isinstance(slices, list) and len(slices) == 2
    for s in slices:
        assert s["image"].shape == (4, 64, 64) and s["label"].shape == (3, 64, 64)
        assert float(s["image"].min()) >= -1.0 and float(s["image"].max()) <= 1.0
        assert s["label"].sum() > 0  # the tumour survived cropping and resizing
        assert "intensity_stats" in s["image"].meta
        # the slice still knows where it lies in the world: its z origin is its slice position
        assert float(s["image"].affine[2, 3]) == 78 + s["slice_index"]
    assert torch.equal(slices[0]["image"].affine, slices[0]["label"].affine)
