"""Repeat-aware scoring on the four real datasets: does the learned history term help?

For each dataset: its repeat rates (how often a target is already in the user's history), then
the best single towers (ID, text, ID + whitened text; SASRec, debiased_ce) trained with and
without ``--history-term``, each evaluated on test with the history kept and excluded (HR@10,
NDCG@10 with bootstrap CIs), and the paired test of each term row against its plain row.

    .venv/bin/python benchmarks/repeats.py run [--dataset ...] [--terms off recency item] [--threads 2]
    .venv/bin/python benchmarks/repeats.py defaults [--dataset amazon-scientific amazon-office]
    .venv/bin/python benchmarks/repeats.py report          # docs/repeats.md from docs/repeats.json

``defaults`` runs the design card's three commands verbatim in a fresh workspace (after the
import): `recx featurize --model minilm`, `recx train --loss debiased_ce`, `recx eval --k 10`.

Workspaces (import + MiniLM store, made with benchmarks/study.py's dataset specs) and runs live
under --work; finished runs are not retrained, so the command can be stopped and rerun.
Results: docs/repeats.json (raw), docs/repeats.md (generated tables).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recx, not an installed one
sys.path.insert(0, str(ROOT / "benchmarks"))

from recx.options import DEFAULT_SEED  # noqa: E402
from study import DATA_ROOT, DATASETS, call, prepare, recx, shown  # noqa: E402

OUT_JSON = ROOT / "docs" / "repeats.json"
OUT_MD = ROOT / "docs" / "repeats.md"
TOWERS = {"id": ("--item-tower", "id"), "text": ("--item-tower", "text", "--whiten"), "id+text": ("--item-tower", "id+text", "--whiten"),
          "id+text-plain": ("--item-tower", "id+text", "--no-whiten")}
TOWER_LABELS = {"id": "ID", "text": "text (whitened)", "id+text": "ID + text (whitened)", "id+text-plain": "ID + text (not whitened)"}


def term_spec(spec: str) -> tuple[str, str]:
    """``recency`` or ``recency:all`` -> (--history-term, --history-gradient); gradient ``term`` by default."""
    mode, _, gradient = spec.partition(":")
    return mode, gradient or "term"


def row_key(tower: str, spec: str) -> str:
    mode, gradient = term_spec(spec)
    return f"{tower}--off" if mode == "off" else f"{tower}--{mode}-{gradient}"


def repeat_rates(dataset_dir: Path) -> dict[str, Any]:
    """How often the item to predict is one the user already has, per split."""
    from recx.data.dataset import SequenceDataset

    ds = SequenceDataset(dataset_dir)
    out: dict[str, Any] = {"users": ds.num_users, "items": ds.num_items}
    for split in ("valid", "test"):
        histories, targets = ds.split(split)
        hits = [t in set(h.tolist()) for h, t in zip(histories, targets)]
        out[f"{split}_repeat_rate"] = float(np.mean(hits))
        out[f"{split}_repeats"] = int(np.sum(hits))
    seen = repeats = 0
    for seq in ds.train_sequences():
        have: set[int] = set()
        for i, item in enumerate(seq.tolist()):
            if i:
                seen += 1
                repeats += item in have
            have.add(item)
    out["train_repeat_rate"] = repeats / max(1, seen)
    out["train_targets"] = seen
    return out


def evaluate(run_dir: Path) -> dict[str, Any]:
    """Test HR@10 / NDCG@10 with CIs, history kept and excluded; per-user NDCG for paired tests."""
    from recx.evalrun import run_detailed

    out: dict[str, Any] = {}
    for excluded in (False, True):
        rec, res, _ = run_detailed(run_dir, ks=(10,), exclude_history=excluded, write=False, device="cpu")
        key = "excluded" if excluded else "kept"
        out[key] = {"metrics": rec["metrics"], "ci95": rec["ci95"]}
        np.save(run_dir / f"per_user_ndcg10_{key}.npy", res.per_user["ndcg@10"])
        np.save(run_dir / f"per_user_hr10_{key}.npy", res.per_user["hr@10"])
    from recx.trainer.loop import load_trained

    model, _, _ = load_trained(run_dir)
    if model.history_term is not None:
        out["learned"] = model.history_term.learned()
    return out


def paired(run_a: Path, run_b: Path, key: str) -> dict[str, Any]:
    from recx.evaluate.stats import paired_test

    load = lambda d: {m: np.load(d / f"per_user_{m.replace('@', '')}_{key}.npy") for m in ("ndcg@10", "hr@10")}  # noqa: E731
    return paired_test(load(run_a), load(run_b))


def run_dataset(name: str, args: argparse.Namespace, state: dict[str, Any]) -> None:
    spec = dataclasses.replace(DATASETS[name], image_encoder=None)  # the text store is all these rows read
    ws = args.work / name
    entry = state.setdefault(name, {"rows": {}})
    entry["prepare_seconds"] = prepare(spec, ws, args.threads)
    entry["repeat_rates"] = repeat_rates(ws / "data")
    for tower, spec_term, seed in itertools.product(args.towers, args.terms, args.seeds):
        mode, gradient = term_spec(spec_term)
        key = row_key(tower, spec_term) + (f"@{seed}" if seed != DEFAULT_SEED else "")
        run_dir = ws / "runs" / f"repeats-{key}"
        row = entry["rows"].setdefault(key, {})
        cmd = recx("train", *TOWERS[tower], "--loss", "debiased_ce", "--history-term", mode,
                   *(["--history-gradient", gradient] if mode != "off" else []), "--batch-size", str(spec.batch_size),
                   "--epochs", str(args.epochs), "--patience", str(args.patience), "--seed", str(seed), "--name", run_dir.name, "--quiet")
        row["command"] = shown(cmd)
        if not (run_dir / "finished.json").is_file():
            if run_dir.exists():  # an interrupted run: continue it
                cmd = recx("train", "--resume", "--run", str(run_dir), "--quiet")
            row["train_wall_seconds"] = round(call(cmd, ws, args.threads, ws / "repeats.log"), 1)
            row["threads"] = args.threads
            row.pop("test", None)
        if "test" not in row:
            row["test"] = evaluate(run_dir)
            finished = json.loads((run_dir / "finished.json").read_text())
            row["best_epoch"], row["epochs_run"] = finished.get("best_epoch"), finished.get("epochs_run")
        save(state)
        print(f"{name} {key}: test NDCG@10 kept {row['test']['kept']['metrics']['ndcg@10']:.4f} "
              f"excluded {row['test']['excluded']['metrics']['ndcg@10']:.4f}", flush=True)
    for key, row in entry["rows"].items():  # every term row against its tower's plain row of the same seed
        tower, term = key.split("--")
        seed = "@" + term.split("@")[1] if "@" in term else ""
        base, run_dir = ws / "runs" / f"repeats-{tower}--off{seed}", ws / "runs" / f"repeats-{key}"
        if not term.startswith("off") and (base / "finished.json").is_file() and "test" in row:
            row["vs_off"] = {k: paired(base, run_dir, k) for k in ("kept", "excluded")}
        save(state)


DESIGN_CARD = (("featurize", "--model", "minilm"), ("train", "--loss", "debiased_ce"), ("eval", "--k", "10"))


def run_defaults(name: str, args: argparse.Namespace, state: dict[str, Any]) -> None:
    """The design card's commands, nothing added, in a workspace of their own."""
    spec = DATASETS[name]
    ws = args.work / f"defaults-{name}"
    entry = state.setdefault("defaults", {}).setdefault(name, {})
    if "test" in entry:
        return
    ws.mkdir(parents=True, exist_ok=True)
    log = ws / "defaults.log"
    if not (ws / "data" / "dataset.json").is_file():
        call(recx("data", "import", spec.importer, str(DATA_ROOT / spec.source), "-o", "data", "--workspace", "."),
             ws, args.threads, log)
    entry["commands"], entry["seconds"] = [], {}
    for argv in DESIGN_CARD:
        cmd = recx(*argv, *(["--quiet"] if argv[0] != "eval" else []))
        if argv[0] == "featurize" and (ws / "stores" / "minilm.h5").is_file():
            continue
        if argv[0] == "train" and any((ws / "runs").glob("*/finished.json")):
            continue
        entry["commands"].append(shown(cmd))
        entry["seconds"][argv[0]] = round(call(cmd, ws, args.threads, log), 1)
    run_dir = next(p.parent for p in sorted((ws / "runs").glob("*/finished.json")))
    result = json.loads((run_dir / "results.json").read_text())
    from recx.trainer.checkpoint import load_run_config

    cfg = load_run_config(run_dir)
    entry["resolved"] = {k: cfg.get(k) for k in ("model", "item_tower", "whiten", "loss", "history_term", "batch_size", "dropout")}
    entry["test"] = {"metrics": result["metrics"], "ci95": result["ci95"], "exclude_history": result["exclude_history"],
                     "history_term_used": result.get("history_term_used")}
    entry["recx_toml"] = (ws / "recx.toml").read_text()
    save(state)
    print(f"defaults {name}: test NDCG@10 {result['metrics']['ndcg@10']:.4f} ({entry['resolved']})", flush=True)


def save(state: dict[str, Any]) -> None:
    out = Path(state.get("state_file", OUT_JSON))
    state["machine"] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                        "threads": state.get("threads")}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({k: v for k, v in state.items() if k != "state_file"}, indent=1) + "\n")
    tmp.replace(out)


TERM_ORDER = ("off", "recency-term", "recency-all", "bias-all", "item-all")


def row_order(key: str) -> tuple[int, int, int, str]:
    """Table order: tower, then seed 42 before other seeds, then off, the default, the rest."""
    tower, _, term = key.partition("--")
    term, _, seed = term.partition("@")
    towers = list(TOWERS)
    return (towers.index(tower) if tower in towers else 99, 1 if seed else 0,
            TERM_ORDER.index(term) if term in TERM_ORDER else 99, seed)


def fmt_ci(block: dict[str, Any], metric: str) -> str:
    lo, hi = block["ci95"][metric]
    return f"{block['metrics'][metric]:.4f} [{lo:.4f}, {hi:.4f}]"


def report(state: dict[str, Any]) -> str:
    lines = ["# Repeat-aware scoring, measured", "",
             "Generated by `benchmarks/repeats.py report` from docs/repeats.json (`benchmarks/repeats.py run` wrote it; "
             "the commands are in the JSON, one per row).", "",
             f"Machine: {state['machine']['processor']}, {state['machine']['cpus']} CPUs; runs used 1 or 2 torch threads (last column), "
             "two jobs side by side at 1 thread each for most rows, so seconds carry that contention (a run stopped and resumed counts only the resumed part). Precision `--precision auto` "
             "(bf16 autocast on this CPU's AVX512-BF16, losses in fp32).",
             "SASRec, `--loss debiased_ce`, seed 42, at most 100 epochs with early stopping on valid NDCG@10 (patience 10); "
             "users per batch as in benchmarks/study.py. Test split, full catalog, pessimistic ties, bootstrap 95% CIs over users. "
             "\"vs off\": the paired test of the row against the same tower without a history term "
             "(difference of mean NDCG@10, sign-flip permutation p).", ""]
    lines += defaults_section(state.get("defaults", {}))
    for name, entry in state.items():
        if not isinstance(entry, dict) or "rows" not in entry:
            continue
        r = entry["repeat_rates"]
        lines += [f"## {name}", "",
                  f"{r['users']:,} users, {r['items']:,} items. Targets already in the user's history: "
                  f"test {r['test_repeat_rate']:.2%} ({r['test_repeats']:,}), valid {r['valid_repeat_rate']:.2%}, "
                  f"training {r['train_repeat_rate']:.2%} of {r['train_targets']:,}.", "",
                  "| tower | history term | HR@10 | NDCG@10 [95% CI] | vs off, NDCG@10 (p) | HR@10 / NDCG@10, history excluded | vs off, excluded (p) | best epoch | train s (threads) |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for key, row in sorted(entry["rows"].items(), key=lambda kv: row_order(kv[0])):
            if "test" not in row:
                continue
            tower, term = key.split("--")
            term, _, seed = term.partition("@")
            default = term == "recency-term"
            term = term.replace("-", ", gradient ") + (f" (seed {seed})" if seed else "")
            term = f"**{term}** (default)" if default and not seed else term
            kept, excl = row["test"]["kept"], row["test"]["excluded"]
            vs = row.get("vs_off", {})
            cmp = lambda k: (f"{vs[k]['ndcg@10']['diff']:+.4f} ({vs[k]['ndcg@10']['p_permutation']:.3f})" if k in vs else "-")  # noqa: E731
            lines.append(f"| {TOWER_LABELS[tower]} | {term} | {kept['metrics']['hr@10']:.4f} | {fmt_ci(kept, 'ndcg@10')} | {cmp('kept')} | "
                         f"{excl['metrics']['hr@10']:.4f} / {excl['metrics']['ndcg@10']:.4f} | {cmp('excluded')} | {row.get('best_epoch')} | "
                         f"{row.get('train_wall_seconds', '-')} ({row.get('threads', 2)}) |")
        learned = [(k, row["test"]["learned"]) for k, row in entry["rows"].items() if "learned" in row.get("test", {})]
        if learned:
            lines += ["", "Learned terms (recency buckets d = 0, 1, 2-3, 4-7, ...; count buckets c = 1, 2, 3-4, ...):", ""]
            for k, values in learned:
                used = "" if "active" not in values else (" (validation kept it)" if values["active"][0] else " (validation turned it off: ranked without it)")
                lines.append(f"- {k}{used}: recency {', '.join(f'{v:+.2f}' for v in values['recency'])}; "
                             f"count {', '.join(f'{v:+.2f}' for v in values['count'])}"
                             + (f"; item propensity mean {values['item_mean'][0]:+.3f}" if "item_mean" in values else ""))
        lines.append("")
    return "\n".join(lines)


def defaults_section(defaults: dict[str, Any]) -> list[str]:
    """The design card's three commands, as a table (also read by benchmarks/study_report.py)."""
    if not defaults:
        return []
    first = next(iter(defaults.values()))
    lines = ["## Defaults: the design card's commands", "",
             "After `recx data import`, nothing but " + ", ".join(f"`{c}`" for c in first.get("commands", []))
             + " in a new workspace (`benchmarks/repeats.py defaults`; results in docs/repeats.json).", "",
             "| dataset | resolved | HR@10 | NDCG@10 [95% CI] | MRR | train s |", "|---|---|---:|---:|---:|---:|"]
    for name, entry in defaults.items():
        r, t = entry["resolved"], entry["test"]
        used = {True: ", kept by validation", False: ", turned off by validation"}.get(t.get("history_term_used"), "")
        resolved = f"{r['model']}, {r['item_tower']}{' (whitened)' if r['whiten'] else ''}, {r['loss']}, history term {r['history_term']}{used}"
        lines.append(f"| {name} | {resolved} | {t['metrics']['hr@10']:.4f} | {fmt_ci(t, 'ndcg@10')} | {t['metrics']['mrr']:.4f} | "
                     f"{entry['seconds'].get('train', '-')} |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("run", "defaults", "merge", "report"))
    ap.add_argument("--state", type=Path, default=OUT_JSON, help="the JSON this process writes (merge: the one merged into docs/)")
    ap.add_argument("--dataset", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--towers", nargs="+", default=["id", "text", "id+text"], choices=list(TOWERS))
    ap.add_argument("--terms", nargs="+", default=["off", "recency", "recency:all"],
                    help="history terms, each MODE or MODE:GRADIENT (--history-term, --history-gradient; gradient term by default)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/recx-repeats"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[DEFAULT_SEED], help="one run per seed (42: rows without a suffix)")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--patience", type=int, default=10)
    args = ap.parse_args()
    args.work = args.work.resolve()
    state = json.loads(OUT_JSON.read_text()) if OUT_JSON.is_file() else {}
    if args.action == "merge":  # a second process's datasets (--state FILE), run beside the first
        other = json.loads(args.state.read_text())
        for name, entry in other.items():
            if isinstance(entry, dict) and "rows" in entry:
                mine = state.setdefault(name, {"rows": {}})
                mine.update({k: v for k, v in entry.items() if k != "rows"})
                mine["rows"].update(entry["rows"])
        state.setdefault("defaults", {}).update(other.get("defaults", {}))
        save(state)
    elif args.state != OUT_JSON:
        state = json.loads(args.state.read_text()) if args.state.is_file() else {}
        state["state_file"] = str(args.state)
    if args.action == "run":
        state["threads"] = args.threads
        t0 = time.time()
        for name in args.dataset:
            run_dataset(name, args, state)
        print(f"done in {time.time() - t0:.0f} s", flush=True)
    elif args.action == "defaults":
        state["threads"] = args.threads
        for name in args.dataset:
            run_defaults(name, args, state)
    OUT_MD.write_text(report(state) + "\n")


if __name__ == "__main__":
    main()
