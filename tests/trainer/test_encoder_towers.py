"""topk and e2e towers on a tiny local BERT: pretrained blocks inside the training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recx.featurize import run as featurize
from recx.featurize.registry import load_encoder
from recx.trainer import TrainConfig, fit, load_trained
from recx.trainer.encoder_towers import EndToEndTower, StepMemo, TopBlocksTower, load_cached_trunk, unfreeze_top_blocks


@pytest.fixture
def text_dataset(tmp_path, make_text_dataset):
    return make_text_dataset(tmp_path, n_items=30, n_users=24)


def test_unfreeze_top_blocks_by_name(tiny_bert):
    enc = load_encoder(str(tiny_bert))
    names = unfreeze_top_blocks(enc, 1)
    assert names == enc.block_names()[-1:]
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(names[0]) for n in trainable)
    with pytest.raises(ValueError, match="blocks"):
        unfreeze_top_blocks(enc, 99)


def test_topk_tower_matches_the_store_and_trains(tiny_bert, text_dataset, tmp_path):
    store = featurize(text_dataset.path, model=str(tiny_bert), out=tmp_path / "s.h5", cache_top_k=1, dtype="float32", progress=False)
    top, hidden, mask, present = load_cached_trunk(str(store), text_dataset)
    tower = TopBlocksTower(top, hidden, mask, present, dim=8).eval()
    # before training, the top blocks on cached states reproduce the frozen embeddings
    from recx.featurize.store import open_store

    frozen = torch.from_numpy(np.asarray(open_store(store).embeddings, dtype=np.float32))
    items = torch.nonzero(present).flatten()
    torch.testing.assert_close(tower.encode(items), frozen[items], rtol=2e-2, atol=2e-2)

    # length-sorted chunks trimmed to their own longest item give the same rows as one call
    tower.encode_chunk = 4
    assert len(items) > 2 * tower.encode_chunk and tower.lengths[items].unique().numel() > 1
    torch.testing.assert_close(tower.encode_sorted(items), tower.encode(items), rtol=1e-5, atol=1e-5)

    cfg = TrainConfig.from_options(dataset=str(text_dataset.path), item_tower="topk", stores={"topk": str(store)}, hidden=8, layers=1, heads=2, max_len=6, epochs=2, batch_size=8, loss="debiased_ce", runs_dir=str(tmp_path / "runs"), name="topk")
    before = {k: v.clone() for k, v in tower.top.state_dict().items()}
    run = fit(cfg, progress=False).run_dir
    model, _, _ = load_trained(run)
    after = model.tower.top.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "the top blocks must be tuned"
    assert model.item_table().shape == (31, 8)


def test_e2e_tower_trains_only_top_blocks(tiny_bert, text_dataset, tmp_path):
    cfg = TrainConfig.from_options(dataset=str(text_dataset.path), item_tower="e2e", encoder=str(tiny_bert), tune_blocks=1, hidden=8, layers=1, heads=2, max_len=6, epochs=2, batch_size=8, loss="full_ce", runs_dir=str(tmp_path / "runs"), name="e2e")
    pristine = load_encoder(str(tiny_bert)).state_dict()
    run = fit(cfg, progress=False).run_dir
    model, _, _ = load_trained(run)
    tower = model.tower
    assert isinstance(tower, EndToEndTower)
    tuned_prefix = tower.tuned_blocks[0]
    changed = {k for k, v in tower.encoder.state_dict().items() if not torch.equal(v, pristine[k])}
    assert changed and all(tuned_prefix in k for k in changed)


def test_step_memo_encodes_each_item_once(tiny_bert, text_dataset):
    enc = load_encoder(str(tiny_bert))
    tower = EndToEndTower(enc, text_dataset.texts, dim=8, tune_blocks=0)
    calls = []
    original = tower.encode
    tower.encode = lambda items: calls.append(items.tolist()) or original(items)
    memo = StepMemo(tower)
    a = memo(torch.tensor([[0, 2, 3], [3, 2, 5]]))
    b = memo(torch.tensor([5, 7, 2]))
    flat = [i for c in calls for i in c]
    assert len(flat) == len(set(flat))
    torch.testing.assert_close(a, tower(torch.tensor([[0, 2, 3], [3, 2, 5]])))
    torch.testing.assert_close(b, tower(torch.tensor([5, 7, 2])))
    calls.clear()
    memo = StepMemo(tower)
    memo.prefetch(torch.tensor([[0, 2, 3]]), torch.tensor([[2, 3, 5]]))
    assert sorted(i for c in calls for i in c) == [2, 3, 5]
    memo(torch.tensor([5, 3]))
    assert sum(len(c) for c in calls) == 3  # already encoded: no further encoder call


def test_a_fusion_with_an_encoder_part_is_memoized_as_a_whole(tiny_bert, text_dataset):
    """id+e2e / id+topk: the loop memoizes the fusion, so the encoder part sees each item once."""
    from recx.trainer.towers import FusionTower, IdTower

    enc = load_encoder(str(tiny_bert))
    encoded = EndToEndTower(enc, text_dataset.texts, dim=8, tune_blocks=0)
    fusion = FusionTower([IdTower(text_dataset.num_items, 8), encoded])
    assert fusion.expensive and not FusionTower([IdTower(text_dataset.num_items, 8)]).expensive
    calls = []
    original = encoded.encode
    encoded.encode = lambda items: calls.append(items.tolist()) or original(items)
    memo = StepMemo(fusion)
    memo.prefetch(torch.tensor([[0, 2, 3], [3, 2, 5]]), torch.tensor([[2, 3, 5], [2, 5, 6]]))
    got = memo(torch.tensor([[0, 2, 3], [3, 2, 5]]))
    assert sorted(i for c in calls for i in c) == [2, 3, 5, 6]
    torch.testing.assert_close(got, fusion(torch.tensor([[0, 2, 3], [3, 2, 5]])))
