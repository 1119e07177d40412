"""results.json -> report.md and a self-contained report.html (plots embedded as PNG data URIs)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from recx.artifacts import atomic_write_text

REPORT_MD = "report.md"
REPORT_HTML = "report.html"


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The verdict table: one row per candidate, best first."""
    rows = []
    for rank, c in enumerate(results["candidates"], 1):
        m, ci = c["metrics"], c["ci95"]
        trials = c["trials"]
        rows.append([
            str(rank), c["label"], f"{m['ndcg@10']:.4f} [{ci['ndcg@10'][0]:.4f}, {ci['ndcg@10'][1]:.4f}]", f"{m['hr@10']:.4f}",
            f"{m['mrr']:.4f}", f"{c['seed_mean']:.4f} ± {c['seed_sd']:.4f} ({len(c['seeds'])})",
            f"{trials.get('COMPLETE', 0)} + {trials.get('PRUNED', 0)} pruned", f"{c['search_seconds'] / 60:.1f}",
            f"{c['best_trial']['valid']:.4f}",
        ])
    return rows


HEADER = ["#", "candidate", "test NDCG@10 [95% CI]", "HR@10", "MRR", "NDCG@10 per seed: mean ± sd (n)", "trials",
          "search min", "best valid"]


def params_line(c: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(c["best_trial"]["params"].items()))


def markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        f"# recx study: {results['dataset_name']}", "",
        f"**Verdict.** {results['verdict']}", "",
        *[f"- {p['sentence']}" for p in results["pairs"]], "",
        "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
        *["| " + " | ".join(r) + " |" for r in table_rows(results)], "",
        f"Test split, full catalog, history kept, pessimistic ties. Each candidate's metric is the mean over seeds {s['seeds']} of its "
        "best trial (per user, then over users); the interval is a 1,000-resample bootstrap over users; p-values are paired "
        "sign-flip tests over the same users. Trials: TPE search on validation "
        f"NDCG@10, at most {s['trials']} per candidate" + (f", {s['budget_minutes']:g} training minutes in all" if s["budget_minutes"] else "")
        + f"; fixed options {s['fixed'] or 'none'}.", "",
        "## Best trial of each candidate", "",
        *[f"- **{c['label']}** (trial {c['best_trial']['number']}, `{c['best_trial']['run']}`): {params_line(c)}; searched "
          + "; ".join(f"{k} {v}" for k, v in c["space"].items()) for c in results["candidates"]], "",
        f"Machine: {results['machine']}.", "",
    ]
    return "\n".join(lines)


def figures(results: dict[str, Any]) -> dict[str, bytes]:
    """PNG plots: test NDCG@10 with CIs, the best trials' validation curves, each search's history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cands = results["candidates"]
    out: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.45 * len(cands)))
    for i, c in enumerate(reversed(cands)):
        lo, hi = c["ci95"]["ndcg@10"]
        mean = c["metrics"]["ndcg@10"]
        ax.errorbar(mean, i, xerr=[[mean - lo], [hi - mean]], fmt="o", color="tab:blue", capsize=4)
        ax.scatter([s["ndcg@10"] for s in c["seeds"]], [i] * len(c["seeds"]), marker="|", color="tab:gray", s=120, zorder=3)
    ax.set_yticks(range(len(cands)), [c["label"] for c in reversed(cands)])
    ax.set_xlabel("test NDCG@10 (95% CI; ticks: seeds)")
    out["test"] = _png(fig, plt)

    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for c in cands:
        ax.plot(range(len(c["curve"])), c["curve"], label=c["label"])
    ax.set_xlabel("validation")
    ax.set_ylabel("valid NDCG@10")
    ax.set_title("best trial of each candidate", fontsize=9)
    ax.legend(fontsize=8)
    out["curves"] = _png(fig, plt)

    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for k, c in enumerate(cands):
        color = f"C{k}"
        done = [h for h in c["history"] if h["value"] is not None]
        ax.scatter([h["number"] for h in done if h["state"] == "COMPLETE"], [h["value"] for h in done if h["state"] == "COMPLETE"],
                   color=color, s=18, label=c["label"])
        ax.scatter([h["number"] for h in done if h["state"] == "PRUNED"], [h["value"] for h in done if h["state"] == "PRUNED"],
                   color=color, s=18, marker="x")
        best, line = float("-inf"), []
        for h in sorted(done, key=lambda h: h["number"]):
            if h["state"] == "COMPLETE":
                best = max(best, h["value"])
            line.append((h["number"], best if best > float("-inf") else None))
        ax.plot([n for n, b in line if b is not None], [b for _, b in line if b is not None], color=color, lw=1)
    ax.set_xlabel("trial (x: pruned, at its last validation)")
    ax.set_ylabel("valid NDCG@10")
    ax.legend(fontsize=8)
    out["search"] = _png(fig, plt)
    return out


def _png(fig: Any, plt: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


CSS = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse;font-size:14px}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(2),th:nth-child(2){text-align:left}"
       ".verdict{font-size:1.15em;background:#eef5ff;padding:.6em 1em;border-left:4px solid #2a6fd6}img{max-width:100%}")


def html_page(results: dict[str, Any], pngs: dict[str, bytes]) -> str:
    e = html.escape
    img = {k: f'<img alt="{k}" src="data:image/png;base64,{base64.b64encode(v).decode()}">' for k, v in pngs.items()}
    table = ("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in HEADER) + "</tr>"
             + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table_rows(results)) + "</table>")
    s = results["settings"]
    best = "".join(f"<li><b>{e(c['label'])}</b> (trial {c['best_trial']['number']}): {e(params_line(c))}</li>" for c in results["candidates"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>recx study: {e(results['dataset_name'])}</title>"
            f"<style>{CSS}</style></head><body><h1>recx study: {e(results['dataset_name'])}</h1>"
            f"<p class='verdict'>{e(results['verdict'])}</p><ul>"
            + "".join(f"<li>{e(p['sentence'])}</li>" for p in results["pairs"]) + f"</ul>{table}"
            f"<p>Test split, full catalog, history kept; mean over seeds {e(str(s['seeds']))}; 95% bootstrap CI over users; "
            f"paired sign-flip p-values. At most {s['trials']} trials per candidate"
            + (f", {s['budget_minutes']:g} training minutes in all" if s["budget_minutes"] else "") + ".</p>"
            f"<h2>Test NDCG@10</h2>{img['test']}<h2>Validation curves</h2>{img['curves']}<h2>Searches</h2>{img['search']}"
            f"<h2>Best trials</h2><ul>{best}</ul><p><small>{e(str(results['machine']))}</small></p></body></html>\n")


def write_reports(results: dict[str, Any], out: Path) -> None:
    atomic_write_text(out / REPORT_MD, markdown(results))
    atomic_write_text(out / REPORT_HTML, html_page(results, figures(results)))
