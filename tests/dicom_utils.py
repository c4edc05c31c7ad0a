"""Write a volume as a real DICOM series with SimpleITK (one file per slice, full geometry tags)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk


def write_dicom_series(
    image: sitk.Image, folder: Path, series_uid: str | None = None, shuffle_names: bool = True
) -> list[Path]:
    """Write ``image`` (3D, int16) as one DICOM file per slice; file names deliberately not in slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    now_date, now_time = time.strftime("%Y%m%d"), time.strftime("%H%M%S")
    uid = series_uid or f"1.2.826.0.1.3680043.2.1125.{int(time.time() * 1e6) % 10**12}"
    direction = image.GetDirection()
    iop = "\\".join(map(str, (direction[0], direction[3], direction[6], direction[1], direction[4], direction[7])))
    n = image.GetDepth()
    order = np.random.default_rng(0).permutation(n) if shuffle_names else np.arange(n)
    paths = []
    for i in range(n):
        sl = image[:, :, i]
        tags = {
            "0008|0060": "MR",
            "0008|0020": now_date,
            "0008|0030": now_time,
            "0020|000d": uid + ".1",
            "0020|000e": uid,
            "0020|0037": iop,
            "0020|0032": "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, i)))),
            "0020|0013": str(i + 1),
            "0018|0050": str(image.GetSpacing()[2]),
            "0028|0030": f"{image.GetSpacing()[1]}\\{image.GetSpacing()[0]}",
        }
        for k, v in tags.items():
            sl.SetMetaData(k, v)
        path = folder / f"IM{int(order[i]):04d}.dcm"
        writer.SetFileName(str(path))
        writer.Execute(sl)
        paths.append(path)
    return paths
