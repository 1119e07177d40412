"""SASRec training, recx vs RecBole 1.2.1, side by side on amazon-scientific (UniSRec files).

Both sides train the same SASRec (ID embeddings, hidden 64, 2 layers, 2 heads, inner 256,
max length 50, dropout 0.5 on hidden states and attention, full-softmax cross entropy, Adam(W)
lr 1e-3 without weight decay), validate after every epoch on the full catalog (NDCG@10), stop
after 10 epochs without improvement, and are tested at their best validation epoch.

Protocol (identical on both sides): every one of the 4,385 items is ranked for every user;
only the padding index is excluded.  RecBole's ``FullSortEvalDataLoader`` does *not* mask a
user's history for sequential models (``history_index`` is ``None`` when ``MODEL_TYPE`` is
sequential; ``Trainer._full_sort_batch_eval`` then only sets ``scores[:, 0] = -inf``), so recx
is evaluated with ``exclude_history=False``.  RecBole's "mrr@10" is MRR truncated at 10
(0 beyond rank 10); recx reports both that (``mrr@10``) and the untruncated ``mrr``.

What differs by design: RecBole trains one row per prefix of the benchmark train file (34,101
rows, each padded to 50, loss on the last position only); recx trains one row per user (8,442
rows, length-bucketed batches, loss on every position of the sequence), which sees the same
(history, next item) pairs.

Timing (``time.perf_counter``, both sides the same threads): per-epoch training seconds,
per-epoch validation seconds, and time to best = seconds from the start of training (RecBole:
``Trainer.fit``; recx: ``recx.trainer.fit``, which also loads the dataset) to the end of the
best epoch's validation, i.e. every training epoch and every validation up to and including
the best one.  Data preparation is reported separately.

Batch sizes: 256 rows on each side by default.  RecBole's own default (2,048 prefixes, 17
updates per epoch) was still far from converged after 5 epochs here (valid NDCG@10 0.0234
against 0.0593 at batch 256, which peaks at epoch 7), so the default gives the peer its faster
setting; pass ``--recbole-batch-size 2048`` for RecBole's default.

Usage::

    python benchmarks/train_vs_recbole.py --epochs-cap 200 --json train_benchmark.json \\
        --markdown docs/train_benchmark.md
    python benchmarks/train_vs_recbole.py --quick      # 2 epochs each, smoke test

Run it alone on the machine: other work on the same cores shows up in every timing.
``--budget-s`` caps each side's training wall clock (a side stops after the first epoch whose
validation ends past it; the report says which side was stopped by what).  ``--parallel``
trains both sides at once so both see the same background load (they then also slow each
other down).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _recbole_env import ensure_recbole_venv, recbole_config, recbole_dataset_dir, recbole_env, shared_data_dir  # noqa: E402

HIDDEN, LAYERS, HEADS, INNER, MAX_LEN, DROPOUT, LR = 64, 2, 2, 256, 50, 0.5, 1e-3


# -- machine -------------------------------------------------------------------------------------
def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def matmul_peak(threads: int) -> dict[str, float]:
    """Measured GFLOP/s of torch.mm: fp32 at 1024^3 and 2048^3 (best of 5), bf16 at 1024^3 (best of 2)."""
    import torch

    torch.set_num_threads(threads)
    out: dict[str, float] = {}
    for name, n, dtype, reps in (("fp32_1024", 1024, torch.float32, 5), ("fp32_2048", 2048, torch.float32, 5), ("bf16_1024", 1024, torch.bfloat16, 2)):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t)
        out[name] = 2 * n**3 / best / 1e9
    return out


# -- FLOPs ---------------------------------------------------------------------------------------
def sasrec_forward_flops(positions: int, width: int, logit_rows: int, catalog: int) -> float:
    """Forward FLOPs of one SASRec step (multiply-add = 2), embedding gathers, norms and
    activations aside: per encoded position (real or padding) and layer the QKV, output and
    two FFN linears plus the attention scores and weighted sum over ``width`` keys; and the
    ``logit_rows x catalog x D`` logits of full softmax."""
    d, f = HIDDEN, INNER
    per_position_layer = 2 * (d * 3 * d + d * d + 2 * d * f) + 2 * 2 * width * d
    return positions * LAYERS * per_position_layer + 2.0 * logit_rows * catalog * d


def recx_epoch_flops(dataset_dir: Path, batch_size: int, seed: int) -> dict[str, float]:
    """fwd+bwd FLOPs (3x forward) of one recx epoch, from the actual batch shapes of epoch 0."""
    from recx.data.dataset import SequenceDataset
    from recx.trainer.data import SequenceBatches, causal_targets

    ds = SequenceDataset(dataset_dir)
    batches = SequenceBatches(ds.train_sequences(), MAX_LEN, batch_size, seed)
    flops, encoded, real = 0.0, 0, 0
    for b in batches.epoch(0):
        rows, width = b.inputs.shape
        p = int((causal_targets(b) > 0).sum())  # the positions model.training_batch keeps
        flops += 3 * sasrec_forward_flops(rows * width, width, p, ds.num_items)
        encoded, real = encoded + rows * width, real + p
    return {"flops": flops, "encoded_positions": encoded, "target_positions": real, "batches": batches.num_batches(), "rows": batches.num_rows}


def recbole_epoch_flops(rows: int, catalog_incl_padding: int) -> float:
    """RecBole SASRec: every row padded to 50 positions, logits only at the last one (N+1 items)."""
    return 3 * sasrec_forward_flops(rows * MAX_LEN, MAX_LEN, rows, catalog_incl_padding)


# -- RecBole -------------------------------------------------------------------------------------
def start_recbole(data: Path, work: Path, epochs: int, batch_size: int, threads: int, budget: float) -> subprocess.Popen:
    """Launch RecBole's training in its venv; ``finish_recbole`` collects the result."""
    python = ensure_recbole_venv()
    data_path = recbole_dataset_dir(work / "recbole", "Scientific", data)
    cfg = recbole_config(
        data_path,
        hidden_size=HIDDEN, inner_size=INNER, n_layers=LAYERS, n_heads=HEADS,
        hidden_dropout_prob=DROPOUT, attn_dropout_prob=DROPOUT, hidden_act="gelu",
        layer_norm_eps=1e-12, initializer_range=0.02,
        learning_rate=LR, train_batch_size=batch_size, eval_batch_size=4096,
        epochs=epochs, stopping_step=10, eval_step=1, weight_decay=0.0,
        threads=threads,
    )
    return subprocess.Popen([str(python), str(HERE / "_recbole_train.py"), str(data_path), json.dumps(cfg), str(budget)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=recbole_env(), cwd=work)


def finish_recbole(proc: subprocess.Popen, epochs: int) -> dict[str, Any]:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"RecBole run failed:\n{stderr[-4000:]}")
    out = json.loads(stdout.strip().splitlines()[-1])
    python = ensure_recbole_venv()
    out["version"] = subprocess.run([str(python), "-c", "import recbole; print(recbole.__version__)"],
                                    capture_output=True, text=True, env=recbole_env()).stdout.strip()
    rows = out["epochs"]
    best = next(r for r in rows if r["epoch"] == out["best_epoch"])
    out["summary"] = {
        "seconds_per_epoch": statistics.median(r["train_seconds"] for r in rows),
        "valid_seconds_per_epoch": statistics.median(r["valid_seconds"] for r in rows),
        "epochs_to_best": out["best_epoch"] + 1,
        "epochs_run": len(rows),
        "time_to_best": best["t_end"],
        "stopped_early": not out["budget_reached"] and len(rows) < epochs,
        "stopped_by": "early stopping" if not out["budget_reached"] and len(rows) < epochs else ("time budget" if out["budget_reached"] else "epoch cap"),
        "test": {"ndcg@10": out["test"]["ndcg@10"], "recall@10": out["test"]["hit@10"], "mrr@10": out["test"]["mrr@10"]},
    }
    return out


# -- recx ----------------------------------------------------------------------------------------
class BudgetReached(Exception):
    """Raised after an epoch's metrics are written once the time budget is spent."""


def run_recx(data: Path, work: Path, epochs: int, batch_size: int, threads: int, budget: float, seed: int | None = None) -> dict[str, Any]:
    """Train recx's SASRec (the side of this comparison) in ``work``; ``seed`` None: recx's default."""
    import torch

    torch.set_num_threads(threads)
    import recx
    import recx.trainer.engine as engine
    import recx.trainer.loop as loop
    from recx.data.importers.unisrec import import_unisrec
    from recx.evaluate.metrics import metrics_from_ranks, target_ranks
    from recx.trainer import TrainConfig, fit, load_trained

    t = time.perf_counter()
    dataset_dir = work / "recx-data"
    import_unisrec(data, dataset_dir)
    import_seconds = time.perf_counter() - t

    # time each validation inside fit (benchmark-side instrumentation; recx is unchanged)
    marks: list[tuple[float, float]] = []  # (seconds of this validation, perf_counter at its end)
    original, original_write = loop.evaluate_split, engine.write_metrics

    def timed_evaluate_split(*args, **kwargs):
        s = time.perf_counter()
        result = original(*args, **kwargs)
        e = time.perf_counter()
        marks.append((e - s, e))
        return result

    def write_metrics_with_budget(run_dir, history):
        # fit writes the epoch's row (after saving best.pt on improvement); stop here once over budget
        original_write(run_dir, history)
        if budget and history and marks and marks[-1][1] - fit_start > budget:
            raise BudgetReached

    # no history term: RecBole's SASRec has none, and this compares the trainers on the same model
    cfg = TrainConfig.from_options(dataset=str(dataset_dir), item_tower="id", model="sasrec", hidden=HIDDEN, layers=LAYERS, heads=HEADS,
                      max_len=MAX_LEN, dropout=DROPOUT, loss="full_ce", lr=LR, batch_size=batch_size, patience=10, history_term="off",
                      epochs=epochs, precision="fp32", device="cpu", name="sasrec-id-full_ce", runs_dir=str(work / "runs"),
                      **({} if seed is None else {"seed": seed}))
    loop.evaluate_split, engine.write_metrics = timed_evaluate_split, write_metrics_with_budget
    budget_reached = False
    run_dir = Path(cfg.run.runs_dir) / cfg.run.name
    try:
        fit_start = time.perf_counter()
        fit(cfg, progress=False)
    except BudgetReached:
        budget_reached = True
    finally:
        fit_seconds = time.perf_counter() - fit_start
        loop.evaluate_split, engine.write_metrics = original, original_write
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    for row, (valid_seconds, end) in zip(rows, marks):
        row["valid_seconds"], row["t_end"] = valid_seconds, end - fit_start
    best_epoch = max(rows, key=lambda r: (r["valid"]["ndcg@10"], -r["epoch"]))["epoch"]

    model, cfg_loaded, ds = load_trained(run_dir)
    s = time.perf_counter()
    histories, targets = ds.split("test")
    with torch.no_grad():
        users = model.user_vectors(histories, cfg_loaded.model.max_len, cfg_loaded.optim.eval_batch_size)
        scores = users @ model.item_table().float().T  # [U, N+1]; column 0 ignored by target_ranks
        ranks = target_ranks(scores, torch.from_numpy(targets), None)
    test = metrics_from_ranks(ranks, (10,))
    r = ranks.double()
    test["mrr@10"] = torch.where(r <= 10, 1.0 / r, torch.zeros_like(r)).mean().item()
    test_seconds = time.perf_counter() - s
    # the trainer's own evaluation path must agree with the one above
    check = loop.evaluate_split(model, ds, "test", cfg_loaded, ks=(10,), exclude_history=False)
    assert abs(check["ndcg@10"] - test["ndcg@10"]) < 1e-9, (check, test)

    best = next(r for r in rows if r["epoch"] == best_epoch)
    flops = recx_epoch_flops(dataset_dir, batch_size, cfg.run.seed)
    return {
        "version": getattr(recx, "__version__", "unknown"),
        "import_seconds": import_seconds,
        "fit_seconds": fit_seconds,
        "epochs": rows,
        "best_epoch": best_epoch,
        "budget_reached": budget_reached,
        "test": test,
        "test_seconds": test_seconds,
        "epoch_flops": flops,
        "summary": {
            "seconds_per_epoch": statistics.median(r["seconds"] for r in rows),
            "valid_seconds_per_epoch": statistics.median(r["valid_seconds"] for r in rows),
            "epochs_to_best": best_epoch + 1,
            "epochs_run": len(rows),
            "time_to_best": best["t_end"],
            "stopped_early": not budget_reached and len(rows) < epochs,
            "stopped_by": "early stopping" if not budget_reached and len(rows) < epochs else ("time budget" if budget_reached else "epoch cap"),
            "test": {"ndcg@10": test["ndcg@10"], "recall@10": test["hr@10"], "mrr@10": test["mrr@10"], "mrr": test["mrr"]},
        },
        "config": cfg.options(),  # flat option names, as the command line spells them
    }


# -- report --------------------------------------------------------------------------------------
def first_reach(rows: list[dict[str, Any]], value: float) -> float | None:
    """Seconds (``t_end``) of the first epoch whose valid NDCG@10 is >= ``value``, or None."""
    return next((r["t_end"] for r in rows if r["valid"]["ndcg@10"] >= value), None)


def fmt(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.1f}"


def ratio(a: float, b: float | None) -> str:
    return "-" if b is None else f"{a / b:.1f}x"


def markdown(rep: dict[str, Any]) -> str:
    rb, rx, m = rep["recbole"], rep["recx"], rep["machine"]
    sb, sx = rb["summary"], rx["summary"]
    peak = m["matmul_gflops"]
    lines = [
        "# SASRec training: recx vs RecBole 1.2.1 (amazon-scientific)",
        "",
        "Reproduce (from the repository root, recx venv; RecBole gets its own venv on first use):",
        "",
        "```",
        rep["command"],
        "```",
        "",
        f"Machine: {m['nproc']} CPU cores ({m['cpu']}), {m['threads']} torch threads on each side, "
        f"torch {m['torch']} (recx), RecBole {rb['version']} with torch {rb['torch']}. "
        f"Load average (1/5/15 min) before: {' / '.join(f'{x:.2f}' for x in m['load_before'])}; "
        f"between the runs: {' / '.join(f'{x:.2f}' for x in m['load_between'])}; "
        f"after: {' / '.join(f'{x:.2f}' for x in m['load_after'])}. "
        + ("Other work shared the cores, so timings carry that noise." if max(m["load_before"][0], m["load_between"][0]) > m["threads"] + 0.5
           else "Nothing else of note ran: the load stayed at about the threads in use."),
        "",
        f"Run at {rep['started_utc']} UTC; {'QUICK smoke run (not a result)' if rep['quick'] else 'full run'}; "
        f"epoch cap {rep['epochs_cap']} on both sides, early stopping after 10 epochs without a better valid NDCG@10"
        + (f", training time budget {rep['budget_s']:.0f} s per side (a side stops after the first epoch whose validation ends past it)" if rep["budget_s"] else "")
        + (". The two sides trained **at the same time** (`--parallel`), so each also competed with the other for the cores." if rep["parallel"] else ". The two sides trained one after the other."),
        "",
        "| | RecBole SASRec | recx SASRec | RecBole / recx |",
        "|---|---:|---:|---:|",
        f"| train batch | {rb['config']['train_batch_size']} rows (prefixes) | {rx['config']['batch_size']} rows (users) | |",
        f"| batches / epoch | {rb['train_batches_per_epoch']} | {rx['epoch_flops']['batches']} | |",
        f"| training seconds / epoch (median) | {sb['seconds_per_epoch']:.2f} | {sx['seconds_per_epoch']:.2f} | {sb['seconds_per_epoch'] / sx['seconds_per_epoch']:.1f}x |",
        f"| validation seconds / epoch (median) | {sb['valid_seconds_per_epoch']:.2f} | {sx['valid_seconds_per_epoch']:.2f} | {sb['valid_seconds_per_epoch'] / sx['valid_seconds_per_epoch']:.1f}x |",
        f"| epochs run | {sb['epochs_run']} | {sx['epochs_run']} | |",
        f"| training ended by | {sb['stopped_by']} | {sx['stopped_by']} | |",
        f"| epochs to best valid NDCG@10 | {sb['epochs_to_best']} | {sx['epochs_to_best']} | |",
        f"| best valid NDCG@10 | {rb['best_valid_score']:.4f} | {rx['epochs'][rx['best_epoch']]['valid']['ndcg@10']:.4f} | |",
        f"| time to best (s) | {sb['time_to_best']:.1f} | {sx['time_to_best']:.1f} | **{sb['time_to_best'] / sx['time_to_best']:.1f}x** |",
        f"| time to first reach RecBole's best valid NDCG@10 (s) | {sb['time_to_best']:.1f} | {fmt(rep['recx_time_to_recbole_best'])} | **{ratio(sb['time_to_best'], rep['recx_time_to_recbole_best'])}** |",
        f"| test NDCG@10 | {sb['test']['ndcg@10']:.4f} | {sx['test']['ndcg@10']:.4f} | |",
        f"| test Recall@10 | {sb['test']['recall@10']:.4f} | {sx['test']['recall@10']:.4f} | |",
        f"| test MRR@10 | {sb['test']['mrr@10']:.4f} | {sx['test']['mrr@10']:.4f} | |",
        f"| test MRR (untruncated) | - | {sx['test']['mrr']:.4f} | |",
        f"| data preparation (s, not in time to best) | {rb['prepare_seconds']:.1f} | {rx['import_seconds']:.1f} (import) | |",
        "",
        "Time to best: seconds from the start of training to the end of the best epoch's validation "
        "(all training epochs and validations up to it; recx's clock starts before `fit` loads the dataset). "
        "Both evaluate on the full catalog of 4,385 items without masking the user's history "
        "(RecBole's `FullSortEvalDataLoader` masks history only for non-sequential models); "
        "Recall@10 = HR@10 (one target per user); MRR@10 is truncated at 10 as RecBole computes it.",
        "",
        "## Compute efficiency",
        "",
        f"Measured `torch.mm` peak on {m['threads']} threads: fp32 {peak['fp32_1024']:.1f} GFLOP/s at 1024^3, "
        f"{peak['fp32_2048']:.1f} GFLOP/s at 2048^3; bf16 {peak['bf16_1024']:.2f} GFLOP/s at 1024^3 "
        + (f"({peak['bf16_1024'] / peak['fp32_1024']:.1f}x fp32: native bf16 on this CPU; both sides still train in fp32, as the script "
           "pins, and docs/precision.md found bf16 autocast no faster at this width)." if peak["bf16_1024"] > peak["fp32_1024"] else
           f"({peak['fp32_1024'] / peak['bf16_1024']:.0f}x slower than fp32: this CPU has no avx512_bf16/AMX, so both sides train in fp32)."),
        "",
        f"FLOPs counted analytically (multiply-add = 2, fwd+bwd = 3x forward; QKV/output/FFN linears and attention "
        f"for every encoded position, padding included, plus the full-softmax logits). "
        f"recx epoch: {rx['epoch_flops']['encoded_positions']:,} encoded positions, "
        f"{rx['epoch_flops']['target_positions']:,} target positions x {rep['catalog']:,} items = "
        f"{rx['epoch_flops']['flops'] / 1e9:.1f} GFLOP. RecBole epoch: {rb['train_rows']:,} rows x 50 positions, "
        f"logits at the last position only over {rb['items_incl_padding']:,} items = {rep['recbole_epoch_gflop']:.1f} GFLOP.",
        "",
        "| | GFLOP / epoch | achieved GFLOP/s (median epoch) | share of fp32 2048^3 peak |",
        "|---|---:|---:|---:|",
        f"| RecBole | {rep['recbole_epoch_gflop']:.1f} | {rep['recbole_gflops']:.1f} | {rep['recbole_gflops'] / peak['fp32_2048']:.0%} |",
        f"| recx | {rx['epoch_flops']['flops'] / 1e9:.1f} | {rep['recx_gflops']:.1f} | {rep['recx_gflops'] / peak['fp32_2048']:.0%} |",
        "",
        "Achieved = epoch FLOPs / median training seconds per epoch (the whole epoch: batching, forward, backward, "
        "gradient clipping, optimizer).",
        "",
        "## Per-epoch log",
        "",
        "| epoch | RecBole train s | RecBole valid s | RecBole valid NDCG@10 | recx train s | recx valid s | recx valid NDCG@10 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in range(max(len(rb["epochs"]), len(rx["epochs"]))):
        a = rb["epochs"][e] if e < len(rb["epochs"]) else None
        b = rx["epochs"][e] if e < len(rx["epochs"]) else None
        ca = f"{a['train_seconds']:.1f} | {a['valid_seconds']:.1f} | {a['valid']['ndcg@10']:.4f}{' *' if a['epoch'] == rb['best_epoch'] else ''}" if a else " | | "
        cb = f"{b['seconds']:.1f} | {b['valid_seconds']:.1f} | {b['valid']['ndcg@10']:.4f}{' *' if b['epoch'] == rx['best_epoch'] else ''}" if b else " | | "
        lines.append(f"| {e} | {ca} | {cb} |")
    lines += ["", "`*` = best validation epoch (the checkpoint that is tested).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=shared_data_dir() / "amazon-scientific", help="UniSRec amazon-scientific folder")
    p.add_argument("--epochs-cap", type=int, default=30, help="most epochs per side (early stopping may end sooner)")
    p.add_argument("--quick", action="store_true", help="2 epochs per side: a smoke test, not a result")
    p.add_argument("--recx-batch-size", type=int, default=256, help="recx users per batch")
    p.add_argument("--recbole-batch-size", type=int, default=256, help="RecBole train_batch_size (RecBole's own default, 2048, converges far slower)")
    p.add_argument("--budget-s", type=float, default=0.0, help="training wall-clock budget per side in seconds (0: none)")
    p.add_argument("--parallel", action="store_true", help="train both sides at the same time (same background load, but they share the cores)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1), help="torch threads on each side")
    p.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="write the full record here")
    p.add_argument("--markdown", type=Path, default=None, help="write the report here (e.g. docs/train_benchmark.md)")
    args = p.parse_args(argv)
    if not (args.data / "Scientific.train.inter").is_file():
        raise SystemExit(f"{args.data}: no Scientific.train.inter (pass --data <amazon-scientific folder>)")
    epochs = 2 if args.quick else args.epochs_cap

    import torch

    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    command = "python benchmarks/train_vs_recbole.py " + " ".join(a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:]))
    load_before = loadavg()
    peak = matmul_peak(args.threads)
    with tempfile.TemporaryDirectory(prefix="recx-train-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"load {load_before}; matmul GFLOP/s {peak}; RecBole ({epochs} epochs max) ...", file=sys.stderr, flush=True)
        proc = start_recbole(args.data, work, epochs, args.recbole_batch_size, args.threads, args.budget_s)
        if not args.parallel:
            rb = finish_recbole(proc, epochs)
            print(f"RecBole: {rb['summary']}; recx ...", file=sys.stderr, flush=True)
        load_between = loadavg()
        rx = run_recx(args.data, work, epochs, args.recx_batch_size, args.threads, args.budget_s)
        print(f"recx: {rx['summary']}", file=sys.stderr, flush=True)
        if args.parallel:
            rb = finish_recbole(proc, epochs)
            print(f"RecBole: {rb['summary']}", file=sys.stderr, flush=True)
    load_after = loadavg()
    catalog = rb["items_incl_padding"] - 1
    rb_gflop = recbole_epoch_flops(rb["train_rows"], rb["items_incl_padding"]) / 1e9
    report = {
        "command": command,
        "started_utc": started,
        "quick": args.quick,
        "parallel": args.parallel,
        "budget_s": args.budget_s,
        "epochs_cap": epochs,
        "catalog": catalog,
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "threads": args.threads, "torch": torch.__version__,
                    "python": platform.python_version(), "load_before": load_before, "load_between": load_between,
                    "load_after": load_after, "matmul_gflops": peak},
        "recbole": rb,
        "recx": rx,
        "recbole_epoch_gflop": rb_gflop,
        "recbole_gflops": rb_gflop / rb["summary"]["seconds_per_epoch"],
        "recx_gflops": rx["epoch_flops"]["flops"] / 1e9 / rx["summary"]["seconds_per_epoch"],
        "time_to_best_ratio": rb["summary"]["time_to_best"] / rx["summary"]["time_to_best"],
        "recx_time_to_recbole_best": first_reach(rx["epochs"], rb["best_valid_score"]),
    }
    if args.json:  # first: a fault in the report below must not lose a 20-minute run
        args.json.write_text(json.dumps(report, indent=1, default=str))
    md = markdown(report)
    print(md)
    if args.markdown:
        tmp_md = args.markdown.with_suffix(".md.tmp")
        tmp_md.write_text(md)
        tmp_md.replace(args.markdown)
    return report


if __name__ == "__main__":
    main()
