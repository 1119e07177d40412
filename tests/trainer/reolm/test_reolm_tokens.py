"""Item tokens: key-value text, per-item budget, a cache keyed by catalog and tokenizer."""

from __future__ import annotations

import pytest

from recx.data.dataset import Item, SequenceDataset, write_dataset
from recx.trainer.reolm.backbone import load_tokenizer, tokenizer_hash
from recx.trainer.reolm.tokens import CACHE_DIR, NoItemTextError, item_texts, item_tokens


def test_key_value_text_and_budget(synth_dir, lm_dir):
    ds = SequenceDataset(synth_dir)
    texts = item_texts(ds)
    first = next(t for t in texts[1:] if t)
    assert first.startswith("adjective: ") and "; colour: " in first
    tok = load_tokenizer(lm_dir)
    h = tokenizer_hash(tok)
    toks = item_tokens(ds, tok, h, budget=5)
    assert toks.num_items == ds.num_items
    assert toks.lengths().max() == 5 and toks.lengths()[0] == 0
    k = next(i for i in range(1, ds.num_items + 1) if texts[i])
    assert toks.of(k).tolist() == tok(texts[k], add_special_tokens=False)["input_ids"][:5]


def test_cache_is_reused_and_fingerprinted(synth_dir, lm_dir, other_lm_dir):
    ds = SequenceDataset(synth_dir)
    tok = load_tokenizer(lm_dir)
    h = tokenizer_hash(tok)
    a = item_tokens(ds, tok, h, budget=7)
    files = list((synth_dir / CACHE_DIR).glob(f"{h[:16]}-7.npz"))
    assert len(files) == 1
    b = item_tokens(ds, None, h, budget=7)  # from the cache: the tokenizer is never called
    assert (a.ids == b.ids).all() and (a.offsets == b.offsets).all()
    other = tokenizer_hash(load_tokenizer(other_lm_dir))
    assert other != h


def test_dataset_without_text_is_refused(tmp_path, lm_dir):
    ds = write_dataset(tmp_path / "d", [Item(f"i{k}") for k in range(5)], ["u0"], [[1, 2, 3]], {"source": "test"})
    tok = load_tokenizer(lm_dir)
    with pytest.raises(NoItemTextError, match="items.jsonl: no item has text"):
        item_tokens(ds, tok, tokenizer_hash(tok), budget=8)


def test_concat_shifts_the_second_catalog():
    import numpy as np

    from recx.trainer.reolm.tokens import ItemTokens

    a = ItemTokens(np.array([1, 2, 3], np.int32), np.array([0, 0, 2, 3]), 4)  # item 1: [1, 2], item 2: [3]
    b = ItemTokens(np.array([7, 8, 9], np.int32), np.array([0, 0, 1, 3]), 4)  # item 1: [7], item 2: [8, 9]
    c = ItemTokens.concat([a, b])
    assert c.num_items == 4 and c.of(0).tolist() == []
    assert [c.of(i).tolist() for i in range(1, 5)] == [[1, 2], [3], [7], [8, 9]]
