"""Atomic file writing and output-folder guards: nothing half-written, nothing overwritten by accident."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "hash_file",
    "atomic_path",
    "atomic_paths",
    "check_outputs_free",
    "check_output_folder",
    "remove_stale_temps",
    "OutputExistsError",
]


class OutputExistsError(FileExistsError):
    """Raised when an output would replace an existing file and overwriting was not asked for."""


def hash_file(path: str | os.PathLike, digest: Any = None) -> Any:
    """Feed the bytes of ``path`` into ``digest`` (default: a new SHA-256) in 1 MiB blocks; returns the digest."""
    digest = hashlib.sha256() if digest is None else digest
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest


def _temp_pattern(dest: Path) -> str:
    return os.path.join(glob.escape(str(dest.parent)), f".{glob.escape(dest.name)}.*.tmp*")


def remove_stale_temps(dest: str | os.PathLike) -> list[Path]:
    """Remove temporary files that a killed writer of ``dest`` left beside it (``.<name>.XXXX.tmp<suffix>``).

    Returns:
        The removed files.
    """
    removed = []
    for name in glob.glob(_temp_pattern(Path(dest))):
        with contextlib.suppress(OSError):
            os.unlink(name)
            removed.append(Path(name))
    return removed


def _new_temp(dest: Path, suffix: str | None) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest)
    if suffix is None:
        suffix = "".join(dest.suffixes)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{suffix}", dir=dest.parent)
    os.close(fd)
    return Path(tmp_name)


def _publish(tmp: Path, dest: Path) -> None:
    # mkstemp creates 0600 files; give the result the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, dest)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The temporary file lives in the destination folder so that the final ``os.replace`` is atomic:
    readers see either the old file or the complete new one, never a truncated file. Temporary files of
    ``path`` that a killed process left behind are removed first.

    Args:
        path: the final destination.
        suffix: suffix of the temporary file (defaults to the destination's full suffix, so that
            writers that pick a format by extension, e.g. ``.nii.gz``, still work).
    """
    with atomic_paths([path], suffix) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike], suffix: str | None = None) -> Iterator[list[Path]]:
    """:func:`atomic_path` for several files written together (e.g. the files of one case).

    Every file is written to its temporary path first; only when the block succeeds are they moved onto
    their destinations, one ``os.replace`` each right after the other, so a failure while writing leaves none
    of them behind.
    """
    dests = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        temps = [_new_temp(d, suffix) for d in dests]
        yield temps
        for tmp, dest in zip(temps, dests):
            _publish(tmp, dest)
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()


def check_output_folder(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Raise a clear error if ``folder`` cannot be an output folder (a file, or not writable); returns it.

    Raises:
        NotADirectoryError: ``folder`` (or a parent) is a file.
        PermissionError: the folder (or the nearest existing parent) is not writable.
    """
    dest = Path(folder)
    probe = dest
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotADirectoryError(f"{what} {dest}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {dest}: {probe} is not writable")
    return dest


def check_outputs_free(paths: Sequence[str | os.PathLike], overwrite: bool = False) -> None:
    """Raise before any writing if one of ``paths`` cannot be written: its folder cannot hold it (a file on its way,
    or not writable), it is a folder itself, or it exists and ``overwrite`` is False. Every command checks its
    outputs here, so each of these is one clear message naming the path.

    Args:
        paths: every file an operation is about to write.
        overwrite: allow replacing existing files.

    Raises:
        NotADirectoryError: a path's folder (or one of its parents) is a file.
        PermissionError: a path's folder (or the nearest existing parent) is not writable.
        IsADirectoryError: a path is an existing folder.
        OutputExistsError: naming the first existing file.
    """
    for folder in dict.fromkeys(Path(p).parent for p in paths):
        check_output_folder(folder)
    folders = [str(p) for p in paths if Path(p).is_dir()]
    if folders:
        raise IsADirectoryError(f"{folders[0]} is a folder; the output there is a file: give a file name")
    if overwrite:
        return
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputExistsError(f"{existing[0]} already exists{more}; pass overwrite=True / --overwrite to replace it.")
