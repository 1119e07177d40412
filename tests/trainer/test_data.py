import numpy as np
import torch

from recx.trainer.data import SequenceBatches, left_pad


def test_left_pad_keeps_the_newest_items():
    out = left_pad([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)], 2)
    assert out.tolist() == [[2, 3], [0, 4], [0, 0]]


def make_batches(**kw):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, size=n) for n in rng.integers(1, 30, size=103)]
    return seqs, SequenceBatches(seqs, max_len=10, batch_size=8, seed=3, **kw)


def test_every_user_once_per_epoch_and_targets_shift_inputs():
    seqs, batches = make_batches()
    rows = torch.cat([b.rows for b in batches.epoch(0)])
    assert sorted(rows.tolist()) == list(range(batches.num_rows))
    assert batches.num_rows == sum(len(s) >= 2 for s in seqs)
    for b in batches.epoch(1):
        full = batches.rows[b.rows]
        width = b.inputs.shape[1] + 1
        assert torch.equal(full[:, -width:-1], b.inputs) and torch.equal(full[:, -width + 1 :], b.targets)
        assert (full[:, : full.shape[1] - width] == 0).all()  # only padding was trimmed


def test_epoch_order_is_a_function_of_seed_and_epoch():
    _, a = make_batches()
    _, b = make_batches()
    assert [x.rows.tolist() for x in a.epoch(4)] == [x.rows.tolist() for x in b.epoch(4)]
    assert [x.rows.tolist() for x in a.epoch(4)] != [x.rows.tolist() for x in a.epoch(5)]


def test_ranks_partition_the_epoch():
    seqs, single = make_batches()
    shards = [SequenceBatches(seqs, 10, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    seen = [torch.cat([b.rows for b in s.epoch(0)]) for s in shards]
    assert shards[0].num_batches() == shards[1].num_batches() == len(list(shards[0].epoch(0)))
    assert set(torch.cat(seen).tolist()) == set(range(single.num_rows))


def test_item_mask_covers_whole_training_sequence():
    seqs = [np.array([5, 6, 7, 8, 9, 1]), np.array([2, 3])]
    batches = SequenceBatches(seqs, max_len=2, batch_size=4)
    mask = batches.item_mask(torch.tensor([1, 0]), 10)
    assert mask[0].nonzero().flatten().tolist() == [2, 3]
    assert mask[1].nonzero().flatten().tolist() == [1, 5, 6, 7, 8, 9]  # beyond the max_len window too



def test_targets_per_batch_counts_next_item_targets_in_the_window():
    # rows keep the last max_len + 1 = 3 items: targets 1, 2 and 2 (the 5-item user is cut); 2 batches
    seqs = [np.array([1, 2]), np.array([3, 4, 5]), np.array([1, 2, 3, 4, 5])]
    batches = SequenceBatches(seqs, max_len=2, batch_size=2)
    assert batches.targets_per_batch() == 5 / 2
    # a shorter row's first item sits behind a padding input: not a target (model.training_batch)
    assert sum(int(((b.inputs > 0) & (b.targets > 0)).sum()) for b in batches.epoch(0)) == 5
