"""Two gloo ranks: a run interrupted and resumed ends exactly where an uninterrupted two-rank
run ends (each rank's RNG, cloze masks and negative samplers are saved and restored), and a
different world size is refused."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from gloo_ranks import run_on_gloo_ranks
from recx.data.dataset import Item, write_dataset
from recx.trainer import TrainConfig, fit


def _config(ds, runs, name, model):
    return TrainConfig.from_options(dataset=str(ds), runs_dir=str(runs), name=name, model=model, loss="sampled_softmax", num_negatives=8,
                                    hidden=16, layers=1, heads=2, max_len=8, dropout=0.3, epochs=3, batch_size=8, precision="fp32", seed=3)


def _train(rank: int, ds, runs, name: str, model: str, epochs_this_call: int | None, resume: bool) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = _config(ds, runs, name, model)
    fit(cfg, run_dir=runs / name if resume else None, resume=resume, progress=False, max_epochs_this_call=epochs_this_call)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    items = [Item(f"i{k}") for k in range(30)]
    seqs = [[int(x) for x in rng.integers(1, 31, size=int(rng.integers(3, 11)))] for _ in range(40)]
    return write_dataset(tmp_path_factory.mktemp("d") / "data", items, [f"u{u}" for u in range(40)], seqs, {"name": "ranks"}).path


@pytest.mark.parametrize("model", ["sasrec", "bert4rec"])
def test_two_rank_resume_equals_an_uninterrupted_two_rank_run(dataset, tmp_path, model, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    runs = tmp_path / "runs"
    for sub in "abc":
        (tmp_path / sub).mkdir()
    run_on_gloo_ranks(_train, (dataset, runs, "straight", model, None, False), tmp_path / "a")
    run_on_gloo_ranks(_train, (dataset, runs, "cut", model, 1, False), tmp_path / "b")
    cut = torch.load(runs / "cut" / "last.pt", weights_only=False)
    assert cut["world_size"] == 2 and len(cut["ranks"]) == 2
    # the ranks' random states differ (their shards differ), so saving rank 0's alone would not do
    assert not torch.equal(cut["ranks"][0]["task"]["loss"]["_extra_state"]["generator"], cut["ranks"][1]["task"]["loss"]["_extra_state"]["generator"])
    run_on_gloo_ranks(_train, (dataset, runs, "cut", model, None, True), tmp_path / "c")
    a, b = (torch.load(runs / n / "last.pt", weights_only=False) for n in ("straight", "cut"))
    assert a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    strip = lambda n: [{k: v for k, v in r.items() if k not in ("seconds", "positions_per_s")} for r in
                       map(__import__("json").loads, (runs / n / "metrics.jsonl").read_text().splitlines())]
    assert strip("straight") == strip("cut")

    from recx.trainer.engine import LoopError

    with pytest.raises(LoopError, match=r"written by 2 process\(es\), resumed by 1"):
        fit(_config(dataset, runs, "cut", model), run_dir=runs / "cut", resume=True, progress=False)


def _train_split_folders(rank: int, ds, runs_by_rank: list, name: str) -> None:
    """Each rank resumes from its own copy of the runs folder (machines without a shared filesystem)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    runs = runs_by_rank[rank]
    fit(_config(ds, runs, name, "sasrec"), run_dir=runs / name, resume=True, progress=False, max_epochs_this_call=1)


def test_ranks_resuming_from_unshared_folders_all_refuse(dataset, tmp_path, monkeypatch):
    """On several machines every rank reads last.pt itself: a rank that lacks it, or reads an
    older copy, must not train from other weights; all ranks refuse together (no hang)."""
    import shutil

    from torch.multiprocessing import ProcessRaisedException

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    shared, copy = tmp_path / "shared", tmp_path / "copy"
    for sub in "abcd":
        (tmp_path / sub).mkdir()
    run_on_gloo_ranks(_train, (dataset, shared, "run", "sasrec", 1, False), tmp_path / "a")
    shutil.copytree(shared, copy)
    (copy / "run" / "last.pt").unlink()
    with pytest.raises(ProcessRaisedException, match=r"found by 1 of 2 processes .* one shared filesystem"):
        run_on_gloo_ranks(_train_split_folders, (dataset, [shared, copy], "run"), tmp_path / "b")

    shutil.rmtree(copy)
    shutil.copytree(shared, copy)  # the copy holds epoch 0; the shared folder goes on to epoch 1
    run_on_gloo_ranks(_train, (dataset, shared, "run", "sasrec", 1, True), tmp_path / "c")
    with pytest.raises(ProcessRaisedException, match=r"the ranks read different epochs"):
        run_on_gloo_ranks(_train_split_folders, (dataset, [shared, copy], "run"), tmp_path / "d")
    assert torch.load(shared / "run" / "last.pt", weights_only=False)["epoch"] == 1  # nothing was written by the refused call
