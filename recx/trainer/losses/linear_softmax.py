"""Softmax cross-entropy over every candidate's similarity, a block of rows at a time:
``softmax_cross_entropy(similarity(states, vectors, t), targets)`` without its [P, C] logits.

The full softmax of SASRec (and of Reo-LM's frozen-table stage) scores P positions against C
catalog items at a width of 64: the [P, C] logits are tens of megabytes, written by one matmul,
read back by the softmax, again by the backward and by its two matmuls, so on a CPU the loss
waits on memory, not arithmetic.  Here each block of rows (about a megabyte of logits, which
stays in cache) goes through all of it at once, as fused linear cross-entropy kernels do
(Liger's FusedLinearCrossEntropy, Apple's Cut Cross-Entropy): its logits, exponentials, loss and
gradient softmax - one-hot, then its share of both gradients (``dL/dstates`` rows, and
``dL/dvectors`` accumulated).  The backward only scales the two gradients kept from the
forward.  Same loss and gradients as the plain path (tested); the logits stay fp32 under
autocast.  Timings: benchmarks/softmax_ce_speed.py, docs/softmax_ce_speed.json.
"""

from __future__ import annotations

import torch

from recx.trainer.losses.similarity import similarity_operands

# logits per block: on a CPU 1 MiB of fp32, a core's share of cache (2^15-2^21 measured: 2^18
# fastest); elsewhere all rows in one block up to 256 MiB, as before blocks (no GPU measured)
BLOCK_ELEMENTS = {"cpu": 1 << 18}
OTHER_BLOCK_ELEMENTS = 1 << 26
MIN_BLOCK_ROWS = 16  # a huge catalog still gets matmuls, not matrix-vector products


class _LinearSoftmaxCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, states: torch.Tensor, vectors: torch.Tensor, targets: torch.Tensor, divisor: float, block_rows: int,
                grad_enabled: bool) -> torch.Tensor:
        P = len(targets)
        want_states = grad_enabled and ctx.needs_input_grad[0]
        want_vectors = grad_enabled and ctx.needs_input_grad[1]
        grad_states = torch.empty_like(states) if want_states else None  # [P, D]
        grad_vectors = torch.zeros_like(vectors) if want_vectors else None  # [C, D]
        total = states.new_zeros(())
        for start in range(0, P, block_rows):
            rows, tgt = states[start:start + block_rows], targets[start:start + block_rows]  # [b, D], [b]
            logits = rows @ vectors.T  # [b, C]
            if divisor != 1.0:
                logits.div_(divisor)
            picked = logits.gather(1, tgt.unsqueeze(1)).squeeze(1)  # [b] before exp_ overwrites it
            top = logits.amax(1, keepdim=True)  # [b, 1]
            exp = logits.sub_(top).exp_()  # [b, C]
            sums = exp.sum(1, keepdim=True)  # [b, 1]
            total += (sums.log().squeeze(1) + top.squeeze(1) - picked).sum()
            if want_states or want_vectors:
                # softmax - one-hot, over the mean's P and through the similarity's divisor
                grad = exp.mul_(1.0 / (P * divisor) / sums)
                grad[torch.arange(len(tgt), device=grad.device), tgt] -= 1.0 / (P * divisor)
                if want_states:
                    torch.mm(grad, vectors, out=grad_states[start:start + block_rows])
                if want_vectors:
                    grad_vectors.addmm_(grad.T, rows)
        ctx.save_for_backward(grad_states, grad_vectors)
        return total / P

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_states, grad_vectors = ctx.saved_tensors
        return (None if grad_states is None else grad_states * grad, None if grad_vectors is None else grad_vectors * grad,
                None, None, None, None)


def linear_softmax_cross_entropy(states: torch.Tensor, vectors: torch.Tensor, targets: torch.Tensor, temperature: float,
                                 block_elements: int | None = None) -> torch.Tensor:
    """Mean over rows of -log softmax(similarity(states, vectors, temperature))[row, target], in
    fp32, computed ``block_elements`` logits at a time (default: BLOCK_ELEMENTS of the device).

    states [P, D], vectors [C, D] (either may be frozen), targets [P] long in [0, C) -> scalar.
    """
    assert states.dim() == 2 and vectors.dim() == 2 and states.shape[1] == vectors.shape[1], (tuple(states.shape), tuple(vectors.shape))
    assert targets.shape == (states.shape[0],), (tuple(targets.shape), tuple(states.shape))
    states, vectors, divisor = similarity_operands(states, vectors, temperature)
    if block_elements is None:
        block_elements = BLOCK_ELEMENTS.get(states.device.type, OTHER_BLOCK_ELEMENTS)
    block_rows = max(MIN_BLOCK_ROWS, block_elements // max(1, vectors.shape[0]))
    with torch.autocast(states.device.type, enabled=False):  # the matmuls of a loss stay fp32
        return _LinearSoftmaxCrossEntropy.apply(states, vectors, targets, divisor, block_rows, torch.is_grad_enabled())
