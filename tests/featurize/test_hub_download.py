"""Weights download on first use, against a fake hub on 127.0.0.1 (tests/fake_hub.py): no network needed.

`make test` runs with HF_HUB_OFFLINE=1; the ``fake_hub`` fixture turns offline mode off for its
test only, in the environment and in the values huggingface_hub.constants read at import
(ENDPOINT, the resolve-URL template, HF_HUB_OFFLINE, HF_HUB_CACHE).
"""

from __future__ import annotations

import hashlib
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fake_hub import FakeHub, FakeRepo
from recx.cli import app
from recx.featurize.cli import weights_status
from recx.featurize.registry import REGISTRY, ModelSpec, load_encoder
from recx.featurize.store import open_store, partial_path
from recx.featurize.weights import WeightsUnavailableError

pytestmark = pytest.mark.timeout(60)

REPO = "recx-test/tiny-bert"


def _offline(monkeypatch, on: bool) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if on else "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1" if on else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", on)


@pytest.fixture
def fake_hub(monkeypatch, tmp_path, tiny_bert):
    """A fake hub serving REPO (the tiny BERT, plus TF / legacy copies recx must not fetch), an empty HF cache, online."""
    from huggingface_hub import constants
    from huggingface_hub import file_download

    extra = {"tf_model.h5": b"tf" * 100, "pytorch_model.bin": b"pt" * 100, "README.md": b"# tiny\n", "onnx/model.onnx": b"x"}
    hub = FakeHub(repos={REPO: FakeRepo.from_folder(tiny_bert, extra)}).start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    # http_get waits 1 s before each of its 5 resume attempts after a dropped connection
    monkeypatch.setattr(file_download, "time", types.SimpleNamespace(sleep=lambda s: None))
    _offline(monkeypatch, False)
    monkeypatch.chdir(tmp_path)  # no workspace: stores go where --out says
    hub.cache = cache
    yield hub
    hub.stop()


def _featurize(ds, out: Path, *args: str, model: str = REPO):
    return CliRunner().invoke(app, ["featurize", "--model", model, "--dataset", str(ds.path), "--out", str(out), *args])


def _error_line(output: str) -> str:
    lines = [l for l in output.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def _no_store(out: Path) -> None:
    assert not out.exists() and not partial_path(out).exists()


def _no_partial_files(root: Path) -> None:
    assert not [p for p in root.rglob("*") if p.name.endswith((".incomplete", ".partial"))]


def reference_embeddings(folder: Path, texts: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [N+1, H], present [N+1]) computed straight with transformers from ``folder``:
    one text at a time (no padding), mean of the last hidden states over its tokens (at most 64)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    out = np.zeros((len(texts) + 1, model.config.hidden_size), dtype=np.float32)
    present = np.zeros(len(texts) + 1, dtype=bool)
    with torch.no_grad():
        for k, text in enumerate(texts, start=1):
            if not text:
                continue
            ids = tokenizer(text, truncation=True, max_length=64, return_tensors="pt")["input_ids"]
            out[k] = model(input_ids=ids).last_hidden_state[0].mean(0).numpy()
            present[k] = True
    return out, present


def test_first_run_downloads_second_uses_cache_with_hub_stopped(fake_hub, dataset_factory, texts_factory, tmp_path, monkeypatch, tiny_bert):
    texts = texts_factory(12)
    ds = dataset_factory(texts)
    spec = ModelSpec("tiny-hub", "text", "hf-text", REPO, "-", "mean", "-")
    monkeypatch.setitem(REGISTRY, "tiny-hub", spec)
    size = sum(len(b) for n, b in fake_hub.repos[REPO].files.items() if n.endswith((".json", ".txt", ".safetensors")))
    assert spec.download_size() == size  # what `recx models` shows: "would download ~0.1 MB"
    assert weights_status([spec], offline=False) == [f"[yellow]would download[/] ~{size / 1e6:.1f} MB"]
    assert weights_status([spec], offline=True) == ["[red]not here[/] (offline mode: no download)"]
    # only repo info was asked so far: no file fetched, no snapshot in the cache
    assert not fake_hub.requests("GET", "/resolve/") and not (fake_hub.cache / "models--recx-test--tiny-bert" / "snapshots").exists()

    out = tmp_path / "a.h5"
    res = _featurize(ds, out, "--store-dtype", "float32")
    assert res.exit_code == 0, res.output
    assert f"downloading {REPO} weights from {fake_hub.url}/{REPO}" in res.output
    sha = fake_hub.repos[REPO].sha
    snap = fake_hub.cache / "models--recx-test--tiny-bert" / "snapshots" / sha
    fetched = sorted(p.name for p in snap.iterdir())
    assert "model.safetensors" in fetched and "config.json" in fetched and "vocab.txt" in fetched
    assert not {"tf_model.h5", "pytorch_model.bin", "README.md", "onnx"} & set(fetched)
    # the download really happened: every cached file is byte for byte what the hub served, fetched once
    for name in fetched:
        assert (snap / name).read_bytes() == fake_hub.repos[REPO].files[name] == (tiny_bert / name).read_bytes(), name
        assert len([p for p in fake_hub.requests("GET", f"/{REPO}/resolve/") if p.endswith(f"/{name}")]) == 1, name
    attrs = open_store(out).attrs
    weights = fake_hub.repos[REPO].files["model.safetensors"]
    assert attrs["source"] == REPO and attrs["revision"] == sha
    assert attrs["weight_hash"] == hashlib.sha256(weights).hexdigest()

    # the stored vectors are the model's: transformers on the files the hub served, one text at a time
    want, present = reference_embeddings(snap, texts)
    assert present.sum() == 9 and not present[[0, 1, 5, 9]].any()  # texts_factory leaves every 4th item without text
    first = open_store(out)
    assert first.embeddings.dtype == np.float32 and first.embeddings.shape == want.shape
    assert np.array_equal(first.present, present)
    np.testing.assert_allclose(first.embeddings, want, rtol=1e-5, atol=1e-5)
    assert np.linalg.norm(want[present], axis=1).min() > 0.1  # real vectors, not zeros that would match anything
    first_rows = np.array(first.embeddings)

    assert weights_status([spec], offline=True) == ["[green]cached[/]"]

    fake_hub.stop()
    n = len(fake_hub.log)
    res = _featurize(ds, out, "--force", "--store-dtype", "float32")
    assert res.exit_code == 0, res.output
    assert "downloading" not in res.output and len(fake_hub.log) == n
    again = open_store(out)
    assert again.attrs["revision"] == sha and again.attrs["weight_hash"] == attrs["weight_hash"]
    assert np.array_equal(again.embeddings, first_rows)  # the cached weights give the same store, exactly
    # and a store from a local folder of the same weights (--model-path) holds the same vectors
    local = tmp_path / "local.h5"
    res = _featurize(ds, local, "--store-dtype", "float32", "--model-path", str(tiny_bert))
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(open_store(local).embeddings, first_rows, rtol=1e-6, atol=1e-6)
    # and in offline mode the cache is all it needs
    _offline(monkeypatch, True)
    assert load_encoder("tiny-hub").revision == sha


def test_offline_mode_refuses_to_download(fake_hub, dataset_factory, texts_factory, tmp_path, monkeypatch):
    ds = dataset_factory(texts_factory(5))
    out = tmp_path / "o.h5"
    res = _featurize(ds, out, "--offline")
    assert res.exit_code == 1
    line = _error_line(res.output)
    assert REPO in line and "offline mode is on" in line and "--model-path" in line
    _offline(monkeypatch, True)
    res = _featurize(ds, out)
    assert res.exit_code == 1 and "offline mode is on" in _error_line(res.output)
    assert fake_hub.log == [] and not fake_hub.cache.exists()
    _no_store(out)


def test_download_failures_are_one_clear_line_and_leave_no_store(fake_hub, dataset_factory, texts_factory, tmp_path):
    ds = dataset_factory(texts_factory(5))
    out = tmp_path / "f.h5"

    res = _featurize(ds, out, model="recx-test/no-such-model")  # 404 RepoNotFound
    assert res.exit_code == 1
    line = _error_line(res.output)
    assert "no hub repo 'recx-test/no-such-model'" in line and "HTTP 404" in line and "--model-path" in line
    _no_store(out)

    fake_hub.repos["recx-test/gated"] = FakeRepo.from_files(fake_hub.repos[REPO].files, gated=True)
    res = _featurize(ds, out, model="recx-test/gated")  # 403 GatedRepo on the files
    assert res.exit_code == 1
    line = _error_line(res.output)
    assert "recx-test/gated" in line and "gated" in line and "hf auth login" in line
    _no_store(out)

    fake_hub.drop.add("model.safetensors")  # the connection drops half way through the weights
    res = _featurize(ds, out)
    assert res.exit_code == 1
    line = _error_line(res.output)
    assert f"downloading '{REPO}'" in line and "failed (" in line and "check the network" in line
    _no_store(out)
    _no_partial_files(fake_hub.cache)
    snap = fake_hub.cache / "models--recx-test--tiny-bert" / "snapshots" / fake_hub.repos[REPO].sha
    assert not (snap / "model.safetensors").exists()
    assert load_encoder_offline_fails(REPO)

    fake_hub.drop.clear()  # rerun: the files fetched before stay, the rest downloads
    res = _featurize(ds, out)
    assert res.exit_code == 0, res.output
    assert len([p for p in fake_hub.requests("GET") if p.endswith("/config.json")]) == 1

    fake_hub.stop()  # no hub at all: a connection error, not a traceback
    res = _featurize(ds, out, "--force", model="recx-test/other")
    assert res.exit_code == 1
    line = _error_line(res.output)
    assert "recx-test/other" in line and "ConnectError" in line


def load_encoder_offline_fails(repo: str) -> bool:
    """An incomplete snapshot (weights missing) does not count as cached."""
    with pytest.raises(WeightsUnavailableError, match="offline mode is on"):
        load_encoder(repo, offline=True)
    return True


def test_torchvision_checkpoint_downloads_through_torch_hub(fake_hub, monkeypatch, tmp_path):
    import torch

    import recx.featurize.registry as registry

    data = b"\x00checkpoint bytes" * 50
    name = f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    fake_hub.repos["files"] = FakeRepo.from_files({name: data, "resnet18-deadbeef.pth": data})
    spec = REGISTRY["resnet18"]
    monkeypatch.setattr(registry, "torchvision_weights", lambda arch: (f"{fake_hub.url}/files/{name}", 0.001))
    assert not spec.available()
    got = spec.locate(progress=False)
    assert got.path == Path(torch.hub.get_dir()) / "checkpoints" / name and got.path.read_bytes() == data
    assert got.revision == name and spec.available()
    fake_hub.stop()
    assert spec.locate(progress=False).path == got.path  # cached: no hub needed

    fake_hub.start()
    monkeypatch.setattr(registry, "torchvision_weights", lambda arch: (f"{fake_hub.url}/files/resnet18-00000000.pth", 0.001))
    with pytest.raises(WeightsUnavailableError, match=r"resnet18: downloading .*resnet18-00000000.pth failed \(HTTP 404\)"):
        spec.locate(progress=False)
    monkeypatch.setattr(registry, "torchvision_weights", lambda arch: (f"{fake_hub.url}/files/resnet18-deadbeef.pth", 0.001))
    with pytest.raises(WeightsUnavailableError, match="invalid hash value"):
        spec.locate(progress=False)
    _no_partial_files(Path(torch.hub.get_dir()))
    assert sorted(p.name for p in (Path(torch.hub.get_dir()) / "checkpoints").iterdir()) == [name]


def test_open_clip_tag_downloads_through_open_clip(fake_hub, monkeypatch):
    import recx.featurize.clip as clip

    ckpt = b"open clip weights" * 20
    fake_hub.repos["recx-test/tiny-clip"] = FakeRepo.from_files({"open_clip_pytorch_model.bin": ckpt, "open_clip_config.json": b"{}"})
    monkeypatch.setattr(clip, "open_clip_pretrained", lambda arch, tag: {"hf_hub": "recx-test/tiny-clip/"})
    spec = ModelSpec("clip-hub", "clip", "open_clip", "open_clip:ViT-B-32/tiny", "-", "proj", "-", arch="ViT-B-32")
    assert not spec.available()
    got = spec.locate(progress=False)
    assert got.path.read_bytes() == ckpt and got.revision == fake_hub.repos["recx-test/tiny-clip"].sha
    assert spec.available()
    fake_hub.stop()
    assert spec.locate(offline=True).path == got.path

    monkeypatch.setattr(clip, "open_clip_pretrained", lambda arch, tag: {"hf_hub": "recx-test/clip-missing/"})
    with pytest.raises(WeightsUnavailableError, match="offline mode is on"):
        spec.locate(offline=True)
    with pytest.raises(WeightsUnavailableError, match=r"clip-hub: downloading 'recx-test/clip-missing' .*failed"):
        spec.locate(progress=False)
