"""Finding a bundle's folder from the place the user runs ``python -m monai.bundle`` in."""

from __future__ import annotations

import json
import os
import sys
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
    """The folder of bundle ``name``.

    MONAI 1.6 does not tell a config where its own file lies, so this looks, in order, at the folder of
    the ``--config_file`` on the command line, the current folder, ``./bundles/<name>`` (a repository
    checkout) and the ``bundles/`` folder beside the installed package (an editable install).

    Raises:
        FileNotFoundError: the bundle cannot be found; pass ``--bundle_root DIR``.
    """
    candidates: list[Path] = []
    argv = sys.argv
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "--config_file" and i + 1 < len(argv) else None
        if arg.startswith("--config_file="):
            value = arg.split("=", 1)[1]
        if value:
            first = value.strip("[]'\" ").split(",")[0].strip("'\" ")
            candidates.append(Path(first).resolve().parent.parent)
    candidates += [Path.cwd(), Path.cwd() / "bundles" / name, Path(__file__).resolve().parents[2] / "bundles" / name]
    for folder in candidates:
        if _is_bundle(folder, name):
            return os.fspath(folder)
    raise FileNotFoundError(f"cannot find the '{name}' bundle (looked in {', '.join(map(str, candidates))}); pass --bundle_root DIR")
