"""The real MONAI Label server keeps answering while a long synthesis runs: inference runs in worker threads, at most
``infer_concurrency`` at once and ``infer_queue`` waiting, a request beyond that is answered 503 (busy), and a
request whose client goes away is cancelled and frees its worker."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests
from label_server import demo_studies, label_server, log_tail

DEMO = "TCGA-FG-6692"
#: settings under which a synthesis request trains its model at request time for 20 s or more on one CPU thread.
SLOW = {
    "singanseg_iters": "120",
    "singanseg_max_size": "48",
    "singanseg_min_size": "12",
    "singanseg_stages": "3",
    "infer_concurrency": "1",
    "infer_queue": "1",
    "pix2pix_model": "none",
}


@dataclass
class Server:
    url: str
    log: Path
    pid: int


@contextlib.contextmanager
def slow_server(root: Path, **conf: str) -> Iterator[Server]:
    """A real server of the demo datastore whose synthesis requests train their model for 20 s or more."""
    studies = root / "studies"
    demo_studies(studies)
    args = [arg for key, value in {**SLOW, **conf}.items() for arg in ("--conf", key, value)]
    with label_server(studies, root, args) as (url, log):
        listening = [
            p
            for p in psutil.process_iter(["pid"])
            if any(c.status == "LISTEN" and c.laddr.port == int(url.rsplit(":", 1)[1]) for c in _connections(p))
        ]
        yield Server(url, log, listening[0].pid if listening else -1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with slow_server(tmp_path_factory.mktemp("serving")) as running:
        yield running


def _connections(process: psutil.Process) -> list:
    try:
        return process.net_connections(kind="tcp")
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        return []


def _infer(url: str, seed: int, results: dict, key: str) -> None:
    start = time.monotonic()
    try:
        res = requests.post(
            f"{url}/infer/singanseg", params={"image": DEMO}, data={"params": f'{{"seed": {seed}}}'}, timeout=600
        )
        results[key] = (res.status_code, time.monotonic() - start, res.text[:300] if res.status_code != 200 else "")
    except requests.RequestException as exc:  # a hang or a dropped connection: the test reports it
        results[key] = (None, time.monotonic() - start, repr(exc))


def test_the_server_answers_while_a_long_synthesis_runs_and_refuses_beyond_its_queue(server):
    url = server.url
    rss_start = psutil.Process(server.pid).memory_info().rss if server.pid > 0 else None
    results: dict = {}
    first = threading.Thread(target=_infer, args=(url, 1, results, "first"))
    first.start()
    time.sleep(3.0)  # the first request holds the one worker now: it trains the image's model
    latencies = []
    for _ in range(10):
        t0 = time.monotonic()
        info = requests.get(f"{url}/info/", timeout=30)
        latencies.append(time.monotonic() - t0)
        assert info.status_code == 200
        time.sleep(0.3)
    listing = requests.get(f"{url}/datastore/", params={"output": "all"}, timeout=30)
    assert listing.status_code == 200  # another small request completes meanwhile
    assert first.is_alive(), "the synthesis ended before the server was probed; make SLOW slower"
    # three more synthesis requests while the first runs: one waits for the worker, two are refused as busy
    others = [threading.Thread(target=_infer, args=(url, 2 + i, results, f"other{i}")) for i in range(3)]
    for t in others:
        t.start()
        time.sleep(0.5)
    for t in [first, *others]:
        t.join(timeout=900)
    assert not any(t.is_alive() for t in [first, *others]), f"a request hung: {results}\n{log_tail(server.log)}"
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"/info latency during the synthesis: p95 {p95:.3f} s, max {latencies[-1]:.3f} s; results {results}")
    assert p95 < 1.0, latencies
    assert results["first"][0] == 200 and results["first"][1] >= 20.0, results["first"]
    statuses = sorted(str(r[0]) for k, r in results.items() if k != "first")
    assert statuses == ["200", "503", "503"], results
    busy = [r for k, r in results.items() if r[0] == 503]
    assert all(r[1] < 5.0 and "busy" in r[2] for r in busy), busy  # refused at once, saying why
    if rss_start is not None:  # memory: what the first requests take stays bounded, and more requests add nothing
        rss_warm = psutil.Process(server.pid).memory_info().rss
        more: dict = {}
        for i in range(4):
            _infer(url, 10 + i, more, f"more{i}")
        assert all(r[0] == 200 for r in more.values()), more
        rss_end = psutil.Process(server.pid).memory_info().rss
        print(
            f"server RSS {rss_start / 2**20:.0f} MiB at start, {rss_warm / 2**20:.0f} MiB after the first four "
            f"requests, {rss_end / 2**20:.0f} MiB after four more"
        )
        assert rss_end <= 1.1 * rss_warm, (rss_start, rss_warm, rss_end)


def test_a_client_that_goes_away_cancels_its_running_synthesis_and_frees_the_worker(tmp_path):
    """No queue: while the worker is held, a request is refused as busy (503); once the client of the running
    request has gone, its synthesis stops, nothing is stored and the next request is served (422 for its bad
    parameter, not 503)."""
    with slow_server(tmp_path, infer_queue="0") as server:
        start = time.monotonic()
        with pytest.raises(requests.Timeout):  # the client gives up after 4 s and closes its connection
            requests.post(
                f"{server.url}/infer/singanseg", params={"image": DEMO}, data={"params": '{"seed": 1}'}, timeout=4
            )
        gone = time.monotonic()
        while "request cancelled" not in server.log.read_text() and time.monotonic() - gone < 20:
            time.sleep(0.1)
        cancelled = time.monotonic() - gone
        assert "request cancelled" in server.log.read_text(), log_tail(server.log)
        for _ in range(20):  # the worker is freed as the cancelled request unwinds
            bad = requests.post(
                f"{server.url}/infer/singanseg",
                params={"image": DEMO},
                data={"params": '{"seed": 2, "threshold": 5}'},
                timeout=60,
            )
            if bad.status_code != 503:
                break
            time.sleep(0.1)
        freed = time.monotonic() - gone
        assert bad.status_code == 422 and "threshold" in bad.json()["detail"], bad.text  # the worker is free
        images = requests.get(f"{server.url}/datastore/", params={"output": "all"}, timeout=30).json()
        assert not any("_singanseg_" in name for name in images["objects"]), "a cancelled request stored its result"
        print(
            f"cancelled {cancelled:.2f} s and the worker free {freed:.2f} s after the client left "
            f"({gone - start:.1f} s after the request began)"
        )
        assert freed < 5.0
