"""LoRA for the Reo-LM backbone (`--reo-tuning lora`), through peft.

The backbone is frozen and every linear projection inside its transformer blocks (attention
query / key / value / output and both feed-forward layers) gets a rank-r update
``W x + (alpha / r) B A x`` with B initialised to zero, so the model starts exactly at the
pretrained (or `recx pretrain`-ed) weights.  The adapters are injected in place, after any
``--init`` checkpoint has been loaded, so checkpoints of full fine-tuning and pre-training keep
their plain weight names.
"""

from __future__ import annotations

from torch import nn

from recx.errors import RecxError


def block_linears(backbone: nn.Module) -> list[str]:
    """Qualified names of the nn.Linear modules inside the backbone's transformer blocks."""
    from recx.featurize.text import find_blocks

    blocks = find_blocks(backbone, int(getattr(backbone.config, "num_hidden_layers", 0)))
    return [f"{b}.{n}" for b in blocks for n, m in backbone.get_submodule(b).named_modules() if isinstance(m, nn.Linear)]


def apply_lora(backbone: nn.Module, rank: int, alpha: float, dropout: float = 0.0) -> list[str]:
    """Freeze ``backbone`` and inject LoRA adapters into its block linears; returns their names."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise RecxError("--reo-tuning lora needs peft: pip install 'recx[lora]' (or pip install peft)") from None
    if rank < 1:
        raise RecxError(f"--lora-rank {rank}: must be >= 1")
    targets = block_linears(backbone)
    if not targets:
        raise RecxError(f"--reo-tuning lora: found no linear layers in the blocks of {type(backbone).__name__}")
    backbone.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none"), backbone)
    for name, p in backbone.named_parameters():
        p.requires_grad_("lora_" in name)
    return targets
