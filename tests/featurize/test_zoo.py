"""Every loader family of the registry, on tiny random models built here (no downloads)."""

import numpy as np
import pytest
import torch

import recx  # noqa: F401
from recx.featurize.clip import OpenClipEncoder
from recx.featurize.image import HFVisionEncoder
from recx.featurize.registry import REGISTRY, ModelSpec, load_encoder
from recx.featurize.runner import run
from recx.featurize.store import check_store, open_store
from recx.featurize.text import HFTextEncoder


@pytest.mark.parametrize("fixture,blocks", [("tiny_roberta", "model.encoder.layer"), ("tiny_opt", "model.decoder.layers")])
def test_roberta_and_opt_mean_pooling(request, fixture, blocks):
    folder = request.getfixturevalue(fixture)
    enc = load_encoder("opt-125m" if fixture == "tiny_opt" else "roberta-base", model_path=folder)
    assert isinstance(enc, HFTextEncoder) and enc.dim == 32 and enc.pooling == "mean"
    assert enc.block_names() == [f"{blocks}.0", f"{blocks}.1"]
    texts = ["red widget", "blue green sensor cable"]
    with torch.inference_mode():
        batch = enc.preprocess(texts)
        got = enc(batch)
        single = enc(enc.preprocess(texts[:1]))
        hidden = enc.model(**batch).last_hidden_state
    m = batch["attention_mask"][0].bool()
    torch.testing.assert_close(got[0], hidden[0][m].mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[0], single[0], rtol=1e-4, atol=1e-5)  # padding does not leak


def test_swin_pooler_and_blocks(tiny_swin, tmp_path, images_factory):
    enc = load_encoder("swin-t", model_path=tiny_swin)
    assert isinstance(enc, HFVisionEncoder) and enc.dim == 32 and enc.pooling == "avg"
    assert enc.block_names() == ["model.encoder.layers.0.blocks.0", "model.encoder.layers.1.blocks.0", "model.encoder.layers.1.blocks.1"]
    assert (enc.transform.size, enc.transform.resize, enc.transform.mean) == (32, None, (0.5, 0.5, 0.5))
    paths = [str(tmp_path / p) for p in images_factory(2)]
    with torch.inference_mode():
        batch = enc.preprocess(paths)
        out = enc.model(**batch)
        torch.testing.assert_close(enc(batch), out.last_hidden_state.mean(1))


def test_vit_mae_keeps_every_patch_in_place(tiny_mae, tmp_path, images_factory):
    enc = load_encoder("mae-base", model_path=tiny_mae)
    assert enc.model.config.mask_ratio == 0.0 and enc.pooling == "cls"
    paths = [str(tmp_path / p) for p in images_factory(3)]
    with torch.inference_mode():
        batch = enc.preprocess(paths)
        a, b = enc(batch), enc(batch)
        out = enc.model(pixel_values=batch["pixel_values"], noise=torch.arange(16.0).expand(3, 16))
    torch.testing.assert_close(a, b)
    assert out.last_hidden_state.shape == (3, 17, 32)  # 16 patches kept + CLS
    assert (out.ids_restore == torch.arange(16)).all()
    torch.testing.assert_close(a, out.last_hidden_state[:, 0])


def test_resnet18_through_registry(tmp_path, images_factory):
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    enc = load_encoder("resnet18", model_path=tmp_path / "r18.pth")
    assert enc.dim == 512 and enc.block_names() == ["model.layer1", "model.layer2", "model.layer3", "model.layer4"]
    with torch.inference_mode():
        out = enc(enc.preprocess([str(tmp_path / p) for p in images_factory(2)]))
    assert out.shape == (2, 512) and (out >= 0).all()  # ReLU then average pool


def test_open_clip_image_and_text_share_a_space(tiny_clip, monkeypatch, tmp_path, images_factory, dataset_factory):
    arch, ckpt = tiny_clip
    monkeypatch.setitem(REGISTRY, "clip-tiny", ModelSpec("clip-tiny", "clip", "open_clip", f"open_clip:{arch}/none", "-", "proj", "-", arch=arch))
    img = load_encoder("clip-tiny", model_path=ckpt, modality="image")
    txt = load_encoder("clip-tiny", model_path=ckpt, modality="text")
    assert isinstance(img, OpenClipEncoder) and (img.dim, txt.dim) == (16, 16)
    assert img.block_names()[-1] == "model.visual.transformer.resblocks.1"
    assert txt.block_names()[-1] == "model.transformer.resblocks.1"
    rel = images_factory(2)
    ds = dataset_factory(["a red widget", None], rel)
    paths = {}
    for mod, enc in (("image", img), ("text", txt)):
        paths[mod] = run(ds.path, model="clip-tiny", encoder=enc, modality=mod, out=tmp_path / f"clip-{mod}.h5", progress=False, num_workers=0)
    si, st = open_store(paths["image"]), open_store(paths["text"])
    check_store(si, ds, {"modality": "image", "space": "clip"})
    check_store(st, ds, {"modality": "text", "space": "clip"})
    np.testing.assert_array_equal(st.present, [False, True, False])
    with torch.inference_mode():
        want_img = img.model.encode_image(img.preprocess([str(tmp_path / p) for p in rel])["pixel_values"])
        want_txt = txt.model.encode_text(txt.tokenizer(["a red widget"]))
    np.testing.assert_allclose(si.embeddings[1:], torch.nn.functional.normalize(want_img, dim=-1).numpy(), atol=2e-3)
    np.testing.assert_allclose(st.embeddings[1], torch.nn.functional.normalize(want_txt, dim=-1)[0].numpy(), atol=2e-3)
