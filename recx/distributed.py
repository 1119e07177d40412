"""Several processes under ``torchrun``: the process group, this rank's device, and the few
collectives recx needs (gloo on CPU, nccl on GPU).  `recx train` and `recx featurize` share it.

- Training: every rank trains on its shard of each epoch's users (DDP averages gradients),
  rank 0 evaluates and writes the run directory, and the in-batch losses see the candidates of
  every rank through :meth:`DistContext.gather_ids`.
- Featurize: every rank plans the same batches, rank r encodes batches r, r+W, r+2W ... of each
  work chunk, and rank 0 gathers them (:meth:`DistContext.gather_dicts`) and writes the store, so
  the merged store equals a single-process one.

Why the in-batch losses gather item *ids* and not vectors: the item tower is replicated on
every rank, so each rank recomputing the vectors of the global candidate set gives the same
values a vector all-gather would, and DDP's gradient all-reduce then delivers exactly the
single-process gradient, with no differentiable all-gather in the loss.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from recx.device import resolve_device


@dataclass
class DistContext:
    """This process's place in the group (rank 0 of 1 without torchrun) and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _scalar_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's picklable ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_flag(self, value: bool) -> bool:
        """Rank 0's ``value`` on every rank (e.g. the early-stopping decision)."""
        if not self.enabled:
            return value
        t = torch.tensor([int(value)], device=self._scalar_device())
        dist.broadcast(t, 0)
        return bool(t.item())

    def global_count(self, n: int) -> int:
        """The sum of ``n`` over the ranks."""
        if not self.enabled:
            return n
        t = torch.tensor([n], dtype=torch.long, device=self._scalar_device())
        dist.all_reduce(t)
        return int(t.item())

    def gather_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Concatenate a 1-d id tensor of any length from every rank (padding with 0, which
        every loss drops)."""
        if not self.enabled:
            return ids
        n = torch.tensor([ids.numel()], device=ids.device)
        sizes = [torch.zeros_like(n) for _ in range(self.world_size)]
        dist.all_gather(sizes, n)
        longest = int(max(s.item() for s in sizes))
        padded = torch.zeros(longest, dtype=ids.dtype, device=ids.device)
        padded[: ids.numel()] = ids
        out = [torch.zeros_like(padded) for _ in range(self.world_size)]
        dist.all_gather(out, padded)
        return torch.cat(out)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's picklable ``obj`` in rank order, on rank 0 (other ranks get [])."""
        if not self.enabled:
            return [obj]
        parts: list[Any] = [None] * self.world_size if self.is_main else None  # type: ignore[assignment]
        dist.gather_object(obj, parts, dst=0)
        return parts if self.is_main else []

    def gather_dicts(self, part: dict) -> dict:
        """Union of every rank's dict on rank 0 (other ranks get an empty dict)."""
        if not self.enabled:
            return part
        parts: list[Any] = [None] * self.world_size if self.is_main else None  # type: ignore[assignment]
        dist.gather_object(part, parts, dst=0)
        if not self.is_main:
            return {}
        merged: dict = {}
        for p in parts:
            merged.update(p)
        return merged


def join(device: str = "auto") -> DistContext:
    """Join the process group that torchrun describes in the environment, if any; ``device``
    (auto | cpu | cuda | cuda:N) resolves to this rank's local GPU under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=resolve_device(device))
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, local, dev)
