"""Interleaved micro-timings for the kernel benchmarks (softmax_ce_speed.py, dropout_speed.py)."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def interleaved_median_ms(fns: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Median milliseconds of each function, run round by round in turn, so a change of machine
    load hits every one of them alike."""
    ms: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            ms[name].append((time.perf_counter() - t) * 1e3)
    return {name: statistics.median(v) for name, v in ms.items()}


def machine_record() -> dict[str, str | int]:
    """What a timing record states about where it ran."""
    return {"threads": torch.get_num_threads(), "machine": platform.machine(), "torch": torch.__version__,
            "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
