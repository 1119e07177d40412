"""`--warm-start RUN`: a tuned-block run starts where the frozen-store run ended."""

from __future__ import annotations

import json

import pytest
import torch

from recx.trainer.checkpoint import load_run_config

from recx.featurize import run as featurize
from recx.trainer import TrainConfig, fit, load_trained
from recx.trainer.registry import build_model
from recx.trainer.warm_start import WarmStartError, warm_start


@pytest.fixture
def frozen_run(tiny_bert, make_text_dataset, tmp_path):
    """(dataset, top-1 store, a finished one-epoch frozen id+text run on it)."""
    dataset = make_text_dataset(tmp_path, n_items=30, n_users=24)
    store = featurize(dataset.path, model=str(tiny_bert), out=tmp_path / "s.h5", cache_top_k=1, dtype="float32", progress=False)
    cfg = TrainConfig.from_options(dataset=str(dataset.path), item_tower="id+text", stores={"text": str(store)}, hidden=8, layers=1, heads=2,
                      max_len=6, epochs=1, batch_size=8, loss="debiased_ce", runs_dir=str(tmp_path / "runs"), name="frozen")
    return dataset, store, fit(cfg, progress=False).run_dir


def topk_config(dataset, store, tmp_path, **kw) -> TrainConfig:
    options = dict(hidden=8, layers=1, heads=2, max_len=6, epochs=1, batch_size=8, loss="debiased_ce", runs_dir=str(tmp_path / "runs"))
    return TrainConfig.from_options(dataset=str(dataset.path), item_tower="id+topk", stores={"topk": str(store)}, **{**options, **kw})


def test_shared_weights_are_copied_and_the_tuned_block_starts_pretrained(frozen_run, tmp_path):
    dataset, store, run = frozen_run
    source, _, _ = load_trained(run)
    built = build_model(topk_config(dataset, store, tmp_path), dataset)
    pretrained_block = {k: v.clone() for k, v in built.state_dict().items() if ".top." in k}
    report = warm_start(built, run, dataset.fingerprint)

    own = built.state_dict()
    assert report.loaded == sorted(k for k in source.state_dict() if k in own)
    assert report.fresh == sorted(pretrained_block)  # exactly the tuned block is not in the frozen run
    for k in report.loaded:
        torch.testing.assert_close(own[k], source.state_dict()[k], rtol=0, atol=0)
    for k, v in pretrained_block.items():
        torch.testing.assert_close(own[k], v, rtol=0, atol=0)
    # the untuned top block over cached trunk states reproduces the store, so both models score
    # the catalog alike before the second stage takes its first step
    torch.testing.assert_close(built.eval().item_table(), source.item_table(), rtol=5e-2, atol=5e-3)


def test_fit_records_the_warm_start_and_resume_does_not_reapply_it(frozen_run, tmp_path):
    dataset, store, run = frozen_run
    cfg = topk_config(dataset, store, tmp_path, name="tuned", warm_start=str(run), epochs=2)
    result = fit(cfg, progress=False, max_epochs_this_call=1)
    assert json.loads((result.run_dir / "config.json").read_text())["config"]["run"]["warm_start"] == "../frozen"  # run-relative
    assert load_run_config(result.run_dir).run.warm_start == str(run)
    pretrained = build_model(topk_config(dataset, store, tmp_path), dataset).state_dict()
    after_one = load_trained(result.run_dir, "last.pt")[0].state_dict()
    assert any(not torch.equal(after_one[k], pretrained[k]) for k in after_one if ".top." in k), "the top block must be tuned"
    # resuming continues from last.pt: the same two epochs as one uninterrupted call
    fit(cfg, run_dir=result.run_dir, resume=True, progress=False)
    straight = fit(topk_config(dataset, store, tmp_path, name="straight", warm_start=str(run), epochs=2), progress=False)
    a, b = load_trained(result.run_dir)[0].state_dict(), load_trained(straight.run_dir)[0].state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_bad_sources_are_refused_by_name(frozen_run, tmp_path):
    dataset, store, run = frozen_run
    model = build_model(topk_config(dataset, store, tmp_path), dataset)
    with pytest.raises(WarmStartError, match="another dataset"):
        warm_start(model, run, "0" * 64)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarmStartError, match="no best.pt"):
        warm_start(model, tmp_path / "empty", dataset.fingerprint)
    id_cfg = TrainConfig.from_options(dataset=str(dataset.path), item_tower="id", hidden=16, layers=1, heads=2, max_len=6, epochs=1, batch_size=8,
                         loss="debiased_ce", runs_dir=str(tmp_path / "runs"), name="wide", history_term="off")
    wide = fit(id_cfg, progress=False).run_dir
    with pytest.raises(WarmStartError, match="no weight of it matches"):
        warm_start(model, wide, dataset.fingerprint)  # another width, and no fusion: nothing shared
