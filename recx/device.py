"""Device and mixed-precision choices shared by featurize and train.

bf16 autocast is a large win only where the CPU has native bf16 dot products (AVX512-BF16 or
AMX).  On AVX2-only CPUs PyTorch emulates bf16 matmuls and they run tens of times slower than
fp32 (measured here on a 2-core AMD EPYC: 52 GFLOP/s fp32 vs 0.9 GFLOP/s bf16 for 1024^3), so
``"auto"`` only turns bf16 on where the hardware supports it.  ``RECX_CPU_BF16=off`` makes
recx treat the CPU as bf16-less (fp32 everywhere "auto" decides), so results do not depend on
which CPU a job lands on; the test suite sets it for exactly that reason.
"""

from __future__ import annotations

import contextlib
import functools
import os

import torch


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return dev


def cpu_has_fast_bf16() -> bool:
    """Native bf16 matmul support (AVX512-BF16 or AMX tiles), unless ``RECX_CPU_BF16=off``."""
    if os.environ.get("RECX_CPU_BF16", "auto").lower() in ("off", "0", "false", "no"):
        return False
    return _cpu_bf16_instructions()


@functools.lru_cache(maxsize=None)
def _cpu_bf16_instructions() -> bool:
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, c, lambda: False)()) for c in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a ``--precision`` choice (auto | fp32 | bf16 | fp16), or None for fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("--precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        return torch.float16
    if precision != "auto":
        raise ValueError(f"--precision {precision!r}: expected auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype``, or a no-op when None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
