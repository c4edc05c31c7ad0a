"""Shared fixtures: the real third-party data in ../shared/data (see its README.md)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(
    os.environ.get("MONAI_SINGANSEG_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (a server's, or a torchrun job's ``--master_port``: two jobs of parallel test
    workers must not meet on torchrun's default 29500)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder; CI clones the repo with ``shared/`` beside it."""
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(f"{SHARED_DATA}: shared data not found (set MONAI_SINGANSEG_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def brats_case_dir(shared_data: Path) -> Path:
    """TCGA-FG-6692: a BraTS-space case with labels 0, 1, 2 and 4."""
    return shared_data / "brats_tcga" / "TCGA-FG-6692"


@pytest.fixture(scope="session")
def brats_item(brats_case_dir: Path) -> dict:
    """Datalist entry of TCGA-FG-6692."""
    name = brats_case_dir.name
    return {
        "image": [str(brats_case_dir / f"{name}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")],
        "label": str(brats_case_dir / f"{name}_seg.nii.gz"),
        "name": name,
    }


@pytest.fixture(scope="module")
def demo():
    """The embedded demo case, loaded, with its brain mask (``"brain"``, uint8)."""
    from monai_singanseg.data import demo_case, load_case
    from monai_singanseg.transforms.intensity import foreground_mask

    case = load_case(demo_case())
    case["brain"] = foreground_mask(case["image"].as_tensor()).to(torch.uint8)
    return case


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The tests' tiny convolutions run fastest (and stay fast on a busy 2-core CI machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use a real MONAI Label server (the ``server`` fixtures) are marked ``server`` and ``slow``."""
    for item in items:
        if "server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.server)
            item.add_marker(pytest.mark.slow)
