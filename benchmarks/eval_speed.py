"""How fast is `recx eval`?  Two measurements, results printed as markdown + JSON.

(a) ``scaling``: synthetic clustered embeddings (default 1M items x 64 dims, 10k users).
    Exact top-10 by FAISS ``IndexFlatIP`` and by chunked torch matmul, the full exact
    evaluation (target ranks over the whole catalog + metrics), and approximate IVF / HNSW
    indexes (build time, search time, recall@10 against the exact top-10).  Each method runs
    in its own subprocess so its peak RSS (``ru_maxrss`` minus the RSS after generating the
    data) is its own.

(b) ``recbole``: all 8,442 amazon-scientific test users, full catalog (4,385 items), a freshly
    initialised SASRec (hidden 64, 2 layers, 2 heads, inner 256, max length 50) on both sides.
    RecBole 1.2.1 (own venv, see _recbole_env.py): ``Trainer.evaluate`` over its
    ``FullSortEvalDataLoader`` (batch collation, ``full_sort_predict``, top-K, metrics).
    recx: encode every test history + ``item_table()`` + ``evaluate_arrays`` (exact ranks +
    HR/NDCG@10 + MRR); ``SequentialRecommender.user_vectors`` sorts histories by length and
    trims each batch to its longest history.  Data loading is timed separately on both sides and
    not included in the ratio.

Usage::

    python benchmarks/eval_speed.py scaling [--items 1000000 --users 10000 --dim 64]
    python benchmarks/eval_speed.py recbole [--repeats 3]
    python benchmarks/eval_speed.py all --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


# -- (a) scaling ---------------------------------------------------------------------------------
def synthetic(items: int, users: int, dim: int, noise: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered embeddings (1,000 Gaussian clusters with N(0, 1) centres plus N(0, noise^2)
    per dimension; trained item tables are far from isotropic, but not perfectly clustered
    either): item_table [N+1, D] (row 0 zeros), user_vectors [U, D], targets [U]."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((1000, dim)).astype(np.float32)
    table = np.empty((items + 1, dim), dtype=np.float32)
    table[0] = 0
    for lo in range(1, items + 1, 1 << 18):
        hi = min(items + 1, lo + (1 << 18))
        table[lo:hi] = centers[rng.integers(0, 1000, hi - lo)] + noise * rng.standard_normal((hi - lo, dim), dtype=np.float32)
    uv = centers[rng.integers(0, 1000, users)] + noise * rng.standard_normal((users, dim), dtype=np.float32)
    targets = rng.integers(1, items + 1, users)
    return table, uv.astype(np.float32), targets


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_method(method: str, items: int, users: int, dim: int, noise: float, out: str, params: dict) -> dict:
    """One method in this process (called in a subprocess by ``scaling``)."""
    import torch

    from recx.evaluate import retrieval as R
    from recx.evaluate.protocol import evaluate_arrays

    torch.set_num_threads(os.cpu_count() or 1)
    table, uv, targets = synthetic(items, users, dim, noise)
    base = _rss_mb()
    rec: dict = {"method": method, "params": params}
    saved: dict[str, np.ndarray] = {}
    if method == "faiss_flat":
        t0 = time.perf_counter()
        idx = R.build_index(table, "flat", device="cpu")
        rec["build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        saved["flat"] = R.topk_faiss(uv, table, 10, device="cpu", index=idx).items
        rec["search_s"] = time.perf_counter() - t0
    elif method == "matmul_topk":
        t0 = time.perf_counter()
        saved["matmul"] = R.topk_matmul(uv, table, 10).items
        rec["search_s"] = time.perf_counter() - t0
    elif method == "exact_eval":
        t0 = time.perf_counter()
        res = evaluate_arrays(uv, table, targets, None, ks=(10,), device="cpu")
        rec["search_s"] = time.perf_counter() - t0
        rec["metrics"] = res.metrics
    elif method in ("ivf", "hnsw"):
        build = {k: v for k, v in params.items() if k not in ("nprobe", "ef_search")}
        t0 = time.perf_counter()
        idx = R.build_index(table, method, device="cpu", **build)  # type: ignore[arg-type]
        rec["build_s"] = time.perf_counter() - t0
        rec["settings"] = []
        for value in params.get("nprobe", []) or params.get("ef_search", []):
            if method == "ivf":
                idx.index.nprobe = value
                label = f"nprobe={value}"
            else:
                idx.index.hnsw.efSearch = value
                label = f"efSearch={value}"
            t0 = time.perf_counter()
            saved[label] = R.topk_approx(uv, table, 10, idx).items
            rec["settings"].append({"label": label, "search_s": time.perf_counter() - t0})
    else:
        raise SystemExit(f"unknown method {method}")
    rec["peak_rss_over_data_mb"] = _peak_mb() - base
    rec["data_rss_mb"] = base
    np.savez(out, **saved)
    return rec


def scaling(items: int, users: int, dim: int, noise: float, nlist: int, hnsw_m: int, ef_construction: int,
            methods: Sequence[str] = ("faiss_flat", "matmul_topk", "exact_eval", "ivf", "hnsw")) -> dict:
    from recx.evaluate.retrieval import TopK, recall_vs_exact

    plan = [
        ("faiss_flat", {}),
        ("matmul_topk", {}),
        ("exact_eval", {}),
        ("ivf", {"nlist": nlist, "nprobe": [8, 32, 128]}),
        ("hnsw", {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": [32, 128, 512]}),
    ]
    plan = [(m, p) for m, p in plan if m in methods or m == "faiss_flat"]  # flat is the recall reference
    records, tops = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for method, params in plan:
            out = str(Path(tmp) / f"{method}.npz")
            cmd = [sys.executable, __file__, "_method", method, "--items", str(items), "--users", str(users),
                   "--dim", str(dim), "--noise", str(noise), "--out", out, "--params", json.dumps(params)]
            print(f"[scaling] {method} {params}", file=sys.stderr, flush=True)
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"{method} failed:\n{r.stderr[-3000:]}")
            rec = json.loads(r.stdout.strip().splitlines()[-1])
            with np.load(out) as z:
                for key in z.files:
                    tops[(method, key)] = z[key]
            records.append(rec)
    exact = tops[("faiss_flat", "flat")]
    ex = TopK(exact, np.zeros(exact.shape, np.float32))
    for rec in records:
        for s in rec.get("settings", []):
            a = tops[(rec["method"], s["label"])]
            s["recall@10"] = float(recall_vs_exact(TopK(a, np.zeros(a.shape, np.float32)), ex).mean())
    same = bool(np.array_equal(tops[("matmul_topk", "matmul")], exact)) if ("matmul_topk", "matmul") in tops else None
    return {"items": items, "users": users, "dim": dim, "noise": noise, "records": records, "matmul_equals_faiss_top10": same}


def scaling_markdown(s: dict) -> str:
    lines = [f"{s['items']:,} items x {s['dim']} dims (cluster noise {s['noise']}), {s['users']:,} users, top-10:", "",
             "| method | build (s) | search / eval (s) | peak RSS over data (MB) | recall@10 vs exact |",
             "|---|---|---|---|---|"]
    for rec in s["records"]:
        name = {"faiss_flat": "exact, FAISS IndexFlatIP", "matmul_topk": "exact, torch matmul top-K",
                "exact_eval": "exact full evaluation (ranks + HR/NDCG@10, MRR)"}.get(rec["method"])
        if name:
            build = f"{rec['build_s']:.2f}" if "build_s" in rec else "-"
            lines.append(f"| {name} | {build} | {rec['search_s']:.2f} | {rec['peak_rss_over_data_mb']:.0f} | 1 (exact) |")
        else:
            p = {k: v for k, v in rec["params"].items() if not isinstance(v, list)}
            for st in rec["settings"]:
                lines.append(f"| {rec['method'].upper()} {p} {st['label']} | {rec['build_s']:.2f} | {st['search_s']:.2f} | "
                             f"{rec['peak_rss_over_data_mb']:.0f} | {st['recall@10']:.4f} |")
    lines.append("")
    lines.append(f"matmul top-10 identical to FAISS flat top-10: {s['matmul_equals_faiss_top10']}")
    return "\n".join(lines)


# -- (b) recx vs RecBole ------------------------------------------------------------------------
def recx_eval_timing(data_dir: Path, repeats: int, threads: int) -> dict:
    import torch

    from recx.data.importers.unisrec import import_unisrec
    from recx.evaluate.protocol import evaluate_arrays
    from recx.trainer.config import TrainConfig
    from recx.trainer.registry import build_model

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ds = import_unisrec(data_dir, Path(tmp) / "scientific")
        histories, targets = ds.split("test")
        prepare = time.perf_counter() - t0
        torch.manual_seed(0)
        cfg = TrainConfig.from_options(hidden=64, layers=2, heads=2, max_len=50, item_tower="id", dropout=0.5)
        model = build_model(cfg, ds).eval()
        runs: dict[str, list[dict]] = {"bucketed": []}
        res = None
        for _ in range(repeats):
            for how in ("bucketed",):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    uv = model.user_vectors(histories, cfg.model.max_len, batch_size=1024).numpy()  # what recx.inference.export_embeddings does
                    table = model.item_table().detach().numpy()
                t1 = time.perf_counter()
                res = evaluate_arrays(uv, table, targets, histories, ks=(10,), device="cpu")
                t2 = time.perf_counter()
                runs[how].append({"encode_s": t1 - t0, "rank_metrics_s": t2 - t1, "total_s": t2 - t0, "metrics": res.metrics})
        return {
            "prepare_seconds": prepare, "runs": runs, "metrics": res.metrics if res else {},
            "users": len(targets), "items": ds.num_items,
            "parameters": sum(p.numel() for p in model.parameters()), "threads": torch.get_num_threads(),
        }


def recbole_timing(data_dir: Path, repeats: int, threads: int) -> dict:
    from _recbole_env import ensure_recbole_venv, recbole_config, recbole_dataset_dir, recbole_env

    py = ensure_recbole_venv()
    with tempfile.TemporaryDirectory() as tmp:
        data_path = recbole_dataset_dir(Path(tmp) / "data", source=data_dir)
        cfg = recbole_config(data_path, hidden_size=64, inner_size=256, n_layers=2, n_heads=2,
                             hidden_dropout_prob=0.5, attn_dropout_prob=0.5, threads=threads)
        r = subprocess.run([str(py), str(HERE / "_recbole_eval.py"), str(data_path), json.dumps(cfg), str(repeats)],
                           env=recbole_env(), capture_output=True, text=True, cwd=tmp)
        if r.returncode != 0:
            raise SystemExit(f"RecBole evaluation failed:\n{r.stderr[-3000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])


def recbole_comparison(repeats: int, threads: int) -> dict:
    from _recbole_env import shared_data_dir

    data_dir = shared_data_dir() / "amazon-scientific"
    if not data_dir.is_dir():
        raise SystemExit(f"{data_dir}: missing (set RECX_SHARED_DATA)")
    rb = recbole_timing(data_dir, repeats, threads)
    rx = recx_eval_timing(data_dir, repeats, threads)
    out: dict = {"recbole": rb, "recx": rx}
    for how, runs in rx["runs"].items():
        out[f"ratio_best_{how}"] = min(rb["evaluate_seconds"]) / min(r["total_s"] for r in runs)
        out[f"ratio_median_{how}"] = statistics.median(rb["evaluate_seconds"]) / statistics.median(r["total_s"] for r in runs)
    return out


def recbole_markdown(c: dict) -> str:
    rb, rx = c["recbole"], c["recx"]
    fmt = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    lines = [
        f"{rx['users']:,} test users x {rx['items']:,} items, SASRec 64/2 layers/max len 50, freshly initialised, {rx['threads']} threads",
        "",
        "| | data loading (s, not timed below) | evaluation runs (s) | best (s) | RecBole / recx (best, median) |",
        "|---|---|---|---|---|",
        f"| RecBole 1.2.1 `Trainer.evaluate` (FullSortEvalDataLoader) | {rb['prepare_seconds']:.2f} | {fmt(rb['evaluate_seconds'])} | {min(rb['evaluate_seconds']):.2f} | |",
    ]
    labels = {"bucketed": "histories sorted by length, batches trimmed (`SequentialRecommender.user_vectors`)"}
    for how, runs in rx["runs"].items():
        lines.append(f"| recx encode + `evaluate_arrays`, {labels[how]} | {rx['prepare_seconds']:.2f} | {fmt([r['total_s'] for r in runs])} | "
                     f"{min(r['total_s'] for r in runs):.2f} | {c[f'ratio_best_{how}']:.1f}x, {c[f'ratio_median_{how}']:.1f}x |")
        lines.append(f"| ... of which encode users / ranks + metrics | | {fmt([r['encode_s'] for r in runs])} / {fmt([r['rank_metrics_s'] for r in runs])} | | |")
    lines += ["", f"parameters: RecBole {rb['parameters']:,}, recx {rx['parameters']:,}",
              f"metrics (untrained models, sanity only): RecBole {rb['metrics']}, recx {rx['metrics']}"]
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return f"{cpu}, {os.cpu_count()} cores, load average {load[0]:.2f} at start"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["scaling", "recbole", "all", "_method"])
    ap.add_argument("method", nargs="?")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--noise", type=float, default=1.0, help="per-dimension noise around the 1,000 cluster centres")
    ap.add_argument("--methods", default="faiss_flat,matmul_topk,exact_eval,ivf,hnsw")
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--hnsw-m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--out")
    ap.add_argument("--params", default="{}")
    a = ap.parse_args()
    import recx  # noqa: F401  (import hook before anything imports torchvision)

    if a.what == "_method":
        print(json.dumps(run_method(a.method, a.items, a.users, a.dim, a.noise, a.out, json.loads(a.params))))
        return
    out: dict = {"machine": machine(), "command": " ".join(sys.argv)}
    if a.what in ("scaling", "all"):
        out["scaling"] = scaling(a.items, a.users, a.dim, a.noise, a.nlist, a.hnsw_m, a.ef_construction, a.methods.split(","))
        print(scaling_markdown(out["scaling"]), "\n")
    if a.what in ("recbole", "all"):
        out["recbole"] = recbole_comparison(a.repeats, a.threads)
        print(recbole_markdown(out["recbole"]), "\n")
    print(f"machine: {out['machine']}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
