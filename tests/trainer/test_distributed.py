"""One DDP step on 2 CPU processes (gloo) equals one single-process step on the same global batch.

The ranks weigh their losses with the training loop's own ``loss_scale`` (called as the loop
calls it), so the test checks the loop's weighting: with ``--loss-weighting batch`` the step is
the mean over the global batch's positions, with ``positions`` it is their sum over the epoch's
reference count.  The two shards hold different numbers of positions (18 and 20), so weighing
each rank's mean equally would fail.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from gloo_ranks import run_on_gloo_ranks
from recx.trainer.data import Batch
from recx.distributed import DistContext
from recx.trainer.loop import TrainStep, loss_scale
from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy
from recx.trainer.losses.sampled_softmax import SampledSoftmax
from recx.trainer.model import SequentialRecommender
from recx.trainer.sequence.sasrec import SASRec
from recx.trainer.towers import IdTower

N, B, L, D = 40, 6, 7, 16


def global_batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(1, N + 1, (B, L + 1), generator=g)
    rows[0, :4] = 0
    rows[3, :2] = 0
    return Batch(rows[:, :-1], rows[:, 1:], torch.arange(B))


def make_step(loss_name: str, gather=None, negatives=None) -> TrainStep:
    torch.manual_seed(0)
    model = SequentialRecommender(IdTower(N, D), SASRec(D, layers=1, heads=2, dropout=0.0, max_len=L))
    counts = torch.arange(N + 1) % 7 + 1
    if loss_name == "debiased_ce":
        loss = DebiasedCrossEntropy(counts, gather=gather)
    else:
        loss = SampledSoftmax(counts, num_negatives=5, gather=gather)
        loss.sample = lambda: negatives  # fixed negatives so both sides draw the same
    return TrainStep(model, loss)


def shard(batch: Batch, rank: int) -> Batch:
    idx = torch.arange(rank, B, 2)
    return Batch(batch.inputs[idx], batch.targets[idx], batch.rows[idx])


REFERENCE = 15.0  # --loss-weighting positions: the epoch's average target positions per step


def worker(rank: int, loss_name: str, weighting: str, out: str) -> None:
    ctx = DistContext(rank=rank, world_size=2)
    negs = torch.tensor([[3, 9, 17, 25, 33], [4, 9, 11, 20, 38]])
    step = torch.nn.parallel.DistributedDataParallel(make_step(loss_name, ctx.gather_ids, negs[rank]))
    local = shard(global_batch(), rank)
    n = int((local.targets > 0).sum())
    loss = step(local, None)
    reference = None if weighting == "batch" else REFERENCE
    # exactly as the training loop calls it (run_epochs, recx/trainer/engine.py)
    scale = loss_scale(n, ctx.global_count(n) if reference is None else n, ctx.world_size, reference)
    scaled = loss * scale
    scaled.backward()
    total = scaled.detach() / 2
    dist.all_reduce(total)  # sum of (scaled / world) = the step's objective
    if rank == 0:
        torch.save({"loss": total, "n": n, "grads": {k: p.grad for k, p in step.module.named_parameters()}}, out)


@pytest.mark.parametrize("loss_name,weighting", [("debiased_ce", "batch"), ("sampled_softmax", "batch"), ("debiased_ce", "positions")])
def test_ddp_step_equals_single_process(tmp_path, loss_name, weighting):
    out = str(tmp_path / "ddp.pt")
    run_on_gloo_ranks(worker, (loss_name, weighting, out), tmp_path)
    ddp = torch.load(out, weights_only=False)
    assert ddp["n"] == 18  # rank 0's positions; rank 1 holds 20

    step = make_step(loss_name, negatives=torch.tensor([3, 9, 17, 25, 33, 4, 9, 11, 20, 38]))
    assert int((global_batch().targets > 0).sum()) == 38
    mean = step(global_batch(), None)  # the mean over the global batch's 38 positions
    # what the step should minimise, by the docstring's definition (not through loss_scale)
    loss = mean if weighting == "batch" else mean * 38 / REFERENCE  # sum of position losses / reference
    loss.backward()
    assert ddp["loss"].item() == pytest.approx(loss.item(), rel=1e-5)
    for name, p in step.named_parameters():
        torch.testing.assert_close(ddp["grads"][name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
