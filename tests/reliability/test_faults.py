"""Fault cases: every command against damaged inputs, wrong options, interruptions and a full disk.

Each case asserts what recx promises (docs/reliability.md): the exit code, one ``error:`` line
naming the file and the fault, no traceback, and every earlier artifact byte-identical.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from reliability.helpers import TRAIN, error_line, invoke, ok, recx_process, snapshot


# -- --force replaces only what recx wrote --------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["data", "synth", "--items", "50", "--users", "20"],
    ["data", "import", "csv", "interactions.csv"],
])
@pytest.mark.parametrize("target", ["runs", "notes"])
def test_force_never_deletes_a_folder_recx_did_not_write_as_a_dataset(ws, command, target):
    (ws / "interactions.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u{u},i{i},{u * 10 + i}\n" for u in range(5) for i in range(4)))
    (ws / "notes").mkdir()
    (ws / "notes" / "thesis.tex").write_text("irreplaceable")
    before = snapshot(ws)
    line = error_line(invoke([*command, "--out", target, "--force"]), ws / target, "not a recx dataset")
    assert "nothing was changed" in line
    assert snapshot(ws) == before


def test_force_replaces_a_recx_dataset_but_not_the_users_files_inside(ws):
    (ws / "data" / "my-notes.txt").write_text("mine")
    before = snapshot(ws)
    error_line(invoke(["data", "synth", "--out", "data", "--items", "50", "--users", "20", "--force"]), "my-notes.txt", "did not write")
    assert snapshot(ws) == before
    (ws / "data" / "my-notes.txt").unlink()
    ok(["data", "synth", "--out", "data", "--items", "50", "--users", "20", "--force"])
    assert json.loads((ws / "data" / "dataset.json").read_text())["counts"]["items"] == 50


def test_out_dot_is_refused_by_name(ws, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    error_line(invoke(["data", "synth", "--out", ".", "--force", "--items", "50", "--users", "20"]), empty, "current folder")
    assert list(empty.iterdir()) == []


def test_featurize_force_never_replaces_a_file_that_is_not_a_store(ws, tiny_bert):
    (ws / "stores" / "mine.h5").write_text("not hdf5")
    before = snapshot(ws)
    error_line(invoke(["featurize", "--model", tiny_bert, "--out", "stores/mine.h5", "--force", "--quiet"]), "stores/mine.h5", "not a recx store")
    assert snapshot(ws) == before


def test_export_force_never_replaces_a_folder_recx_did_not_write(ws):
    (ws / "mine").mkdir()
    (ws / "mine" / "a.txt").write_text("mine")
    before = snapshot(ws)
    error_line(invoke(["export", "--run", "runs/id", "--out", "mine", "--force"]), ws / "mine", "not a recx export")
    assert snapshot(ws) == before


def test_quickstart_force_never_empties_a_folder_it_did_not_make(ws):
    before = snapshot(ws)
    error_line(invoke(["quickstart", "--out", ".", "--force", "--items", "50", "--users", "20", "--epochs", "1"]), ws)
    assert snapshot(ws) == before


# -- a changed input is detected, never used silently ------------------------------------------
def test_refeaturized_store_is_refused_by_runs_trained_on_it(ws, tiny_bert, tmp_path):
    from tiny_models import save_tiny_bert

    other = tmp_path / "other-bert"
    save_tiny_bert(other, seed=1)
    ok(["featurize", "--model", other, "--out", "stores/text.h5", "--force", "--quiet"])
    before = snapshot(ws)
    for command in (["eval", "--run", "runs/text", "--bootstrap", "0"], ["recommend", "--run", "runs/text", "--user", "user00001"],
                    ["export", "--run", "runs/text", "--out", "text-export"], ["eval", "--run", "runs/ens", "--bootstrap", "0"],
                    ["train", "--resume", "--run", "runs/text"]):
        error_line(invoke(command), "runs/text", "text store", "changed since")
    assert snapshot(ws) == before  # results.json of the old run is not replaced
    ok(["eval", "--run", "runs/id", "--bootstrap", "0"])  # an ID run does not read the store


def test_retrained_ensemble_member_is_refused(ws):
    shutil.rmtree(ws / "runs" / "text")
    ok(["train", "--item-tower", "text", "--name", "text", *TRAIN, "--seed", "7"])
    error_line(invoke(["eval", "--run", "runs/ens", "--bootstrap", "0"]), "runs/text/best.pt", "changed since the ensemble was built")


def test_changed_dataset_is_refused_by_runs(ws):
    ok(["data", "synth", "--out", "data", "--items", "80", "--users", "60", "--seed", "3", "--force"])
    error_line(invoke(["eval", "--run", "runs/id", "--bootstrap", "0"]), "runs/id", "changed since")


# -- unfinished runs ------------------------------------------------------------------------------
def test_interrupted_run_is_never_the_latest_but_can_be_named(ws):
    from recx.trainer import TrainConfig, fit

    cfg = TrainConfig.from_options(dataset=str(ws / "data"), runs_dir=str(ws / "runs"), name="cut", hidden=16, layers=1, max_len=8, epochs=5, seed=1)
    fit(cfg, progress=False, max_epochs_this_call=1)  # as a kill after the first epoch leaves it
    assert not (ws / "runs" / "cut" / "finished.json").exists()
    os.utime(ws / "runs" / "cut" / "best.pt")  # the newest best.pt in the workspace
    ok(["eval", "--bootstrap", "0"])  # the latest finished run (text), not the newer unfinished one
    assert (ws / "runs" / "text" / "results.json").exists() and not (ws / "runs" / "cut" / "results.json").exists()
    named = ok(["eval", "--run", "runs/cut", "--bootstrap", "0"])
    assert "warning:" in named.output and "did not finish" in named.output and "--resume" in named.output
    ok(["train", "--resume", "--run", "runs/cut", "--epochs", "2", "--quiet"])  # one more epoch; --epochs applies to a resumed run
    assert (ws / "runs" / "cut" / "finished.json").exists() and len((ws / "runs" / "cut" / "metrics.jsonl").read_text().splitlines()) == 2
    fit(TrainConfig.from_options(**{**cfg.options(), "name": "cut2"}), progress=False, max_epochs_this_call=1)
    ok(["train", "--resume", "--quiet"])  # no --run: the workspace's latest unfinished run
    assert (ws / "runs" / "cut2" / "finished.json").exists() and len((ws / "runs" / "cut2" / "metrics.jsonl").read_text().splitlines()) == 5
    error_line(invoke(["train", "--resume"]), "no unfinished run")  # nothing left to resume: one line


def test_killed_training_process_leaves_a_resumable_unfinished_run(ws):
    proc = recx_process(["train", "--item-tower", "id", "--name", "killed", "--epochs", "500", "--hidden", "16",
                         "--layers", "1", "--max-len", "8", "--patience", "500", "--quiet"], ws)
    deadline = time.time() + 120
    while not (ws / "runs" / "killed" / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run = ws / "runs" / "killed"
    assert (run / "last.pt").exists() and not (run / "finished.json").exists()
    result = ok(["recommend", "--user", "user00001", "--format", "csv"])  # the latest *finished* run
    assert "warning" not in result.output
    assert "did not finish" in ok(["recommend", "--run", run, "--user", "user00001"]).output


# -- damaged or foreign files --------------------------------------------------------------------
def test_broken_recx_toml_is_an_error_with_line_and_column(ws):
    (ws / "recx.toml").write_text('[workspace]\ndataset = "data\n')
    for command in (["train", "--epochs", "1"], ["eval"], ["recommend", "--user", "u"], ["featurize", "--quiet"], ["export", "--out", "x"]):
        error_line(invoke(command), "recx.toml:2:", "not valid TOML")


def test_truncated_sequences_file_names_the_file(ws):
    seqs = ws / "data" / "sequences.npz"
    seqs.write_bytes(seqs.read_bytes()[: seqs.stat().st_size // 2])
    before = snapshot(ws)
    for command in (["train", "--epochs", "1", "--name", "x"], ["eval", "--run", "runs/id"], ["data", "info", "data"]):
        error_line(invoke(command), "sequences.npz", "damaged or truncated")
    assert snapshot(ws) == before and not (ws / "runs" / "x").exists()


def test_dataset_json_that_is_not_json_names_the_file(ws):
    (ws / "data" / "dataset.json").write_text("{ not json")
    error_line(invoke(["eval", "--run", "runs/id"]), "dataset.json", "not valid JSON")


def test_checkpoint_copied_from_another_run_names_the_file(ws):
    ok(["train", "--item-tower", "id", "--name", "wide", *TRAIN[:2], "--hidden", "32", "--quiet"])
    shutil.copy(ws / "runs" / "wide" / "best.pt", ws / "runs" / "id" / "best.pt")
    error_line(invoke(["eval", "--run", "runs/id"]), "runs/id/best.pt", "does not fit this run's model")
    error_line(invoke(["export", "--run", "runs/id", "--out", "e2"]), "runs/id/best.pt", "does not fit")


def test_truncated_checkpoint_names_the_file(ws):
    best = ws / "runs" / "id" / "best.pt"
    best.write_bytes(best.read_bytes()[:100])
    error_line(invoke(["recommend", "--run", "runs/id", "--user", "user00001"]), "best.pt", "unreadable checkpoint")


def test_ensemble_json_that_is_not_json_names_the_file(ws):
    (ws / "runs" / "ens" / "ensemble.json").write_text("[")
    error_line(invoke(["eval", "--run", "runs/ens"]), "ensemble.json", "not valid JSON")


def test_damaged_export_names_the_file(ws):
    vectors = ws / "export" / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-8])
    error_line(invoke(["recommend", "--export", "export", "--history", "syn00001"]), "vectors.npy", "damaged")


def test_store_that_is_not_hdf5_names_the_file(ws):
    (ws / "stores" / "text.h5").write_bytes(b"garbage" * 10)
    error_line(invoke(["train", "--item-tower", "text", "--name", "t2", *TRAIN]), "stores/text.h5", "not a readable HDF5 store")
    assert not (ws / "runs" / "t2").exists()


# -- wrong options ---------------------------------------------------------------------------------
def test_resume_refuses_options_it_would_ignore(ws):
    before = snapshot(ws)
    line = error_line(invoke(["train", "--resume", "--run", "runs/id", "--lr", "0.5", "--hidden", "8"]), "--lr", "--hidden", "would be ignored")
    assert "--epochs" in line
    assert snapshot(ws) == before


def test_a_run_that_cannot_start_leaves_nothing_behind(ws):
    (ws / "stores" / "text.h5").unlink()
    error_line(invoke(["train", "--item-tower", "text", "--name", "nostore", *TRAIN]), "stores/text.h5", "no such store")
    assert not (ws / "runs" / "nostore").exists()
    ok(["train", "--item-tower", "id", "--name", "nostore", *TRAIN])  # the name is free


def test_k_beyond_the_catalog_is_capped_and_said(ws):
    out = ok(["eval", "--run", "runs/id", "--k", "500", "--bootstrap", "0"]).output
    assert "capped at 80" in out
    assert json.loads((ws / "runs" / "id" / "results.json").read_text())["ks"] == [80]
    out = ok(["recommend", "--run", "runs/id", "--user", "user00001", "--k", "500", "--format", "csv"]).output
    assert "capped at 80" in out and len([line for line in out.splitlines() if line.startswith("user00001,")]) == 80


# -- interruptions: partial artifacts ----------------------------------------------------------
def test_stale_partials_of_killed_commands_are_removed_by_the_next_success(ws):
    dead = 2 ** 22 + 12345  # above Linux's default pid_max: no such process
    stale = [ws / f".data.partial-{dead}-abcd", ws / f".export.partial-{dead}-abcd"]
    for p in stale:
        p.mkdir()
        (p / "items.jsonl").write_text("half")
    live = ws / f".data.partial-{os.getpid()}-live"  # a running writer's partial stays
    live.mkdir()
    ok(["data", "synth", "--out", "data", "--items", "80", "--users", "60", "--force"])
    ok(["export", "--run", "runs/id", "--out", "export", "--force"])
    assert not any(p.exists() for p in stale) and live.exists()


def test_killed_import_leaves_no_dataset_and_the_rerun_succeeds(ws):
    proc = recx_process(["data", "synth", "--out", "fresh", "--items", "3000", "--users", "200", "--image-size", "64"], ws)
    deadline = time.time() + 60
    while not list(ws.glob(".fresh.partial-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (ws / "fresh").exists()
    ok(["data", "synth", "--out", "fresh", "--items", "60", "--users", "30"])
    assert (ws / "fresh" / "dataset.json").exists() and not list(ws.glob(".fresh.partial-*"))


# -- a full disk -----------------------------------------------------------------------------------
def test_full_disk_during_export_is_one_line_and_leaves_nothing(ws, small_disk):
    small_disk = small_disk("24k")  # the export takes about 60 KiB
    error_line(invoke(["export", "--run", "runs/id", "--out", small_disk / "exp"]), small_disk / "exp", "no space left on device")
    assert list(small_disk.iterdir()) == []


def test_full_disk_during_synth_names_the_target(ws, small_disk):
    small_disk = small_disk("256k")
    error_line(invoke(["data", "synth", "--out", small_disk / "d", "--items", "400", "--users", "200"]), small_disk / "d", "no space left on device")
    assert list(small_disk.iterdir()) == []


def test_full_disk_during_featurize_names_the_store(ws, small_disk, tiny_bert):
    small_disk = small_disk("8k")  # the store takes about 20 KiB
    error_line(invoke(["featurize", "--model", tiny_bert, "--out", small_disk / "t.h5", "--quiet", "--store-dtype", "float32"]),
               small_disk / "t.h5", "no space left on device")
    assert not (small_disk / "t.h5").exists()


def test_full_disk_while_training_keeps_the_last_checkpoint(ws, small_disk):
    small_disk = small_disk("256k")
    runs = small_disk / "runs"
    toml = (ws / "recx.toml").read_text().replace('runs = "runs"', f'runs = "{runs}"')
    (ws / "recx.toml").write_text(toml)
    # a 256 KiB disk holds a few checkpoints of this model, not 200 epochs' worth of best.pt + last.pt + curve
    result = invoke(["train", "--item-tower", "id", "--name", "big", "--epochs", "200", "--patience", "200",
                     "--hidden", "64", "--max-len", "8", "--quiet"])
    error_line(result, small_disk, "no space left on device")
    run = runs / "big"
    if run.exists():  # it failed after an epoch: what it had is intact and resumable
        assert not list(run.glob(".*partial*"))


# -- divergence and unexpected errors ---------------------------------------------------------------
def test_diverging_run_names_the_epoch_and_what_to_try(ws, monkeypatch):
    import recx.trainer.loop as loop

    real = loop.TrainStep.forward
    monkeypatch.setattr(loop.TrainStep, "forward", lambda self, batch, amp: real(self, batch, amp) * float("nan"))
    line = error_line(invoke(["train", "--item-tower", "id", "--name", "nan", *TRAIN]), "runs/nan", "diverged in epoch 0")
    assert "--lr" in line and "--precision fp32" in line


def test_unexpected_exception_is_one_line_with_a_log(ws, monkeypatch, tmp_path):
    import recx.evalrun.compare as compare

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(compare, "evaluate_models", boom)
    line = error_line(invoke(["eval", "--run", "runs/id"]), "unexpected ZeroDivisionError: a bug", "RECX_DEBUG=1")
    log = Path(line.split("full traceback in ")[1].split(";")[0])
    assert log.parent == tmp_path / "logs" and "Traceback" in log.read_text() and "ZeroDivisionError" in log.read_text()
    monkeypatch.setenv("RECX_DEBUG", "1")
    assert isinstance(invoke(["eval", "--run", "runs/id"]).exception, ZeroDivisionError)


# -- imports: exact duplicates ---------------------------------------------------------------------
def test_exact_duplicate_rows_are_dropped_and_counted(ws):
    rows = [f"u{u},i{i},{100 * u + i}\n" for u in range(4) for i in range(5)]
    (ws / "dups.csv").write_text("user_id,item_id,timestamp\n" + "".join(rows + rows[:3]))
    out = ok(["data", "import", "csv", "dups.csv", "--out", "dd"]).output
    assert "exact duplicate (same user, item, time)" in out
    meta = json.loads((ws / "dd" / "dataset.json").read_text())
    assert meta["counts"]["interactions"] == 20 and meta["import"]["rows"]["filtered: exact duplicate (same user, item, time)"] == 3
    with np.load(ws / "dd" / "sequences.npz") as z:
        offsets, items = z["offsets"], z["items"]
    assert all(len(set(items[a:b])) == b - a for a, b in zip(offsets[:-1], offsets[1:]))
    ok(["data", "import", "csv", "dups.csv", "--out", "dd-all", "--dedup", "none"])
    assert json.loads((ws / "dd-all" / "dataset.json").read_text())["counts"]["interactions"] == 23
