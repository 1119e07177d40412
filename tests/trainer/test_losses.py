"""bce, full_ce and sampled_softmax against naive per-position references, gradients included."""

import math

import pytest
import torch
from torch.nn import functional as F

from recx.trainer.data import Batch
from recx.trainer.losses.bce import BinaryCrossEntropy, sample_excluding
from recx.trainer.losses.full_ce import FullCrossEntropy
from recx.trainer.losses.sampled_softmax import SampledSoftmax

N, B, L, D = 25, 3, 5, 6


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(1, N + 1, (B, L), generator=g)
    inputs[1, :2] = 0
    targets = torch.randint(1, N + 1, (B, L), generator=g)
    targets[inputs == 0] = 0
    table = torch.randn(N + 1, D, generator=g, requires_grad=True)
    states = torch.randn(B, L, D, generator=g, requires_grad=True)
    return Batch(inputs, targets, torch.arange(B)), table, states


def positions(batch):
    return [(b, t) for b in range(B) for t in range(L) if batch.targets[b, t] > 0]


def assert_same(fast, slow, wrt):
    assert fast.item() == pytest.approx(slow.item(), rel=1e-5)
    for a, b in zip(torch.autograd.grad(fast, wrt), torch.autograd.grad(slow, wrt)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_full_ce_matches_reference(problem, table_items):
    batch, table, states = problem
    fast = FullCrossEntropy()(states, batch, table_items(table))
    slow = torch.stack([-F.log_softmax(table[1:] @ states[b, t], 0)[batch.targets[b, t] - 1] for b, t in positions(batch)]).mean()
    assert_same(fast, slow, [states, table])


def test_bce_matches_reference_and_never_samples_own_items(problem, table_items):
    batch, table, states = problem
    own = torch.zeros(B, N + 1, dtype=torch.bool)
    own[0, 1:20] = True  # user 0 has seen most of the catalog
    loss_fn = BinaryCrossEntropy(lambda rows: own[rows].clone(), seed=3)
    fast = loss_fn(states, batch, table_items(table))
    # replay the same negatives with a generator in the same state
    excluded = own.clone()
    excluded[:, 0] = True
    negatives = sample_excluding(excluded, (B, L), torch.Generator().manual_seed(3))
    assert not own.gather(1, negatives).any()
    pos = torch.stack([states[b, t] @ table[batch.targets[b, t]] for b, t in positions(batch)])
    neg = torch.stack([states[b, t] @ table[negatives[b, t]] for b, t in positions(batch)])
    slow = -F.logsigmoid(pos).mean() - F.logsigmoid(-neg).mean()
    assert_same(fast, slow, [states, table])


def test_sample_excluding_respects_mask():
    excluded = torch.ones(4, N + 1, dtype=torch.bool)
    excluded[:, 7] = False
    excluded[2, 9] = False
    out = sample_excluding(excluded, (4, 50), torch.Generator().manual_seed(0))
    assert set(out[[0, 1, 3]].unique().tolist()) == {7}
    assert set(out[2].unique().tolist()) <= {7, 9}


@pytest.mark.parametrize("sampler", ["uniform", "popularity"])
def test_sampled_softmax_matches_reference(problem, table_items, sampler):
    batch, table, states = problem
    counts = torch.arange(N + 1) + 1
    loss_fn = SampledSoftmax(counts, num_negatives=12, sampler=sampler, seed=5)
    fast = loss_fn(states, batch, table_items(table))
    ref = SampledSoftmax(counts, num_negatives=12, sampler=sampler, seed=5)
    neg = ref.sample()
    q = ref.q
    losses = []
    for b, t in positions(batch):
        tgt = int(batch.targets[b, t])
        h = states[b, t]
        logits = [h @ table[tgt] - q[tgt].log()] + [h @ table[j] - q[j].log() for j in neg.tolist() if j != tgt]
        losses.append(-(logits[0] - torch.logsumexp(torch.stack(logits), 0)))
    assert_same(fast, torch.stack(losses).mean(), [states, table])


def test_sampler_state_round_trips():
    counts = torch.ones(N + 1)
    a = SampledSoftmax(counts, 4, seed=0)
    a.sample()
    b = SampledSoftmax(counts, 4, seed=99)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.sample(), b.sample())


def test_full_ce_with_temperature_hand_computed(table_items):
    """cosine / temperature over items 1..3, worked out by hand; padding targets are skipped.

    e1 = (1, 0), e2 = (0, 2), e3 = (3, 4) -> unit (1, 0), (0, 1), (.6, .8); tau = .5
    h = (1, 1), target 3: cosines 1/sqrt2, 1/sqrt2, 1.4/sqrt2
    h = (2, 0), target 1: cosines 1, 0, .6
    """
    table = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    states = torch.tensor([[[5.0, -5.0], [1.0, 1.0], [2.0, 0.0]]])
    batch = Batch(torch.tensor([[0, 2, 3]]), torch.tensor([[0, 3, 1]]), torch.tensor([0]))
    e, r = math.exp, math.sqrt(2)
    first = -(2.8 / r - math.log(2 * e(2 / r) + e(2.8 / r)))
    second = -(2.0 - math.log(e(2.0) + e(0.0) + e(1.2)))
    loss = FullCrossEntropy(temperature=0.5)(states, batch, table_items(table))
    assert loss.item() == pytest.approx((first + second) / 2, abs=1e-6)
    # the inner product gives another number (the temperature is not ignored)
    dot = FullCrossEntropy()(states, batch, table_items(table)).item()
    assert abs(dot - loss.item()) > 0.1


def test_full_ce_with_temperature_matches_reference_with_gradients(problem, table_items):
    batch, table, states = problem
    tau = 0.07
    fast = FullCrossEntropy(temperature=tau)(states, batch, table_items(table))
    slow = []
    for b, t in positions(batch):
        cos = torch.stack([F.cosine_similarity(states[b, t], table[j], dim=0) for j in range(1, N + 1)]) / tau
        slow.append(-F.log_softmax(cos, 0)[batch.targets[b, t] - 1])
    assert_same(fast, torch.stack(slow).mean(), [states, table])


@pytest.mark.parametrize("temperature", [0.0, 0.5])
def test_sampled_softmax_gather(problem, table_items, temperature):
    """An identity gather (one process) is the plain loss, gradients included; a gather that
    pools another rank's negatives scores every position against the pooled list."""
    batch, table, states = problem
    counts = torch.arange(N + 1) + 1
    plain = SampledSoftmax(counts, num_negatives=6, temperature=temperature, seed=2)(states, batch, table_items(table))
    same = SampledSoftmax(counts, num_negatives=6, temperature=temperature, seed=2, gather=lambda n: n)(states, batch, table_items(table))
    assert same.item() == plain.item()
    for a, b in zip(torch.autograd.grad(same, [states, table]), torch.autograd.grad(plain, [states, table])):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    other = torch.tensor([4, 4, 19])  # the other rank's draws
    pooled_loss = SampledSoftmax(counts, num_negatives=6, temperature=temperature, seed=2, gather=lambda n: torch.cat([n, other]))
    fast = pooled_loss(states, batch, table_items(table))
    ref = SampledSoftmax(counts, num_negatives=6, seed=2)
    pooled = ref.sample().tolist() + other.tolist()
    log_q = -math.log(N)  # uniform sampler: q_j = 1 / N

    def s(h, j):
        e = table[j]
        return (F.cosine_similarity(h, e, dim=0) / temperature if temperature > 0 else h @ e) - log_q

    losses = []
    for b, t in positions(batch):
        tgt, h = int(batch.targets[b, t]), states[b, t]
        logits = [s(h, tgt)] + [s(h, j) for j in pooled if j != tgt]
        losses.append(-(logits[0] - torch.logsumexp(torch.stack(logits), 0)))
    assert_same(fast, torch.stack(losses).mean(), [states, table])
