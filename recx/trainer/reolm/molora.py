"""Mixture-of-LoRA adapters for the Reo-LM backbone (ROMA's "MoA"), in plain torch.

`recx train --model reo-lm --reo-tuning molora` and `recx pretrain --tuning molora` freeze the
backbone and give every transformer block one adapter.  A BERT-like block computes::

    a = attention(x)                                   layer.attention
    y = LayerNorm(W_out act(W_in a) + a)               layer.intermediate, layer.output(., a)

and the adapter, read from the attention output ``a``, is added to the block output ``y``::

    y' = y + (alpha / r) * sum_e w_e * (U_e z_e + c_e),    z = gelu(D dropout(a) + d)

D [H -> r*E] is one shared down-projection whose output splits into E slices z_e of r; U_e
[r -> H] (bias c_e) is expert e's up-projection, zero at init so the adapted model starts
exactly at the backbone's weights.  The mixing weights w over the E experts:

- lower half of the blocks (``num_layers // 2``): the mean, w_e = 1 / E;
- top half: while :func:`set_domains` holds a domain per row (pre-training), hard routing,
  row b uses expert ``domains[b] % E``; otherwise (fine-tuning, evaluation) a learned per-token
  gate, ``softmax(Linear(H -> E)(a))``, zero at init so it starts as the mean.

Every expert is computed for every token (``w`` folds into z before one matmul), so the
experts a batch does not route to still take part in the graph with a zero gradient and DDP
sees every trainable parameter used.

How a block is wrapped: a forward hook on its FFN output module ``layer.output``, which HF's
BERT family calls as ``output(intermediate, attention_output)`` and which returns the
LayerNorm-ed block output.  The hook reads the attention output from that second argument and
adds the adapter to the returned tensor.  This keeps every pretrained weight under its own
name (`--init` / `--warm-start` checkpoints load as they are), runs inside the block's own
forward (chunked feed-forward and gradient checkpointing included) and copies none of HF's
block code.  The adapter is a submodule of the block, ``<block>.molora_adapter``, so every
adapter parameter name contains ``molora_``.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from recx.errors import RecxError

ADAPTER = "molora_adapter"  # attribute of each adapted block


class ExpertUp(nn.Module):
    """E up-projections r -> H stacked: weight [E, r, H], bias [E, H], both zero at init."""

    def __init__(self, experts: int, rank: int, hidden: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(experts, rank, hidden))
        self.bias = nn.Parameter(torch.zeros(experts, hidden))

    def forward(self, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """z [B, T, E, r] expert inputs, w [B|1, T|1, E] weights -> sum_e w_e (U_e z_e + c_e) [B, T, H]."""
        E, r, H = self.weight.shape
        mixed = (z * w.unsqueeze(-1).to(z.dtype)).flatten(-2)  # [B, T, E*r]
        return mixed @ self.weight.reshape(E * r, H).to(mixed.dtype) + w.to(mixed.dtype) @ self.bias.to(mixed.dtype)


class MoLoRAAdapter(nn.Module):
    """One block's mixture of E rank-r experts.

    forward(attention [B, T, H]) -> update [B, T, H] (added to the block output).  ``gated``
    (top blocks) mixes with the gate or the routing domains, else with the mean.
    """

    def __init__(self, hidden: int, rank: int, experts: int, scale: float, dropout: float = 0.1, gated: bool = False):
        super().__init__()
        self.hidden, self.rank, self.experts, self.scale = hidden, rank, experts, scale
        self.dropout = nn.Dropout(dropout)
        self.down = nn.Linear(hidden, rank * experts)
        self.up = ExpertUp(experts, rank, hidden)
        self.gate: nn.Linear | None = None
        if gated:
            self.gate = nn.Linear(hidden, experts)
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)
        self.domains: torch.Tensor | None = None  # [B] long routing of the current forward (set_domains)

    def mixing(self, attention: torch.Tensor) -> torch.Tensor:
        """attention [B, T, H] -> expert weights [B or 1, T or 1, E] (float32, each row sums to 1)."""
        E = self.experts
        if self.gate is None:
            return torch.full((1, 1, E), 1.0 / E, device=attention.device)
        if self.domains is not None:
            if self.domains.shape != (attention.shape[0],):
                raise RecxError(f"molora routing: {len(self.domains)} domains for a batch of {attention.shape[0]} rows (set_domains before each forward)")
            return F.one_hot(self.domains.to(attention.device) % E, E).float().unsqueeze(1)
        return torch.softmax(self.gate(attention).float(), dim=-1)

    def forward(self, attention: torch.Tensor) -> torch.Tensor:
        if attention.dim() != 3 or attention.shape[-1] != self.hidden:
            raise RecxError(f"molora adapter: expected attention output [B, T, {self.hidden}], got {tuple(attention.shape)}")
        w = self.mixing(attention)  # [B|1, T|1, E]
        z = F.gelu(self.down(self.dropout(attention))).unflatten(-1, (self.experts, self.rank))  # [B, T, E, r]
        return self.up(z, w) * self.scale  # [B, T, H]

    def hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: torch.Tensor) -> torch.Tensor:
        """Forward hook of the block's ``output`` module: block output [B, T, H] + the update."""
        attention = args[1] if len(args) > 1 else kwargs["input_tensor"]
        if output.shape != attention.shape:
            raise RecxError(f"molora: block output {tuple(output.shape)} and attention output {tuple(attention.shape)} differ")
        return output + self(attention).to(output.dtype)


def bert_like_blocks(backbone: nn.Module) -> list[str]:
    """Names of the backbone's transformer blocks; raises RecxError unless each has BERT's
    ``attention`` / ``intermediate`` / ``output(hidden, attention_output)`` parts."""
    from recx.featurize.text import find_blocks

    blocks = find_blocks(backbone, int(getattr(backbone.config, "num_hidden_layers", 0)))
    if not blocks:
        raise RecxError(f"molora: found no transformer blocks in {type(backbone).__name__}")
    for name in blocks:
        block = backbone.get_submodule(name)
        out = getattr(block, "output", None)
        if not (hasattr(block, "attention") and hasattr(block, "intermediate") and isinstance(out, nn.Module)
                and len(inspect.signature(out.forward).parameters) >= 2):
            raise RecxError(f"molora: {type(block).__name__} blocks are not BERT-like (attention, intermediate, output(hidden, attention_output))")
    return blocks


def apply_molora(backbone: nn.Module, rank: int, alpha: float, experts: int, dropout: float = 0.1, *, train_gates: bool = True) -> list[str]:
    """Freeze ``backbone`` and give each block a :class:`MoLoRAAdapter` (the lower half averaged,
    the top half gated / routed); returns the adapters' names.  ``train_gates=False`` freezes the
    gates (pre-training routes by domain and never reads them)."""
    if rank < 1 or experts < 1:
        raise RecxError(f"molora: --lora-rank {rank} and --lora-experts {experts} must be >= 1")
    if adapters(backbone):
        raise RecxError("molora: the backbone already has molora adapters")
    blocks = bert_like_blocks(backbone)
    hidden = int(backbone.config.hidden_size)
    backbone.requires_grad_(False)
    names = []
    for i, name in enumerate(blocks):
        block = backbone.get_submodule(name)
        adapter = MoLoRAAdapter(hidden, rank, experts, alpha / rank, dropout, gated=i >= len(blocks) // 2)
        ref = next(block.parameters(), None)
        if ref is not None:
            adapter.to(ref.device)
        block.add_module(ADAPTER, adapter)
        block.output.register_forward_hook(adapter.hook, with_kwargs=True)
        names.append(f"{name}.{ADAPTER}")
    for name, p in backbone.named_parameters():
        p.requires_grad_(f"{ADAPTER}." in name and (train_gates or f"{ADAPTER}.gate." not in name))
    return names


def adapters(backbone: nn.Module) -> list[MoLoRAAdapter]:
    return [m for m in backbone.modules() if isinstance(m, MoLoRAAdapter)]


def set_domains(backbone: nn.Module, domains: torch.Tensor | None) -> None:
    """Route the top blocks' experts by domain: domains [B] long, row b of the next forwards uses
    expert ``domains[b] % E``; None: the learned gate (fine-tuning, evaluation)."""
    found = adapters(backbone)
    if not found:
        raise RecxError("set_domains: the backbone has no molora adapters (apply_molora first)")
    if domains is not None and (domains.dim() != 1 or domains.dtype != torch.long):
        raise RecxError(f"set_domains: expected domains [B] long, got {tuple(domains.shape)} {domains.dtype}")
    for a in found:
        a.domains = domains


@contextmanager
def routed_rows(backbone: nn.Module, rows: torch.Tensor) -> Iterator[None]:
    """Forwards inside cover only ``rows`` [b] long of the batch :func:`set_domains` routed (one
    length chunk of it), so each row keeps its own domain; nothing to do when nothing is routed."""
    found = adapters(backbone)
    domains = found[0].domains if found else None
    if domains is None:
        yield
        return
    for a in found:
        a.domains = domains[rows.to(domains.device)]
    try:
        yield
    finally:
        for a in found:
            a.domains = domains


def load_adapters(model: nn.Module, ckpt: str | Path) -> list[str]:
    """Copy the molora adapter weights of a `recx pretrain --tuning molora` checkpoint into
    ``model`` (whose adapters exist already); returns the checkpoint's adapter weights that did
    not fit (another rank or expert count), left fresh."""
    from recx.trainer.reolm.checkpoint import WEIGHTS

    state = torch.load(Path(ckpt) / WEIGHTS, map_location="cpu", weights_only=True)
    own = model.state_dict()
    theirs = {k: v for k, v in state.items() if f".{ADAPTER}." in k}
    fits = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fits, strict=False)
    return sorted(set(theirs) - set(fits))
