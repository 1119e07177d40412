"""Reo-LM's recipe, change by change, per dataset -> docs/reolm.json and the generated table at
the top of docs/reolm.md.

Each row is one `recx train --model reo-lm` run in the dataset's workspace ``--work/ws-DATASET``
(the row's name is its run name), ranked by `recx eval --compare SASREC ROW` (full catalog,
history kept, pessimistic ties, bootstrap CIs, the paired test against SASRec ID trained in the
same workspace).  A row whose run exists continues it (`recx train --resume`): kill the script
at any time and run it again, each run resumes from its last finished validation interval.
docs/reolm.json keeps one record per (dataset, row): a call replaces the records of the rows it
ran and keeps the others, each with the torch threads and the date it was measured with.

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
                 instead of s1-catalog's table one epoch stale); 4 epochs (3 until December 7:
                 its validation still rose 0.0025 in the third)
  s2-ids         s2-window with a learned vector per item (zero at the start, times the loss
                 temperature) added to the frozen text table (--reo-item-ids: a text + ID fusion
                 of the item side; ROMA has none); 3 epochs
  s2-both-ids    s2-ids with a second learned vector per item added to the input embeddings of
                 that item's tokens in a user's sequence (--reo-history-ids: the user side reads
                 which items a history holds, as SASRec's ID tower does)
  s2-both-ids-seed7  s2-both-ids again with another seed (7; every row's is recx's 42)
  s2-ids-drop    s2-both-ids with dropout 0.5 on the history IDs in training (SASRec's input
                 dropout, --reo-history-id-dropout)
  prefix-rows    window with every prefix of the last 50 items as a row, warmup 100 steps then
                 linear decay, and validation every half epoch (ROMA's data volume: ~4x the
                 steps of one row per user; over window, not s1-catalog, since window's in-batch
                 negatives tested better: 0.0552 against 0.0423)
  pretrained     window fine-tuned from `recx pretrain` over every other domain of --data
                 (ROMA's objective: next item + masked tokens of the user sequence at 0.1;
                 --pretrain-steps batches, in resumable pieces)
Where the dataset has images (ml-100k posters, hm-sample photos), every row reads an
efficientnet-lite0 image store as its image token (``--reo-image store``).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/reolm.py --rows s1-catalog,s2-frozen --work /tmp/reo
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm.py --dataset ml-100k --rows window,s2-window --work /tmp/reo
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm.py --dataset amazon-office --rows window:6 --work /tmp/reo
(``NAME:EPOCHS`` trains a row to that many epochs: a finished run continues where it ended.)
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recx, not an installed one

# name -> (importer, folder under --data, image encoder of its image token or None)
DATASETS: dict[str, tuple[str, str, str | None]] = {
    "amazon-scientific": ("unisrec", "amazon-scientific", None),
    "amazon-office": ("rechorus", "amazon-office", None),
    "ml-100k": ("movielens", "ml-100k", "efficientnet-lite0"),
    "hm-sample": ("hm", "hm-sample", "efficientnet-lite0"),
    "mind-fragment": ("mind", "mind-fragment", None),  # pre-training text only: its histories point outside the fragment
}
COMMON = dict(model="reo-lm", reo_image="none", temperature=0.05, batch_size=32, lr=1e-3, encoder_lr=1e-4, weight_decay=0.0, patience=2)
OLD = dict(COMMON, item_text="text", item_tokens=16, user_items=0, max_len=8, user_tokens=128, loss="debiased_ce", epochs=4)
ATTRIBUTES = dict(OLD, item_text="attributes", attr_tokens=32, item_tokens=0)
WINDOW = dict(ATTRIBUTES, user_items=9, max_len=9, user_tokens=0)
S1 = dict(WINDOW, loss="full_ce", schedule="linear", warmup_steps=100)
S2_WINDOW = dict(S1, reo_stage=2, warm_start="runs/window")
S2_IDS = dict(S2_WINDOW, epochs=3, reo_item_ids=True)
S2_BOTH_IDS = dict(S2_IDS, reo_history_ids=True)
ROWS: dict[str, dict] = {
    "old-recipe": OLD,
    "attributes": ATTRIBUTES,
    "window": WINDOW,
    "s1-catalog": S1,
    "s2-frozen": dict(S1, reo_stage=2, epochs=3, warm_start="runs/s1-catalog"),
    "s2-window": dict(S2_WINDOW, epochs=4),
    "s2-ids": S2_IDS,
    "s2-both-ids": S2_BOTH_IDS,
    "s2-both-ids-seed7": dict(S2_BOTH_IDS, seed=7),
    "s2-ids-drop": dict(S2_BOTH_IDS, reo_history_id_dropout=0.5),
    "prefix-rows": dict(WINDOW, schedule="linear", warmup_steps=100, prefix_rows=50, valid_per_epoch=2, epochs=2),
    "pretrained": WINDOW,  # with --init: the checkpoint pretrain() writes (main adds it)
}
# SASRec over an ID table, debiased CE, without the repeat-aware history term: the tower
# comparison of IDvs.MoRec (Reo-LM has no history term).  The term adds 0.013 test NDCG@10 on
# amazon-scientific (docs/repeats.md), which is not the question here.
SASREC = "sasrec-id"
SASREC_SETTINGS = dict(model="sasrec", item_tower="id", loss="debiased_ce", history_term="off")  # pinned: a workspace's [train] may say otherwise
# Users per batch of the hand-run study (docs/results-hand-run.md: about 30 steps an epoch) where
# recx's default 256 is too many: ml-100k's 943 users make 4 steps an epoch, and SASRec ID then
# stopped at its 16th epoch with test NDCG@10 0.0152 (0.0495 at 32).  amazon-office keeps 256
# (0.0513; the study's 160 scored 0.0502), amazon-scientific's is the study's.
SASREC_BATCH = {"ml-100k": 32, "hm-sample": 48}
PRETRAIN = dict(item_text="attributes", attr_tokens=32, user_items=9, max_len=9, batch_size=32, mlm_weight=0.1)


def recx(*args: str, cwd: Path, capture: bool = False) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-c", "from recx.cli import main; main()", *args], check=True, cwd=cwd, env=env,
                         capture_output=capture, text=True)
    return out.stdout if capture else ""


def flags(settings: dict) -> list[str]:
    out: list[str] = []
    for key, value in settings.items():
        flag = key.replace("_", "-")
        out += ([f"--{flag}" if value else f"--no-{flag}"] if isinstance(value, bool) else [f"--{flag}", str(value)])
    return out


def workspace(work: Path, dataset: str) -> Path:
    return work / f"ws-{dataset}"


def prepare(data: Path, work: Path, dataset: str) -> tuple[Path, Path | None]:
    """Import ``dataset`` into its workspace, and featurize its images where it has an image
    encoder -> (dataset folder, image store or None)."""
    fmt, folder, image_model = DATASETS[dataset]
    ws = workspace(work, dataset)
    out = work / "data" / dataset
    if not (ws / "recx.toml").is_file():
        ws.mkdir(parents=True, exist_ok=True)
        recx("data", "import", fmt, str(data / folder), "-o", str(out), "--workspace", str(ws), cwd=ws)
    store = None
    if image_model:
        store = ws / "stores" / f"{image_model}.h5"
        if not store.is_file():
            recx("featurize", "--model", image_model, "-o", str(store), "-q", cwd=ws)
    return out, store


def pretrain(data: Path, work: Path, target: str, steps: int, piece: int) -> Path:
    """`recx pretrain` over every domain of DATASETS but ``target`` (their image stores as the
    image token) for ``steps`` batches, in resumable epochs of ``piece`` batches -> its folder."""
    from recx.trainer.checkpoint import read_metrics

    others = [d for d in DATASETS if d != target]
    dirs, stores = zip(*(prepare(data, work, d) for d in others))
    out = work / f"pretrain-{target}"
    epochs = max(1, -(-steps // piece))
    if len(read_metrics(out)) < epochs:
        resume = ["--resume"] if (out / "state.pt").is_file() else []
        images = [a for s in stores if s is not None for a in ("--image-store", str(s))]
        t0 = time.perf_counter()
        recx("pretrain", "--domains", *map(str, dirs), *images, "-o", str(out), *flags(PRETRAIN), "--epochs", str(epochs),
             "--steps-per-epoch", str(piece), *resume, "-q", cwd=work)
        print(f"pretrain-{target}: {time.perf_counter() - t0:.0f}s", flush=True)
    return out


def train(ws: Path, name: str, settings: dict, eval_only: bool = False) -> Path:
    """Train (or resume, or reuse) the run ``name``; returns its folder.  ``eval_only``: take the
    run as it stands (an unfinished run is ranked with its best checkpoint so far)."""
    run = ws / "runs" / name
    check_warm_start(ws, run, settings)
    check_settings(run, settings)
    epochs = settings.get("epochs")
    if (eval_only and (run / "best.pt").is_file()) or finished_epochs(run, epochs):
        return run
    # a resumed run keeps its own settings but --epochs (recx refuses the flags it would ignore)
    resume = ["--resume", "--run", str(run), *(["--epochs", str(epochs)] if epochs else [])]
    args = resume if (run / "last.pt").is_file() else [*flags(settings), "--name", name]
    t0 = time.perf_counter()
    recx("train", *args, "-q", cwd=ws)
    print(f"{name}: trained in {time.perf_counter() - t0:.0f}s", flush=True)
    return run


# Options check_settings leaves out: a resume may change the epochs (NAME:EPOCHS); paths are
# spelled relative to the workspace here and to the run in its config (warm starts are checked
# by their sha256 instead).
UNCHECKED = {"epochs", "warm_start", "init", "store"}


def check_settings(run: Path, settings: dict) -> None:
    """A run trained with other options than its row now asks (a baseline from before
    SASREC_BATCH, a row whose recipe changed since) stops the script with one line instead of
    being reported as the row."""
    from recx.trainer.checkpoint import read_run_config
    from recx.trainer.config import TrainConfig
    from recx.workspace import RUN_CONFIG

    if not (run / RUN_CONFIG).is_file():
        return
    trained = TrainConfig.from_dict(read_run_config(run)["config"])
    differ = [f"{k} {trained.get(k)!r}, the row asks {v!r}" for k, v in settings.items() if k not in UNCHECKED and trained.get(k) != v]
    if differ:
        sys.exit(f"{run / RUN_CONFIG}: trained with {'; '.join(differ)}: move {run} aside to train it again")


def finished_epochs(run: Path, epochs: int | None) -> bool:
    """Whether ``run`` has finished (``epochs``: that many epochs, or stopped early before them):
    a row asked for more epochs than its finished run trained continues it."""
    from recx.workspace import FINISHED, run_finished

    if not run_finished(run):
        return False
    done = run / FINISHED
    record = json.loads(done.read_text()) if done.is_file() else {}  # a run from before the marker: finished as it is
    return epochs is None or record.get("stopped_early", False) or record.get("epochs_run", epochs) >= epochs


def check_warm_start(ws: Path, run: Path, settings: dict) -> None:
    """A row warm-started from another row's best weights records their sha256 when it starts
    (``WS/warm-starts/ROW.sha256``: recx train wants an empty run folder); if they have changed
    since (the source trained on), the row is stale: stop with one line instead of reporting it
    as if it had started from the new weights."""
    from recx.artifacts import atomic_write_text, sha256_file

    if "warm_start" not in settings:
        return
    source = ws / settings["warm_start"] / "best.pt"
    if not source.is_file():
        return  # recx train says what is missing
    stamp = ws / "warm-starts" / f"{run.name}.sha256"
    digest = sha256_file(source)
    if stamp.is_file():
        if stamp.read_text().strip() != digest:
            sys.exit(f"{run}: warm-started from {source}, which has changed since ({stamp} holds the old sha256): "
                     f"move {run} aside and delete {stamp} to train the row again over the new weights")
    elif (run / "config.json").is_file():
        sys.exit(f"{run}: started before warm starts were stamped, so whether {source} changed since is unknown: "
                 f"move {run} aside to train the row again")
    else:
        stamp.parent.mkdir(exist_ok=True)
        atomic_write_text(stamp, digest + "\n")


def per_user_ndcg(run: Path, baseline: bool = False) -> np.ndarray:
    """[U] test NDCG@10 per user of ``run``'s own model (``baseline``: of SASRec ID), in the user
    order of its comparison CSV (the same order in every run of a workspace).  The row is the CSV's
    model that is not SASRec ID, so a run folder moved aside keeps its numbers."""
    path = run / "compare-sasrec-per-user.csv"
    if not path.is_file():
        sys.exit(f"{path}: missing; rank the row first (benchmarks/reolm.py --rows {run.name} --eval-only)")
    with path.open() as f:
        return np.asarray([float(row["ndcg@10"]) for row in csv.DictReader(f) if (row["model"] == SASREC) == baseline])


def paired_ndcg(a: np.ndarray, b: np.ndarray) -> dict:
    """The paired test of b - a on per-user NDCG@10: the CLI's own (same resamples and seed), on
    the CSV's 6-digit values."""
    from recx.evaluate.stats import paired_test

    return paired_test({"ndcg@10": a}, {"ndcg@10": b}, 1000, seed=42)["ndcg@10"]


def compare(ws: Path, base: Path, run: Path) -> dict:
    """`recx eval --compare base run`: its table, results.json and the paired test; cached, and
    made again when either run's best checkpoint is newer than the cached table."""
    table, per_user = run / "compare-sasrec.txt", run / "compare-sasrec-per-user.csv"
    newest = max((r / "best.pt").stat().st_mtime_ns for r in (base, run))
    if not table.is_file() or table.stat().st_mtime_ns < newest:
        per_user.unlink(missing_ok=True)  # from a call that died before writing its table
        t0 = time.perf_counter()
        text = recx("eval", "--compare", str(base), str(run), "--k", "10", "--no-baselines", "--per-user", str(per_user), cwd=ws, capture=True)
        table.write_text("".join(line for line in text.splitlines(keepends=True) if not line.startswith("wrote ")))
        print(f"{run.name}: eval {time.perf_counter() - t0:.0f}s", flush=True)
    paired = paired_ndcg(per_user_ndcg(run, baseline=True), per_user_ndcg(run))
    return {"table": table.read_text(), "results": json.loads((run / "results.json").read_text()), "paired_ndcg@10": paired}


def pair_rows(ws: Path, pairs: str) -> None:
    """Print the paired test of each ``A:B`` (rows already ranked against SASRec ID): B - A on
    per-user test NDCG@10, from their comparison CSVs (SASRec ID's values from the other row's)."""
    for pair in pairs.split(","):
        a, b = (ws / "runs" / name for name in pair.split(":"))
        r = paired_ndcg(per_user_ndcg(b, baseline=True) if a.name == SASREC else per_user_ndcg(a), per_user_ndcg(b))
        print(f"{b.name} - {a.name}: {r['mean_b']:.4f} - {r['mean_a']:.4f} = {r['diff']:+.4f} "
              f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}], p {r['p_permutation']:.3g}", flush=True)


def row_record(dataset: str, name: str, settings: dict, run: Path, cmp: dict) -> dict:
    from recx.trainer.checkpoint import read_metrics

    rows = read_metrics(run)
    rec = cmp["results"]
    m = rec["metrics"]
    ci = (rec.get("ci95") or {}).get("ndcg@10")
    train_s = sum(r["seconds"] for r in rows)
    return {
        "dataset": dataset, "name": name, "settings": settings, "hr@10": m["hr@10"], "ndcg@10": m["ndcg@10"], "ndcg@10_ci95": ci,
        "mrr": m["mrr"], "p_vs_sasrec_id": cmp["paired_ndcg@10"]["p_permutation"], "diff_vs_sasrec_id": cmp["paired_ndcg@10"]["diff"],
        "sasrec_id_ndcg@10": cmp["paired_ndcg@10"]["mean_a"],  # each session retrains the baseline: the one this row was paired with
        "warm_start_validations": len(read_metrics(run.parent.parent / settings["warm_start"])) if settings.get("warm_start") else None,
        "train_seconds": train_s, "validations": len(rows), "finished": (run / "finished.json").is_file(),
        "best_epoch": max(rows, key=lambda r: r["valid"]["ndcg@10"])["epoch"], "seconds_per_interval": train_s / max(len(rows), 1),
        "tokens_per_s": sum(r.get("tokens", 0) for r in rows) / max(train_s, 1e-9),
        "valid_curve": [round(r["valid"]["ndcg@10"], 5) for r in rows],
        "threads": threads(), "measured": time.strftime("%Y-%m-%d"),
    }


def threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def peak() -> dict:
    """bf16 and fp32 matmul GFLOP/s of this CPU on every core (train_vs_recbole's measurement)."""
    from train_vs_recbole import matmul_peak

    p = matmul_peak(os.cpu_count() or 1)
    return {"fp32": p["fp32_2048"], "bf16": p["bf16_1024"]}


def merged(path: Path, records: list[dict], sasrec: dict[str, dict]) -> dict:
    """docs/reolm.json with this call's records replacing those of the same (dataset, row); the
    matmul peak is measured once, on every core (a row's own threads are in its record)."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    keys = {(r["dataset"], r["name"]) for r in records}
    kept = [r for r in old.get("rows", []) if (r["dataset"], r["name"]) not in keys]
    for r in kept:  # a record from before the baseline was kept per row was paired with the dataset's baseline of its time
        r.setdefault("sasrec_id_ndcg@10", old.get("sasrec_id", {}).get(r["dataset"], {}).get("ndcg@10"))
    rows = kept + records
    order = {d: i for i, d in enumerate(DATASETS)}
    rows.sort(key=lambda r: (order.get(r["dataset"], len(order)), list(ROWS).index(r["name"]) if r["name"] in ROWS else len(ROWS)))
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    return {"machine": machine, "cores": os.cpu_count() or 1, "matmul_gflops": old.get("matmul_gflops") or peak(),
            "sasrec_id": {**old.get("sasrec_id", {}), **sasrec}, "rows": rows,
            "command": "OMP_NUM_THREADS=T python benchmarks/reolm.py --dataset D --rows R (each row's threads and date are its own)"}


def write_docs(payload: dict, docs: Path) -> None:
    from recx.artifacts import atomic_write_text

    atomic_write_text(docs / "reolm.json", json.dumps(payload, indent=2) + "\n")
    peak = payload["matmul_gflops"]
    # MiniLM-L6: 11.2 M weights outside the embeddings; forward + backward ~ 6 FLOPs per weight and token
    flops_per_token = 6 * 11.2e6
    lines = ["<!-- generated by benchmarks/reolm.py: begin -->", "## The ROMA recipe, measured (docs/reolm.json)", "",
             f"Machine: {payload['machine']}; matmul peak on every core, bf16 {peak['bf16']:.0f} GFLOP/s, fp32 {peak['fp32']:.0f}"
             "; a row trained on fewer torch threads is held to its share of that peak (threads / cores).", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in payload["rows"]):
        base = payload["sasrec_id"][dataset]
        rows = [r for r in payload["rows"] if r["dataset"] == dataset]
        lines += [f"**{dataset}**: SASRec ID in the same workspace (no history term), test NDCG@10 {base['ndcg@10']:.4f}, "
                  f"HR@10 {base['hr@10']:.4f} (the latest retraining; each row is paired with the baseline named in its row).", "",
                  "| row | HR@10 | NDCG@10 [95% CI] | MRR | vs SASRec ID: diff vs its NDCG@10 (p) | validations | train s | s / validation | tokens/s | "
                  "share of bf16 peak | threads | measured |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            ci = r["ndcg@10_ci95"] or [float("nan")] * 2
            share = r["tokens_per_s"] * flops_per_token / (peak["bf16"] * 1e9 * r["threads"] / payload["cores"])
            mark = ("" if r["finished"] else " (unfinished)") + (
                f" (stage 1: {r['warm_start_validations']} validations)" if r.get("warm_start_validations") else "")
            lines.append(f"| {r['name']}{mark} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] | {r['mrr']:.4f} | "
                         f"{r['diff_vs_sasrec_id']:+.4f} vs {r['sasrec_id_ndcg@10']:.4f} ({r['p_vs_sasrec_id']:.3g}) | {r['validations']} | {r['train_seconds']:.0f} | "
                         f"{r['seconds_per_interval']:.0f} | {r['tokens_per_s']:.0f} | {share:.1%} | {r['threads']} | {r['measured']} |")
        lines += ["", "Validation NDCG@10 per interval: " + "; ".join(f"{r['name']} {r['valid_curve']}" for r in rows), ""]
    if not all(r["finished"] for r in payload["rows"]):
        lines += ["Unfinished: stopped for the session's time and ranked with the best checkpoint so far (`--eval-only`); "
                  "the script resumes it."]
    lines += ["<!-- generated by benchmarks/reolm.py: end -->"]
    doc = docs / "reolm.md"
    text = doc.read_text() if doc.is_file() else "# Reo-LM\n\n"
    begin, end = "<!-- generated by benchmarks/reolm.py: begin -->", "<!-- generated by benchmarks/reolm.py: end -->"
    if begin in text:
        text = text[: text.index(begin)] + "\n".join(lines) + text[text.index(end) + len(end):]
    else:
        head, _, rest = text.partition("\n\n")
        text = head + "\n\n" + "\n".join(lines) + "\n\n" + rest
    atomic_write_text(doc, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/recx-reolm"))
    ap.add_argument("--dataset", default="amazon-scientific", choices=[d for d in DATASETS if d != "mind-fragment"])
    ap.add_argument("--rows", default="s1-catalog,s2-frozen",
                    help=f"comma-separated NAME or NAME:EPOCHS (a finished run asked for more epochs trains on), from: {', '.join(ROWS)}")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs", help="folder of reolm.json and reolm.md (another one for a trial run)")
    ap.add_argument("--pairs", default="", help="A:B,...: only print the paired test of row B against row A (both ranked)")
    ap.add_argument("--eval-only", action="store_true", help="rank the runs as they stand (unfinished: their best checkpoint so far)")
    ap.add_argument("--pretrain-steps", type=int, default=200, help="row pretrained: batches of `recx pretrain` over the other domains")
    ap.add_argument("--pretrain-piece", type=int, default=50, help="row pretrained: batches per resumable pre-training epoch")
    args = ap.parse_args()
    args.data, args.work = args.data.resolve(), args.work.resolve()  # recx runs in each workspace: relative paths would move
    if args.pairs:
        return pair_rows(workspace(args.work, args.dataset), args.pairs)
    args.docs.mkdir(parents=True, exist_ok=True)
    _, store = prepare(args.data, args.work, args.dataset)
    ws = workspace(args.work, args.dataset)
    base = train(ws, SASREC, {**SASREC_SETTINGS, "batch_size": SASREC_BATCH.get(args.dataset, 256)})
    image = {"reo_image": "store", "store": f"image={store}"} if store else {}
    records = []
    for row in args.rows.split(","):
        name, _, epochs = row.partition(":")
        settings = {**ROWS[name], **image, **({"epochs": int(epochs)} if epochs else {})}
        if name == "pretrained":
            settings["init"] = str(pretrain(args.data, args.work, args.dataset, args.pretrain_steps, args.pretrain_piece))
        run = train(ws, name, settings, args.eval_only)
        cmp = compare(ws, base, run)
        records.append(row_record(args.dataset, name, settings, run, cmp))
        print(cmp["table"], flush=True)
    sasrec = {args.dataset: json.loads((base / "results.json").read_text())["metrics"]}
    write_docs(merged(args.docs / "reolm.json", records, sasrec), args.docs)


if __name__ == "__main__":
    main()
