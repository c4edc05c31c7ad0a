"""Putting one case's files in an export: each file copied, linked or rewritten (a label with new values, a synthetic
file that lacks its provenance) under a temporary name, then all moved into place together, so an interrupted export
never leaves a half-written case."""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from monai_singanseg.io.atomic import remove_stale_temps
from monai_singanseg.io.provenance import SYNTHETIC_INTENT, nifti_descrip, read_provenance

__all__ = ["FileJob", "copy_job", "nifti_job", "publish_files"]

#: a file to make: its destination and the function that writes it to a given (temporary) path.
FileJob = tuple[Path, Callable[[Path], None]]


def _place(src: Path, tmp: Path, link: bool) -> None:
    """Hard-link ``src`` at ``tmp``, else symlink it (``link``; across filesystems), else copy it."""
    if link:
        try:
            os.link(src, tmp)
            return
        except OSError:
            try:
                os.symlink(os.path.abspath(src), tmp)
                return
            except OSError:
                pass
    shutil.copyfile(src, tmp)


def copy_job(src: Path, dest: Path, link: bool = False) -> FileJob:
    """``dest`` as a copy of ``src`` (or a link to it)."""
    return dest, lambda tmp: _place(src, tmp, link)


#: NIfTI-1 header: its size, and the byte ranges of ``descrip`` and ``intent_name``.
_NIFTI1_HEADER, _DESCRIP, _INTENT = 348, slice(148, 228), slice(328, 344)


def _add_provenance(src: Path, tmp: Path, provenance: Mapping[str, Any]) -> None:
    """Copy the NIfTI-1 file ``src`` with ``intent_name`` and ``descrip`` set to ``provenance``; every other byte (the
    voxels, their scaling, the geometry) is the source's.

    Raises:
        ValueError: ``src`` is not a NIfTI-1 file.
    """
    gz = src.name.lower().endswith(".gz")
    raw = gzip.decompress(src.read_bytes()) if gz else src.read_bytes()
    if len(raw) < _NIFTI1_HEADER or _NIFTI1_HEADER not in (
        int.from_bytes(raw[:4], "little"),
        int.from_bytes(raw[:4], "big"),
    ):
        raise ValueError(f"{src} is not a NIfTI-1 file: its provenance cannot be added")
    header = bytearray(raw[:_NIFTI1_HEADER])
    header[_DESCRIP] = nifti_descrip(provenance).encode("ascii").ljust(80, b"\0")
    header[_INTENT] = SYNTHETIC_INTENT.encode("ascii").ljust(16, b"\0")
    data = bytes(header) + raw[_NIFTI1_HEADER:]
    tmp.write_bytes(gzip.compress(data, compresslevel=6) if gz else data)


def _relabel(src: Path, tmp: Path, lut: Mapping[int, int], provenance: Mapping[str, Any] | None) -> None:
    """Write the label ``src`` with its values replaced by ``lut`` (uint8), its header and affine otherwise kept."""
    img = nib.load(str(src))
    values = np.round(np.asanyarray(img.dataobj)).astype(np.int64)
    mapped = values.copy()
    for k, v in lut.items():
        mapped[values == k] = v
    out = nib.Nifti1Image(mapped.astype(np.uint8), None, img.header.copy())
    out.set_data_dtype(np.uint8)
    out.header.set_slope_inter(1.0, 0.0)
    out.set_sform(img.get_sform(), int(img.header["sform_code"]))
    out.set_qform(img.get_qform(), int(img.header["qform_code"]))
    if provenance is not None:
        out.header["intent_name"] = SYNTHETIC_INTENT.encode("ascii")
        out.header["descrip"] = nifti_descrip(provenance).encode("ascii")
    nib.save(out, str(tmp))


def nifti_job(
    src: Path,
    dest: Path,
    lut: Mapping[int, int] | None = None,
    provenance: Mapping[str, Any] | None = None,
    link: bool = False,
) -> FileJob:
    """``dest`` from the NIfTI file ``src``: its label values replaced by ``lut`` (a label) and, for a synthetic file
    that does not say so yet, ``provenance`` added to its header; voxels, header and affine otherwise as the source's.
    A file that needs no change is copied (or linked)."""
    identity = lut is None or all(int(k) == int(v) for k, v in lut.items())
    needs_provenance = provenance is not None and read_provenance(src) is None
    if not identity:
        return dest, lambda tmp: _relabel(src, tmp, lut, provenance if needs_provenance else None)
    if needs_provenance:
        return dest, lambda tmp: _add_provenance(src, tmp, provenance)
    return copy_job(src, dest, link)


def _temp_of(dest: Path) -> Path:
    return dest.parent / f".{dest.name}.{secrets.token_hex(4)}.tmp{''.join(dest.suffixes[-2:])}"


def publish_files(jobs: Sequence[FileJob]) -> None:
    """Make every file of ``jobs`` under a temporary name beside its destination, then move them all into place; if
    one fails, none is left behind."""
    temps: list[Path] = []
    try:
        for dest, make in jobs:
            dest.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(dest)
            temps.append(_temp_of(dest))
            make(temps[-1])
        for tmp, (dest, _) in zip(temps, jobs):
            os.replace(tmp, dest)
    finally:
        for tmp in temps:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
