"""Work entries' result records: a failure, a finished entry (with its log line), and claiming a batch of entries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from monai_singanseg.farm.claims import WorkDir
from monai_singanseg.farm.plan import WorkEntry

__all__ = ["failure", "fail", "finish", "claim_batch"]

logger = logging.getLogger(__name__)


def failure(entry: WorkEntry, error: str) -> dict[str, Any]:
    """The result record of an entry that failed with ``error``."""
    return {"id": entry.id, "case": entry.case, "slice": entry.slice_index, "status": "failed", "error": error}


def fail(work: WorkDir, entry: WorkEntry, error: str, rank: int) -> None:
    """Record ``entry`` as failed with ``error`` (logged; the run goes on)."""
    logger.error("[rank %d] %s failed: %s", rank, entry.id, error)
    work.finish(entry.id, failure(entry, error), failed=True)


def finish(
    work: WorkDir, entry: WorkEntry, make_record: Callable[[], dict[str, Any]], rank: int, progress: bool
) -> None:
    """Record the entry's result (or its failure: the run goes on), with a log line."""
    try:
        record = make_record()
    except (ValueError, OSError, RuntimeError) as exc:
        fail(work, entry, str(exc), rank)
        return
    work.finish(entry.id, record)
    if progress:
        quality = record["quality"]
        trained = (
            f"trained in {record['train_seconds']:.0f} s (batch of {record['batch']}), " if "batch" in record else ""
        )
        memorised = f", memorisation max {quality['memorisation_max']:.3f}" if "memorisation_max" in quality else ""
        print(
            f"[rank {rank}] {entry.id}: {trained}{record['samples']} samples in {record['seconds']:.0f} s{memorised}",
            flush=True,
        )


def claim_batch(pending: Iterator[tuple[int, WorkEntry]], work: WorkDir, limit: int) -> list[tuple[int, WorkEntry]]:
    """Claim up to ``limit`` entries from ``pending`` (entries that cannot be used are recorded as failed on the
    way)."""
    claimed = []
    for index, entry in pending:
        if work.result(entry.id) is not None or not work.claim(entry.id):
            continue
        if entry.error is not None:
            work.finish(entry.id, failure(entry, entry.error), failed=True)
            continue
        claimed.append((index, entry))
        if len(claimed) >= limit:
            break
    return claimed
