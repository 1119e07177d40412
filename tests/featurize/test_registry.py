import time

import pytest

from recx.featurize.registry import REGISTRY, detect_modality, load_encoder, store_name
from recx.featurize.weights import WeightsUnavailableError, weight_hash


def test_registry_entries_are_complete():
    want = {"minilm", "bert-tiny", "bert-small", "bert-base", "roberta-base", "opt-125m", "efficientnet-lite0",
            "mobilenet-v2", "resnet18", "resnet34", "resnet50", "swin-t", "swin-b", "mae-base", "clip-vit-b-32"}
    assert set(REGISTRY) == want
    for spec in REGISTRY.values():
        assert spec.modality in ("text", "image", "clip") and spec.params and spec.pooling and spec.install
        assert isinstance(spec.available(), bool)


def test_missing_weights_fail_fast_with_how_to(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="--model-path"):
        load_encoder("someone/not-a-cached-model")
    with pytest.raises(WeightsUnavailableError, match="--model-path /nonexistent does not exist"):
        load_encoder("bert-base", model_path="/nonexistent")
    assert time.perf_counter() - start < 5


def test_registry_entry_with_model_path_uses_local_folder(tiny_bert):
    enc = load_encoder("bert-tiny", model_path=tiny_bert)
    assert enc.name == "bert-tiny" and enc.source == str(tiny_bert) and enc.dim == 32


def test_store_name_and_modality_detection(tiny_bert, tmp_path):
    assert store_name("prajjwal1/bert-tiny") == "prajjwal1--bert-tiny"
    assert store_name(str(tiny_bert)) == tiny_bert.name
    assert detect_modality(tiny_bert) == "text"
    (tmp_path / "config.json").write_text('{"model_type": "swin"}')
    assert detect_modality(tmp_path) == "image"


def test_weight_hash_is_sha256_of_bytes(tmp_path):
    import hashlib

    (tmp_path / "a.bin").write_bytes(b"abc")
    (tmp_path / "b.bin").write_bytes(b"xyz")
    ha = hashlib.sha256(b"abc").hexdigest()
    hb = hashlib.sha256(b"xyz").hexdigest()
    assert weight_hash([tmp_path / "a.bin"]) == ha
    assert weight_hash([tmp_path / "a.bin", tmp_path / "b.bin"]) == hashlib.sha256((ha + hb).encode()).hexdigest()
