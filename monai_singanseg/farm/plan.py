"""The work of a dataset synthesis: one entry per (case, tumour slice), each becoming one SinGAN-Seg model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monai_singanseg.data import case_name, load_case
from monai_singanseg.io.names import safe_name
from monai_singanseg.options import jsonable
from monai_singanseg.synthesis import is_2d_image_input
from monai_singanseg.transforms.slices import axial_axis, spread_order, tumour_area_per_slice

__all__ = ["WorkEntry", "plan_work"]


@dataclass
class WorkEntry:
    """One model to train: a slice of a case (``slice_index`` None: a 2D picture).

    Args:
        id: unique, file-name safe (``<case>_z<slice>``).
        case: the case's name.
        image: its image path(s).
        label: its label path.
        slice_index: the axial slice (None: 2D).
        error: why the case cannot be used (the entry is then recorded as failed, never trained).
    """

    id: str
    case: str
    image: Any
    label: str
    slice_index: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return jsonable(self)


def plan_work(
    items: Sequence[Mapping[str, Any]],
    slices_per_case: int | None = 1,
    label_values: Sequence[int] = (0, 1, 2, 4),
    label_map: Mapping[int, int] | None = None,
    pool_fraction: float = 0.25,
    whole_cases: bool = False,
) -> list[WorkEntry]:
    """One entry per chosen tumour slice of every case (a case that cannot be loaded gets one failed entry).

    Slices are chosen as in the evaluation: the largest tumour section first, then farthest-point along the axial
    axis among slices whose tumour covers at least ``pool_fraction`` of the largest (``slices_per_case`` None: every
    tumour slice).

    Args:
        items: datalist entries (``image`` path or paths, ``label``, optional ``name``, optional ``slices``: the axial
            slice indices to use for that case, instead of ``slices_per_case`` chosen ones).
        slices_per_case: models per volume (None: all tumour slices); a 2D picture gives one.
        label_values: label values after ``label_map``.
        label_map: label values replaced on load (e.g. ``{3: 1}``).
        pool_fraction: the smallest tumour section considered, as a fraction of the largest.
        whole_cases: one entry per case (id: the case name, no slice), for generators that render whole volumes.
    """
    entries: list[WorkEntry] = []
    names: set[str] = set()
    for item in items:
        name = safe_name(case_name(item))
        while name in names:
            name = f"{name}_"
        names.add(name)
        image, label = item.get("image"), str(item.get("label", ""))
        rgb = is_2d_image_input(image)
        try:
            if not label:
                raise ValueError("the case has no label")
            case = load_case({"image": image, "label": label}, label_values, 2 if rgb else 3, label_map)
            if not bool((case["label"] > 0).any()):
                raise ValueError(f"{label}: the label holds no tumour")
        except (ValueError, OSError) as exc:
            entries.append(WorkEntry(f"{name}_failed", name, image, label, None, str(exc)))
            continue
        if rgb or whole_cases:
            entries.append(WorkEntry(name, name, image, label))
            continue
        axis = axial_axis(case["label"].affine)
        areas = tumour_area_per_slice(case["label"], axis)
        indices = [int(i) for i in (areas > 0).nonzero().flatten()]
        if item.get("slices") is not None:  # the datalist names the slices
            chosen = [int(z) for z in item["slices"]]
            unusable = sorted(set(chosen) - set(indices))
            if unusable:
                entries.append(
                    WorkEntry(
                        f"{name}_failed",
                        name,
                        image,
                        label,
                        None,
                        f"{label}: slices {unusable} hold no tumour (or lie outside the volume)",
                    )
                )
                continue
        elif slices_per_case is None:
            chosen = indices
        else:
            order = spread_order(indices, [float(areas[i]) for i in indices], pool_fraction)
            chosen = [indices[p] for p in order[:slices_per_case]]
        for z in sorted(chosen):
            entries.append(WorkEntry(f"{name}_z{z:03d}", name, image, label, z))
    return entries
