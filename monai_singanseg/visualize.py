"""PNG contact sheets: rows of (image channels with label overlay), for looking at what the product makes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.utils import convert_to_numpy
from PIL import Image, ImageDraw

from monai_singanseg.io.atomic import atomic_path, check_outputs_free

__all__ = ["LABEL_COLOURS", "contact_sheet", "overlay"]

#: RGB colour of class index 1, 2, 3, ... (BraTS: necrotic core red, oedema green, enhancing yellow).
LABEL_COLOURS: tuple[tuple[int, int, int], ...] = ((230, 40, 40), (40, 200, 60), (250, 220, 30), (60, 120, 250))


def _display(channel: np.ndarray) -> np.ndarray:
    """MONAI arrays are (x, y); show rows = y, columns = x."""
    return channel.T


def overlay(gray_or_rgb: np.ndarray, label: np.ndarray | None, alpha: float = 0.45) -> np.ndarray:
    """Blend class colours onto an image.

    Args:
        gray_or_rgb: ``(H, W)`` in [0, 1] or ``(H, W, 3)`` in [0, 1].
        label: ``(H, W)`` class indices, or None.
        alpha: opacity of the label colours.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    rgb = np.repeat(gray_or_rgb[..., None], 3, axis=-1) if gray_or_rgb.ndim == 2 else gray_or_rgb
    rgb = rgb.astype(np.float64)
    if label is not None:
        for cls in range(1, int(label.max()) + 1 if label.size else 1):
            colour = np.array(LABEL_COLOURS[(cls - 1) % len(LABEL_COLOURS)], dtype=np.float64) / 255.0
            where = label == cls
            rgb[where] = (1 - alpha) * rgb[where] + alpha * colour
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def contact_sheet(
    path: str | os.PathLike,
    images: Sequence[Any],
    labels: Sequence[Any] | None = None,
    channel_names: Sequence[str] | None = None,
    rgb: bool = False,
    row_names: Sequence[str] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a PNG grid: one row per sample, one column per channel (or one RGB column), label overlaid.

    Args:
        path: the PNG file.
        images: each ``(C, H, W)`` in [-1, 1] (MONAI (x, y) layout, as loaded).
        labels: each ``(1, H, W)`` class indices, or None for no overlay.
        channel_names: column titles.
        rgb: show the 3 channels as one colour image instead of 3 grey columns.
        row_names: row titles (e.g. sample names).
        overwrite: replace an existing file.
    """
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    dest = Path(path)
    check_outputs_free([dest], overwrite)
    rows = []
    for i, image in enumerate(images):
        arr = (convert_to_numpy(image, dtype=np.float64).clip(-1.0, 1.0) + 1.0) / 2.0
        lab = None if labels is None or labels[i] is None else _display(convert_to_numpy(labels[i])[0])
        if rgb:
            cells = [overlay(np.stack([_display(c) for c in arr[:3]], axis=-1), lab)]
        else:
            cells = [overlay(_display(c), None) for c in arr] + (
                [overlay(_display(arr[0]) * 0.6, lab)] if lab is not None else []
            )
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0))) for c in cells], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    label_w = 110 if row_names else 0
    header = 16 if channel_names else 0
    sheet = Image.new("RGB", (width + label_w, header + sum(r.shape[0] for r in rows)), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    y = header
    for i, r in enumerate(rows):
        sheet.paste(Image.fromarray(r), (label_w, y))
        if row_names:
            name = str(row_names[i])
            draw.text((4, y + 4), name if len(name) <= 18 else "…" + name[-17:], fill=(255, 255, 255))
        y += r.shape[0]
    if channel_names:
        cell_w = rows[0].shape[1] // max(1, len(channel_names) + (0 if rgb or labels is None else 1))
        names = list(channel_names) + ([] if rgb or labels is None else ["label"])
        for j, name in enumerate(names):
            draw.text((label_w + j * cell_w + 4, 2), str(name), fill=(255, 255, 255))
    with atomic_path(dest) as tmp:
        sheet.save(tmp, format="PNG")
    return dest
