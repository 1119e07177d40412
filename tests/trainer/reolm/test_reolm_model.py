"""The Reo-LM towers: one set of weights for items and users, image token, catalog cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recx.data.dataset import SequenceDataset
from recx.trainer.config import ConfigError, TrainConfig
from recx.trainer.data import Batch
from recx.trainer.reolm.build import build_reolm


def config(synth_dir, lm_dir, **kw) -> TrainConfig:
    base = dict(dataset=str(synth_dir), model="reo-lm", lm=str(lm_dir), max_len=10, item_tokens=24, user_tokens=128, temperature=0.05)
    base.update(kw)
    return TrainConfig.from_options(**base)


def test_item_and_user_towers_share_weights(synth_dir, lm_dir):
    model = build_reolm(config(synth_dir, lm_dir), SequenceDataset(synth_dir)).eval()
    items = torch.tensor([3, 7, 11])
    with torch.no_grad():
        as_items = model.encode_items(items)
        as_users = model.user_vectors([np.array([i]) for i in items.tolist()], max_len=10)
    # a one-item history is packed exactly like the lone item: the same LM gives the same vector
    assert torch.allclose(as_items, as_users, atol=1e-5)
    # and both towers send gradient into the same backbone parameters
    model.train()
    model.zero_grad()
    model.encode_items(torch.tensor([3]))[0].sum().backward()
    from_item = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    model.zero_grad()
    model(torch.tensor([[5, 3]]))[0, -1].sum().backward()
    from_user = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    backbone = {n for n in from_item if n.startswith("backbone.encoder.layer")}
    assert backbone and backbone <= from_user
    assert len({id(p) for p in model.parameters()}) == len(list(model.parameters()))


def test_vectors_are_unit_norm_under_a_temperature(synth_dir, lm_dir):
    model = build_reolm(config(synth_dir, lm_dir), SequenceDataset(synth_dir)).eval()
    table = model.item_table()
    assert table.shape == (61, 32)
    assert torch.allclose(table[1:].norm(dim=-1), torch.ones(60), atol=1e-4) and not table[0].any()


def test_item_table_is_cached_until_weights_change(synth_dir, lm_dir):
    model = build_reolm(config(synth_dir, lm_dir), SequenceDataset(synth_dir)).eval()
    a = model.item_table()
    assert model.item_table() is a
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    model.encode_items(torch.tensor([1, 2])).sum().backward()
    opt.step()
    model.eval()
    b = model.item_table()
    assert b is not a and not torch.allclose(a, b)
    model.load_state_dict(model.state_dict())
    assert model.item_table() is not b


def test_image_token_reads_the_store_through_a_projection(synth_dir, lm_dir, tmp_path):
    import h5py

    from tiny_models import write_random_image_store

    ds = SequenceDataset(synth_dir)
    rows = np.flatnonzero(ds.has_image())
    write_random_image_store(ds, tmp_path / "img.h5")
    model = build_reolm(config(synth_dir, lm_dir, stores={"image": str(tmp_path / "img.h5")}), ds).eval()
    assert model.has_image and model.image_proj.in_features == 8
    with torch.no_grad():
        before = model.encode_items(torch.tensor([int(rows[0])]))
        model.image_proj.weight.add_(torch.randn_like(model.image_proj.weight))  # (a constant shift would vanish in LayerNorm)
        after = model.encode_items(torch.tensor([int(rows[0])]))
    assert not torch.allclose(before, after)
    text_only = build_reolm(config(synth_dir, lm_dir, stores={"image": str(tmp_path / "img.h5")}, reo_image="none"), ds)
    assert not text_only.has_image
    # a store of another dataset is refused, naming the file
    with h5py.File(tmp_path / "img.h5", "r+") as f:
        f.attrs["catalog_fingerprint"] = "0" * 64
    with pytest.raises(Exception, match="img.h5: catalog fingerprint"):
        build_reolm(config(synth_dir, lm_dir, stores={"image": str(tmp_path / "img.h5")}), ds)


def test_training_batch_is_a_random_prefix_predicting_its_next_item(synth_dir, lm_dir):
    model = build_reolm(config(synth_dir, lm_dir), SequenceDataset(synth_dir))
    inputs = torch.tensor([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5]])
    targets = torch.tensor([[0, 5, 6, 7, 8], [2, 3, 4, 5, 9]])
    seen = set()
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        b = model.training_batch(Batch(inputs, targets, torch.arange(2)), g)
        assert (b.targets[:, :-1] == 0).all()
        for r in range(2):
            prefix = b.inputs[r][b.inputs[r] > 0].tolist()
            full = inputs[r][inputs[r] > 0].tolist()
            assert prefix == full[: len(prefix)] and b.targets[r, -1] == targets[r][inputs[r] > 0][len(prefix) - 1]
            assert b.inputs[r, -1] > 0  # right-aligned
            seen.add((r, len(prefix)))
    assert seen == {(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (1, 4), (1, 5)}


def test_topk_tuning_freezes_the_lower_blocks(synth_dir, lm_dir):
    model = build_reolm(config(synth_dir, lm_dir, reo_tuning="topk", tune_blocks=1), SequenceDataset(synth_dir))
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("encoder.layer.1.") for n in trainable)


def test_reolm_options_are_checked():
    with pytest.raises(ConfigError, match="debiased_ce"):
        TrainConfig.from_options(model="reo-lm", loss="bce").validate()
    with pytest.raises(ConfigError, match="--reo-tuning 'prefix'"):
        TrainConfig.from_options(model="reo-lm", reo_tuning="prefix").validate()
    with pytest.raises(ConfigError, match="--lora-rank 0"):
        TrainConfig.from_options(model="reo-lm", reo_tuning="lora", lora_rank=0).validate()
    with pytest.raises(ConfigError, match="--reo-image store needs"):
        TrainConfig.from_options(model="reo-lm", reo_image="store").validate()


def test_gradient_checkpointing_gives_the_same_gradients(synth_dir, lm_dir):
    ds = SequenceDataset(synth_dir)
    grads = []
    for flag in (False, True):
        model = build_reolm(config(synth_dir, lm_dir, grad_checkpointing=flag), ds).train()
        torch.manual_seed(1)
        model(torch.tensor([[0, 5, 3], [7, 8, 9]]))[:, -1].sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert getattr(model.backbone, "is_activation_checkpointing", None) or model.backbone.is_gradient_checkpointing
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], rtol=1e-4, atol=1e-6, msg=n)


def test_length_chunks_encode_as_one_padded_batch(synth_dir, lm_dir, monkeypatch):
    """encode() splits users of mixed lengths into chunks: the same vectors and gradients as
    padding them all to the longest."""
    import recx.trainer.reolm.model as reolm_model

    model = build_reolm(config(synth_dir, lm_dir), SequenceDataset(synth_dir)).eval()
    users = torch.tensor([[0, 0, 0, 0, 5], [1, 2, 3, 4, 6], [0, 0, 0, 7, 8], [9, 10, 11, 12, 13], [0, 0, 0, 0, 14]])
    results = []
    for cost in (0, 10**9):  # chunks of one length each; one batch
        monkeypatch.setattr(reolm_model, "CHUNK_COST_TOKENS", cost)
        model.zero_grad()
        vectors = model(users)[:, -1]  # [B, D]
        (vectors * torch.arange(1.0, 6.0).unsqueeze(1)).sum().backward()
        results.append((vectors.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    lengths = [len(p.input_ids) for p in model.pack_users([row[row > 0].tolist() for row in users])]
    assert len(reolm_model.length_chunks(lengths, 0)) > 1
    (a, grads_a), (b, grads_b) = results
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for n in grads_a:
        torch.testing.assert_close(grads_a[n], grads_b[n], rtol=1e-4, atol=1e-6, msg=n)
