"""recx export: the exported encoder ranks like the trained model, the manifest pins the data,
and an unfinished, altered or foreign export is refused."""

import importlib.util
import json
import os

import numpy as np
import pytest

from recx.featurize.store import check_store, open_store
from recx.inference import Recommender, export_run, load_export
from recx.inference.export import ExportError, sha256_file


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "sasrec"
    export_run(trained(), out)
    return out


@pytest.mark.parametrize("model,tower", [("sasrec", "id"), ("gru4rec", "id"), ("bert4rec", "id"), ("sasrec", "id+text")])
def test_exported_encoder_gives_the_trained_top_k(trained, tiny_dataset, tmp_path, model, tower):
    run = trained(model, tower)
    manifest = export_run(run, tmp_path / "exp", k=10)
    assert manifest["user_encoder"]["check"]["same_topk_fraction"] == 1.0
    histories, _ = tiny_dataset.split("test")
    want = Recommender.from_run(run).recommend_indices(histories, 10)
    got = Recommender.from_export(tmp_path / "exp").recommend_indices(histories, 10)  # TorchScript + saved FAISS index
    np.testing.assert_array_equal(got.items, want.items)
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5, atol=1e-6)


def test_manifest_vectors_and_store(trained, tiny_dataset, exported):
    m = json.loads((exported / "manifest.json").read_text())
    assert m["dataset"]["fingerprint"] == tiny_dataset.fingerprint
    assert m["dataset"]["catalog_fingerprint"] == tiny_dataset.catalog_fingerprint
    assert m["config"]["model"] == "sasrec" and m["config"]["name"] == "sasrec-id"
    for name, meta in m["files"].items():
        assert sha256_file(exported / name) == meta["sha256"] and (exported / name).stat().st_size == meta["bytes"]
    assert "manifest.json" not in m["files"] and {"vectors.npy", "vectors.h5", "index.faiss", "user_encoder.pt", "items.jsonl"} <= set(m["files"])
    table = Recommender.from_run(trained()).item_table
    vectors = np.load(exported / "vectors.npy")
    assert vectors.dtype == np.float32 and np.array_equal(vectors, table)
    store = open_store(exported / "vectors.h5")
    check_store(store, tiny_dataset)  # a finished store of this catalog
    np.testing.assert_array_equal(store.embeddings[1:], table[1:])
    assert store.present[1:].all() and not store.present[0]
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no temp dir left


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_index_recall_is_measured(trained, tiny_dataset, tmp_path, index):
    from recx.evaluate import retrieval as R

    m = export_run(trained(), tmp_path / "exp", index=index, index_params={"nprobe": 1, "nlist": 4} if index == "ivf" else {"ef_search": 16}, k=5)
    info = json.loads((tmp_path / "exp" / "index.json").read_text())
    assert info == m["index"] and info["kind"] == index and info["recall_queries"] == tiny_dataset.num_users
    rec = Recommender.from_export(tmp_path / "exp")
    histories = tiny_dataset.split("test")[0]
    users = rec.encode_histories([[tiny_dataset.item_ids[i] for i in h] for h in histories])
    history = rec.encoder.history_scores(histories)  # the run's term, from the exported TorchScript module
    exact = R.topk_exact(users, rec.item_table, 5, backend="torch", history=history)
    recall = R.recall_vs_exact(rec.topk(users, 5, history=history), exact).mean()
    assert info["recall@5"] == pytest.approx(recall)


def test_checks_rank_a_seeded_sample_of_a_large_user_base(trained, tiny_dataset, tmp_path, monkeypatch):
    """Above CHECK_USERS test users the encoder check and the recall use a seeded sample (a
    million users would rank the whole catalog four times), and index.json says so."""
    from recx.evaluate import retrieval as R
    from recx.inference import export as E

    monkeypatch.setattr(E, "CHECK_USERS", 7)
    m = export_run(trained(), tmp_path / "exp", index="ivf", index_params={"nprobe": 1, "nlist": 4}, k=5)
    info = m["index"]
    assert m["user_encoder"]["check"]["users"] == 7 and info["recall_queries"] == 7
    assert info["recall_queries_from"] == f"a seeded sample of the run's {tiny_dataset.num_users:,} test-split users"
    sample = E.user_sample(tiny_dataset.num_users, 7, seed=0)
    rec = Recommender.from_export(tmp_path / "exp")
    histories = [tiny_dataset.split("test")[0][u] for u in sample]
    users = rec.encode_histories([[tiny_dataset.item_ids[i] for i in h] for h in histories])
    history = rec.encoder.history_scores(histories)
    exact = R.topk_exact(users, rec.item_table, 5, backend="torch", history=history)
    assert info["recall@5"] == pytest.approx(R.recall_vs_exact(rec.topk(users, 5, history=history), exact).mean())


def test_an_export_refuses_another_datasets_ids(exported, tmp_path, make_tiny_dataset):
    other = make_tiny_dataset(tmp_path / "other", prefix="x")
    with pytest.raises(ExportError, match="ids would map to the wrong items"):
        Recommender.from_export(exported, dataset=other.path)
    rec = Recommender.from_export(exported)
    out = rec.recommend([["x1", "x2"]], k=3)
    assert out.queries == [] and out.skipped == {"history 1": ["x1", "x2"]} and "history 1" in out.dropped
    with pytest.raises(Exception, match="needs the dataset"):
        rec.recommend_users(["u1"], k=3)


def test_same_catalog_other_users_is_accepted(exported, tiny_dataset):
    rec = Recommender.from_export(exported, dataset=tiny_dataset)
    assert rec.recommend_users(["u2"], k=3).queries == ["u2"]


def test_half_written_or_altered_exports_are_refused(trained, exported, tmp_path, monkeypatch):
    import shutil

    import recx.inference.export as E

    # an export killed before its rename leaves nothing under the target name
    monkeypatch.setattr(E, "_script_bytes", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        export_run(trained(), tmp_path / "killed")
    monkeypatch.undo()
    assert not (tmp_path / "killed").exists() and not list(tmp_path.glob(".killed*"))

    # a temp dir that survived (e.g. copied away mid-export) is refused by name
    partial = tmp_path / ".late.partial-abc"
    shutil.copytree(exported, partial)
    with pytest.raises(ExportError, match="unfinished export"):
        load_export(partial)

    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    (bad / "manifest.json").unlink()
    with pytest.raises(ExportError, match="no manifest.json"):
        load_export(bad)

    shutil.rmtree(bad)
    shutil.copytree(exported, bad)
    with open(bad / "vectors.npy", "r+b") as f:
        f.truncate(os.path.getsize(bad / "vectors.npy") // 2)
    with pytest.raises(ExportError, match="half-copied"):
        load_export(bad)

    shutil.rmtree(bad)
    shutil.copytree(exported, bad)
    v = np.load(bad / "vectors.npy")
    v[1, 0] += 1.0
    np.save(bad / "vectors.npy", v)
    with pytest.raises(ExportError, match="sha256 differs"):
        load_export(bad)
    load_export(bad, verify=False)  # sizes agree: only the hash would tell


def test_an_existing_export_is_not_overwritten(trained, tmp_path):
    out = tmp_path / "exp"
    export_run(trained(), out)
    with pytest.raises(ExportError, match="already exists"):
        export_run(trained(), out)
    old_manifest = (out / "manifest.json").read_bytes()
    (out / "notes.txt").write_text("the user's, not recx's")
    with pytest.raises(ExportError, match="notes.txt, which recx did not write"):
        export_run(trained(), out, force=True)
    assert (out / "notes.txt").exists() and (out / "manifest.json").read_bytes() == old_manifest
    (out / "notes.txt").unlink()
    export_run(trained(), out, force=True)
    load_export(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]  # the old export moved aside and went


def test_force_never_replaces_a_folder_recx_did_not_write(trained, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("irreplaceable")
    with pytest.raises(ExportError, match="not a recx export"):
        export_run(trained(), mine, force=True)
    assert (mine / "thesis.tex").read_text() == "irreplaceable"


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None, reason="onnx is not installed (optional)")
def test_onnx_copy_where_onnx_is_installed(trained, tmp_path):
    import torch
    from onnx.reference import ReferenceEvaluator

    m = export_run(trained(), tmp_path / "exp")
    assert m["user_encoder"]["onnx"]["written"], m["user_encoder"]["onnx"]
    assert "user_encoder.onnx" in m["files"]
    scripted = torch.jit.load(str(tmp_path / "exp" / "user_encoder.pt"))
    onnx_model = ReferenceEvaluator(str(tmp_path / "exp" / "user_encoder.onnx"))
    for padded in (np.array([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]]), np.array([[0, 7]])):  # other lengths than exported with
        want = scripted(torch.from_numpy(padded)).detach().numpy()
        np.testing.assert_allclose(onnx_model.run(None, {"padded": padded})[0], want, atol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed")
def test_no_onnx_without_the_package(exported):
    m = json.loads((exported / "manifest.json").read_text())
    assert m["user_encoder"]["onnx"] == {"written": False, "reason": "the onnx package is not installed"}
    assert not (exported / "user_encoder.onnx").exists()
