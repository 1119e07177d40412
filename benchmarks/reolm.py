"""Reo-LM's recipe, change by change, on amazon-scientific -> docs/reolm.json and the generated
table at the top of docs/reolm.md.

Each row is one `recx train --model reo-lm` run in the workspace ``--work/ws`` (the row's name is
its run name), ranked by `recx eval --compare SASREC ROW` (full catalog, history kept,
pessimistic ties, bootstrap CIs, the paired test against SASRec ID trained in the same
workspace).  A row whose run exists continues it (`recx train --resume`): kill the script at
any time and run it again, each run resumes from its last finished validation interval.

Rows (ROWS below; ``--rows`` picks them, in order, each after the rows it builds on):
  old-recipe     recx's Reo-LM before this change: the joined text cut to 16 tokens, 8 items
                 in 128 tokens, in-batch debiased CE, constant learning rate
  attributes     + title / category / brand as key: value, 32 tokens each, a token type each
  window         + a window of 9 items (ROMA), its token budget derived from the items
  s1-catalog     + catalog-wide negatives (full softmax; the catalog table re-encoded without
                 gradient once per epoch, the step's targets with gradient), warmup 100 steps
                 then linear decay
  s2-frozen      + stage 2: s1-catalog's best weights, the item table frozen, the user side
                 trained on the full softmax over it
  s2-window      stage 2 over window's best weights (fresh in-batch negatives in stage 1,
                 instead of s1-catalog's table one epoch stale)
  prefix-rows    s1-catalog with every prefix of the last 50 items as a row and validation
                 every half epoch (ROMA's data volume: ~4x the steps of one row per user)

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/reolm.py --rows s1-catalog,s2-frozen --work /tmp/reo
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recx, not an installed one

COMMON = dict(model="reo-lm", reo_image="none", temperature=0.05, batch_size=32, lr=1e-3, encoder_lr=1e-4, weight_decay=0.0, patience=2)
OLD = dict(COMMON, item_text="text", item_tokens=16, user_items=0, max_len=8, user_tokens=128, loss="debiased_ce", epochs=4)
ATTRIBUTES = dict(OLD, item_text="attributes", attr_tokens=32, item_tokens=0)
WINDOW = dict(ATTRIBUTES, user_items=9, max_len=9, user_tokens=0)
S1 = dict(WINDOW, loss="full_ce", schedule="linear", warmup_steps=100)
ROWS: dict[str, dict] = {
    "old-recipe": OLD,
    "attributes": ATTRIBUTES,
    "window": WINDOW,
    "s1-catalog": S1,
    "s2-frozen": dict(S1, reo_stage=2, epochs=3, warm_start="runs/s1-catalog"),
    "s2-window": dict(S1, reo_stage=2, epochs=3, warm_start="runs/window"),
    "prefix-rows": dict(S1, prefix_rows=50, valid_per_epoch=2, epochs=2),
}
SASREC = "sasrec-id"  # `recx train` with its defaults: SASRec over an ID table, debiased CE


def recx(*args: str, cwd: Path, capture: bool = False) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-c", "from recx.cli import main; main()", *args], check=True, cwd=cwd, env=env,
                         capture_output=capture, text=True)
    return out.stdout if capture else ""


def flags(settings: dict) -> list[str]:
    out: list[str] = []
    for key, value in settings.items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def setup(data: Path, work: Path) -> Path:
    """The workspace over amazon-scientific (imported with its attributes) -> its folder."""
    ws = work / "ws"
    if not (ws / "recx.toml").is_file():
        ws.mkdir(parents=True, exist_ok=True)
        recx("data", "import", "unisrec", str(data / "amazon-scientific"), "-o", str(work / "sci"), "--workspace", str(ws), cwd=ws)
    return ws


def train(ws: Path, name: str, settings: dict, eval_only: bool = False) -> Path:
    """Train (or resume, or reuse) the run ``name``; returns its folder.  ``eval_only``: take the
    run as it stands (an unfinished run is ranked with its best checkpoint so far)."""
    run = ws / "runs" / name
    if (run / "finished.json").is_file() or (eval_only and (run / "best.pt").is_file()):
        return run
    # a resumed run keeps its own settings (recx refuses the flags it would ignore)
    args = ["--resume", "--run", str(run)] if (run / "last.pt").is_file() else [*flags(settings), "--name", name]
    t0 = time.perf_counter()
    recx("train", *args, "-q", cwd=ws)
    print(f"{name}: trained in {time.perf_counter() - t0:.0f}s", flush=True)
    return run


def compare(ws: Path, base: Path, run: Path) -> dict:
    """`recx eval --compare base run` (cached): its table, results.json and the paired test."""
    from recx.evaluate.stats import paired_test

    table, per_user = run / "compare-sasrec.txt", run / "compare-sasrec-per-user.csv"
    if not table.is_file():
        per_user.unlink(missing_ok=True)  # from a call that died before writing its table
        t0 = time.perf_counter()
        text = recx("eval", "--compare", str(base), str(run), "--k", "10", "--no-baselines", "--per-user", str(per_user), cwd=ws, capture=True)
        table.write_text("".join(line for line in text.splitlines(keepends=True) if not line.startswith("wrote ")))
        print(f"{run.name}: eval {time.perf_counter() - t0:.0f}s", flush=True)
    import numpy as np

    ndcg: dict[str, list[float]] = {}  # model name -> per-user NDCG@10, in the CSV's user order
    with per_user.open() as f:
        for row in csv.DictReader(f):
            ndcg.setdefault(row["model"], []).append(float(row["ndcg@10"]))
    a, b = (np.asarray(ndcg[p.name]) for p in (base, run))
    # the CLI's own test (same resamples and seed) on the CSV's 6-digit values
    paired = paired_test({"ndcg@10": a}, {"ndcg@10": b}, 1000, seed=42)["ndcg@10"]
    return {"table": table.read_text(), "results": json.loads((run / "results.json").read_text()), "paired_ndcg@10": paired}


def row_record(name: str, settings: dict, run: Path, cmp: dict) -> dict:
    from recx.trainer.checkpoint import read_metrics

    rows = read_metrics(run)
    rec = cmp["results"]
    m = rec["metrics"]
    ci = (rec.get("ci95") or {}).get("ndcg@10")
    train_s = sum(r["seconds"] for r in rows)
    return {
        "name": name, "settings": settings, "hr@10": m["hr@10"], "ndcg@10": m["ndcg@10"], "ndcg@10_ci95": ci, "mrr": m["mrr"],
        "p_vs_sasrec_id": cmp["paired_ndcg@10"]["p_permutation"], "diff_vs_sasrec_id": cmp["paired_ndcg@10"]["diff"],
        "train_seconds": train_s, "validations": len(rows), "finished": (run / "finished.json").is_file(), "best_epoch": max(rows, key=lambda r: r["valid"]["ndcg@10"])["epoch"],
        "seconds_per_interval": train_s / max(len(rows), 1),
        "tokens_per_s": sum(r.get("tokens", 0) for r in rows) / max(train_s, 1e-9),
        "valid_curve": [round(r["valid"]["ndcg@10"], 5) for r in rows],
    }


def bf16_peak() -> dict:
    """Best bf16 and fp32 matmul GFLOP/s of this CPU (2048^2 x 2048, a few repeats)."""
    import torch

    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        best = float("inf")
        for _ in range(4):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        out[name] = 2 * 2048**3 / best / 1e9
    return out


def write_docs(records: list[dict], sasrec: dict, peak: dict) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}"
    payload = {"command": " ".join(["benchmarks/reolm.py", *sys.argv[1:]]), "machine": machine, "matmul_gflops": peak,
               "sasrec_id": sasrec, "rows": records}
    (ROOT / "docs" / "reolm.json").write_text(json.dumps(payload, indent=2) + "\n")
    # MiniLM-L6: 11.2 M weights outside the embeddings; forward + backward ~ 6 FLOPs per weight and token
    flops_per_token = 6 * 11.2e6
    lines = ["<!-- generated by benchmarks/reolm.py: begin -->", "## The ROMA recipe, measured (docs/reolm.json)", "",
             f"Machine: {machine}; bf16 matmul peak {peak['bf16']:.0f} GFLOP/s, fp32 {peak['fp32']:.0f}. "
             f"SASRec ID in the same workspace: test NDCG@10 {sasrec['ndcg@10']:.4f}, HR@10 {sasrec['hr@10']:.4f}.", "",
             "| row | HR@10 | NDCG@10 [95% CI] | MRR | vs SASRec ID (p) | validations | train s | s / validation | tokens/s | share of bf16 peak |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        ci = r["ndcg@10_ci95"] or [float("nan")] * 2
        share = r["tokens_per_s"] * flops_per_token / (peak["bf16"] * 1e9)
        lines.append(f"| {r['name']} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] | {r['mrr']:.4f} | "
                     f"{r['diff_vs_sasrec_id']:+.4f} ({r['p_vs_sasrec_id']:.3g}) | {r['validations']} | {r['train_seconds']:.0f} | "
                     f"{r['seconds_per_interval']:.0f} | {r['tokens_per_s']:.0f} | {share:.1%} |")
    unfinished = [r["name"] for r in records if not r["finished"]]
    if unfinished:
        lines += ["", f"Not trained to the end (ranked with the best checkpoint so far, `--eval-only`): {', '.join(unfinished)}."]
    lines += ["", "Validation NDCG@10 per interval: " + "; ".join(f"{r['name']} {r['valid_curve']}" for r in records),
              "<!-- generated by benchmarks/reolm.py: end -->"]
    doc = ROOT / "docs" / "reolm.md"
    text = doc.read_text()
    begin, end = "<!-- generated by benchmarks/reolm.py: begin -->", "<!-- generated by benchmarks/reolm.py: end -->"
    if begin in text:
        text = text[: text.index(begin)] + "\n".join(lines) + text[text.index(end) + len(end):]
    else:
        head, _, rest = text.partition("\n\n")
        text = head + "\n\n" + "\n".join(lines) + "\n\n" + rest
    doc.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/recx-reolm"))
    ap.add_argument("--rows", default="s1-catalog,s2-frozen", help=f"comma-separated, from: {', '.join(ROWS)}")
    ap.add_argument("--eval-only", action="store_true", help="rank the runs as they stand (unfinished: their best checkpoint so far)")
    args = ap.parse_args()
    ws = setup(args.data, args.work)
    base = train(ws, SASREC, {})
    records = []
    for name in args.rows.split(","):
        run = train(ws, name, ROWS[name], args.eval_only)
        cmp = compare(ws, base, run)
        records.append(row_record(name, ROWS[name], run, cmp))
        print(cmp["table"], flush=True)
    base_res = json.loads((base / "results.json").read_text())["metrics"]
    write_docs(records, base_res, bf16_peak())


if __name__ == "__main__":
    main()
