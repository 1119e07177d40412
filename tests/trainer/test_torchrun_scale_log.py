"""The multi-process command users run when one process is not enough, end to end on the
synthetic log that benchmarks/scale.py sizes machines with (at a small size): import the CSV,
`torchrun --nproc_per_node 3 recx train`, stop after one epoch, resume; the resumed run ends
with the weights (to gloo's summation order) and metrics of an uninterrupted three-rank run,
and `recx eval` ranks its test users."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from recx.data.importers.csv_generic import import_csv
from recx.data.scale_synth import ITEMS_FILE, INTERACTIONS_FILE, write_csv_log

RANKS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _new_run(dataset, runs, name: str, epochs: int) -> list[str]:
    return ["--dataset", str(dataset), "--runs-dir", str(runs), "--name", name, "--epochs", str(epochs), "--hidden", "16", "--layers", "1",
            "--heads", "2", "--max-len", "20", "--batch-size", "64", "--precision", "fp32", "--history-term", "off"]


def _torchrun_train(*args: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(RANKS), "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "recx.cli", "train", "-q", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _metrics(run) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "positions_per_s")} for r in rows]


@pytest.mark.slow
def test_three_ranks_resume_on_the_scale_log(tmp_path):
    counts = write_csv_log(tmp_path / "csv", 3_000, seed=1)
    ds = import_csv(tmp_path / "csv" / INTERACTIONS_FILE, tmp_path / "data", items=tmp_path / "csv" / ITEMS_FILE)
    assert ds.num_users == counts["users"] and ds.num_items <= counts["items"] and all(ds.texts[1:])
    runs = tmp_path / "runs"
    _torchrun_train(*_new_run(ds.path, runs, "straight", 2))
    _torchrun_train(*_new_run(ds.path, runs, "cut", 1))
    # torchrun reads "--run" as its own --run-path: the folder is named with --run-dir
    _torchrun_train("--resume", "--run-dir", str(runs / "cut"), "--epochs", "2")
    a, b = (torch.load(runs / name / "last.pt", weights_only=False) for name in ("straight", "cut"))
    assert a["world_size"] == b["world_size"] == RANKS and a["epoch"] == b["epoch"] == 1
    # bit-equal with 2 ranks (tests/trainer/test_distributed_resume.py); gloo sums 3 ranks' gradients
    # in an order that can differ between runs, which moves weights by ~1e-9
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-6)
    assert _metrics(runs / "straight") == _metrics(runs / "cut")

    from recx.cli import app
    from typer.testing import CliRunner

    out = CliRunner().invoke(app, ["eval", "--run", str(runs / "cut"), "--k", "10", "--no-baselines"])
    assert out.exit_code == 0, out.output
    results = json.loads((runs / "cut" / "results.json").read_text())
    assert results["counts"] == {"users": ds.num_users, "items": ds.num_items} and results["metrics"]["ndcg@10"] > 0
