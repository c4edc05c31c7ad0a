"""Atomic file writing and output-folder guards: nothing half-written, nothing overwritten by accident."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["atomic_path", "check_outputs_free", "OutputExistsError"]


class OutputExistsError(FileExistsError):
    """Raised when an output would replace an existing file and overwriting was not asked for."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The temporary file lives in the destination folder so that the final ``os.replace`` is atomic:
    readers see either the old file or the complete new one, never a truncated file.

    Args:
        path: the final destination.
        suffix: suffix of the temporary file (defaults to the destination's full suffix, so that
            writers that pick a format by extension, e.g. ``.nii.gz``, still work).
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(dest.suffixes)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_outputs_free(paths: Sequence[str | os.PathLike], overwrite: bool = False) -> None:
    """Raise before any writing if one of ``paths`` exists and ``overwrite`` is False.

    Args:
        paths: every file an operation is about to write.
        overwrite: allow replacing existing files.

    Raises:
        OutputExistsError: naming the first existing file.
    """
    if overwrite:
        return
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(f"{existing[0]} already exists{more}; pass overwrite=True / --overwrite to replace it.")
