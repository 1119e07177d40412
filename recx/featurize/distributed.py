"""Sharding `recx featurize` across processes started by ``torchrun`` (gloo on CPU, nccl on GPU).

Every rank plans the same batches; rank r encodes batches r, r+W, r+2W ... of each work chunk, and
rank 0 gathers them and writes the store, so the merged store equals a single-process one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> torch.device:
        """``auto``/``cuda`` -> this rank's local GPU under torchrun; otherwise as given."""
        if device in ("auto", "cuda") and torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu" if device == "auto" else device)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather_dicts(self, part: dict) -> dict:
        """Union of every rank's dict on rank 0 (other ranks get an empty dict)."""
        if not self.active:
            return part
        parts: list[Any] = [None] * self.world_size if self.is_main else None  # type: ignore[assignment]
        torch.distributed.gather_object(part, parts, dst=0)
        if not self.is_main:
            return {}
        merged: dict = {}
        for p in parts:
            merged.update(p)
        return merged

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()


def context() -> DistContext:
    """The process group set up by torchrun (initialised here if needed), or a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size())
