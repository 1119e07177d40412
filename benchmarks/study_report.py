"""docs/results.md from `recx study`'s outputs (benchmarks/study.py keeps them in docs/study/<dataset>/),
next to the hand-run numbers they replace (docs/repeats.json; the earlier study's docs/study/<dataset>.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from recx.study.report import HEADER, table_rows  # noqa: E402

DOCS = REPO / "docs"
# Published on the same amazon-scientific split (UniSRec files) and protocol (RecBole full
# ranking, history kept): MISSRec (Wang et al., MM 2023), Table 2.  Its "ID, from scratch" row
# is not an ID-only model: the reference log the authors publish for it
# (reference_log/full/Scientific/ID1/PT0) runs with modal_type img_text, i.e. ID embeddings added
# to projected CLIP text and image features, hidden 300, full CE over cosine / 0.07.
MISSREC_SCIENTIFIC = [
    ("MISSRec, ID + text + image features, from scratch", 0.1282, 0.0711),
    ("MISSRec, text only (pre-trained)", 0.1278, 0.0658),
    ("MISSRec, ID + pre-trained", 0.1360, 0.0753),
]
# the study's towers -> the hand-run rows of the same tower, with their labels
HAND_RUN_REPEATS = {"id": {"id--recency-term": "id"}, "text": {"text--recency-term": "text (whitened)"},
                    "id+text": {"id+text-plain--recency-term": "id+text", "id+text--recency-term": "id+text (whitened)"}}
HAND_RUN_STUDY = {"id": {"sasrec-id-debiased_ce": "id"},
                  "text": {"sasrec-text-debiased_ce": "text", "sasrec-textw-debiased_ce": "text (whitened)"},
                  "id+text": {"sasrec-id+text-debiased_ce": "id+text", "sasrec-id+textw-debiased_ce": "id+text (whitened)"}}


def ci_text(metrics: dict[str, float], ci: dict[str, list[float]], key: str = "ndcg@10") -> str:
    return f"{metrics[key]:.4f} [{ci[key][0]:.4f}, {ci[key][1]:.4f}]"


def hand_run_rows(name: str, results: dict[str, Any]) -> list[str]:
    """Each study candidate next to the hand-run rows of the same tower."""
    repeats = json.loads((DOCS / "repeats.json").read_text()).get(name, {}).get("rows", {}) if (DOCS / "repeats.json").is_file() else {}
    old_path = DOCS / "study" / f"{name}.json"
    old = json.loads(old_path.read_text())["rows"] if old_path.is_file() else {}
    lines = ["| tower | `recx study`: best trial, mean of seeds | hand-run, defaults + history term, seed 42 (docs/repeats.md) | "
             "hand-run study, dropout grid, no history term (docs/results-hand-run.md) |", "|---|---|---|---|"]
    for c in results["candidates"]:
        if c["model"] != "sasrec" or c["loss"] != "debiased_ce":
            continue
        rep = "; ".join(f"{label}: {ci_text(repeats[k]['test']['kept']['metrics'], repeats[k]['test']['kept']['ci95'])}"
                        for k, label in HAND_RUN_REPEATS.get(c["tower"], {}).items() if k in repeats)
        before = "; ".join(f"{label}: {ci_text(old[k]['test']['kept']['metrics'], old[k]['test']['kept']['ci95'])}"
                           for k, label in HAND_RUN_STUDY.get(c["tower"], {}).items() if k in old)
        lines.append(f"| {c['label']} | {ci_text(c['metrics'], c['ci95'])} | {rep or '-'} | {before or '-'} |")
    return lines


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def parallel_lines(folder: Path) -> list[str]:
    """One process with 2 threads against 2 worker processes with 1 thread (benchmarks/study.py parallel)."""
    path = folder / "parallel.json"
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())["rows"]
    lines = ["Workers on this machine (`benchmarks/study.py parallel`: the same small study, towers id, each time in a new storage):", "",
             "| processes x threads | wall | trials (complete + pruned) | trial training | test NDCG@10 (best trial) |", "|---|---:|---|---:|---:|"]
    for r in rows:
        t = r["trials"]
        lines.append(f"| {r['workers']} x {r['threads_per_worker']} | {r['wall_seconds']:.0f} s | {t.get('COMPLETE', 0)} + {t.get('PRUNED', 0)} "
                     f"| {r['trial_seconds']:.0f} s | {r['test_ndcg@10']:.4f} |")
    return lines + [""]


def dataset_section(name: str, folder: Path) -> list[str]:
    results = json.loads((folder / "results.json").read_text())
    calls = json.loads((folder / "run.json").read_text())["calls"] if (folder / "run.json").is_file() else []
    trials = sum(sum(c["trials"].values()) for c in results["candidates"])
    minutes = sum(c["search_seconds"] for c in results["candidates"]) / 60
    lines = [f"## {name}", "", f"**Verdict.** {results['verdict']}", "", *[f"- {p['sentence']}" for p in results["pairs"]], "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER), *["| " + " | ".join(r) + " |" for r in table_rows(results)], ""]
    lines += [f"{trials} trials, {minutes:.0f} minutes of trial training in all (the search; seed replicas and tests come on top). "
              "The calls, each `recx study` plus one `recx study --worker` beside it (benchmarks/study.py run --workers):", "",
              *[f"- `{c['command']}`: {duration(c['wall_seconds'])} wall, {c['workers']} process(es) of {c['threads_per_worker']} "
                f"torch thread(s), {c['machine']['cpus']}-core {c['machine']['processor']}, started {c['started']}"
                + "".join(f"; {c[k]}" for k in ("killed", "note") if c.get(k)) + "." for c in calls], ""]
    lines += parallel_lines(folder)
    lines += [f"Best trials: see docs/study/{name}/report.md; the rendered report: docs/study/{name}/report.html "
              f"(screenshot: ![report](img/study-{name}.png)).", ""]
    lines += ["Next to the hand-run numbers (test NDCG@10 [95% CI], history kept):", "", *hand_run_rows(name, results), ""]
    if name == "amazon-scientific":
        best = results["candidates"][0]
        lines += ["Against published numbers on the same split and protocol:", "", "| model | HR@10 | NDCG@10 |", "|---|---:|---:|",
                  *[f"| {n} (published) | {r:.4f} | {v:.4f} |" for n, r, v in MISSREC_SCIENTIFIC],
                  f"| recx study's best: {best['label']} | {best['metrics']['hr@10']:.4f} | {best['metrics']['ndcg@10']:.4f} |", ""]
    return lines


def write_report(out: Path) -> None:
    """docs/results.md: every dataset that has a kept `recx study`, the design card's defaults, links."""
    sections = [p for p in sorted((DOCS / "study").iterdir()) if (p / "results.json").is_file()] if (DOCS / "study").is_dir() else []
    lines = [
        "# Results: which item tower, by `recx study`", "",
        "Generated by `benchmarks/study_report.py` from the outputs `recx study` wrote through `benchmarks/study.py run` "
        "(kept in docs/study/<dataset>/: results.json, report.md, report.html, run.json with the commands).", "",
        "Regenerate: `.venv/bin/python benchmarks/study.py run --dataset amazon-scientific --budget-minutes 120 --trials 30 "
        "--seeds 3 --workers 2 --threads 1`, then `.venv/bin/python benchmarks/study.py report` and "
        "`.venv/bin/python benchmarks/study.py screenshot`.", "",
        "Protocol: leave-one-out (valid = second-to-last item, test = last), the full catalog ranked for every user, history "
        "kept, pessimistic ties; a candidate's metric is the per-user mean over its seeds; 95% bootstrap CIs over users "
        "(1,000 resamples); paired sign-flip p-values over the same users. Every trial trains with the study's fixed "
        "options and recx's defaults otherwise (history term recency, bf16 autocast where the CPU has native bf16, losses in fp32).", "",
    ]
    for folder in sections:
        lines += dataset_section(folder.name, folder)
    if (DOCS / "repeats.json").is_file():
        sys.path.insert(0, str(REPO / "benchmarks"))
        from repeats import defaults_section

        lines += defaults_section(json.loads((DOCS / "repeats.json").read_text()).get("defaults", {}))
    lines += ["## Earlier, hand-run", "",
              "docs/results-hand-run.md keeps the four-dataset IDvs.MoRec tables of the hand-run study (a dropout grid per row, "
              "BCE vs debiased CE, tuned blocks, ensembles; before the history term), discussed in docs/results-notes.md; "
              "docs/results-previous.md holds the run before that.", ""]
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(out)
    print(f"wrote {out}")
