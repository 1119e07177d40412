"""Softmax cross-entropy over candidates' similarities, a block of rows at a time: the loss of
``softmax_cross_entropy((similarity(states, vectors, t) + offsets).masked_fill(mask, -inf),
targets)``, and with a model's history term added to its past items' logits (TermScores),
without its [P, C] logits.  Every softmax loss over a shared candidate set uses it (full_ce,
debiased_ce).

A full or in-batch softmax scores P positions against C candidates at a width of 64: the [P, C]
logits are tens of megabytes, written by one matmul, read back by the offsets, the masks, the
history term, the softmax, again by the backward and by its two matmuls, so on a CPU the loss
waits on memory, not arithmetic.  Here each block of rows (about a megabyte of logits, which
stays in cache) goes through all of it at once, as fused linear cross-entropy kernels do
(Liger's FusedLinearCrossEntropy, Apple's Cut Cross-Entropy): its logits, offsets, masks and
history term, exponentials, loss and gradient softmax - one-hot, then its share of every
gradient (``dL/dstates`` rows, ``dL/dvectors`` accumulated, ``dL/dhistory`` rows).  The backward
only scales the gradients kept from the forward.  Same loss and gradients as the whole-logits
path (tested against it); the logits stay fp32 under autocast.  Timings:
benchmarks/softmax_ce_speed.py, docs/softmax_ce_speed.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from recx.trainer.config import HISTORY_GRADIENTS
from recx.trainer.losses.similarity import similarity_operands
from recx.trainer.losses.softmax import exp_and_nll

# logits per block: on a CPU 1 MiB of fp32, a core's share of cache (2^15-2^21 measured: 2^18
# fastest); elsewhere all rows in one block up to 256 MiB, as before blocks (no GPU measured)
BLOCK_ELEMENTS = {"cpu": 1 << 18}
OTHER_BLOCK_ELEMENTS = 1 << 26
MIN_BLOCK_ROWS = 16  # a huge catalog still gets matmuls, not matrix-vector products

BlockMask = Callable[[int, int], torch.Tensor]  # rows start..stop -> [stop - start, C] bool, True = not a candidate


@dataclass
class TermScores:
    """A model's history term at each prediction (recx/trainer/history.py): ``values`` [P, L] fp32
    (trainable) added to the logit columns ``columns`` [P, L] long (C: no column, e.g. padding;
    an item twice in a row adds twice); ``unmask``: of the loss's masked candidates, those the
    term scores, so the softmax with the term keeps them (None: it masks what the loss masks);
    ``gradient``: ``term`` (the loss without the term trains states and vectors, the same
    softmax over their detached scores plus the term trains the term) or ``all`` (one softmax
    with the term trains everything)."""

    columns: torch.Tensor
    values: torch.Tensor
    unmask: BlockMask | None
    gradient: str


def _cross_entropy_(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over rows of -log softmax(logits)[row, target]; turns ``logits`` [b, C] (masked
    entries -inf, targets' finite) into softmax - one-hot in place."""
    exp, sums, total = exp_and_nll(logits, targets, out=logits)
    exp.div_(sums)[torch.arange(len(targets), device=logits.device), targets] -= 1.0
    return total


class _LinearSoftmaxCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, states: torch.Tensor, vectors: torch.Tensor, values: torch.Tensor | None, targets: torch.Tensor,
                divisor: float, offsets: torch.Tensor | None, mask: BlockMask | None, term: TermScores | None, block_rows: int,
                grad_enabled: bool) -> torch.Tensor:
        P, C = len(targets), vectors.shape[0]
        want = [grad_enabled and need for need in ctx.needs_input_grad[:3]]
        grad_states = torch.empty_like(states) if want[0] else None  # [P, D]
        grad_vectors = torch.zeros_like(vectors) if want[1] else None  # [C, D]
        grad_values = torch.empty_like(values) if want[2] else None  # [P, L]
        train_term_only = term is not None and term.gradient == "term"
        total = states.new_zeros(())

        def encoder_grads(grad: torch.Tensor, rows: torch.Tensor, start: int) -> None:
            """grad [b, C] = softmax - one-hot of the block: its rows' share of dL/dstates and dL/dvectors."""
            grad = grad.mul_(1.0 / (P * divisor))  # the mean over P, through the similarity's divisor
            if want[0]:
                torch.mm(grad, vectors, out=grad_states[start:start + len(rows)])
            if want[1]:
                grad_vectors.addmm_(grad.T, rows)

        for start in range(0, P, block_rows):
            stop = min(P, start + block_rows)
            rows, tgt = states[start:stop], targets[start:stop]  # [b, D], [b]
            logits = rows @ vectors.T  # [b, C]
            if divisor != 1.0:
                logits.div_(divisor)
            if offsets is not None:
                logits.add_(offsets)
            masked = None if mask is None else mask(start, stop)  # [b, C]
            if term is None or train_term_only:  # the loss without the term
                plain = logits.clone() if term is not None else logits
                if masked is not None:
                    plain.masked_fill_(masked, float("-inf"))
                total += _cross_entropy_(plain, tgt)
                if want[0] or want[1]:
                    encoder_grads(plain, rows, start)
            if term is not None:
                wide = logits.new_zeros(stop - start, C + 1)  # column C takes what has no column
                wide[:, :C] = logits
                columns = term.columns[start:stop]  # [b, L]
                wide.scatter_add_(1, columns, values[start:stop])
                scored = wide[:, :C]
                if masked is not None:
                    scored.masked_fill_(masked if term.unmask is None else masked & ~term.unmask(start, stop), float("-inf"))
                total += _cross_entropy_(scored, tgt)
                wide[:, C] = 0.0
                if want[2]:
                    torch.gather(wide, 1, columns, out=grad_values[start:stop]).div_(P)
                if not train_term_only and (want[0] or want[1]):
                    encoder_grads(scored, rows, start)
        ctx.save_for_backward(grad_states, grad_vectors, grad_values)
        return total / P

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return (*(None if g is None else g * grad for g in ctx.saved_tensors), *(None,) * 7)


def linear_softmax_cross_entropy(states: torch.Tensor, vectors: torch.Tensor, targets: torch.Tensor, temperature: float, *,
                                 offsets: torch.Tensor | None = None, mask: BlockMask | None = None, term: TermScores | None = None,
                                 block_elements: int | None = None) -> torch.Tensor:
    """Mean over rows of -log softmax(logits)[row, target], in fp32, computed ``block_elements``
    logits at a time (default: BLOCK_ELEMENTS of the device), where logits = similarity(states,
    vectors, temperature) + offsets, -inf where ``mask``; with a history term, the loss that
    TermScores.gradient defines (``term``: that loss plus the one over the detached logits with
    the term added at its columns, -inf where ``mask`` but not ``term.unmask``; ``all``: the
    latter alone).

    states [P, D], vectors [C, D] (either may be frozen), targets [P] long in [0, C) (never
    masked), offsets [C] (constant) -> scalar.
    """
    P, C = states.shape[0], vectors.shape[0]
    assert states.dim() == 2 and vectors.dim() == 2 and states.shape[1] == vectors.shape[1], (tuple(states.shape), tuple(vectors.shape))
    assert targets.shape == (P,), (tuple(targets.shape), P)
    assert offsets is None or offsets.shape == (C,), (tuple(offsets.shape), C)
    if term is not None:
        assert term.columns.shape == term.values.shape and term.columns.shape[0] == P, (tuple(term.columns.shape), tuple(term.values.shape), P)
        if term.gradient not in HISTORY_GRADIENTS:
            raise ValueError(f"history gradient {term.gradient!r}: expected one of {', '.join(HISTORY_GRADIENTS)}")
    states, vectors, divisor = similarity_operands(states, vectors, temperature)
    if block_elements is None:
        block_elements = BLOCK_ELEMENTS.get(states.device.type, OTHER_BLOCK_ELEMENTS)
    block_rows = max(MIN_BLOCK_ROWS, block_elements // max(1, C))
    values = None if term is None else term.values.float()
    with torch.autocast(states.device.type, enabled=False):  # the matmuls of a loss stay fp32
        return _LinearSoftmaxCrossEntropy.apply(states, vectors, values, targets, divisor, None if offsets is None else offsets.float(),
                                                mask, term, block_rows, torch.is_grad_enabled())
