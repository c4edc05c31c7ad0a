"""Names that become parts of file paths: one path component from a safe character set, never a traversal.

Every string that ends up in a file name (case names, channel/modality names, a model's source name) can
come from a stranger: a model file, a datalist, a request or an option. :func:`check_name` is the one check.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["NameError_", "SAFE_NAME", "check_name", "is_safe_name", "safe_name", "inside"]

#: letters, digits, ``_``, ``-``, ``.`` and ``+``; starts with a letter or digit; at most 128 characters.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,127}$")


class NameError_(ValueError):  # noqa: N801 - ``NameError`` is a builtin
    """A string that would become part of a file name is not a safe single path component."""


def is_safe_name(value: object) -> bool:
    """True for a string that is one safe path component (see :data:`SAFE_NAME`; no ``..``)."""
    return isinstance(value, str) and bool(SAFE_NAME.match(value)) and ".." not in value


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is one safe path component, else raise naming ``what`` and the rule.

    Args:
        value: the candidate name.
        what: what it is, for the message (e.g. ``"model file: source_name"``).

    Raises:
        NameError_: not a string, empty, a path, ``..``, or characters outside ``[A-Za-z0-9_.+-]``.
    """
    if not is_safe_name(value):
        raise NameError_(
            f"{what} {value!r} is not a safe file-name part: use 1-128 characters from letters, digits, '_', '-', '.', "
            "'+', starting with a letter or digit, without '..' or path separators"
        )
    return str(value)


def safe_name(value: object, default: str = "case") -> str:
    """A safe name made from ``value`` (e.g. a case name taken from the user's own file name): characters outside
    ``[A-Za-z0-9_.+-]`` become ``_``, ``..`` becomes ``_``, leading punctuation is dropped, at most 128 characters."""
    text = re.sub(r"[^A-Za-z0-9_.+\-]", "_", str(value)).replace("..", "_")
    text = re.sub(r"^[^A-Za-z0-9]+", "", text)[:128]
    return text if is_safe_name(text) else default


def inside(folder: str | os.PathLike, path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` if it resolves inside ``folder`` (symbolic links followed), else raise naming both.

    Raises:
        NameError_: ``path`` would land outside ``folder``.
    """
    root = os.path.realpath(folder)
    target = os.path.realpath(path)
    if os.path.commonpath([root, target]) != root or target == root:
        raise NameError_(f"{what} {path} would be written outside the output folder {folder}; refused")
    return Path(path)
