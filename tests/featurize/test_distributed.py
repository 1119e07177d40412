import os
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from recx.featurize.runner import run
from recx.featurize.store import open_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes_equal_single_process(tiny_bert, dataset_factory, texts_factory, tmp_path):
    ds = dataset_factory(texts_factory(37, seed=7))
    common = ["--batch-size", "3", "--chunk-rows", "10", "--quiet", "--precision", "fp32"]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", RECX_DEBUG="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "recx.cli", "featurize", "--model", str(tiny_bert),
           "--dataset", str(ds.path), "--out", str(tmp_path / "multi.h5"), *common]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1  # only rank 0 reports

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same kernels as each torchrun worker
    try:
        single = run(ds.path, model=str(tiny_bert), out=tmp_path / "single.h5", batch_size=3, chunk_rows=10,
                     compute_dtype="float32", progress=False)
    finally:
        torch.set_num_threads(threads)
    a, b = open_store(single), open_store(tmp_path / "multi.h5")
    np.testing.assert_array_equal(a.present, b.present)
    with h5py.File(single) as fa, h5py.File(tmp_path / "multi.h5") as fb:
        assert fa["embeddings"][...].tobytes() == fb["embeddings"][...].tobytes()
    assert a.attrs["catalog_fingerprint"] == b.attrs["catalog_fingerprint"]
