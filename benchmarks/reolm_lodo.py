"""Reo-LM leave-one-domain-out: pre-train on every shared domain but the target, fine-tune on it.

Rows (MiniLM-L6 backbone, full fine-tuning, the settings of benchmarks/reolm.py):
  1. reo-lm from scratch on the target, text only (--scratch-run reuses an existing run of the
     same settings, e.g. the 6-epoch run of docs/reolm.md);
  2. where the target has images (ml-100k, hm-sample): reo-lm from scratch with the image token;
  3. reo-lm pre-trained with `recx pretrain` on the other domains (amazon-office or
     amazon-scientific, ml-100k with TMDB overviews and posters, hm-sample with product photos,
     the MIND fragment's news text; next-item CE + masked item-text tokens + item-image
     alignment where an image store exists), then fine-tuned on the target for --epochs, with
     the image token where the target has images;
  4. with --text-pretrain: pre-trained on the same domains without any image store, fine-tuned
     without the image token (the text-only row).
Each run is ranked by `recx eval` (full catalog, history kept) and every row is compared with
row 1 by `recx eval --compare` (paired over users).  Every step is reused when its output exists,
so the script can be stopped and rerun.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm_lodo.py --target amazon-scientific --epochs 4 \
        --scratch-run /tmp/recx-reolm/ws-amazon-scientific/runs/scratch-3ep   # the 6-epoch run of docs/reolm.md
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reolm_lodo.py --target ml-100k --pretrain-steps 200 --epochs 8 --text-pretrain
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
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
        cfg.optim.epochs = epochs
        fit(cfg, run_dir=run_dir, resume=(run_dir / "last.pt").is_file(), progress=False)


@dataclass(frozen=True)
class Row:
    """One fine-tuning run on the target: its run name, table label, config overrides, pre-training."""

    name: str
    label: str
    overrides: dict
    pretrain: str | None  # None: from scratch | "images": with the image-alignment term | "text": text only


def plan_rows(target: str, store: Path | None, text_pretrain: bool) -> list[Row]:
    """The rows for ``target``: text-only scratch always; the image token where the target has images."""
    image = {"reo_image": "store", "stores": {"image": str(store)}} if store else {}
    rows = [Row(f"scratch-{target}", "reo-lm from scratch, text only", {}, None)]
    if store:
        rows.append(Row(f"scratch-image-{target}", "reo-lm from scratch, image token", image, None))
    rows.append(Row(f"lodo-{target}", "reo-lm pre-trained (LODO)" + (", image token" if store else ""), image, "images"))
    if text_pretrain:
        rows.append(Row(f"lodo-text-{target}", "reo-lm pre-trained text only (LODO, no image token anywhere)", {}, "text"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="amazon-scientific", choices=list(DOMAINS))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/recx-reolm"))
    ap.add_argument("--pretrain-steps", type=int, default=0, help="pre-training batches (0: one whole epoch over the mixed domains)")
    ap.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs on the target")
    ap.add_argument("--text-pretrain", action="store_true", help="add the text-only row: pre-trained without image stores, "
                    "fine-tuned without the image token")
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

    others = [n for n in DOMAINS if n != target]
    rows = plan_rows(target, stores.get(target), args.text_pretrain)
    ckpts = {"images": work / f"ckpt-lodo-{target}", "text": work / f"ckpt-lodo-text-{target}"}
    for kind in sorted({r.pretrain for r in rows if r.pretrain}):
        key = "pretrain" if kind == "images" else "pretrain_text"
        if key in state:
            continue
        image_stores = [n for n in others if n in stores] if kind == "images" else []
        pcfg = PretrainConfig(domains=[str(dirs[n]) for n in others], image_stores=[str(stores[n]) for n in image_stores],
                              lm=SETTINGS["lm"], item_tokens=SETTINGS["item_tokens"], user_tokens=SETTINGS["user_tokens"],
                              max_len=SETTINGS["max_len"], batch_size=SETTINGS["batch_size"], lr=SETTINGS["encoder_lr"],
                              temperature=SETTINGS["temperature"], epochs=1, steps_per_epoch=args.pretrain_steps)
        ckpt = ckpts[kind]
        t0 = time.perf_counter()
        pretrain(pcfg, ckpt, resume=(ckpt / "state.pt").is_file(), progress=False)
        logged = [json.loads(line) for line in (ckpt / "metrics.jsonl").read_text().splitlines() if line.strip()]
        state[key] = {"domains": others, "image_stores": image_stores, "steps": logged[-1]["steps"],
                      "wall_s": time.perf_counter() - t0, "metrics": logged[-1]}
        save()

    runs = work / "runs"
    run_dirs = {}
    for row in rows:
        run_dir = runs / row.name
        if row.pretrain is None and row.overrides == {} and args.scratch_run is not None:
            run_dir = args.scratch_run
        else:
            init = {"init": str(ckpts[row.pretrain])} if row.pretrain else {}
            settings = {**SETTINGS, **row.overrides, **init}
            fit_epochs(TrainConfig.from_options(dataset=str(dirs[target]), runs_dir=str(runs), name=row.name, **settings), run_dir, args.epochs)
        run_dirs[row.name] = run_dir
    state["finetune"] = {run_dirs[r.name].name: {"test": metrics_of(evaluate(run_dirs[r.name]))} for r in rows}
    save()
    out = args.out or ROOT / "docs" / f"reolm-lodo-{target}.md"
    write_doc(out, args, state, rows, run_dirs)
    print(f"wrote {out}")


def pretrain_line(title: str, pre: dict) -> str:
    m = pre["metrics"]
    losses = ", ".join(f"{k} {m[k]:.3f}" for k in ("next_item", "mlm", "align", "loss") if k in m)
    return (f"{title}: `recx pretrain` over {', '.join(pre['domains'])}, mixed in every batch; image-alignment term on "
            f"{', '.join(pre['image_stores']) or 'none'}" + (" (efficientnet-lite0 stores)" if pre["image_stores"] else "") +
            f"; {pre['steps']} steps of {SETTINGS['batch_size']} users in {pre['wall_s'] / 60:.1f} min "
            f"({m.get('tokens_per_s', 0):.0f} tokens/s); mean losses {losses}.")


def write_doc(out: Path, args: argparse.Namespace, state: dict, rows: list[Row], run_dirs: dict[str, Path]) -> None:
    from recx.trainer.checkpoint import read_metrics

    flags = f"--target {args.target} --pretrain-steps {args.pretrain_steps} --epochs {args.epochs}"
    flags += " --text-pretrain" if args.text_pretrain else ""
    flags += f" --scratch-run {args.scratch_run}" if args.scratch_run else ""
    lines = [f"# Reo-LM, leave one domain out: target {args.target}", "",
             f"Generated by `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')} python benchmarks/reolm_lodo.py {flags}` on "
             f"{platform.machine()}, {os.cpu_count()} cores (shared with the other jobs of the session), {time.strftime('%Y-%m-%d', time.gmtime())}.", "",
             "Settings (every row): " + ", ".join(f"`{k}={v}`" for k, v in SETTINGS.items() if k not in ("epochs", "reo_image")) +
             "; `reo_image=none` unless the row says image token (then `reo_image=store` with the target's efficientnet-lite0 store).", ""]
    for key, title in (("pretrain", "Pre-training"), ("pretrain_text", "Text-only pre-training")):
        if key in state and any((r.pretrain == "images") == (key == "pretrain") for r in rows if r.pretrain):
            lines += [pretrain_line(title, state[key]), ""]
    logs = {r.name: read_metrics(run_dirs[r.name]) for r in rows}
    lines += ["## Validation NDCG@10 per fine-tuning epoch", "", "| epoch | " + " | ".join(r.label for r in rows) + " |",
              "|---:|" + "---:|" * len(rows)]
    for e in range(max(len(v) for v in logs.values())):
        cells = [f"{logs[r.name][e]['valid']['ndcg@10']:.4f}" if e < len(logs[r.name]) else "" for r in rows]
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lines += ["", "## Test (`recx eval`: full catalog, history kept, bootstrap 95% CI)", "",
              "| row | epochs | HR@10 | NDCG@10 [95% CI] | MRR |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        t = state["finetune"][run_dirs[r.name].name]["test"]
        ci = t["ci"].get("ndcg@10", ("", ""))
        lines.append(f"| {r.label} | {len(logs[r.name])} | {t['hr@10']:.4f} | {t['ndcg@10']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] | {t['mrr']:.4f} |")
    base = run_dirs[rows[0].name]
    for r in rows[1:]:
        lines += ["", f"{r.label} against {rows[0].label}, paired over users (`recx eval --compare`):", "", "```",
                  compare_text(base, run_dirs[r.name]).rstrip(), "```"]
    lines.append("")
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)


if __name__ == "__main__":
    main()
