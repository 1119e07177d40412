"""Distributed training under `torchrun`: process group, rank-aware helpers, global candidates.

Under ``torchrun --nproc_per_node N recx train ...`` every rank trains on its shard of each
epoch's users (DDP averages gradients; gloo on CPU, nccl on GPU), rank 0 evaluates and writes
the run directory, and the in-batch losses see the candidates of every rank.

Why the in-batch losses gather item *ids* and not vectors: the item tower is replicated on
every rank, so each rank recomputing the vectors of the global candidate set gives the same
values a vector all-gather would, and DDP's gradient all-reduce then delivers exactly the
single-process gradient, with no differentiable all-gather in the loss.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from recx.device import resolve_device


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def broadcast_flag(self, value: bool) -> bool:
        """Rank 0's ``value`` on every rank (e.g. the early-stopping decision)."""
        if not self.enabled:
            return value
        t = torch.tensor([int(value)], device=self.device if self.device.type == "cuda" else "cpu")
        dist.broadcast(t, 0)
        return bool(t.item())

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

    def global_count(self, n: int) -> int:
        if not self.enabled:
            return n
        t = torch.tensor([n], dtype=torch.long, device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t)
        return int(t.item())


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group that torchrun describes in the environment, if any."""
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
