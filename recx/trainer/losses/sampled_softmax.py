"""Sampled softmax: the target against N shared sampled negatives, with logQ correction."""

from __future__ import annotations

import torch

from recx.trainer.data import Batch
from recx.trainer.losses.base import ItemVectors, SequenceLoss, rowwise_similarity, similarity, target_positions
from recx.trainer.losses.samplers import SharedNegatives, proposal
from recx.trainer.losses.softmax import softmax_cross_entropy


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
        q = proposal(item_counts, sampler, alpha)  # float64
        self.negatives = SharedNegatives(q, num_negatives, seed)
        self.register_buffer("log_q", q.clamp(min=1e-30).log().float(), persistent=False)
        self.num_negatives = num_negatives
        self.temperature = temperature
        self.gather = gather

    def get_extra_state(self):
        return self.negatives.state()

    def set_extra_state(self, state):
        self.negatives.load_state(state)

    @property
    def q(self) -> torch.Tensor:
        """[N+1] the sampling distribution (float32)."""
        return self.negatives.q

    def sample(self) -> torch.Tensor:
        """[N] negative item ids drawn from q (with replacement)."""
        return self.negatives.sample()

    def forward(self, states: torch.Tensor, batch: Batch, items: ItemVectors, history: torch.Tensor | None = None) -> torch.Tensor:
        assert history is None, f"{type(self).__name__} does not score a history term"
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
        return softmax_cross_entropy(logits, torch.zeros(len(tgt), dtype=torch.long, device=tgt.device))
