from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from monai_singanseg.data import load_image
from monai_singanseg.transforms import (
    BRATS2023_LABEL_VALUES,
    BinarizeMask,
    IndexToLabel,
    IndexToOneHot,
    IndexToOneHotd,
    LabelToIndex,
    LabelToIndexd,
    LabelValueError,
    OneHotToIndex,
)


@pytest.fixture(scope="module")
def seg(brats_case_dir):
    return load_image(brats_case_dir / "TCGA-FG-6692_seg.nii.gz", what="label")


def test_brats_values_to_indices_and_back_are_exact(seg):
    idx = LabelToIndex()(seg)
    assert sorted(torch.unique(idx).tolist()) == [0, 1, 2, 3]
    assert int((idx == 3).sum()) == int((seg == 4).sum())
    back = IndexToLabel()(idx)
    assert torch.equal(back.to(torch.int64), seg.as_tensor().to(torch.int64))
    assert torch.equal(back.affine, seg.affine)  # metadata travels


def test_one_hot_and_index_are_exact_inverses(seg):
    idx = LabelToIndex()(seg)
    oh = IndexToOneHot(4)(idx)
    assert oh.shape[0] == 3 and oh.dtype == torch.float32
    assert torch.equal(OneHotToIndex()(oh).as_tensor(), idx.as_tensor())
    full = IndexToOneHot(4, include_background=True)(idx)
    assert torch.equal(full.sum(0), torch.ones_like(full[0]))
    assert torch.equal(OneHotToIndex(include_background=True)(full).as_tensor(), idx.as_tensor())


def test_dictionary_twins_invert(seg):
    d = {"label": seg}
    t = LabelToIndexd("label")
    out = t(d)
    assert torch.equal(t.inverse(out)["label"].to(torch.int64), seg.as_tensor().to(torch.int64))
    oh = IndexToOneHotd("label", num_classes=4)
    assert torch.equal(oh.inverse(oh(out))["label"].as_tensor(), out["label"].as_tensor())


def test_soft_channels_below_threshold_are_background():
    soft = torch.tensor([[[0.2, 0.7]], [[0.4, 0.1]], [[0.1, 0.6]]])  # (3, 1, 2)
    assert OneHotToIndex(threshold=0.5)(soft).tolist() == [[[0, 1]]]


def test_unknown_label_values_are_rejected(seg):
    bad = seg.clone()
    bad[0, 0, 0, 0] = 5
    with pytest.raises(LabelValueError, match=r"\[5\]"):
        LabelToIndex()(bad)
    # BraTS 2023 uses 3 for enhancing tumour: 4 is then unknown
    with pytest.raises(LabelValueError, match=r"\[4\]"):
        LabelToIndex(BRATS2023_LABEL_VALUES)(seg)
    assert torch.unique(LabelToIndex(BRATS2023_LABEL_VALUES)(torch.tensor([[0, 1, 2, 3]]))).tolist() == [0, 1, 2, 3]


def test_jpeg_mask_binarises_at_127(shared_data):
    path = sorted((shared_data / "kvasir_seg" / "masks").glob("*.jpg"))[0]
    mask = load_image(path, spatial_ndim=2, what="label")
    binary = BinarizeMask(127)(mask)
    assert binary.shape[0] == 1 and set(torch.unique(binary).tolist()) == {0, 1}
    raw = np.asarray(Image.open(path).convert("L"))
    # JPEG noise sits near 0 and 255: thresholding the grey image gives (almost) the same mask
    assert abs(float(binary.float().mean()) - float((raw > 127).mean())) < 0.01


def test_index_out_of_range_is_rejected():
    with pytest.raises(LabelValueError):
        IndexToLabel()(torch.tensor([[4]]))
    with pytest.raises(LabelValueError):
        IndexToOneHot(4)(torch.tensor([[[7]]]))
