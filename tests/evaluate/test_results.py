"""results.json records, merging of earlier evaluations, and the per-user CSV."""

import csv
import json

import numpy as np
import pytest

from recx.errors import RecxError
from recx.evaluate.protocol import evaluate_arrays
from recx.evaluate.results import result_record, write_per_user_csv, write_results

TABLE = np.array([[0.0], [3.0], [2.0], [1.0]], dtype=np.float32)


def _result(ks=(1,)):
    return evaluate_arrays(np.ones((2, 1), np.float32), TABLE, np.array([1, 3]), None, ks=ks)


def test_record_fields_and_ci():
    rec = result_record(_result(), "m", "test", config={"item_tower": "id", "loss": "bce"}, n_boot=200, seed=3)
    assert rec["run"] == "m" and rec["split"] == "test" and rec["ks"] == [1]
    assert rec["exclude_history"] is False and rec["ties"] == "pessimistic" and rec["index"] == "flat"
    assert rec["metrics"] == {"hr@1": 0.5, "ndcg@1": 0.5, "mrr": pytest.approx((1 + 1 / 3) / 2)}
    assert rec["counts"] == {"users": 2, "items": 3}
    assert rec["item_tower"] == "id" and rec["loss"] == "bce"
    lo, hi = rec["ci95"]["hr@1"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    assert rec["bootstrap"] == {"samples": 200, "seed": 3, "level": 0.95}
    json.dumps(rec)  # serialisable


def test_write_results_keeps_other_settings_and_replaces_same(tmp_path):
    a = result_record(_result((1,)), "m", "test", n_boot=0)
    b = result_record(_result((1,)), "m", "valid", n_boot=0)
    assert write_results(tmp_path, a) is False
    assert write_results(tmp_path, b) is False
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["split"] == "valid" and [p["split"] for p in data["previous"]] == ["test"]
    assert write_results(tmp_path, a) is True  # same settings as the old 'test' entry
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["split"] == "test" and [p["split"] for p in data["previous"]] == ["valid"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_write_results_refuses_corrupt_file(tmp_path):
    (tmp_path / "results.json").write_text("{oops")
    with pytest.raises(RecxError, match="not valid JSON"):
        write_results(tmp_path, result_record(_result(), "m", "test", n_boot=0))


def test_per_user_csv(tmp_path):
    out = tmp_path / "pu.csv"
    write_per_user_csv(out, [("m", _result())], np.array([1, 3]), ["u0", "u1"])
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["model", "user", "user_id", "target", "rank", "hr@1", "ndcg@1", "mrr"]
    assert rows[1] == ["m", "0", "u0", "1", "1.0", "1", "1", "1"]
    assert rows[2] == ["m", "1", "u1", "3", "3.0", "0", "0", "0.333333"]
    with pytest.raises(RecxError, match="already exists"):
        write_per_user_csv(out, [("m", _result())], np.array([1, 3]))


def test_run_writes_results_json(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from recx.data.dataset import Item, write_dataset
    from recx.evalrun import runs as R_

    ds = write_dataset(tmp_path / "ds", [Item(id=f"i{i}") for i in range(1, 4)], ["a", "b"], [[1, 2, 3], [3, 2, 1]], {"source": "t"})
    histories, targets = ds.split("test")  # targets 3 and 1
    emb = SimpleNamespace(user_vectors=np.ones((2, 1), np.float32), item_table=TABLE, targets=targets,
                          histories=histories, dataset=ds, config={"name": "run-x", "item_tower": "id"})
    monkeypatch.setattr(R_, "load_embeddings", lambda run_dir, split, dataset=None, device=None: emb)
    (tmp_path / "run").mkdir()
    from recx.evalrun import run

    rec = run(tmp_path / "run", ks=(1, 3), n_boot=0)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["run"] == "run-x" and saved["metrics"] == rec["metrics"]
    assert saved["metrics"]["hr@1"] == 0.5 and saved["metrics"]["hr@3"] == 1.0  # ranks 3 and 1
    assert saved["dataset"]["fingerprint"] == ds.fingerprint and saved["ci95"] is None
