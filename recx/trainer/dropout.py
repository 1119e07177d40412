"""Dropout whose CPU masks cost a third to a quarter of torch's: 16 random bits per element.

On CPU, ``nn.Dropout`` draws its mask with ``bernoulli_``, one generator call per element: at
recx's default width (hidden 64) that was 12-14% of a SASRec training step, more than the
attention (docs/step_profile.md, December 6; benchmarks/dropout_speed.py times both). Here one
64-bit draw gives four elements their 16 bits, and an element is kept when its bits, read as a
signed int16, reach a threshold. The keep probability is therefore ``1 - p`` rounded to a
multiple of 1/65536 (exact for p = 0.5 or 0.25; p = 0.2 keeps 0.800003), and kept values are
scaled by its inverse, so the output's expectation is exactly the input. Other devices keep
torch's fused dropout.
"""

# no `from __future__ import annotations` here: TorchScript reads keep_scale's annotations
import torch
from torch import nn
from torch.nn import functional as F

_LEVELS = 1 << 16


@torch.jit.unused
def keep_scale(x: torch.Tensor, p: float) -> torch.Tensor:
    """A CPU tensor shaped and typed as ``x``: 1 / keep probability where an element is kept, 0 elsewhere."""
    n = x.numel()
    bits = torch.randint(-(1 << 63), (1 << 63) - 1, ((n + 3) // 4,), dtype=torch.int64).view(torch.int16)[:n]
    dropped = round(p * _LEVELS)  # int16 values below this threshold drop: dropped / 65536 of them
    keep = bits.view(x.shape) >= dropped - _LEVELS // 2
    return keep.to(x.dtype).mul_(_LEVELS / (_LEVELS - dropped))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout(x, p, training)``, with the fast mask on CPU (module doc)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0 or p * 65536.0 < 0.5:  # 65536 = _LEVELS (a script reads no globals): p rounds to 0
        return F.dropout(x, p, training)
    return x * keep_scale(x, p)


class Dropout(nn.Module):
    """``nn.Dropout`` with :func:`dropout`'s CPU masks; no parameters, no state."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1]; got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
