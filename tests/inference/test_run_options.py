"""--run, --dataset and --device on `recx eval`, `recx recommend` and `recx export`: a run read
against a copy of its dataset folder, on the CPU, ranks exactly as it does from its own.

The run is copied to a private folder (results.json lands there), where the dataset path it
recorded no longer resolves: every command names the dataset with --dataset."""

import csv
import io
import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from recx.cli import app


def invoke(args, code=0):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def run_and_copy(trained, tiny_dataset, tmp_path):
    """A private copy of a trained run and a copy of its dataset folder."""
    run = shutil.copytree(trained(), tmp_path / "runs" / "sasrec-id")
    return run, shutil.copytree(tiny_dataset.path, tmp_path / "moved-data")


def _eval(run, *extra):
    invoke(["eval", "--run", run, "--k", "5", "--k", "10", "--bootstrap", "0", "--no-baselines", *extra])
    return json.loads((run / "results.json").read_text())


def test_eval_on_a_copy_of_the_dataset_on_the_cpu_gives_the_same_metrics(run_and_copy, tiny_dataset):
    run, copy = run_and_copy
    own = _eval(run, "--dataset", tiny_dataset.path)
    moved = _eval(run, "--dataset", copy, "--device", "cpu")
    assert moved["metrics"] == own["metrics"] and moved["counts"] == own["counts"]
    assert moved["dataset"]["path"] == str(copy) and own["dataset"]["path"] == str(tiny_dataset.path)
    assert moved["dataset"]["fingerprint"] == own["dataset"]["fingerprint"]


def test_a_dataset_with_other_data_is_refused(run_and_copy, make_tiny_dataset, tmp_path):
    run, _ = run_and_copy
    other = make_tiny_dataset(tmp_path / "other", seed=1).path
    for command in (["eval", "--run", run, "--bootstrap", "0"], ["recommend", "--run", run, "--user", "u1"],
                    ["export", "--run", run, "-o", tmp_path / "exp"]):
        res = invoke([*command, "--dataset", other], code=1)
        assert "changed since this run was trained" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (run / "results.json").exists() and not (tmp_path / "exp").exists()


def test_recommend_and_export_take_run_dataset_and_device(run_and_copy, tiny_dataset, tmp_path):
    run, copy = run_and_copy
    ids = lambda out: [(r["query"], r["item_id"]) for r in csv.DictReader(io.StringIO(out))]
    own = invoke(["recommend", "--run", run, "--dataset", tiny_dataset.path, "--user", "u1", "--user", "u2", "--k", "4", "--format", "csv"]).stdout
    moved = invoke(["recommend", "--run", run, "--dataset", copy, "--device", "cpu", "--user", "u1", "--user", "u2",
                    "--k", "4", "--format", "csv"]).stdout
    assert ids(moved) == ids(own) and len(ids(own)) == 8

    res = invoke(["export", "--run", run, "-o", tmp_path / "exp", "--dataset", copy, "--device", "cpu", "-q"])
    assert res.stdout.strip().splitlines() == [res.stdout.strip()] and res.stdout.startswith("exported ")  # -q: one line
    manifest = json.loads((tmp_path / "exp" / "manifest.json").read_text())
    assert manifest["dataset"]["path"] == str(copy.resolve())
    assert manifest["user_encoder"]["check"]["same_topk_fraction"] == 1.0
    served = invoke(["recommend", "--export", tmp_path / "exp", "--device", "cpu", "--user", "u1", "--user", "u2",
                     "--k", "4", "--format", "csv"]).stdout
    assert ids(served) == ids(own)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_a_cuda_device_without_cuda_is_one_line(run_and_copy):
    run, copy = run_and_copy
    for command in (["eval", "--run", run, "--bootstrap", "0"], ["recommend", "--run", run, "--user", "u1"]):
        res = invoke([*command, "--dataset", copy, "--device", "cuda"], code=1)
        assert "CUDA is not available" in res.output and len(res.output.strip().splitlines()) == 1
