"""How a user state scores an item vector: the similarity every loss (and ranking) uses.

Inner product when ``temperature`` is 0; cosine / temperature when it is positive.  Always
computed in fp32 (losses stay fp32 under bf16 / fp16 autocast).  A new similarity is one
function pair here and the losses that take it.
"""

from __future__ import annotations

import torch
from torch import nn


def similarity_operands(states: torch.Tensor, vectors: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """What the similarity multiplies: (states, vectors) in fp32, normalized when temperature > 0,
    and the divisor of their product (the temperature, else 1)."""
    states, vectors = states.float(), vectors.float()
    if temperature > 0:
        return nn.functional.normalize(states, dim=-1), nn.functional.normalize(vectors, dim=-1), temperature
    return states, vectors, 1.0


def similarity(states: torch.Tensor, vectors: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits in fp32: inner product, or cosine / temperature when temperature > 0.

    states [P, D], vectors [C, D] -> [P, C].
    """
    states, vectors, divisor = similarity_operands(states, vectors, temperature)
    return states @ vectors.T / divisor if divisor != 1.0 else states @ vectors.T


def rowwise_similarity(states: torch.Tensor, vectors: torch.Tensor, temperature: float) -> torch.Tensor:
    """Similarity of matching rows in fp32: states [P, D], vectors [P, D] -> [P]."""
    states, vectors = states.float(), vectors.float()
    if temperature > 0:
        states = nn.functional.normalize(states, dim=-1)
        vectors = nn.functional.normalize(vectors, dim=-1)
        return (states * vectors).sum(-1) / temperature
    return (states * vectors).sum(-1)
