"""Which part of the work this process does: a torchrun rank, a Slurm array task (``--shard I/N``), or all of it."""

from __future__ import annotations

import datetime
import os
import uuid
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["RankContext", "parse_shard"]


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``.

    Raises:
        ValueError: naming the value and the form.
    """
    try:
        index, count = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r} must be I/N, e.g. 0/4 (task I of N, I from 0)") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: need 0 <= I < N")
    return index, count


@dataclass
class RankContext:
    """This process's place in the run.

    Args:
        rank: its index among the processes.
        world_size: how many processes share the work.
        local_rank: its index on this node (picks the GPU).
        run_id: one id for every process of one launch (claims of other launches may be taken over).
        distributed: a torch process group is up (torchrun): barriers are real.
        shard: work is split statically as a Slurm array task (``--shard``).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    run_id: str = ""
    distributed: bool = False
    shard: bool = False

    @classmethod
    def from_environment(cls, shard: str | None = None, device: str | None = None) -> RankContext:
        """From ``--shard I/N``, else torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (gloo on CPU, NCCL on GPU)."""
        if shard:
            index, count = parse_shard(shard)
            return cls(index, count, 0, os.environ.get("SLURM_ARRAY_JOB_ID", uuid.uuid4().hex), shard=True)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls(run_id=uuid.uuid4().hex)
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and str(device or "auto") != "cpu"
        if use_cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            # ranks finish their last models at different times: the final barrier may wait for hours
            dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(hours=48))
        run_id = [uuid.uuid4().hex if rank == 0 else None]
        dist.broadcast_object_list(run_id, src=0)  # one id per launch: a relaunch can take over a dead launch's claims
        return cls(rank, world, local, str(run_id[0]), distributed=True)

    @property
    def device(self) -> str:
        """``cuda:<local rank>`` when this process has a GPU, else ``cpu``."""
        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    def barrier(self) -> None:
        """Wait for every rank (no-op without a process group)."""
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
