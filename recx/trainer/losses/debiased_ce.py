"""In-batch debiased cross-entropy (IDvs.MoRec), exactly as DESIGN.md defines it.

For every position t of user u with target i_t, the candidates are the distinct items of the
batch B (inputs and targets of every row; gathered across ranks in distributed training).
With logits s_j = <h_{u,t}, e_j> (or cosine / tau):

    loss = -log( exp(s_i - log p_i) / (exp(s_i - log p_i) + sum_{j in B, j not in I_u} exp(s_j - log p_j)) )

p_j is item j's share of the training interactions raised to ``alpha`` (renormalised), I_u the
user's items (the whole batch row, or only the items up to position t with
``mask_scope="past"``) other than the target itself.  Padding is never a candidate and never
a target.  Subtracting log p_j removes the popularity bias of in-batch sampling (items are
candidates in proportion to how often they occur).  With a model's history term, the past
items are candidates scored with it (losses/linear_softmax.py TermScores).  The [P, C] logits
are never built whole: linear_softmax_cross_entropy takes a block of rows at a time and asks
for that block's masks.
"""

from __future__ import annotations

from typing import Callable

import torch

from recx.trainer.data import Batch
from recx.trainer.losses.base import ItemVectors, SequenceLoss, target_positions
from recx.trainer.losses.linear_softmax import BlockMask, TermScores, linear_softmax_cross_entropy


def log_popularity(counts: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """[N+1] log p_j with p_j proportional to count_j ** alpha (counts clamped to >= 1)."""
    weights = counts.double().clamp(min=1.0) ** alpha
    return (weights / weights[1:].sum()).log().float()


class DebiasedCrossEntropy(SequenceLoss):
    """In-batch softmax with logQ correction and masking of the user's own items (the past
    ones stay candidates, with the model's history term, when it has one).

    Args:
        item_counts: [N+1] training interaction counts per item.
        alpha: popularity power.
        temperature: > 0 switches to cosine similarity / temperature.
        mask_scope: "sequence" masks every item of the user's row; "past" only the inputs up
            to the predicting position.
        gather: optional hook that all-gathers (candidate ids, candidate vectors) across ranks
            so every rank uses the global candidate set; identity when None.
        history_gradient: with a history term, what learns from the past items as candidates
            (losses/linear_softmax.py TermScores).
    """

    def __init__(
        self,
        item_counts: torch.Tensor,
        alpha: float = 1.0,
        temperature: float = 0.0,
        mask_scope: str = "sequence",
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
        history_gradient: str = "term",
    ):
        super().__init__()
        if mask_scope not in ("sequence", "past"):
            raise ValueError(f"mask_scope must be 'sequence' or 'past', got {mask_scope!r}")
        self.register_buffer("log_p", log_popularity(item_counts, alpha), persistent=False)
        self.temperature = temperature
        self.mask_scope = mask_scope
        self.gather = gather
        self.history_gradient = history_gradient

    def candidates(self, batch: Batch) -> torch.Tensor:
        """[C] distinct non-padding item ids of the (global) batch, sorted."""
        ids = torch.cat([batch.inputs.reshape(-1), batch.targets.reshape(-1)])
        if self.gather is not None:
            ids = self.gather(ids)
        ids = torch.unique(ids)
        return ids[ids > 0]

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors, history: torch.Tensor | None = None) -> torch.Tensor:
        """states [B, L, D]; history [B, L, L] or None: the model's history term per prediction
        position (recx/trainer/history.py), added to the logits of the row's past items, which
        are then candidates instead of masked (``TermScores.gradient`` says what learns from
        them)."""
        inputs, targets = batch.inputs, batch.targets  # [B, L]
        B, L = targets.shape
        cand = self.candidates(batch)  # [C]
        C = cand.numel()
        keep = target_positions(targets)  # [B, L]
        row, pos = keep.nonzero(as_tuple=True)  # [P], [P]

        # every row item is a candidate, so searchsorted gives its column; padding -> column C
        col_in = torch.where(inputs > 0, torch.searchsorted(cand, inputs.contiguous()), C)  # [B, L]
        col_tgt = torch.searchsorted(cand, targets[row, pos])  # [P]
        own_items = self.own_items(inputs, targets, cand, col_in, row, pos)

        def own(start: int, stop: int) -> torch.Tensor:  # [b, C]: the target stays a candidate
            mask = own_items(start, stop)
            mask[torch.arange(stop - start, device=mask.device), col_tgt[start:stop]] = False
            return mask

        term = None
        if history is not None:
            assert history.shape == (B, L, L), (tuple(history.shape), B, L)
            seen = self.own_items(inputs, targets, cand, col_in, row, pos, scope="past")  # the term scores these: candidates
            term = TermScores(col_in[row], history[row, pos], seen, self.history_gradient)
        return linear_softmax_cross_entropy(states[row, pos], items(cand), col_tgt, self.temperature, offsets=-self.log_p[cand], mask=own,
                                            term=term)

    def own_items(self, inputs: torch.Tensor, targets: torch.Tensor, cand: torch.Tensor, col_in: torch.Tensor, row: torch.Tensor,
                  pos: torch.Tensor, scope: str | None = None) -> BlockMask:
        """Prediction rows start..stop -> [b, C] bool (a new tensor): the candidates that are the
        predicting user's own items (``scope``: sequence = the whole row, past = its inputs up to
        the position; default mask_scope)."""
        B, L = inputs.shape
        C = cand.numel()
        if (scope or self.mask_scope) == "sequence":
            own_rows = torch.zeros(B, C + 1, dtype=torch.bool, device=cand.device)
            own_rows.scatter_(1, col_in, True)
            own_rows.scatter_(1, torch.where(targets > 0, torch.searchsorted(cand, targets.contiguous()), C), True)
            return lambda start, stop: own_rows[row[start:stop], :C]
        first = torch.full((B, C + 1), L, dtype=torch.long, device=cand.device)  # each candidate's first input position
        first.scatter_reduce_(1, col_in, torch.arange(L, device=cand.device).expand(B, L), reduce="amin")
        return lambda start, stop: first[row[start:stop], :C] <= pos[start:stop].unsqueeze(1)
