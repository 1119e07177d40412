"""Run a test body on CPU ranks (gloo, ``mp.spawn``) and leave without interpreter shutdown.

Rarely (once in CI, twice in about 150 local runs), a rank died with SIGABRT ("terminate called
without an active exception") after the body had finished and saved its results: a C++ thread
touching the interpreter during shutdown. So every rank waits for the others, destroys the group,
and leaves with ``os._exit(0)``, skipping interpreter shutdown. An exception in the body still
propagates, so ``mp.spawn`` reports it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import torch.distributed as dist
import torch.multiprocessing as mp


def run_on_gloo_ranks(body: Callable[..., None], args: tuple[Any, ...], tmp_path: Path, world_size: int = 2) -> None:
    """Call ``body(rank, *args)`` on ``world_size`` spawned processes joined in one gloo group.

    ``body`` must be a module-level function (it is pickled by reference)."""
    mp.spawn(_rank_main, args=(body, args, str(tmp_path / "gloo-init"), world_size), nprocs=world_size, join=True)


def _rank_main(rank: int, body: Callable[..., None], args: tuple[Any, ...], init_file: str, world_size: int) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        body(rank, *args)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
