"""Data-parallel training with torch.distributed (``torchrun``): rank, sharded loader, DDP-wrapped networks.

A trainer asked to train data-parallel (``distributed=True``) reads :func:`distributed_rank`; with one process
(no process group) that is the single-process path. It is never switched on by the mere presence of a process
group: the dataset farm runs one independent model per rank under ``torchrun``. Under ``torchrun`` (gloo on CPU, NCCL
on GPU; the bundles' ``multi_gpu_train.json`` starts the process
group) each rank trains on its shard of every epoch and DDP averages the gradients, so all ranks hold the
same weights; only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from monai_singanseg.engines.common import stream_neutral_loader

__all__ = ["distributed_rank", "distributed_loader", "distributed_module"]


def distributed_rank() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def distributed_loader(dataset: Dataset, batch_size: int, seed: int) -> DataLoader:
    """This rank's shard of ``dataset``, reshuffled each epoch from ``seed`` (``DistributedSampler``).

    MONAI's workflows call the sampler's ``set_epoch`` at every epoch start. Making the loader's iterator draws
    nothing from the networks' random stream.
    """
    return stream_neutral_loader(dataset, batch_size, DistributedSampler(dataset, shuffle=True, seed=seed))


def distributed_module(module: torch.nn.Module, device: torch.device) -> DistributedDataParallel:
    """``module`` under DDP (gradients averaged over ranks; the initial weights broadcast from rank 0)."""
    ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)
