"""One DDP step of Reo-LM on 2 CPU processes (gloo) equals one single-process step on the global batch."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from gloo_ranks import run_on_gloo_ranks
from recx.trainer.data import Batch


def make_step(synth_dir: str, lm_dir: str, gather=None):
    from recx.data.dataset import SequenceDataset
    from recx.trainer.config import TrainConfig
    from recx.trainer.loop import TrainStep
    from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy
    from recx.trainer.reolm.build import build_reolm

    torch.manual_seed(0)
    ds = SequenceDataset(synth_dir)
    cfg = TrainConfig.from_options(dataset=synth_dir, model="reo-lm", lm=lm_dir, max_len=6, item_tokens=16, user_tokens=64, temperature=0.05)
    model = build_reolm(cfg, ds).eval()  # no dropout: both sides compute the same function
    return TrainStep(model, DebiasedCrossEntropy(torch.from_numpy(ds.item_popularity()), temperature=0.05, gather=gather))


def global_batch() -> Batch:
    inputs = torch.tensor([[0, 0, 3, 4], [5, 6, 7, 8], [0, 9, 10, 11], [0, 0, 0, 12]])
    targets = torch.zeros_like(inputs)
    targets[:, -1] = torch.tensor([20, 21, 22, 3])
    return Batch(inputs, targets, torch.arange(4))


def worker(rank: int, synth_dir: str, lm_dir: str, out: str) -> None:
    from recx.distributed import DistContext

    ctx = DistContext(rank=rank, world_size=2)
    step = torch.nn.parallel.DistributedDataParallel(make_step(synth_dir, lm_dir, ctx.gather_ids))
    b = global_batch()
    idx = torch.arange(rank, 4, 2)
    loss = step(Batch(b.inputs[idx], b.targets[idx], b.rows[idx]), None)
    loss.backward()  # equal rows per rank: DDP's gradient average is the global mean's gradient
    total = loss.detach() / 2
    dist.all_reduce(total)
    if rank == 0:
        torch.save({"loss": total, "grads": {k: p.grad for k, p in step.module.named_parameters() if p.grad is not None}}, out)


@pytest.mark.slow
def test_ddp_step_equals_single_process(tmp_path, synth_dir, lm_dir):
    out = str(tmp_path / "ddp.pt")
    run_on_gloo_ranks(worker, (str(synth_dir), str(lm_dir), out), tmp_path)
    ddp = torch.load(out, weights_only=False)
    step = make_step(str(synth_dir), str(lm_dir))
    loss = step(global_batch(), None)
    loss.backward()
    assert ddp["loss"].item() == pytest.approx(loss.item(), rel=1e-4)
    grads = {k: p.grad for k, p in step.named_parameters() if p.grad is not None}
    assert grads.keys() == ddp["grads"].keys() and any(k.startswith("model.backbone.") for k in grads)
    for name, g in grads.items():
        torch.testing.assert_close(ddp["grads"][name], g, rtol=1e-3, atol=1e-5, msg=name)
