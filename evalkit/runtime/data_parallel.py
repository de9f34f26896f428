"""Data-parallel runs of the HF engine under ``torchrun`` / ``accelerate launch`` (docs/scale.md).

Every process runs the same command. Work is split by :func:`evalkit.engines.results_cache.cached_compute`:
per target, the missing items are cut into the batches one process would run, and batch ``b`` goes to
rank ``b % world``; results are all-gathered (torch.distributed over gloo: only Python objects travel, so it
works on CPUs, GPUs and across nodes) and merged by cache key. Only rank 0 writes output files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["DataParallel", "from_environment", "is_main_process"]


def is_main_process() -> bool:
    """False on every rank but 0 of a torchrun / accelerate launch (they compute, rank 0 writes)."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass(frozen=True)
class DataParallel:
    rank: int
    world: int

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, obj: Any) -> list:
        """Every rank's ``obj``, in rank order."""
        import torch.distributed as dist

        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


def from_environment(device: Optional[str] = None) -> Optional[DataParallel]:
    """The process group torchrun / accelerate set up in the environment (RANK, WORLD_SIZE, MASTER_ADDR, ...),
    or None for a single process. On GPUs each process takes the GPU of its LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return DataParallel(rank=dist.get_rank(), world=dist.get_world_size())
