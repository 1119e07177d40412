"""Softmax cross-entropy in one exponential pass: ``F.cross_entropy`` for every training loss
and Reo-LM pre-training head, without its [P, C] zero-filled NLL gradient and second pass.

``F.cross_entropy`` runs log_softmax (an exponential per logit), then NLL: its backward fills a
[P, C] zero tensor, puts -1/P at the targets, and log_softmax's backward turns that into
softmax - one-hot (a second exponential per logit).  Here the forward keeps exp(logit - row max)
and its row sums, and the backward scales them in place into softmax - one-hot: the same loss
and gradient (tested equal, -inf logits included), one exponential per logit instead of two.
Timings: benchmarks/softmax_ce_speed.py, docs/softmax_ce_speed.json.
"""

from __future__ import annotations

import torch


def exp_and_nll(logits: torch.Tensor, targets: torch.Tensor, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The one exponential pass: exp(logits - row max) [P, C] (written into ``out``, which may be
    ``logits`` itself), its row sums [P, 1], and the sum over rows of -log softmax at the target
    (a scalar).  logits [P, C] (masked entries -inf; a target's own logit is finite); targets [P]."""
    picked = logits.gather(1, targets.unsqueeze(1)).squeeze(1)  # [P], before ``out`` may overwrite it
    top = logits.amax(1, keepdim=True)  # [P, 1]; a row's target logit is finite, so is its max
    exp = torch.sub(logits, top, out=out).exp_()  # [P, C]; exp(-inf) = 0 for masked logits
    sums = exp.sum(1, keepdim=True)  # [P, 1]
    return exp, sums, (sums.log().squeeze(1) + top.squeeze(1) - picked).sum()


class _SoftmaxCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        exp, total, nll = exp_and_nll(logits, targets)
        ctx.save_for_backward(exp, total, targets)
        return nll / len(targets)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        exp, total, targets = ctx.saved_tensors
        scale = grad / len(targets)
        g = exp.mul_(scale / total)  # softmax, scaled; the saved tensor is used only here
        g[torch.arange(len(targets), device=g.device), targets] -= scale
        return g, None


def softmax_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -log softmax(logits)[row, target]: ``F.cross_entropy(logits, targets)``.

    logits [P, C] float (masked entries -inf; a target's own logit is finite); targets [P] long.
    """
    assert logits.dim() == 2 and targets.shape == (logits.shape[0],), (tuple(logits.shape), tuple(targets.shape))
    return _SoftmaxCrossEntropy.apply(logits, targets)
