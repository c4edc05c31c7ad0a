"""Start the real MONAI Label server (``label-serve``) on a free loopback port for a test, and always stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import requests
from conftest import free_port

START_TIMEOUT = 120.0


def demo_studies(folder: Path) -> Path:
    """A datastore of the embedded demo case with its final label in ``folder`` (what ``label-datastore --demo``
    writes)."""
    from monai_singanseg.data import demo_case
    from monai_singanseg.label import write_datastore

    write_datastore(folder, [demo_case()], progress=False)
    return folder


def log_tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:]


@contextlib.contextmanager
def label_server(
    studies: Path, root: Path, args: Sequence[str] = (), env: Mapping[str, str] | None = None, ready: str = "/info/"
) -> Iterator[tuple[str, Path]]:
    """Run ``python -m monai_singanseg label-serve --studies STUDIES`` until the block ends; yields ``(url, log)``.

    The server (its own process group: uvicorn and any train subprocess) gets SIGTERM, then SIGKILL.
    """
    port = free_port()
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "MONAI_LABEL_SESSION_PATH": str(root / "sessions"), **(env or {})}
    log = root / "server.log"
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monai_singanseg",
                "label-serve",
                "--studies",
                str(studies),
                "--port",
                str(port),
                *args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
            cwd=root,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log_tail(log)}")
            try:
                if requests.get(f"{url}{ready}", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {START_TIMEOUT:.0f} s:\n{log_tail(log)}")
            time.sleep(0.5)
        yield url, log
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
