import numpy as np
import pytest
import torch

from recx.featurize.registry import load_encoder
from recx.featurize.runner import run
from recx.featurize.store import open_store
from recx.featurize.topk import TopBlocks, TopKUnsupportedError, TrunkCache


def _captured(enc, batch, k):
    cache = TrunkCache(enc, k)
    emb, (hidden, mask) = cache.encode(batch, torch.device("cpu"), "float32")
    return emb, torch.from_numpy(hidden.astype(np.float32)), torch.from_numpy(mask)


@pytest.mark.parametrize("k", [1, 2])
def test_bert_top_blocks_equal_full_encoder(tiny_bert, k):
    enc = load_encoder(str(tiny_bert))
    batch = enc.preprocess(["red widget", "blue green sensor cable roll grit"])
    emb, hidden, mask = _captured(enc, batch, k)
    top = TopBlocks.from_encoder(enc, k)
    assert top.block_names == enc.block_names()[-k:]
    with torch.inference_mode():
        out = top(hidden, mask)
    np.testing.assert_allclose(out.numpy(), emb, rtol=2e-3, atol=2e-3)  # hidden went through float16


def test_opt_top_blocks_equal_full_encoder(tiny_opt):
    enc = load_encoder(str(tiny_opt))
    batch = enc.preprocess(["red widget", "blue green sensor cable roll grit"])
    emb, hidden, mask = _captured(enc, batch, 1)
    with torch.inference_mode():
        out = TopBlocks.from_encoder(enc, 1)(hidden, mask)
    np.testing.assert_allclose(out.numpy(), emb, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("fixture", ["tiny_mae", "tiny_swin"])
def test_vision_top_blocks_equal_full_encoder(request, fixture, tmp_path, images_factory):
    enc = load_encoder(str(request.getfixturevalue(fixture)))
    batch = enc.preprocess([str(tmp_path / p) for p in images_factory(2)])
    for k in (1, 2):
        emb, hidden, mask = _captured(enc, batch, k)
        assert hidden.shape == (2, *TrunkCache(enc, k).hidden_shape)
        with torch.inference_mode():
            out = TopBlocks.from_encoder(enc, k)(hidden, mask)
        np.testing.assert_allclose(out.numpy(), emb, rtol=2e-3, atol=2e-3)
    with pytest.raises(TopKUnsupportedError, match="must be between 1 and"):
        TrunkCache(enc, 4)


def test_swin_top_k_must_stay_in_last_stage(tiny_swin):
    with pytest.raises(TopKUnsupportedError, match="inside the last stage"):
        TrunkCache(load_encoder(str(tiny_swin)), 3)


def test_cache_top_k_store_round_trip(tiny_bert, dataset_factory, texts_factory, tmp_path):
    texts = texts_factory(13)
    ds = dataset_factory(texts)
    path = run(ds.path, model=str(tiny_bert), out=tmp_path / "s.h5", cache_top_k=1, batch_size=4, chunk_rows=5,
               max_length=16, dtype="float32", progress=False)
    store = open_store(path)
    assert store.has_hidden and store.attrs["cache_block"] == "model.encoder.layer.1"
    rows = np.flatnonzero(store.present)
    hidden, mask = store.read_hidden(rows)
    assert hidden.shape == (len(rows), 16, 32)
    assert mask.sum(1).tolist() == [len(load_encoder(str(tiny_bert)).tokenizer(texts[r - 1])["input_ids"]) for r in rows]
    top = TopBlocks.from_store(path)
    with torch.inference_mode():
        out = top(torch.from_numpy(hidden), torch.from_numpy(mask))
    np.testing.assert_allclose(out.numpy(), store.embeddings[rows], rtol=2e-3, atol=2e-3)
