"""Where a SASRec training step spends its time, and what share of this CPU's matmul peak it
reaches, in fp32 and in bf16 autocast -> docs/step_profile.json and docs/step_profile.md.

Per precision and tower (recx's defaults otherwise, amazon-scientific, the workspace
benchmarks/study.py prepares):
- ``epoch_s``: seconds per training epoch without the profiler (the median of epochs 2-3 of a
  3-epoch run; validation excluded, as in metrics.jsonl);
- under torch.profiler (two epochs, FLOPs counted by the profiler for every matmul), the share
  of the training time in the loop's four labelled parts (``recx.batch``: building the batch;
  ``recx.forward``: model and loss; ``recx.backward``; ``recx.optimizer``: clipping, AdamW,
  schedule) and, across them, in matmuls (mm / addmm / bmm / linear / attention), in the item
  table gather and in everything else;
- matmul GFLOP/s while in matmuls, and the step's share of the matmul peak:
  matmul FLOPs per epoch / (``epoch_s`` x peak of the dtype the matmuls ran in).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/step_profile.py --threads 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from study import DATASETS, prepare  # noqa: E402
from train_vs_recbole import matmul_peak  # noqa: E402

PARTS = ("recx.batch", "recx.forward", "recx.backward", "recx.optimizer")
MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_scaled_dot_product_flash_attention_for_cpu",
           "aten::_scaled_dot_product_flash_attention_for_cpu_backward")
GATHERS = ("aten::embedding", "aten::embedding_dense_backward", "aten::index_select", "aten::index", "aten::index_add_",
           "aten::embedding_backward")


def config(ws: Path, tower: str, precision: str, epochs: int, runs: Path, name: str, hidden: int = 64):
    from recx.trainer import TrainConfig

    opts: dict[str, Any] = dict(dataset=str(ws / "data"), runs_dir=str(runs), name=name, item_tower=tower, precision=precision,
                                epochs=epochs, patience=0, hidden=hidden)
    if "text" in tower:
        opts["stores"] = {"text": str(ws / "stores" / "minilm.h5")}
    return TrainConfig.from_options(**opts)


def epoch_seconds(ws: Path, tower: str, precision: str, runs: Path, hidden: int) -> list[float]:
    from recx.trainer import fit

    run = fit(config(ws, tower, precision, 3, runs, f"plain-{tower}-{precision}-{hidden}", hidden), progress=False).run_dir
    return [json.loads(line)["seconds"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def profile(ws: Path, tower: str, precision: str, runs: Path, hidden: int) -> dict[str, Any]:
    """Two profiled epochs -> time per labelled part and per kind of op, matmul FLOPs (per epoch)."""
    import torch
    from torch.profiler import ProfilerActivity

    from recx.trainer import fit

    with torch.profiler.profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        fit(config(ws, tower, precision, 2, runs, f"profiled-{tower}-{precision}-{hidden}", hidden), progress=False)
    parts: dict[str, float] = defaultdict(float)
    kinds: dict[str, float] = defaultdict(float)
    own: dict[str, float] = defaultdict(float)  # self time per op
    flops = 0.0
    for ev in prof.events():
        label = _part_of(ev)
        if label is None:
            continue  # validation, checkpointing, set-up
        if ev.name in PARTS:
            parts[ev.name] += ev.cpu_time_total
            continue
        own[ev.name] += ev.self_cpu_time_total
        kind = "matmul" if ev.name in MATMULS else "gather" if ev.name in GATHERS else None
        if kind and not _inside(ev, MATMULS + GATHERS):  # count a kernel once, not again for its callees
            kinds[kind] += ev.cpu_time_total
        if ev.name in MATMULS and not _inside(ev, MATMULS):
            flops += ev.flops or 0
    total = sum(parts.values())
    us = 1e6 * 2  # two epochs, microseconds
    return {"train_s_per_epoch_profiled": total / us,
            "parts": {k: parts[k] / total for k in PARTS},
            "kinds": {"matmul": kinds["matmul"] / total, "gather": kinds["gather"] / total,
                      "other": 1 - (kinds["matmul"] + kinds["gather"]) / total},
            "matmul_flops_per_epoch": flops / 2, "matmul_gflops_while_in_matmul": flops / max(kinds["matmul"], 1) / 1e3,
            "top_ops": [[name, t / total] for name, t in sorted(own.items(), key=lambda kv: -kv[1])[:10]]}


def _part_of(ev) -> str | None:
    node = ev
    while node is not None:
        if node.name in PARTS:
            return node.name
        node = node.cpu_parent
    return None


def _inside(ev, names: tuple[str, ...]) -> bool:
    node = ev.cpu_parent
    while node is not None:
        if node.name in names:
            return True
        node = node.cpu_parent
    return False


def main(argv: list[str] | None = None) -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/recx-study"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--towers", default="id,id+text")
    p.add_argument("--hidden", default="64,256", help="widths (recx's default is 64)")
    p.add_argument("--json", type=Path, default=ROOT / "docs" / "step_profile.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ws = args.work / "amazon-scientific"
    prepare(DATASETS["amazon-scientific"], ws, args.threads)
    peak = matmul_peak(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for hidden, tower, precision in itertools.product(map(int, args.hidden.split(",")), args.towers.split(","), ("fp32", "bf16")):
            seconds = epoch_seconds(ws, tower, precision, Path(tmp), hidden)
            prof = profile(ws, tower, precision, Path(tmp), hidden)
            epoch_s = statistics.median(seconds[1:])
            peak_gflops = peak["bf16_1024" if precision == "bf16" else "fp32_2048"]
            row = {"hidden": hidden, "tower": tower, "precision": precision, "epoch_s": epoch_s, "epoch_s_all": seconds, **prof,
                   "share_of_peak": prof["matmul_flops_per_epoch"] / epoch_s / (peak_gflops * 1e9),
                   "matmul_efficiency": prof["matmul_gflops_while_in_matmul"] / peak_gflops}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "epoch_s_all"}), flush=True)
    out = {"command": "benchmarks/step_profile.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "threads": args.threads, "torch": torch.__version__,
           "matmul_gflops": peak, "when": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    write_markdown(ROOT / "docs" / "step_profile.md", markdown(out))


def write_markdown(path: Path, table: str) -> None:
    """Replace the generated part of ``path``, keeping the text written around it."""
    begin, end = "<!-- generated by benchmarks/step_profile.py: begin -->", "<!-- generated by benchmarks/step_profile.py: end -->"
    text = path.read_text() if path.is_file() else f"{begin}\n{end}\n"
    if begin not in text:
        text = f"{begin}\n{end}\n" + text
    head, rest = text.split(begin, 1)
    path.write_text(head + begin + "\n" + table + end + rest.split(end, 1)[1])


def markdown(out: dict[str, Any]) -> str:
    peak = out["matmul_gflops"]
    lines = ["# Where a SASRec training step goes (amazon-scientific)", "",
             f"Generated by `{out['command']}` on {out['machine']}, {out['threads']} torch threads, torch {out['torch']}, {out['when']}. "
             f"Matmul peak: fp32 {peak['fp32_2048']:.0f} GFLOP/s (2048³), bf16 {peak['bf16_1024']:.0f} (1024³). "
             "Epoch seconds are measured without the profiler; the shares come from a profiled run of the same settings.", "",
             "| hidden | tower | precision | s / epoch | batch | forward | backward | optimizer | in matmuls | in gathers | elsewhere | matmul GFLOP/s (share of peak) | step's share of peak |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in out["rows"]:
        pr, k = r["parts"], r["kinds"]
        lines.append(f"| {r['hidden']} | {r['tower']} | {r['precision']} | {r['epoch_s']:.2f} | " + " | ".join(f"{pr[x]:.0%}" for x in PARTS) + " | "
                     + f"{k['matmul']:.0%} | {k['gather']:.0%} | {k['other']:.0%} | {r['matmul_gflops_while_in_matmul']:.0f} "
                     f"({r['matmul_efficiency']:.0%}) | {r['share_of_peak']:.0%} |")
    lines += ["", "The ops with the most time of their own (share of the training time):", ""]
    for r in out["rows"]:
        ops = ", ".join(f"{name.removeprefix('aten::')} {share:.0%}" for name, share in r["top_ops"][:8])
        lines.append(f"- hidden {r['hidden']}, {r['tower']}, {r['precision']}: {ops}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
