"""How fast does a trained run recommend?  Users/s for batch top-K through ``Recommender``.

Every figure is end to end for a batch of users: encode the histories with the model's user
encoder, then top-K over the whole catalog (exact FAISS ``IndexFlatIP``, exact torch matmul,
or an approximate IVF / HNSW index), the path ``recx recommend`` takes.  Approximate lists are
scored by recall@K against the exact lists of the same users.

(a) ``scientific``: amazon-scientific (8,442 users, 4,385 items) imported from
    ../shared/data, a quick SASRec ID run (``--epochs`` epochs, debiased CE), every user's
    whole sequence as the history; from the run (eager PyTorch) and from its export
    (TorchScript encoder + the saved FAISS index).
(b) ``synthetic``: the 1M-item clustered catalog of benchmarks/eval_speed.py (64 dims) as
    the ID table of a freshly initialised SASRec (hidden 64, 2 layers, max length 50);
    histories are 2-20 items drawn from one cluster each, so users point at clusters as
    trained users do.

Usage::

    python benchmarks/recommend_speed.py scientific [--epochs 3]
    python benchmarks/recommend_speed.py synthetic [--items 1000000 --users 2000] [--hnsw]
    python benchmarks/recommend_speed.py all --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
DATA = Path(os.environ.get("RECX_SHARED_DATA", HERE.parent.parent / "shared" / "data"))


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass


def machine(threads: int) -> dict:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "")
    except OSError:
        pass
    import torch

    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def measure(rec, histories, k: int, label: str, exact_items: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    """Encode + top-k for all ``histories`` through ``rec``; users/s end to end."""
    from recx.evaluate.retrieval import TopK, recall_vs_exact

    rec.topk(rec.encoder.encode(histories[:2]), k)  # warm up; builds the cached flat index
    t0 = time.perf_counter()
    users = rec.encoder.encode(histories)
    t1 = time.perf_counter()
    top = rec.topk(users, k)
    t2 = time.perf_counter()
    row = {"method": label, "users": len(histories), "encode_s": t1 - t0, "topk_s": t2 - t1,
           "users_per_s": len(histories) / (t2 - t0), "topk_users_per_s": len(histories) / (t2 - t1)}
    if exact_items is not None:
        z = np.zeros(exact_items.shape, np.float32)
        row[f"recall@{k}"] = float(recall_vs_exact(TopK(top.items, z), TopK(exact_items, z)).mean())
    print(f"[recommend] {row}", file=sys.stderr, flush=True)
    return row, top.items


def retrieval_rows(rec_for, histories, k: int, approx: list[tuple[str, str, dict]]) -> list[dict]:
    """Exact FAISS and matmul, then each approximate index; ``rec_for(kind, params, backend)``."""
    from recx.evaluate import retrieval as R

    rows = []
    row, exact = measure(rec_for("flat", {}, "faiss"), histories, k, "exact, FAISS IndexFlatIP")
    rows.append(row)
    row, mm = measure(rec_for("flat", {}, "torch"), histories, k, "exact, torch matmul")
    row["same_lists_as_faiss"] = bool(np.array_equal(mm, exact))
    rows.append(row)
    for label, kind, params in approx:
        t0 = time.perf_counter()
        rec = rec_for(kind, params, "auto")
        build = time.perf_counter() - t0
        row, _ = measure(rec, histories, k, label, exact)
        row["build_s"] = build
        rows.append(row)
    assert R.faiss_available()
    return rows


# -- (a) amazon-scientific ----------------------------------------------------------------------
def scientific(epochs: int, threads: int, k: int, workdir: Path) -> dict:
    from recx.data.importers.unisrec import import_unisrec
    from recx.inference import Recommender, export_run
    from recx.inference.run import load_run
    from recx.trainer import TrainConfig, fit

    src = DATA / "amazon-scientific"
    if not src.is_dir():
        raise SystemExit(f"{src}: not found (set RECX_SHARED_DATA)")
    set_threads(threads)
    ds = import_unisrec(src, workdir / "scientific")
    t0 = time.perf_counter()
    run = fit(TrainConfig.from_options(dataset=str(ds.path), item_tower="id", model="sasrec", epochs=epochs, patience=epochs,
                          runs_dir=str(workdir / "runs"), name="sasrec-id"), progress=False).run_dir
    train_s = time.perf_counter() - t0
    loaded = load_run(run)
    histories = ds.sequences()  # what `recx recommend --user` encodes: the whole sequence

    from recx.evaluate import retrieval as R
    from recx.inference.catalog import Catalog

    catalog = Catalog.from_dataset(ds)

    def rec_for(kind: str, params: dict, backend: str):
        index = R.build_index(loaded.encoder.item_table(), kind, device="cpu", **params) if kind != "flat" else None
        return Recommender(loaded.encoder, catalog, index, ds, backend)  # type: ignore[arg-type]

    approx = [("IVF nlist=auto nprobe=8", "ivf", {"nprobe": 8}), ("HNSW M=32 efSearch=128", "hnsw", {})]
    rows = retrieval_rows(rec_for, histories, k, approx)
    _, exact = measure(rec_for("flat", {}, "faiss"), histories, k, "reference")
    t0 = time.perf_counter()
    manifest = export_run(run, workdir / "export", index="hnsw", k=k)
    export_s = time.perf_counter() - t0
    row, _ = measure(Recommender.from_export(workdir / "export"), histories, k, "export: TorchScript encoder + saved HNSW index", exact)
    rows.append(row)
    valid = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1]).get("valid", {})
    return {"dataset": "amazon-scientific", "users": len(histories), "items": ds.num_items, "k": k, "epochs": epochs,
            "train_s": train_s, "last_epoch_valid": valid,
            "export_s": export_s, "export_index_recall": manifest["index"].get(f"recall@{k}"),
            "encoder_check": manifest["user_encoder"]["check"], "rows": rows}


# -- (b) 1M-item synthetic catalog --------------------------------------------------------------
def cluster_of_items(items: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The cluster of every item of ``eval_speed.synthetic(items, ..., seed)``: replays its
    random draws in the same order.  Returns (cluster [N] of items 1..N, centres [1000, D])."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((1000, dim)).astype(np.float32)
    parts = []
    for lo in range(1, items + 1, 1 << 18):
        hi = min(items + 1, lo + (1 << 18))
        parts.append(rng.integers(0, 1000, hi - lo))
        rng.standard_normal((hi - lo, dim), dtype=np.float32)
    return np.concatenate(parts), centers


def synthetic_run(items: int, users: int, dim: int, noise: float, threads: int, k: int, hnsw: bool, nlist: int) -> dict:
    import torch

    from eval_speed import synthetic as synth_table
    from recx.evaluate import retrieval as R
    from recx.inference.catalog import Catalog
    from recx.inference.encoders import ModelUserEncoder
    from recx.inference.recommender import Recommender
    from recx.trainer.model import SequentialRecommender
    from recx.trainer.sequence.sasrec import SASRec
    from recx.trainer.towers import IdTower

    set_threads(threads)
    table, _, _ = synth_table(items, 0, dim, noise)
    assign, centers = cluster_of_items(items, dim)
    spread = float(np.linalg.norm(table[1:1001] - centers[assign[:1000]], axis=1).mean())
    assert abs(spread - noise * np.sqrt(dim)) < 0.2 * noise * np.sqrt(dim), "cluster assignment does not match the table"
    # each user: 2..20 items of one cluster
    by_cluster = np.argsort(assign, kind="stable") + 1
    starts = np.searchsorted(assign[by_cluster - 1], np.arange(1001))
    hr = np.random.default_rng(1)
    histories = []
    for _ in range(users):
        c = int(hr.integers(0, 1000))
        pool = by_cluster[starts[c] : starts[c + 1]]
        histories.append(hr.choice(pool, size=int(hr.integers(2, 21))).astype(np.int64))
    torch.manual_seed(0)
    tower = IdTower(items, dim)
    with torch.no_grad():
        tower.embedding.weight.copy_(torch.from_numpy(table))
    model = SequentialRecommender(tower, SASRec(dim, 2, 2, 0.5, 50)).eval()
    encoder = ModelUserEncoder(model, 50, 1024)
    catalog = Catalog([""] + [f"s{i}" for i in range(1, items + 1)], [None] * (items + 1), "synthetic", "synthetic-1M")

    def rec_for(kind: str, params: dict, backend: str):
        index = R.build_index(table, kind, device="cpu", **params) if kind != "flat" else None
        return Recommender(encoder, catalog, index, None, backend)  # type: ignore[arg-type]

    approx = [(f"IVF nlist={nlist} nprobe={p}", "ivf", {"nlist": nlist, "nprobe": p}) for p in (8, 32)]
    if hnsw:
        approx.append(("HNSW M=16 efConstruction=64 efSearch=128", "hnsw", {"hnsw_m": 16, "ef_construction": 64, "ef_search": 128}))
    rows = retrieval_rows(rec_for, histories, k, approx)
    return {"dataset": f"synthetic {items:,} items x {dim} (noise {noise})", "users": users, "items": items, "k": k, "rows": rows}


def markdown(res: dict) -> str:
    k = res["k"]
    lines = [f"{res['dataset']}: {res['users']:,} users, {res['items']:,} items, top-{k}", "",
             "| method | index build (s) | encode (s) | top-K (s) | users/s end to end | users/s top-K only | recall@K vs exact |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        recall = r.get(f"recall@{k}")
        rc = f"{recall:.4f}" if recall is not None else ("1 (exact" + (", same lists as FAISS" if r.get("same_lists_as_faiss") else "") + ")")
        b = f"{r['build_s']:.2f}" if "build_s" in r else "-"
        lines.append(f"| {r['method']} | {b} | {r['encode_s']:.2f} | {r['topk_s']:.2f} | {r['users_per_s']:,.0f} | {r['topk_users_per_s']:,.0f} | {rc} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["scientific", "synthetic", "all"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--hnsw", action="store_true", help="also HNSW on the synthetic catalog (build takes minutes)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    out: dict = {"machine": machine(a.threads), "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory() as tmp:
        if a.what in ("scientific", "all"):
            out["scientific"] = scientific(a.epochs, a.threads, a.k, Path(tmp))
            print(markdown(out["scientific"]) + "\n")
        if a.what in ("synthetic", "all"):
            out["synthetic"] = synthetic_run(a.items, a.users, a.dim, a.noise, a.threads, a.k, a.hnsw, a.nlist)
            print(markdown(out["synthetic"]) + "\n")
    print(json.dumps(out["machine"]))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
