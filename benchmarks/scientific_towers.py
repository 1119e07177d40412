"""Test metrics of every sequence model and loss on amazon-scientific, one run per row.

Rows: SASRec / GRU4Rec / BERT4Rec over ID embeddings (full CE), SASRec ID with debiased CE,
and text-tower SASRec (all-MiniLM-L6-v2 store + linear adapter) under each of the four losses.
Every row is one `recx.trainer.fit` call with the config printed in the table; finished runs
are reused, so the script can be interrupted and rerun.  Metrics: test HR@10, NDCG@10, MRR,
full catalog, history kept (RecBole's convention), pessimistic ties.

    .venv/bin/python benchmarks/scientific_towers.py --data ../shared/data/amazon-scientific \
        --work /tmp/recx-sci --out docs/scientific.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROWS = [
    ("SASRec", "id", "debiased_ce", {}),
    ("SASRec", "text", "debiased_ce", {}),
    ("SASRec", "id", "full_ce", {}),
    ("GRU4Rec", "id", "full_ce", {"model": "gru4rec", "layers": 1, "dropout": 0.3}),
    ("BERT4Rec", "id", "full_ce", {"model": "bert4rec", "dropout": 0.2, "patience": 20}),  # masked training learns slowly
    ("SASRec", "text", "bce", {}),
    ("SASRec", "text", "sampled_softmax", {}),
    ("SASRec", "text", "full_ce", {}),
]


def write_markdown(args: argparse.Namespace, records: list[dict]) -> None:
    import torch

    lines = [
        "# amazon-scientific: sequence models, towers and losses",
        "",
        f"Command: `.venv/bin/python benchmarks/scientific_towers.py --epochs {args.epochs} --patience {args.patience}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} when written "
        f"(train seconds are wall time on a shared machine); torch {torch.__version__}.  ",
        "Protocol: leave-one-out test split (8,442 users), full catalog (4,385 items), history kept, pessimistic ties; "
        "early stopping on valid NDCG@10; hidden 64, 2 blocks, 2 heads, max length 50, dropout 0.5 unless noted; "
        "text tower = all-MiniLM-L6-v2 mean-pooled store + linear adapter.",
        "",
        "| model | tower | loss | other settings | HR@10 | NDCG@10 | MRR | best epoch | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        ci = r["ci95"].get("ndcg@10")
        ndcg = f"{r['test']['ndcg@10']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")
        other = ", ".join(f"{k}={v}" for k, v in r["extra"].items() if k != "model") or "-"
        lines.append(f"| {r['model']} | {r['tower']} | {r['loss']} | {other} | {r['test']['hr@10']:.4f} | {ndcg} | {r['test']['mrr']:.4f} | {r['best_epoch']} | {r['train_seconds']:.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-scientific")
    ap.add_argument("--work", type=Path, default=Path("/tmp/recx-sci"))
    ap.add_argument("--out", type=Path, default=Path("docs/scientific.md"))
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--only", nargs="*", help="row keys (model-tower-loss) to run")
    args = ap.parse_args()

    import recx  # noqa: F401
    from recx.data.importers.unisrec import import_unisrec
    from recx.evalrun import run as evaluate
    from recx.featurize import run as featurize
    from recx.trainer import TrainConfig, fit

    work = args.work.resolve()
    data_dir = work / "data"
    if not (data_dir / "dataset.json").is_file():
        import_unisrec(args.data, data_dir)
    store = work / "stores" / "minilm.h5"
    t = time.perf_counter()
    if not store.is_file():
        featurize(data_dir, model="minilm", out=store)
    print(f"store {store} ({time.perf_counter() - t:.0f}s)")

    records = []
    for model_name, tower, loss, extra in ROWS:
        key = f"{model_name.lower()}-{tower}-{loss}"
        if args.only and key not in args.only:
            continue
        options = dict(
            dataset=str(data_dir), item_tower=tower, loss=loss, stores={"text": str(store)} if tower == "text" else {},
            epochs=args.epochs, patience=args.patience, name=key, runs_dir=str(work / "runs"),
        )
        cfg = TrainConfig.from_options(**{**options, **extra})
        run_dir = work / "runs" / key
        t = time.perf_counter()
        if (run_dir / "config.json").is_file():  # finished or interrupted: continue it
            result = fit(cfg, run_dir=run_dir, resume=True, progress=False)
        else:
            result = fit(cfg, progress=False)
        wall = time.perf_counter() - t
        rec = evaluate(run_dir, split="test", ks=(10,), n_boot=1000)
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        records.append({
            "row": key, "model": model_name, "tower": tower, "loss": loss, "config": cfg.to_dict(), "extra": extra,
            "best_epoch": result.best_epoch, "epochs": len(rows), "train_seconds": sum(r["seconds"] for r in rows),
            "wall_seconds_this_call": wall, "test": rec["metrics"], "ci95": rec.get("ci95", {}),
        })
        print(key, rec["metrics"], flush=True)
        (work / "scientific.json").write_text(json.dumps(records, indent=2))
        write_markdown(args, records)

    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
