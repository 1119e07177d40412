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


# -- 2 users x 3 positions over 5 items, against a plain-float reference -----------------------
#
# A: inputs 1 2 3 -> targets 2 3 4
# B: inputs 0 5 2 -> targets 0 2 1   (left padding: position 0 predicts nothing)
COUNTS = [0, 4, 2, 1, 1, 2]  # p = (.4, .2, .1, .1, .2)
TABLE = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.5], [0.5, -1.0]]
STATES = [[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[9.0, 9.0], [1.0, -1.0], [0.5, 2.0]]]
INPUTS = [[1, 2, 3], [0, 5, 2]]
TARGETS = [[2, 3, 4], [0, 2, 1]]


def tiny():
    table = torch.tensor(TABLE, requires_grad=True)
    states = torch.tensor(STATES, requires_grad=True)
    return table, states, Batch(torch.tensor(INPUTS), torch.tensor(TARGETS), torch.tensor([0, 1]))


def reference(alpha=1.0, temperature=0.0, scope="sequence", logq_sign=-1.0, mask_own=True, extra_candidates=(),
              counts=COUNTS, table=TABLE):
    """The DESIGN.md formula with plain floats and loops (no torch), over the tiny example."""
    weights = [max(c, 1) ** alpha for c in counts]
    p = [w / sum(weights[1:]) for w in weights]
    cand = sorted(({*sum(INPUTS, []), *sum(TARGETS, [])} | set(extra_candidates)) - {0})

    def score(h, j):
        e = table[j]
        dot = sum(a * b for a, b in zip(h, e))
        if temperature > 0:
            dot /= math.sqrt(sum(a * a for a in h)) * math.sqrt(sum(b * b for b in e)) * temperature
        return dot + logq_sign * math.log(p[j])

    losses = []
    for b in range(2):
        for t in range(3):
            target = TARGETS[b][t]
            if target == 0:
                continue
            own = set(INPUTS[b] + TARGETS[b]) if scope == "sequence" else set(INPUTS[b][: t + 1])
            own = (own - {0, target}) if mask_own else set()
            h = STATES[b][t]
            denom = sum(math.exp(score(h, j)) for j in cand if j not in own)
            losses.append(-(score(h, target) - math.log(denom)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("scope", ["sequence", "past"])
@pytest.mark.parametrize("temperature,alpha", [(0.0, 1.0), (0.5, 1.0), (0.2, 0.5)])
def test_tiny_example_exact(table_items, scope, temperature, alpha):
    table, states, batch = tiny()
    loss = DebiasedCrossEntropy(torch.tensor(COUNTS), alpha, temperature, scope)(states, batch, table_items(table))
    assert loss.item() == pytest.approx(reference(alpha, temperature, scope), abs=1e-6)


def test_tiny_example_hand_computed_value(table_items):
    """One number worked out by hand, so the reference above is itself checked.

    sequence scope, inner product, log p = log(.4, .2, .1, .1, .2); z_j = s_j - log p_j.
    A t=0 (h=(1,0), target 2): own {1,3,4} masked; z_2 = 0 - log .2, z_5 = .5 - log .2
    A t=1 (h=(0,1), target 3): own {1,2,4};        z_3 = 1 - log .1, z_5 = -1 - log .2
    A t=2 (h=(1,1), target 4): own {1,2,3};        z_4 = -.5 - log .1, z_5 = -.5 - log .2
    B t=1 (h=(1,-1), target 2): own {1,5};         z_2 = -2 - log .2, z_3 = 0 - log .1, z_4 = -1.5 - log .1
    B t=2 (h=(.5,2), target 1): own {2,5};         z_1 = .5 - log .4, z_3 = 2.5 - log .1, z_4 = .5 - log .1
    """
    e = math.exp
    a0 = -math.log(5 / (5 + 5 * e(0.5)))
    a1 = -math.log(10 * e(1) / (10 * e(1) + 5 * e(-1)))
    a2 = -math.log(10 * e(-0.5) / (10 * e(-0.5) + 5 * e(-0.5)))  # = log 1.5
    b1 = -math.log(5 * e(-2) / (5 * e(-2) + 10 + 10 * e(-1.5)))
    b2 = -math.log(2.5 * e(0.5) / (2.5 * e(0.5) + 10 * e(2.5) + 10 * e(0.5)))
    hand = (a0 + a1 + a2 + b1 + b2) / 5
    assert reference() == pytest.approx(hand, abs=1e-12)
    table, states, batch = tiny()
    loss = DebiasedCrossEntropy(torch.tensor(COUNTS))(states, batch, table_items(table))
    assert loss.item() == pytest.approx(hand, abs=1e-6)


def test_logq_is_subtracted_not_added(table_items):
    table, states, batch = tiny()
    loss = DebiasedCrossEntropy(torch.tensor(COUNTS))(states, batch, table_items(table)).item()
    assert loss == pytest.approx(reference(), abs=1e-6)
    # the example tells the two signs (and no correction) apart by far more than the tolerance
    assert abs(reference(logq_sign=+1.0) - reference()) > 0.1
    assert abs(reference(logq_sign=0.0) - reference()) > 0.1


def test_own_items_are_masked_per_scope(table_items):
    table, states, batch = tiny()
    for scope in ("sequence", "past"):
        loss = DebiasedCrossEntropy(torch.tensor(COUNTS), mask_scope=scope)(states, batch, table_items(table)).item()
        assert loss == pytest.approx(reference(scope=scope), abs=1e-6)
    # unmasked, sequence and past are three different numbers here: each check above can fail
    values = [reference(mask_own=False), reference(scope="sequence"), reference(scope="past")]
    assert min(abs(a - b) for a, b in [(values[0], values[1]), (values[0], values[2]), (values[1], values[2])]) > 0.05


def test_gather_pools_candidates_and_identity_gather_changes_nothing(table_items):
    counts = torch.tensor(COUNTS + [3, 1])  # items 6 and 7 exist but are not in this rank's batch
    extended = TABLE + [[2.0, -1.0], [0.0, 0.0]]

    def run(gather):
        table = torch.tensor(extended, requires_grad=True)
        states = torch.tensor(STATES, requires_grad=True)
        batch = Batch(torch.tensor(INPUTS), torch.tensor(TARGETS), torch.tensor([0, 1]))
        loss = DebiasedCrossEntropy(counts, gather=gather)(states, batch, table_items(table))
        return loss, torch.autograd.grad(loss, [states, table])

    plain, grads = run(None)
    for gather in (lambda ids: ids, lambda ids: torch.cat([ids, ids])):  # one rank / two ranks with the same batch
        loss, g = run(gather)
        assert loss.item() == plain.item()
        for a, b in zip(g, grads):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # another rank's ids (0-padded, as DistContext.gather_ids pads) join the candidates
    loss, g = run(lambda ids: torch.cat([ids, torch.tensor([6, 0, 0])]))
    want = reference(extra_candidates=[6], counts=COUNTS + [3, 1], table=extended)
    assert loss.item() == pytest.approx(want, abs=1e-6)
    assert abs(want - plain.item()) > 0.05
    assert g[1][6].abs().sum() > 0 and g[1][7].abs().sum() == 0  # the pooled item gets a gradient, item 7 none


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
