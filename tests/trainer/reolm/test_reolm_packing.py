"""Packing: item boundaries, newest-first order, truncation at item boundaries, image slots."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recx.trainer.reolm.packing import Specials, collate, length_chunks, pack
from recx.trainer.reolm.tokens import ItemTokens

SP = Specials(cls=2, sep=3, slot=4, pad=0)


def tokens(*items: list[int]) -> ItemTokens:
    """Item k+1 has token ids items[k]."""
    lengths = [0] + [len(t) for t in items]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.asarray([i for t in items for i in t], dtype=np.int32)
    return ItemTokens(ids, offsets, budget=8)


TOK = tokens([10, 11], [20, 21, 22], [30])  # items 1, 2, 3


def test_newest_first_with_boundaries_positions_and_image_slots():
    p = pack([1, 2, 3], TOK, budget=64, specials=SP)
    #            CLS  item 3   item 2            item 1        SEP
    assert p.input_ids.tolist() == [2, 30, 4, 20, 21, 22, 4, 10, 11, 4, 3]
    assert p.items.tolist() == [3, 2, 1]
    assert p.boundaries.tolist() == [1, 3, 7, 10]
    assert p.item_positions.tolist() == [0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 0]
    # the image slot is the last token of each item and names that item
    assert p.image_items.tolist() == [0, 0, 3, 0, 0, 0, 2, 0, 0, 1, 0]
    for k, item in enumerate(p.items):
        span = slice(p.boundaries[k], p.boundaries[k + 1])
        assert p.input_ids[span][-1] == SP.slot and p.image_items[span][-1] == item
        assert (p.item_positions[span] == k + 1).all()


def test_text_only_has_no_slots():
    p = pack([1, 2], TOK, budget=64, specials=SP, image_slot=False)
    assert p.input_ids.tolist() == [2, 20, 21, 22, 10, 11, 3]
    assert not p.image_items.any()
    assert p.boundaries.tolist() == [1, 4, 6]


def test_truncation_keeps_the_newest_whole_items():
    # CLS + item3 (2) + item2 (4) + SEP = 8; item 1 (3 more) does not fit in 10
    p = pack([1, 2, 3], TOK, budget=10, specials=SP)
    assert p.items.tolist() == [3, 2]
    assert len(p.input_ids) == 8 and p.input_ids[-1] == SP.sep
    assert 10 not in p.input_ids and 11 not in p.input_ids  # the oldest item is dropped whole
    # an item never gets cut when an older one would otherwise be squeezed in
    p = pack([2, 3], TOK, budget=6, specials=SP)
    assert p.items.tolist() == [3]


def test_newest_item_is_cut_rather_than_dropped():
    p = pack([2], TOK, budget=4, specials=SP)  # CLS [20] IMG SEP
    assert p.input_ids.tolist() == [2, 20, 4, 3]
    assert p.items.tolist() == [2]
    with pytest.raises(ValueError, match="no room"):
        pack([2], TOK, budget=3, specials=SP)


def test_padding_and_max_items():
    p = pack([0, 0, 1, 2, 3], TOK, budget=64, specials=SP, max_items=2)
    assert p.items.tolist() == [3, 2]


def test_collate_right_pads():
    a, b = pack([1], TOK, 64, SP), pack([1, 2], TOK, 64, SP)
    out = collate([a, b], pad_id=0)
    assert out["input_ids"].shape == (2, len(b.input_ids))
    assert out["attention_mask"][0].tolist() == [1] * len(a.input_ids) + [0] * (len(b.input_ids) - len(a.input_ids))
    assert (out["input_ids"][0, len(a.input_ids):] == 0).all()
    assert out["image_items"][1].tolist() == b.image_items.tolist()


def test_collate_names_the_item_of_every_token():
    a, b = pack([1, 2, 3], TOK, 64, SP), pack([2], TOK, 64, SP)
    out = collate([a, b], pad_id=0)
    #                                    CLS  item 3  item 2        item 1    SEP
    assert out["token_items"][0].tolist() == [0, 3, 3, 2, 2, 2, 2, 1, 1, 1, 0]
    assert out["token_items"][1].tolist() == [0, 2, 2, 2, 2, 0] + [0] * 5  # CLS, item 2, SEP, padding


def padded_cost(lengths: np.ndarray, chunks: list[np.ndarray], chunk_cost: int) -> int:
    return sum(int(lengths[c].max()) * len(c) + chunk_cost for c in chunks)


@pytest.mark.parametrize("chunk_cost", [0, 5, 40, 10**6])
def test_length_chunks_is_the_cheapest_split(chunk_cost):
    rng = np.random.default_rng(chunk_cost)
    for _ in range(20):
        lengths = rng.integers(1, 60, size=int(rng.integers(1, 9)))
        chunks = length_chunks(lengths.tolist(), chunk_cost)
        assert sorted(np.concatenate(chunks).tolist()) == list(range(len(lengths)))  # a permutation
        assert all((np.diff(lengths[c]) >= 0).all() for c in chunks)  # each chunk sorted by length
        # brute force: every split of the sorted sequences into consecutive runs
        ordered = np.sort(lengths)
        best = min(
            sum(int(run.max()) * len(run) + chunk_cost for run in np.split(ordered, list(cuts)))
            for k in range(len(lengths))
            for cuts in itertools.combinations(range(1, len(lengths)), k)
        )
        assert padded_cost(lengths, chunks, chunk_cost) == best
    assert len(length_chunks([3, 90, 4, 88], 10**6)) == 1  # a dear pass: one padded batch
    assert [sorted(c.tolist()) for c in length_chunks([3, 90, 4, 88], 10)] == [[0, 2], [1, 3]]
