"""Item towers that run (part of) a pretrained encoder inside the training step.

- :class:`TopBlocksTower` (``--item-tower topk``): the top K blocks of the encoder, rebuilt
  with their pretrained weights (``recx.featurize.topk.TopBlocks``), run on the hidden states
  a ``--cache-top-k K`` store cached; the frozen trunk never runs during training.
- :class:`EndToEndTower` (``--item-tower e2e``): the whole encoder on raw texts or images, its
  top K blocks unfrozen by block name.

Both encode each distinct item of a step once (``unique``), in chunks of similar token count
(``encode_chunk`` items, sorted by ``lengths``) so short texts do not pay for the longest one's
padding, and recompute the full item table from the tuned encoder for evaluation.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from recx.trainer.towers import ItemTower, make_adapter


class _EncodedTower(ItemTower):
    """Shared logic: encode unique present items, adapter, learned vector for missing ones."""

    expensive = True

    def __init__(
        self,
        num_items: int,
        enc_dim: int,
        dim: int,
        present: torch.Tensor,
        adapter: str,
        table_batch: int,
        lengths: torch.Tensor | None = None,
        encode_chunk: int = 256,
    ):
        super().__init__()
        self.num_items, self.dim = num_items, dim
        self.register_buffer("present", present.bool().clone(), persistent=False)
        self.present[0] = False
        self.adapter = make_adapter(adapter, enc_dim, dim)
        self.missing = nn.Parameter(torch.randn(dim) * 0.02)
        self.table_batch = table_batch
        # [N+1] token count (or a proxy) per item; None: all items cost the same
        self.register_buffer("lengths", None if lengths is None else lengths.long().clone(), persistent=False)
        self.encode_chunk = encode_chunk

    def encode(self, items: torch.Tensor) -> torch.Tensor:
        """items [M] distinct indices of present items -> encoder output [M, F]."""
        raise NotImplementedError

    def encode_sorted(self, items: torch.Tensor) -> torch.Tensor:
        """``encode`` over chunks of ``encode_chunk`` items of similar length: [M] -> [M, F].

        Each chunk is trimmed to its own longest item, so padding costs what the chunk needs,
        not what the step's longest item needs (amazon-scientific: 46 real of 64 cached tokens
        on average).  The result equals one ``encode`` call, row for row.
        """
        if self.lengths is None or len(items) <= self.encode_chunk:
            return self.encode(items)
        order = torch.argsort(self.lengths[items], stable=True)
        parts = [self.encode(items[order[s : s + self.encode_chunk]]) for s in range(0, len(items), self.encode_chunk)]
        return torch.cat(parts)[torch.argsort(order)]

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        uniq, inverse = torch.unique(items.reshape(-1), return_inverse=True)
        out = self.missing.expand(len(uniq), self.dim).clone()
        has = self.present[uniq]
        if has.any():
            out[has] = self.adapter(self.encode_sorted(uniq[has])).to(out.dtype)
        out = out * (uniq > 0).unsqueeze(-1).to(out.dtype)
        return out[inverse].view(*items.shape, self.dim)

    def table(self) -> torch.Tensor:
        """[N+1, D]; encoded in chunks (under no_grad when the model is in eval mode)."""
        device = self.missing.device
        ids = torch.arange(self.num_items + 1, device=device)
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            return torch.cat([self(ids[s : s + self.table_batch]) for s in range(0, len(ids), self.table_batch)])


class TopBlocksTower(_EncodedTower):
    """Top K pretrained blocks over cached trunk states.

    Args:
        top: a ``TopBlocks`` module (trainable), forward(hidden [B, T, H], mask [B, T]) -> [B, F].
        hidden: [N+1, T, H] float16 cached states; mask: [N+1, T] bool; present: [N+1] bool.
    """

    def __init__(self, top: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, present: torch.Tensor, dim: int, adapter: str = "linear", table_batch: int = 256):
        super().__init__(hidden.shape[0] - 1, int(top.dim), dim, present, adapter, table_batch, lengths=mask.sum(1))
        self.top = top
        self.register_buffer("hidden", hidden, persistent=False)
        self.register_buffer("hidden_mask", mask.bool(), persistent=False)

    def encode(self, items: torch.Tensor) -> torch.Tensor:
        mask = self.hidden_mask[items]
        width = max(1, int(mask.sum(1).max()))  # texts are right-padded: drop all-padding tail
        return self.top(self.hidden[items, :width].float(), mask[:, :width]).float()

    def pretrained_parameters(self) -> list[nn.Parameter]:
        return list(self.top.parameters())


class EndToEndTower(_EncodedTower):
    """A pretrained encoder on raw items; only its top ``tune_blocks`` blocks train.

    Args:
        encoder: a ``recx.featurize.base.Encoder`` (preprocess(raw) -> batch, forward(batch) -> [B, F]).
        raw_items: length N+1, the text or image path of every item (None where missing).
    """

    def __init__(self, encoder: nn.Module, raw_items: Sequence[Any], dim: int, tune_blocks: int = 1, adapter: str = "linear", table_batch: int = 128, grad_checkpointing: bool = False):
        present = torch.tensor([r is not None and r != "" for r in raw_items], dtype=torch.bool)
        # characters stand in for token counts (the tokenizer runs inside the step); images are all one size
        lengths = torch.tensor([len(r) if isinstance(r, str) and encoder.modality == "text" else 0 for r in raw_items])
        super().__init__(len(raw_items) - 1, int(encoder.dim), dim, present, adapter, table_batch, lengths=lengths)
        self.encoder = encoder
        self.raw_items = list(raw_items)
        self.tuned_blocks = unfreeze_top_blocks(encoder, tune_blocks)
        if grad_checkpointing and hasattr(getattr(encoder, "model", None), "gradient_checkpointing_enable"):
            encoder.model.gradient_checkpointing_enable()

    def encode(self, items: torch.Tensor) -> torch.Tensor:
        raw = [self.raw_items[i] for i in items.tolist()]
        batch = {k: v.to(self.missing.device) for k, v in self.encoder.preprocess(raw).items()}
        return self.encoder(batch).float()

    def pretrained_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())


def unfreeze_top_blocks(encoder: nn.Module, k: int) -> list[str]:
    """Freeze the encoder, then unfreeze its top ``k`` blocks (by qualified name); returns them."""
    return unfreeze_top_of(encoder, encoder.block_names(), k, getattr(encoder, "name", "the encoder"))


def unfreeze_top_of(module: nn.Module, block_names: list[str], k: int, what: str) -> list[str]:
    """Freeze ``module``, then unfreeze the last ``k`` of its ``block_names`` (bottom to top); returns them."""
    if not 0 <= k <= len(block_names):
        raise ValueError(f"--tune-blocks {k}: {what} has {len(block_names)} blocks")
    for p in module.parameters():
        p.requires_grad_(False)
    chosen = block_names[len(block_names) - k :] if k else []
    for name in chosen:
        for p in module.get_submodule(name).parameters():
            p.requires_grad_(True)
    return chosen


def load_cached_trunk(store_path: str, dataset: Any) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(TopBlocks, hidden [N+1, T, H] fp16, mask [N+1, T], present [N+1]) from a --cache-top-k store."""
    from recx.featurize.store import StoreMismatchError, check_store, open_store
    from recx.featurize.topk import TopBlocks

    store = open_store(store_path)
    check_store(store, dataset)
    if not store.has_hidden:
        raise StoreMismatchError(f"{store_path}: --item-tower topk needs cached trunk states; featurize with --cache-top-k K")
    top = TopBlocks.from_store(store).train()
    rows = np.arange(store.num_items + 1)
    hidden, mask = store.read_hidden(rows, dtype=np.float16)
    return top, torch.from_numpy(hidden), torch.from_numpy(mask), torch.from_numpy(np.asarray(store.present, dtype=bool))


class StepMemo:
    """ItemVectors over an expensive tower for one training step: each distinct item is
    encoded once, however often the model and the loss ask for it (inputs, candidates)."""

    def __init__(self, tower: ItemTower):
        self.tower = tower
        self.ids = torch.zeros(0, dtype=torch.long, device=next(tower.parameters()).device)
        self.vectors: torch.Tensor | None = None

    def prefetch(self, *index_tensors: torch.Tensor) -> None:
        """Encode every distinct item of these tensors in one call (one length-sorted pass, under
        the caller's autocast), so later lookups of any of them cost nothing."""
        self(torch.cat([t.reshape(-1) for t in index_tensors]))

    def __call__(self, items: torch.Tensor) -> torch.Tensor:
        uniq = torch.unique(items.reshape(-1))
        new = uniq[~torch.isin(uniq, self.ids)]
        if len(new):
            fresh = self.tower(new)
            self.ids = torch.cat([self.ids, new])
            self.vectors = fresh if self.vectors is None else torch.cat([self.vectors, fresh])
        order = torch.argsort(self.ids)
        rows = order[torch.searchsorted(self.ids[order], items.reshape(-1))]
        return self.vectors[rows].view(*items.shape, -1)

    def table(self) -> torch.Tensor:
        return self.tower.table()
