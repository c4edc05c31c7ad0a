"""Claiming work entries on a shared folder: atomic claims, heartbeats, results; safe for many processes and nodes.

A claim is a file created with ``O_CREAT | O_EXCL`` (atomic on local and network file systems), so exactly one
process wins an entry. The owner touches it while it works (a heartbeat). A claim whose owner is gone (a dead
process on this host, or no heartbeat for ``timeout`` seconds) is taken over: the claim is first moved aside
with ``os.rename``, which only one process can do, so a stale claim too goes to exactly one new owner.
A finished entry has a result record (written atomically); nothing with a result is ever done again.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from monai_singanseg.io.atomic import atomic_path
from monai_singanseg.io.names import check_name

__all__ = ["WorkDir"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


class WorkDir:
    """The bookkeeping folders of a dataset synthesis: ``claims/``, ``done/`` (results) and ``failed/``.

    Args:
        root: the synthesis output folder.
        owner: who claims (rank, run id); stored in claims and results.
        timeout: seconds without a heartbeat after which another host's claim counts as abandoned.
    """

    def __init__(self, root: str | os.PathLike, owner: dict[str, Any], timeout: float = 900.0) -> None:
        self.root = Path(root)
        self.owner = {**owner, "host": socket.gethostname(), "pid": os.getpid()}
        self.timeout = timeout
        self.held: set[str] = set()  # entries this object claimed and has not finished
        for sub in ("claims", "done", "failed"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def _path(self, sub: str, entry_id: str) -> Path:
        return self.root / sub / f"{check_name(entry_id, 'work entry id')}.json"

    def result(self, entry_id: str) -> dict[str, Any] | None:
        """The entry's result record (finished or failed in this run), or None."""
        for sub in ("done", "failed"):
            path = self._path(sub, entry_id)
            if path.is_file():
                return json.loads(path.read_text(encoding="utf-8"))
        return None

    def is_finished(self, entry_id: str) -> bool:
        """True if the entry has a finished model (never trained again)."""
        return self._path("done", entry_id).is_file()

    def _stale(self, path: Path) -> bool:
        try:
            claim = json.loads(path.read_text(encoding="utf-8"))
            age = time.time() - path.stat().st_mtime
        except (OSError, ValueError):
            return True  # unreadable: a claim being written, or a broken one; the age check of a retry decides
        if claim.get("run") != self.owner.get("run") and claim.get("host") == self.owner["host"]:
            return not _alive(int(claim.get("pid", -1)))
        return age > self.timeout

    def claim(self, entry_id: str) -> bool:
        """Try to take the entry; True if this process now owns it (finished entries are never taken)."""
        if self.is_finished(entry_id):
            return False
        path = self._path("claims", entry_id)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale(path):
                    return False
                aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
                try:
                    os.rename(path, aside)  # only one process moves a given claim aside
                except FileNotFoundError:
                    return False
                aside.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({**self.owner, "claimed": time.time()}, f)
            if self.is_finished(entry_id):  # finished between the check and the claim
                path.unlink(missing_ok=True)
                return False
            self.held.add(entry_id)
            return True
        return False

    def heartbeat(self, entry_id: str) -> None:
        """Mark the claim as alive."""
        path = self._path("claims", entry_id)
        if path.exists():
            os.utime(path)

    def finish(self, entry_id: str, record: dict[str, Any], failed: bool = False) -> None:
        """Store the entry's result (atomically) and release its claim."""
        dest = self._path("failed" if failed else "done", entry_id)
        with atomic_path(dest) as tmp:
            tmp.write_text(json.dumps({**record, "owner": self.owner}, indent=2), encoding="utf-8")
        self._path("claims", entry_id).unlink(missing_ok=True)
        self.held.discard(entry_id)

    def release_all(self) -> None:
        """Give up every claim held and not finished (work interrupted, e.g. by Ctrl-C): others may take them now."""
        for entry_id in sorted(self.held):
            self._path("claims", entry_id).unlink(missing_ok=True)
        self.held.clear()

    def forget_failures(self) -> None:
        """Drop failure records of earlier runs, so a new run tries those entries again."""
        for path in (self.root / "failed").glob("*.json"):
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("owner", {}).get("run") != self.owner.get("run"):
                path.unlink(missing_ok=True)
