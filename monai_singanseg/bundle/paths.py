"""The default ``bundle_root`` of our bundles (``--bundle_root DIR`` on the command line replaces it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["bundle_root"]


def _is_bundle(folder: Path, name: str) -> bool:
    meta = folder / "configs" / "metadata.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("name") == name
    except (OSError, ValueError):
        return False


def bundle_root(name: str) -> str:
    """The default ``bundle_root`` of bundle ``name`` (a config's ``--bundle_root DIR`` replaces it).

    MONAI's bundle configs name their own folder in ``bundle_root``. Ours default to the first of: the current
    folder (run from inside the bundle, as the model zoo does), ``./bundles/<name>`` (a repository checkout), and
    the ``bundles/`` folder beside the installed package (an editable install). From anywhere else pass
    ``--bundle_root DIR``, as for any MONAI bundle.

    Raises:
        FileNotFoundError: the bundle cannot be found; pass ``--bundle_root DIR``.
    """
    candidates = [Path.cwd(), Path.cwd() / "bundles" / name, Path(__file__).resolve().parents[2] / "bundles" / name]
    for folder in candidates:
        if _is_bundle(folder, name):
            return os.fspath(folder)
    raise FileNotFoundError(
        f"cannot find the '{name}' bundle (looked in {', '.join(map(str, candidates))}); pass --bundle_root DIR"
    )
