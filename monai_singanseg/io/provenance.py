"""Provenance of synthetic files: every file we write for a synthetic case says that it is synthetic, which package
and version made it, with which generator and from which source case, so that a volume copied out of its folder never
passes for a patient's scan.

Where it is kept:

- NIfTI: ``intent_name`` (16 bytes) is ``"synthetic"`` and ``descrip`` (80 bytes) reads
  ``SYNTHETIC monai-singanseg <version> <generator> from <source>`` (the source cut to fit);
- PNG: the text chunks ``Software``, ``Description`` and ``monai_singanseg`` (the whole record as JSON);
- JSON: datalist entries (``synthetic``, ``generator``, ``source``) and the exported datasets' own JSON files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGE",
    "SYNTHETIC_INTENT",
    "provenance_record",
    "nifti_descrip",
    "png_text",
    "read_provenance",
]

PACKAGE = "monai-singanseg"
#: the NIfTI ``intent_name`` of every synthetic volume we write.
SYNTHETIC_INTENT = "synthetic"
_DESCRIP_BYTES = 80
_PNG_KEY = "monai_singanseg"


def provenance_record(generator: str, source: str | None = None) -> dict[str, Any]:
    """The provenance of a synthetic case: ``{"synthetic": True, "package", "version", "generator", "source"}``.

    Args:
        generator: what made it (``"singanseg"``, ``"pix2pix-unet"``, ``"pix2pix-spade"``).
        source: the real case (or slice) it was made from, when there is one.
    """
    from monai_singanseg import __version__

    record: dict[str, Any] = {"synthetic": True, "package": PACKAGE, "version": str(__version__)}
    record["generator"] = str(generator)
    if source is not None:
        record["source"] = str(source)
    return record


def nifti_descrip(record: Mapping[str, Any]) -> str:
    """The NIfTI ``descrip`` text of a provenance record (ASCII, at most 80 bytes; the source name is cut to fit)."""
    head = f"SYNTHETIC {record['package']} {record['version']} {record['generator']}"
    source = record.get("source")
    text = head if source is None else f"{head} from {source}"
    return text.encode("ascii", "replace")[:_DESCRIP_BYTES].decode("ascii")


def png_text(record: Mapping[str, Any]) -> dict[str, str]:
    """The PNG text chunks of a provenance record."""
    return {
        "Software": f"{record['package']} {record['version']}",
        "Description": nifti_descrip(record),
        _PNG_KEY: json.dumps(dict(record), sort_keys=True),
    }


def read_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The provenance a synthetic file carries, or None for a file that does not say it is synthetic.

    NIfTI: ``{"synthetic": True, "descrip": ...}`` with package, version, generator and source parsed from the
    ``descrip`` text (the source may be cut short); PNG: the recorded JSON.
    """
    p = Path(path)
    if p.name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        header = nib.load(str(p)).header
        intent = header["intent_name"].tobytes().split(b"\0")[0].decode("ascii", "replace")
        descrip = header["descrip"].tobytes().split(b"\0")[0].decode("ascii", "replace")
        if intent != SYNTHETIC_INTENT or not descrip.startswith("SYNTHETIC "):
            return None
        words = descrip.split(" ", 4)
        record: dict[str, Any] = {"synthetic": True, "descrip": descrip}
        record.update(zip(("package", "version", "generator"), words[1:4]))
        if len(words) > 4 and words[4].startswith("from "):
            record["source"] = words[4][len("from ") :]
        return record
    if p.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(p) as img:
            text = img.text.get(_PNG_KEY) if hasattr(img, "text") else None
        return json.loads(text) if text else None
    return None
