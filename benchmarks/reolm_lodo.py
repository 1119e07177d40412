"""Reo-LM leave-one-domain-out: pre-train on every shared domain but the target, fine-tune on it.

Rows (MiniLM-L6 backbone, full fine-tuning, the settings of benchmarks/reolm.py):
  1. reo-lm from scratch on the target (text only; --scratch-run reuses an existing run of the
     same settings, e.g. the 6-epoch run of docs/reolm.md);
  2. reo-lm pre-trained with `recx pretrain` on the other domains (amazon-office or
     amazon-scientific, ml-100k with TMDB overviews and posters, hm-sample with product photos,
     the MIND fragment's news text; next-item CE + masked item-text tokens + item-image
     alignment where an image store exists), then fine-tuned on the target for --epochs.
Each run is ranked by `recx eval` (full catalog, history kept) and the two are compared with
`recx eval --compare` (paired over users).  Every step is reused when its output exists, so the
script can be stopped and rerun.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm_lodo.py --target amazon-scientific --epochs 4 \
        --scratch-run /tmp/recx-reolm/ws-amazon-scientific/runs/scratch-3ep   # the 6-epoch run of docs/reolm.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from reolm import ROOT, SETTINGS, compare_text, evaluate, metrics_of, recx

# name -> (importer, source folder under --data, image encoder or None)
DOMAINS: dict[str, tuple[str, str, str | None]] = {
    "amazon-scientific": ("unisrec", "amazon-scientific", None),
    "amazon-office": ("rechorus", "amazon-office", None),
    "ml-100k": ("movielens", "ml-100k", "efficientnet-lite0"),
    "hm-sample": ("hm", "hm-sample", "efficientnet-lite0"),
    "mind-fragment": ("mind", "mind-fragment", None),
}


def prepare(data: Path, work: Path) -> tuple[dict[str, Path], dict[str, Path], dict[str, float]]:
    """Import every domain and featurize the image ones: (dataset dirs, image stores, seconds per step)."""
    dirs, stores, seconds = {}, {}, {}
    for name, (fmt, src, image_model) in DOMAINS.items():
        out = work / "data" / name
        if not (out / "dataset.json").is_file():
            t0 = time.perf_counter()
            recx("data", "import", fmt, str(data / src), "-o", str(out), "--workspace", str(work / f"ws-{name}"))
            seconds[f"import {name}"] = time.perf_counter() - t0
        dirs[name] = out
        if image_model:
            store = work / "stores" / f"{name}-{image_model}.h5"
            if not store.is_file():
                t0 = time.perf_counter()
                recx("featurize", "--model", image_model, "--dataset", str(out), "-o", str(store))
                seconds[f"featurize {name}"] = time.perf_counter() - t0
            stores[name] = store
    return dirs, stores, seconds


def fit_epochs(cfg, run_dir: Path, epochs: int) -> None:
    """Train (or resume) ``run_dir`` until it has ``epochs`` epochs or early stopping ends it."""
    from recx.trainer import fit
    from recx.trainer.checkpoint import read_metrics

    done = len(read_metrics(run_dir)) if (run_dir / "metrics.jsonl").is_file() else 0
    if done < epochs:
        cfg.epochs = epochs
        fit(cfg, run_dir=run_dir, resume=(run_dir / "last.pt").is_file(), progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="amazon-scientific", choices=["amazon-scientific", "amazon-office"])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/recx-reolm"))
    ap.add_argument("--pretrain-steps", type=int, default=0, help="pre-training batches (0: one whole epoch over the mixed domains)")
    ap.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs on the target")
    ap.add_argument("--scratch-run", type=Path, default=None, help="an existing from-scratch run of the same settings to compare "
                    "against (default: <work>/runs/scratch-<target>, trained here for --epochs when absent)")
    ap.add_argument("--out", type=Path, default=None, help="markdown report (default: docs/reolm-lodo-<target>.md)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from recx.trainer import TrainConfig
    from recx.trainer.reolm.pretrain import PretrainConfig, pretrain

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    work, target = args.work, args.target
    dirs, stores, prep_s = prepare(args.data, work)
    state_path = work / f"lodo-{target}.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    state.setdefault("prepare_seconds", {}).update(prep_s)

    def save() -> None:
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(state_path)

    ckpt = work / f"ckpt-lodo-{target}"
    others = [n for n in DOMAINS if n != target]
    if "pretrain" not in state:
        pcfg = PretrainConfig(domains=[str(dirs[n]) for n in others], image_stores=[str(stores[n]) for n in others if n in stores],
                              lm=SETTINGS["lm"], item_tokens=SETTINGS["item_tokens"], user_tokens=SETTINGS["user_tokens"],
                              max_len=SETTINGS["max_len"], batch_size=SETTINGS["batch_size"], lr=SETTINGS["encoder_lr"],
                              temperature=SETTINGS["temperature"], epochs=1, steps_per_epoch=args.pretrain_steps)
        t0 = time.perf_counter()
        pretrain(pcfg, ckpt, resume=(ckpt / "state.pt").is_file(), progress=False)
        rows = [json.loads(line) for line in (ckpt / "metrics.jsonl").read_text().splitlines() if line.strip()]
        state["pretrain"] = {"domains": others, "image_stores": [n for n in others if n in stores], "steps": rows[-1]["steps"],
                             "wall_s": time.perf_counter() - t0, "metrics": rows[-1]}
        save()

    runs = work / "runs"
    scratch = args.scratch_run or runs / f"scratch-{target}"
    if args.scratch_run is None:
        fit_epochs(TrainConfig(dataset=str(dirs[target]), runs_dir=str(runs), name=scratch.name, **SETTINGS), scratch, args.epochs)
    lodo = runs / f"lodo-{target}"
    fit_epochs(TrainConfig(dataset=str(dirs[target]), runs_dir=str(runs), name=lodo.name, init=str(ckpt), **SETTINGS), lodo, args.epochs)
    state["finetune"] = {r.name: {"test": metrics_of(evaluate(r))} for r in (scratch, lodo)}
    save()
    out = args.out or ROOT / "docs" / f"reolm-lodo-{target}.md"
    write_doc(out, args, state, scratch, lodo)
    print(f"wrote {out}")


def write_doc(out: Path, args: argparse.Namespace, state: dict, scratch: Path, lodo: Path) -> None:
    from recx.trainer.checkpoint import read_metrics

    pre = state["pretrain"]
    m = pre["metrics"]
    losses = ", ".join(f"{k} {m[k]:.3f}" for k in ("next_item", "mlm", "align", "loss") if k in m)
    lines = [f"# Reo-LM, leave one domain out: target {args.target}", "",
             f"Generated by `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')} python benchmarks/reolm_lodo.py --target {args.target} "
             f"--pretrain-steps {args.pretrain_steps} --epochs {args.epochs}" + (f" --scratch-run {args.scratch_run}" if args.scratch_run else "") + f"` on {platform.machine()}, {os.cpu_count()} cores "
             f"(shared with the other jobs of the session), {time.strftime('%Y-%m-%d', time.gmtime())}.", "",
             "Settings (both rows): " + ", ".join(f"`{k}={v}`" for k, v in SETTINGS.items() if k != "epochs") + ".", "",
             f"Pre-training: `recx pretrain` over {', '.join(pre['domains'])}, mixed in every batch; image-alignment term on "
             f"{', '.join(pre['image_stores']) or 'none'} (efficientnet-lite0 stores); {pre['steps']} steps of {SETTINGS['batch_size']} users "
             f"in {pre['wall_s'] / 60:.1f} min ({m.get('tokens_per_s', 0):.0f} tokens/s); mean losses {losses}.", "",
             "## Validation NDCG@10 per fine-tuning epoch", "", "| epoch | from scratch | pre-trained (LODO) |", "|---:|---:|---:|"]
    a, b = read_metrics(scratch), read_metrics(lodo)
    for e in range(max(len(a), len(b))):
        cell = lambda rows: f"{rows[e]['valid']['ndcg@10']:.4f}" if e < len(rows) else ""
        lines.append(f"| {e} | {cell(a)} | {cell(b)} |")
    lines += ["", "## Test (`recx eval`: full catalog, history kept, bootstrap 95% CI)", "",
              "| row | epochs | HR@10 | NDCG@10 [95% CI] | MRR |", "|---|---:|---:|---:|---:|"]
    for label, run, rows in (("reo-lm from scratch", scratch, a), ("reo-lm pre-trained (LODO)", lodo, b)):
        t = state["finetune"][run.name]["test"]
        ci = t["ci"].get("ndcg@10", ("", ""))
        lines.append(f"| {label} | {len(rows)} | {t['hr@10']:.4f} | {t['ndcg@10']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] | {t['mrr']:.4f} |")
    lines += ["", "Paired over users (`recx eval --compare`):", "", "```", compare_text(scratch, lodo).rstrip(), "```", ""]
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)


if __name__ == "__main__":
    main()
