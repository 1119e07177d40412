"""Sampled softmax: the target against N shared sampled negatives, with logQ correction."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from recx.trainer.data import Batch
from recx.trainer.losses.base import ItemVectors, SequenceLoss, rowwise_similarity, similarity, target_positions


class SampledSoftmax(SequenceLoss):
    """Softmax over [target, n_1..n_N] with logits s_j - log q_j.

    Negatives are drawn once per batch (shared by every position) from q: uniform over 1..N or
    proportional to count ** alpha.  A negative equal to the position's target (an accidental
    hit) is masked out.  With ``gather`` set, the negatives of every rank are pooled.
    """

    def __init__(
        self,
        item_counts: torch.Tensor,
        num_negatives: int = 256,
        sampler: str = "uniform",
        alpha: float = 1.0,
        temperature: float = 0.0,
        seed: int = 0,
        gather=None,
    ):
        super().__init__()
        if sampler == "uniform":
            q = torch.ones(len(item_counts), dtype=torch.float64)
        elif sampler == "popularity":
            q = item_counts.double().clamp(min=1.0) ** alpha
        else:
            raise ValueError(f"sampler must be 'uniform' or 'popularity', got {sampler!r}")
        q[0] = 0.0
        q = q / q.sum()
        self.register_buffer("q", q.float(), persistent=False)
        self.register_buffer("log_q", q.clamp(min=1e-30).log().float(), persistent=False)
        self.num_negatives = num_negatives
        self.temperature = temperature
        self.generator = torch.Generator().manual_seed(seed)
        self.gather = gather

    def get_extra_state(self):
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state):
        self.generator.set_state(state["generator"])

    def sample(self) -> torch.Tensor:
        """[N] negative item ids drawn from q (with replacement)."""
        return torch.multinomial(self.q.cpu(), self.num_negatives, replacement=True, generator=self.generator)

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors) -> torch.Tensor:
        keep = target_positions(batch.targets)
        h = states[keep]  # [P, D]
        tgt = batch.targets[keep]  # [P]
        neg = self.sample().to(tgt.device)
        if self.gather is not None:
            neg = self.gather(neg)
        pos_logit = rowwise_similarity(h, items(tgt), self.temperature) - self.log_q[tgt]  # [P]
        neg_logits = similarity(h, items(neg), self.temperature) - self.log_q[neg]  # [P, N]
        neg_logits = neg_logits.masked_fill(neg.unsqueeze(0) == tgt.unsqueeze(1), float("-inf"))
        logits = torch.cat([pos_logit.unsqueeze(1), neg_logits], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(tgt), dtype=torch.long, device=tgt.device))
