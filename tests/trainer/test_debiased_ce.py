import math

import pytest
import torch

from recx.trainer.data import Batch
from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy, log_popularity


def three_item_example():
    """Two users over items 1..3: A has input 1 -> target 2, B has input 2 -> target 3."""
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    states = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], requires_grad=True)  # [B=2, L=1, D=2]
    batch = Batch(torch.tensor([[1], [2]]), torch.tensor([[2], [3]]), torch.tensor([0, 1]))
    counts = torch.tensor([0, 2, 1, 1])  # p = (.5, .25, .25)
    return table, states, batch, counts


def test_hand_computed_three_items(table_items):
    table, states, batch, counts = three_item_example()
    loss = DebiasedCrossEntropy(counts)(states, batch, table_items(table))
    # A (target 2): item 1 is A's own -> masked; candidates 2 (s=0) and 3 (s=1), both log p = log .25
    loss_a = math.log(1 + math.e)
    # B (target 3): item 2 is B's own -> masked; candidates 3 (s=1, p=.25) and 1 (s=0, p=.5)
    loss_b = -math.log((math.e / 0.25) / (math.e / 0.25 + 1 / 0.5))
    assert loss.item() == pytest.approx((loss_a + loss_b) / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.741056, abs=1e-5)


def test_logq_is_subtracted_not_added(table_items):
    table, states, batch, counts = three_item_example()
    loss = DebiasedCrossEntropy(counts)(states, batch, table_items(table)).item()
    wrong_sign_b = -math.log((math.e * 0.25) / (math.e * 0.25 + 0.5))
    assert loss != pytest.approx((math.log(1 + math.e) + wrong_sign_b) / 2, abs=1e-3)


def test_own_items_are_masked(table_items):
    table, states, batch, counts = three_item_example()
    loss = DebiasedCrossEntropy(counts)(states, batch, table_items(table)).item()
    # without masking A's denominator would also hold item 1 (s=1, p=.5)
    unmasked_a = -math.log(4 / (4 + 4 * math.e + 2 * math.e))
    assert loss != pytest.approx((unmasked_a + 0.16885) / 2, abs=1e-3)


def naive_debiased_ce(states, batch, table, counts, alpha=1.0, temperature=0.0, scope="sequence"):
    """One position at a time, straight from the DESIGN.md formula."""
    log_p = log_popularity(counts, alpha)
    ids = torch.cat([batch.inputs.reshape(-1), batch.targets.reshape(-1)])
    cand = sorted(set(ids.tolist()) - {0})
    losses = []
    B, L = batch.targets.shape
    for b in range(B):
        row_items = set(batch.inputs[b].tolist()) | set(batch.targets[b].tolist())
        for t in range(L):
            target = int(batch.targets[b, t])
            if target == 0:
                continue
            own = row_items if scope == "sequence" else set(batch.inputs[b, : t + 1].tolist())
            h = states[b, t]
            def logit(j):
                e = table[j]
                if temperature > 0:
                    s = torch.nn.functional.cosine_similarity(h, e, dim=0) / temperature
                else:
                    s = h @ e
                return s - log_p[j]
            others = [logit(j) for j in cand if j != target and j not in own]
            pos = logit(target)
            losses.append(-(pos - torch.logsumexp(torch.stack([pos, *others]), 0)))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("scope", ["sequence", "past"])
@pytest.mark.parametrize("temperature,alpha", [(0.0, 1.0), (0.1, 0.5)])
def test_matches_naive_reference_with_gradients(table_items, scope, temperature, alpha):
    g = torch.Generator().manual_seed(0)
    N, B, L, D = 30, 4, 6, 8
    inputs = torch.randint(1, N + 1, (B, L), generator=g)
    inputs[0, :3] = 0  # left padding
    inputs[2, :1] = 0
    targets = torch.roll(inputs, -1, 1)
    targets[:, -1] = torch.randint(1, N + 1, (B,), generator=g)
    targets[inputs == 0] = 0
    batch = Batch(inputs, targets, torch.arange(B))
    counts = torch.randint(1, 50, (N + 1,), generator=g)
    table = torch.randn(N + 1, D, generator=g, requires_grad=True)
    states = torch.randn(B, L, D, generator=g, requires_grad=True)

    fast = DebiasedCrossEntropy(counts, alpha, temperature, scope)(states, batch, table_items(table))
    grads_fast = torch.autograd.grad(fast, [states, table])
    slow = naive_debiased_ce(states, batch, table, counts, alpha, temperature, scope)
    grads_slow = torch.autograd.grad(slow, [states, table])
    assert fast.item() == pytest.approx(slow.item(), rel=1e-5)
    for a, b in zip(grads_fast, grads_slow):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_padding_is_never_a_candidate_or_target(table_items):
    table, states, batch, counts = three_item_example()
    padded = Batch(torch.tensor([[0, 1], [0, 2]]), torch.tensor([[0, 2], [0, 3]]), batch.rows)
    states2 = torch.cat([torch.full((2, 1, 2), 100.0), states], dim=1)  # padding states are ignored
    loss_fn = DebiasedCrossEntropy(counts)
    assert loss_fn.candidates(padded).tolist() == [1, 2, 3]
    assert loss_fn(states2, padded, table_items(table)).item() == pytest.approx(0.741056, abs=1e-5)
