"""Reo-LM on amazon-scientific under a CPU wall-clock budget -> docs/reolm.md.

Rows (all text only, MiniLM-L6 backbone, full fine-tuning, bf16 autocast where native):
  1. reo-lm from scratch: `recx train --model reo-lm` epoch by epoch (resume) until the next
     epoch would pass --budget-min of wall clock (training + validation);
  2. if --pretrain-min > 0: `recx pretrain` on amazon-office for that long, then the same
     fine-tuning from the checkpoint (`--init`) under --finetune-min.
Each run is ranked by `recx eval` (full catalog, history kept, pessimistic ties).  It also
measures MiniLM forward+backward tokens/s in fp32 and under bf16 autocast at the batch shapes
used.  Finished steps are reused (rerunnable).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm.py --data ../shared/data --work /tmp/recx-reolm --out docs/reolm.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recx, not an installed one
SETTINGS = dict(model="reo-lm", lm="all-MiniLM-L6-v2", reo_image="none", item_tokens=16, user_tokens=48, max_len=3,
                batch_size=32, lr=1e-3, encoder_lr=1e-4, temperature=0.05, weight_decay=0.0, eval_batch_size=1024, patience=3, epochs=50)
SASREC_ID = {"hr@10": 0.1021, "ndcg@10": 0.0553, "mrr": 0.0472}  # docs/results.md, SASRec ID debiased_ce
TARGET_NDCG = 0.075


def recx(*args: str) -> None:
    subprocess.run([sys.executable, "-c", "from recx.cli import main; main()", *args], check=True, cwd=ROOT)


def import_data(data: Path, work: Path) -> dict[str, Path]:
    out = {}
    for name, fmt, src in (("amazon-scientific", "unisrec", "amazon-scientific"), ("amazon-office", "rechorus", "amazon-office")):
        dst = work / "data" / name
        if not (dst / "dataset.json").is_file():
            recx("data", "import", fmt, str(data / src), "-o", str(dst), "--workspace", str(work / f"ws-{name}"))
        out[name] = dst
    return out


def measure_speed(shapes: list[tuple[int, int]], reps: int = 3) -> list[dict]:
    """MiniLM forward+backward tokens/s, fp32 and bf16 autocast, best of ``reps`` after a warm-up."""
    import torch

    from recx.trainer.reolm.backbone import load_backbone, locate_backbone

    model = load_backbone(locate_backbone("all-MiniLM-L6-v2"))
    rows = []
    for b, t in shapes:
        ids = torch.randint(1000, 20000, (b, t))
        mask = torch.ones(b, t, dtype=torch.long)
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            times = []
            for _ in range(reps + 1):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                    out = model(input_ids=ids, attention_mask=mask).last_hidden_state
                out.float().mean().backward()
                model.zero_grad()
                times.append(time.perf_counter() - t0)
            best = min(times[1:])
            rows.append({"batch": b, "tokens": t, "dtype": name, "seconds": best, "tokens_per_s": b * t / best})
            print(rows[-1], flush=True)
    return rows


def budgeted_fit(cfg, run_dir: Path, budget_s: float) -> dict:
    """Train epoch by epoch (exact resume between them) while the next epoch fits the budget."""
    from recx.trainer import fit
    from recx.trainer.checkpoint import read_metrics

    t0 = time.perf_counter()
    per_epoch = 0.0
    resume = (run_dir / "last.pt").is_file()
    stopped_by = "budget"
    while True:
        rows = read_metrics(run_dir) if run_dir.is_dir() else []
        spent = time.perf_counter() - t0
        if rows and time.perf_counter() - t0 + per_epoch > budget_s:
            break
        if rows and len(rows) >= cfg.epochs:
            stopped_by = "epochs"
            break
        e0 = time.perf_counter()
        fit(cfg, run_dir=run_dir, resume=resume, progress=False, max_epochs_this_call=1)
        resume = True
        per_epoch = max(per_epoch, time.perf_counter() - e0)
        new = read_metrics(run_dir)
        if len(new) == len(rows):  # early stopping ended the run
            stopped_by = "early stopping"
            break
        print(f"{run_dir.name}: epoch {new[-1]['epoch']} valid ndcg@10 {new[-1]['valid']['ndcg@10']:.4f} "
              f"({new[-1]['seconds']:.0f}s train, {time.perf_counter() - e0:.0f}s with validation; {spent + time.perf_counter() - e0:.0f}s spent)", flush=True)
    return {"wall_s": time.perf_counter() - t0, "stopped_by": stopped_by}


def evaluate(run_dir: Path) -> dict:
    res = run_dir / "results.json"
    if not res.is_file():
        t0 = time.perf_counter()
        recx("eval", "--run", str(run_dir), "--k", "10", "--no-baselines")
        print(f"eval {run_dir.name}: {time.perf_counter() - t0:.0f}s", flush=True)
    return json.loads(res.read_text())


def metrics_of(record: dict) -> dict:
    return {**record["metrics"], "ci": (record.get("ci95") or {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/recx-reolm"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "reolm.md")
    ap.add_argument("--budget-min", type=float, default=35.0, help="wall clock of the from-scratch fine-tuning (train + validation)")
    ap.add_argument("--pretrain-min", type=float, default=0.0, help="wall clock of pre-training on amazon-office (0: skip)")
    ap.add_argument("--finetune-min", type=float, default=20.0, help="wall clock of the fine-tuning after pre-training")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from recx.trainer import TrainConfig

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data = import_data(args.data, work)
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    save = lambda: state_path.write_text(json.dumps(state, indent=2))
    if "speed" not in state:
        state["speed"] = measure_speed([(32, 48), (96, 16)])
        save()

    sci = data["amazon-scientific"]
    rows = []
    cfg = TrainConfig(dataset=str(sci), runs_dir=str(work / "runs"), name="scratch", **SETTINGS)
    run = work / "runs" / "scratch"
    if "scratch" not in state:
        state["scratch"] = budgeted_fit(cfg, run, args.budget_min * 60)
        save()
    rows.append(("reo-lm from scratch (text only)", run, state["scratch"], None))

    if args.pretrain_min > 0:
        from recx.trainer.reolm.pretrain import PretrainConfig, pretrain

        ckpt = work / "ckpt-office"
        if "pretrain" not in state:
            pcfg = PretrainConfig(domains=[str(data["amazon-office"])], lm=SETTINGS["lm"], item_tokens=SETTINGS["item_tokens"],
                                  user_tokens=SETTINGS["user_tokens"], max_len=SETTINGS["max_len"], batch_size=SETTINGS["batch_size"],
                                  lr=SETTINGS["encoder_lr"], temperature=SETTINGS["temperature"], epochs=1, steps_per_epoch=int(state.get("pretrain_steps", 0)))
            if not pcfg.steps_per_epoch:  # size the epoch from the from-scratch run's measured step time
                m = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
                step_s = m["seconds"] / (m["positions_per_s"] * m["seconds"] / SETTINGS["batch_size"])  # one target per row
                pcfg.steps_per_epoch = max(1, int(args.pretrain_min * 60 / (step_s * 1.3)))  # the MLM forward adds ~30%
            t0 = time.perf_counter()
            pretrain(pcfg, ckpt, progress=True)
            state["pretrain"] = {"wall_s": time.perf_counter() - t0, "steps": pcfg.steps_per_epoch, "metrics": json.loads((ckpt / "metrics.jsonl").read_text().splitlines()[-1])}
            save()
        cfg2 = TrainConfig(dataset=str(sci), runs_dir=str(work / "runs"), name="pretrained", init=str(ckpt), **SETTINGS)
        run2 = work / "runs" / "pretrained"
        if "pretrained" not in state:
            state["pretrained"] = budgeted_fit(cfg2, run2, args.finetune_min * 60)
            save()
        rows.append(("reo-lm pre-trained on amazon-office (text only)", run2, state["pretrained"], state["pretrain"]))

    results = [(label, run_dir, info, pre, metrics_of(evaluate(run_dir))) for label, run_dir, info, pre in rows]
    write_doc(args, state, results)


def write_doc(args, state: dict, results: list) -> None:
    from recx.trainer.checkpoint import read_metrics

    lines = ["# Reo-LM on amazon-scientific (CPU budget)", "",
             f"Generated by `benchmarks/reolm.py` on {platform.machine()} ({os.cpu_count()} cores, shared), "
             f"torch threads {os.environ.get('OMP_NUM_THREADS', '?')}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
             "Settings: " + ", ".join(f"{k}={v}" for k, v in SETTINGS.items()) + "; bf16 autocast (this CPU has AVX512-BF16).", "",
             "## Test metrics (`recx eval`: full catalog, history kept, pessimistic ties)", "",
             "| row | HR@10 | NDCG@10 [95% CI] | MRR | epochs | s/epoch (train) | tokens/s (train) | wall clock (train + valid) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, run_dir, info, pre, m in results:
        hist = read_metrics(run_dir)
        spe = sum(r["seconds"] for r in hist) / len(hist)
        tps = sum(r["tokens"] for r in hist) / sum(r["seconds"] for r in hist)
        ci = m["ci"].get("ndcg@10")
        ci_s = f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
        lines.append(f"| {label} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f}{ci_s} | {m['mrr']:.4f} | {len(hist)} | {spe:.0f} | {tps:.0f} | {info['wall_s'] / 60:.1f} min ({info['stopped_by']}) |")
    lines.append(f"| SASRec, ID, debiased_ce (docs/results.md) | {SASREC_ID['hr@10']:.4f} | {SASREC_ID['ndcg@10']:.4f} | {SASREC_ID['mrr']:.4f} | | | | |")
    open(args.out, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
