"""ROMA's fine-tuning recipe in Reo-LM: attribute text with token types, a window in items,
catalog-wide negatives, the frozen-table stage, prefix rows and validation intervals."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from recx.data.dataset import Item, SequenceDataset, write_dataset
from recx.trainer.config import TrainConfig
from recx.trainer.data import Batch, SequenceBatches, prefixes
from recx.trainer.loop import TrainStep, fit, load_trained
from recx.trainer.losses import FullCrossEntropy, SampledSoftmax
from recx.trainer.reolm.backbone import load_tokenizer, tokenizer_hash
from recx.trainer.reolm.build import build_reolm
from recx.trainer.reolm.packing import Specials, collate, pack, user_token_budget
from recx.trainer.reolm.tokens import ItemTokens, item_tokens


@pytest.fixture(scope="module")
def attr_dir(tmp_path_factory, synth_dir):
    """The synthetic catalog with its texts split into two attributes, as the UniSRec importer
    records them (meta["text"]["attributes"]), plus one item that has only a text."""
    src = SequenceDataset(synth_dir)
    items = []
    for k in range(1, src.num_items + 1):
        m = src.item_meta[k]
        meta = {"title": f"{m['adjective']} {m['colour']} {m['material']}", "category": m["category"]} if k != 3 else {}
        items.append(Item(src.item_ids[k], text=src.texts[k], meta=meta))
    seqs = [list(map(int, s)) for s in src.sequences()]
    out = tmp_path_factory.mktemp("attr") / "data"
    return write_dataset(out, items, [f"u{u}" for u in range(len(seqs))], seqs,
                         {"source": "test", "text": {"fields": ["text"], "template": "{text}", "attributes": ["title", "category"]}}).path


def reo_config(data, lm_dir, tmp_path, **kw) -> TrainConfig:
    base = dict(dataset=str(data), model="reo-lm", lm=str(lm_dir), temperature=0.05, attr_tokens=6, user_items=3, max_len=6,
                epochs=2, batch_size=32, lr=1e-3, encoder_lr=1e-3, runs_dir=str(tmp_path / "runs"), precision="fp32", reo_image="none")
    base.update(kw)
    return TrainConfig.from_options(**base)


# -- item text as attributes -------------------------------------------------------------------
def test_attribute_text_has_key_value_pairs_budgets_and_types(attr_dir, lm_dir):
    ds = SequenceDataset(attr_dir)
    tok = load_tokenizer(lm_dir)
    toks = item_tokens(ds, tok, tokenizer_hash(tok), 0, mode="attributes", attr_budget=4)
    assert toks.attributes == ("title", "category")
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    m = ds.item_meta[1]
    title = (enc("title:") + enc(m["title"]))[:4]  # key and value share the attribute's budget
    category = (enc("category:") + enc(m["category"]))[:4]
    assert toks.of(1).tolist() == title + category
    assert toks.types_of(1).tolist() == [1] * len(title) + [2] * len(category)
    # an item without the attributes reads its text as attribute 1, without a key
    assert toks.of(3).tolist() == enc(ds.texts[3])[:4] and toks.types_of(3).tolist() == [1] * 4
    capped = item_tokens(ds, tok, tokenizer_hash(tok), 5, mode="attributes", attr_budget=4)
    assert capped.of(1).tolist() == (title + category)[:5]


def test_the_text_mode_is_the_joined_text_without_types(attr_dir, lm_dir):
    ds = SequenceDataset(attr_dir)
    tok = load_tokenizer(lm_dir)
    toks = item_tokens(ds, tok, tokenizer_hash(tok), 7, mode="text")
    assert toks.types is None and toks.types_of(1).tolist() == [0] * 7


def test_types_are_renumbered_over_domains():
    a = ItemTokens(np.array([1, 2], np.int32), np.array([0, 0, 2]), 0, types=np.array([1, 2], np.int8), attributes=("title", "brand"))
    b = ItemTokens(np.array([3, 4], np.int32), np.array([0, 0, 2]), 0, types=np.array([1, 2], np.int8), attributes=("brand", "size"))
    c = ItemTokens.concat([a, b])
    assert c.attributes == ("title", "brand", "size")
    assert c.types_of(1).tolist() == [1, 2] and c.types_of(2).tolist() == [2, 3]  # "brand" is type 2 in both


def test_packing_carries_types_and_the_model_embeds_them(attr_dir, lm_dir, tmp_path):
    model = build_reolm(reo_config(attr_dir, lm_dir, tmp_path), SequenceDataset(attr_dir)).eval()
    assert model.attribute_type is not None and model.attribute_type.num_embeddings == 3
    p = model.pack_items([1])[0]
    assert p.token_types[0] == 0 and p.token_types[-1] == 0  # [CLS], [SEP]
    assert p.token_types[1:-1].tolist() == model.tokens.types_of(1).tolist()
    before = model.item_table().clone()
    with torch.no_grad():
        model.attribute_type.weight[2] += torch.randn(model.dim)  # moves only items that have a category
    after = model.item_table()
    assert not torch.allclose(before[1], after[1]) and torch.allclose(before[3], after[3])


def test_init_carries_attribute_types_by_name(attr_dir, lm_dir, tmp_path):
    """A `recx pretrain` checkpoint read other catalogs' attributes: each row goes to the
    attribute of the same name, never by position."""
    from recx.trainer.reolm.checkpoint import load_shared_weights

    def fresh():
        return build_reolm(reo_config(attr_dir, lm_dir, tmp_path), SequenceDataset(attr_dir))

    model = fresh()
    assert model.tokens.attributes == ("title", "category")
    dim = model.attribute_type.weight.shape[1]
    types = torch.arange(1.0, 4 * dim + 1).reshape(4, dim)  # rows: special tokens, brand, category, text
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    torch.save({**model.state_dict(), "attribute_type.weight": types}, ckpt / "model.pt")
    (ckpt / "config.json").write_text(json.dumps({"packing": {"attribute_names": ["brand", "category", "text"]}}))
    carried = fresh()
    assert load_shared_weights(carried, ckpt) == []
    w = carried.attribute_type.weight.detach()
    assert torch.equal(w[0], types[0]) and torch.equal(w[2], types[2])  # the special row; category by its name
    assert torch.equal(w[1], torch.zeros(dim))  # title: the checkpoint never read it
    # a checkpoint written before the names were: rows of the model's shape are not taken by position
    torch.save({**model.state_dict(), "attribute_type.weight": types[:3]}, ckpt / "model.pt")
    (ckpt / "config.json").write_text(json.dumps({"packing": {}}))
    unnamed = fresh()
    assert load_shared_weights(unnamed, ckpt) == ["attribute_type.weight"]
    assert torch.equal(unnamed.attribute_type.weight.detach(), torch.zeros(3, dim))


# -- the user window in items -------------------------------------------------------------------
def test_the_window_keeps_the_newest_items_whole():
    toks = ItemTokens(np.arange(1, 31, dtype=np.int32), np.array([0, 0, 10, 20, 30]), 0)  # three items of 10 tokens
    sp = Specials(cls=100, sep=101, slot=102, pad=0)
    assert pack([1, 2, 3], toks, 100, sp, image_slot=False, max_items=2).items.tolist() == [3, 2]
    cut = pack([1, 2, 3], toks, 2 + 10 + 9, sp, image_slot=False)  # room for one whole item only
    assert cut.items.tolist() == [3] and len(cut.input_ids) == 12
    assert user_token_budget(toks, 9, True, 512) == 2 + 9 * 11
    assert user_token_budget(toks, 90, False, 512) == 512 and user_token_budget(toks, 9, False, 512, requested=40) == 40


# -- negatives and stages ------------------------------------------------------------------------
def _batch() -> Batch:
    inputs = torch.tensor([[0, 4, 5], [6, 7, 8]])
    targets = torch.zeros_like(inputs)
    targets[:, -1] = torch.tensor([9, 10])
    return Batch(inputs, targets, torch.arange(2))


def test_catalog_negatives_come_from_the_epoch_table_and_targets_carry_gradient(attr_dir, lm_dir, tmp_path):
    model = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce"), SequenceDataset(attr_dir)).eval()
    assert model.catalog_negatives and not model.frozen_items
    items = model.step_items()
    items.prefetch(_batch().inputs, _batch().targets)
    table = items.table()
    reference = model.negatives_table()
    assert table.requires_grad and not reference.requires_grad
    torch.testing.assert_close(table[[1, 2, 3]], reference[[1, 2, 3]])  # not targets: the no-grad table
    torch.testing.assert_close(table[[9, 10]], model.encode_items(torch.tensor([9, 10])))
    assert items(torch.tensor([9])).requires_grad and not items(torch.tensor([1])).requires_grad
    loss = FullCrossEntropy(0.05)(model(_batch().inputs), _batch(), items)
    loss.backward()
    assert model.backbone.get_input_embeddings().weight.grad.abs().sum() > 0
    # the table is encoded once per epoch: a weight change alone keeps it, begin_epoch renews it
    with torch.no_grad():
        model.item_position.weight += 0.1
    assert model.negatives_table() is reference
    model.begin_epoch()
    assert not torch.allclose(model.negatives_table(), reference)


def test_sampled_negatives_never_score_the_target(attr_dir, lm_dir, tmp_path):
    """K negatives per step from the epoch's catalog table; a negative that is the row's own
    target (an accidental hit) is masked out of its softmax."""
    from torch.nn import functional as F

    from recx.trainer.losses.similarity import rowwise_similarity, similarity

    model = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="sampled_softmax", num_negatives=200), SequenceDataset(attr_dir)).eval()
    counts = torch.ones(SequenceDataset(attr_dir).num_items + 1)
    counts[0] = 0
    loss_fn = SampledSoftmax(counts, num_negatives=200, temperature=0.05, seed=0)
    state = loss_fn.get_extra_state()
    batch = _batch()
    items = model.step_items()
    items.prefetch(batch.inputs, batch.targets)
    states = model(batch.inputs)
    loss = loss_fn(states, batch, items)

    ref = SampledSoftmax(counts, num_negatives=200, temperature=0.05, seed=0)
    ref.set_extra_state(state)
    neg = ref.sample()
    tgt = torch.tensor([9, 10])
    assert (neg.unsqueeze(0) == tgt.unsqueeze(1)).any()  # 200 draws over 60 items hit the targets
    h = states[:, -1]
    pos = rowwise_similarity(h, model.encode_items(tgt), 0.05) - ref.log_q[tgt]
    negs = (similarity(h, model.negatives_table()[neg], 0.05) - ref.log_q[neg]).masked_fill(neg.unsqueeze(0) == tgt.unsqueeze(1), float("-inf"))
    expected = F.cross_entropy(torch.cat([pos.unsqueeze(1), negs], 1), torch.zeros(2, dtype=torch.long))
    torch.testing.assert_close(loss, expected)


def test_stage_two_freezes_the_item_table_and_trains_the_user_side(attr_dir, lm_dir, tmp_path):
    ds = SequenceDataset(attr_dir)
    model = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", reo_stage=2), ds)
    assert not bool(model.frozen_ready)
    frozen = model.item_table().clone()  # encoded once, from the weights the run starts with
    assert bool(model.frozen_ready) and not frozen.requires_grad
    step = TrainStep(model, FullCrossEntropy(0.05))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    step(_batch(), None).backward()
    assert model.backbone.get_input_embeddings().weight.grad.abs().sum() > 0  # the user side learns
    opt.step()
    model.begin_epoch()
    torch.testing.assert_close(model.item_table(), frozen)  # the item side does not move
    again = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", reo_stage=2), ds)
    again.load_state_dict(model.state_dict())  # the table is part of the weights
    assert bool(again.frozen_ready)
    torch.testing.assert_close(again.item_table(), frozen)


def test_stage_two_item_ids_train_on_top_of_the_frozen_text_table(attr_dir, lm_dir, tmp_path):
    from recx.inference.encoders import ModelUserEncoder

    ds = SequenceDataset(attr_dir)
    plain = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", reo_stage=2), ds)
    model = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", reo_stage=2, reo_item_ids=True), ds)
    model.load_state_dict(plain.state_dict(), strict=False)  # the same weights; the ids start at zero
    text = plain.item_table().clone()
    torch.testing.assert_close(model.item_table(), text)
    step = TrainStep(model, FullCrossEntropy(0.05))
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    step(_batch(), None).backward()
    grad = model.item_ids.weight.grad
    assert grad[1:].abs().sum(1).gt(0).all() and not grad[0].any()  # every item is a candidate; padding never
    opt.step()
    torch.testing.assert_close(model.frozen_table, text)  # the text rows stay frozen
    assert model.item_id_scale == 0.05  # the temperature: an ID adds u.w to a logit, unscaled
    torch.testing.assert_close(model.item_table().detach(), text + 0.05 * model.item_ids.weight.detach())
    assert not model.item_ids.weight[0].any()
    table = ModelUserEncoder(model, max_len=6).item_table()  # what eval and serving rank against
    np.testing.assert_allclose(table, (text + 0.05 * model.item_ids.weight).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_stage_two_history_ids_let_the_user_side_read_its_items(attr_dir, lm_dir, tmp_path):
    ds = SequenceDataset(attr_dir)
    plain = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", reo_stage=2), ds).eval()
    model = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", reo_stage=2, reo_history_ids=True), ds)
    model.load_state_dict(plain.state_dict(), strict=False)  # the same weights; the ids start at zero
    model.eval()
    text = plain.item_table().clone()
    torch.testing.assert_close(model.item_table(), text)
    torch.testing.assert_close(model(_batch().inputs), plain(_batch().inputs))  # zero ids: plain stage 2
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    TrainStep(model, FullCrossEntropy(0.05))(_batch(), None).backward()
    rows = model.history_ids.weight.grad.abs().sum(1).gt(0).nonzero().flatten().tolist()
    assert rows == [4, 5, 6, 7, 8]  # the items the histories hold: not the targets (9, 10), not padding
    opt.step()
    model.eval()
    torch.testing.assert_close(model.item_table(), text)  # the item side stays the frozen table
    moved = model(_batch().inputs)[:, -1]
    assert not torch.allclose(moved, plain(_batch().inputs)[:, -1])
    history = [np.array([4, 5]), np.array([6, 7, 8])]
    torch.testing.assert_close(model.user_vectors(history, max_len=6), moved)  # eval and serving read the ids too


def test_history_id_dropout_drops_only_in_training(attr_dir, lm_dir, tmp_path):
    model = build_reolm(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", reo_stage=2, reo_history_ids=True,
                                   reo_history_id_dropout=0.5), SequenceDataset(attr_dir))
    torch.nn.init.normal_(model.history_ids.weight)
    batch = {k: torch.from_numpy(v) for k, v in collate(model.pack_users([[4, 5]]), model.specials.pad).items()}
    ids = model.history_ids(batch["token_items"])  # [1, T, H]
    plain = model.eval().embed(batch) - ids
    added = model.train().embed(batch) - plain
    kept = added.abs() > 1e-4
    dropped = 1 - kept[batch["token_items"] > 0].float().mean()
    assert 0.4 < float(dropped) < 0.6  # half of the elements, the rest scaled by 1 / (1 - p)
    torch.testing.assert_close(added[kept], 2 * ids[kept])
    model.eval()
    torch.testing.assert_close(model.embed(batch) - plain, ids)
    cfg = TrainConfig.from_options(model="reo-lm", reo_stage=2)
    assert cfg.inapplicable({"reo_history_id_dropout"}) == [
        "--reo-history-id-dropout applies to --model reo-lm --reo-stage 2 --reo-history-ids, not to --model reo-lm"]


@pytest.mark.parametrize("flag", ["reo_item_ids", "reo_history_ids"])
def test_ids_need_stage_two(flag):
    cfg = TrainConfig.from_options(model="reo-lm", reo_stage=1)
    assert cfg.inapplicable({flag}) == [f"--{flag.replace('_', '-')} applies to --model reo-lm --reo-stage 2, not to --model reo-lm"]


def test_stage_two_from_a_stage_one_run_resumes_exactly(attr_dir, lm_dir, tmp_path):
    one = fit(reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", epochs=1, name="s1"), progress=False)
    two = reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", reo_stage=2, epochs=2, warm_start=str(one.run_dir),
                     valid_per_epoch=2, name="s2")
    straight = fit(two, progress=False)
    two.run.name = "s2-cut"
    cut = fit(two, progress=False, max_epochs_this_call=1)
    resumed = fit(two, run_dir=cut.run_dir, resume=True, progress=False)
    rows = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["data_epochs"] for r in rows] == [0.5, 1.0, 1.5, 2.0]
    again = [json.loads(line) for line in (resumed.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in again] == [r["loss"] for r in rows]
    a, _, _ = load_trained(straight.run_dir, "last.pt")
    b, _, _ = load_trained(resumed.run_dir, "last.pt")
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, msg=k)
    first, _, _ = load_trained(one.run_dir, "best.pt")
    torch.testing.assert_close(a.frozen_table, first.item_table())  # stage 2 ranks against stage 1's table


# -- prefix rows and validation intervals -------------------------------------------------------
def test_prefix_rows_are_every_prefix_of_the_last_items():
    seqs = [np.array([1, 2, 3, 4]), np.array([5, 6])]
    rows, owner = prefixes(seqs, 2)
    assert [r.tolist() for r in rows] == [[1, 2, 3], [1, 2, 3, 4], [5, 6]] and owner.tolist() == [0, 0, 1]
    batches = SequenceBatches(seqs, max_len=3, batch_size=8, prefix_rows=10, pool=1)
    (b,) = list(batches.epoch(0))
    got = sorted((tuple(i.tolist()), tuple(t.tolist()), int(u)) for i, t, u in zip(b.inputs, b.targets, b.rows))
    assert got == sorted([((0, 0, 1), (0, 0, 2), 0), ((0, 1, 2), (0, 0, 3), 0), ((1, 2, 3), (0, 0, 4), 0), ((0, 0, 5), (0, 0, 6), 1)])
    assert batches.targets_per_batch() == 4.0
    assert batches.item_mask(torch.tensor([0]), 6)[0].nonzero().flatten().tolist() == [1, 2, 3, 4]


def test_validation_intervals_split_each_epoch_exactly():
    seqs = [np.arange(1, 2 + k % 5) for k in range(50)]
    batches = SequenceBatches(seqs, max_len=4, batch_size=4, seed=3)
    whole = [b.rows.tolist() for b in batches.epoch(1)]
    parts = [[b.rows.tolist() for b in batches.epoch(1, p, 3)] for p in range(3)]
    assert sum(parts, []) == whole and all(parts)
    assert batches.num_part_batches(3) == max(len(p) for p in parts)


def test_stage_one_with_catalog_negatives_resumes_exactly(attr_dir, lm_dir, tmp_path):
    """The catalog table is re-encoded at every interval from the weights of that moment, so a
    run cut between intervals and resumed ends where an uninterrupted one does."""
    cfg = reo_config(attr_dir, lm_dir, tmp_path, loss="full_ce", epochs=1, valid_per_epoch=2, prefix_rows=3, name="straight")
    straight = fit(cfg, progress=False)
    cfg.run.name = "cut"
    cut = fit(cfg, progress=False, max_epochs_this_call=1)
    resumed = fit(cfg, run_dir=cut.run_dir, resume=True, progress=False)
    a, _, _ = load_trained(straight.run_dir, "last.pt")
    b, _, _ = load_trained(resumed.run_dir, "last.pt")
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, msg=k)


def test_reo_options_are_checked_and_old_runs_keep_their_recipe(tmp_path):
    from recx.trainer.config import ConfigError
    from recx.trainer.runconfig import migrate

    cfg = TrainConfig.from_options(model="reo-lm", item_text="text", item_tokens=16)
    assert cfg.inapplicable({"attr_tokens"}) == ["--attr-tokens applies to --model reo-lm --item-text attributes, not to --model reo-lm"]
    with pytest.raises(ConfigError, match="--item-text text needs --item-tokens"):
        TrainConfig.from_options(model="reo-lm", item_text="text")
    with pytest.raises(ConfigError, match=re.escape("--model reo-lm trains with --loss debiased_ce | full_ce | sampled_softmax, not 'bce'")):
        TrainConfig.from_options(model="reo-lm", loss="bce")
    with pytest.raises(ConfigError, match="--reo-stage 3"):
        TrainConfig.from_options(model="reo-lm", reo_stage=3)
    # a format-3 reo-lm run (before attributes and the item window) migrates to what it trained with
    old = TrainConfig.from_options(model="reo-lm", item_tokens=16, user_tokens=48).to_dict()
    for key in ("item_text", "user_items", "attr_tokens", "stage", "lora_experts"):
        del old["reolm"][key]
    new = migrate({"run_format": 3, "config": old})
    assert new["run_format"] == TrainConfig.FORMAT and new["config"]["reolm"]["item_text"] == "text" and new["config"]["reolm"]["user_items"] == 0
    assert TrainConfig.from_dict(new["config"]).reolm.item_tokens == 16
