"""Describe a dataset directory: sizes, sequence lengths, modality coverage, popularity skew."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from recx.data.dataset import SequenceDataset

PERCENTILES = (5, 25, 50, 75, 95, 100)


def describe(ds: SequenceDataset) -> dict[str, Any]:
    """Summary statistics of ``ds`` (all interactions, not only the training part)."""
    lengths = np.diff(ds.offsets)
    counts = np.bincount(ds.items, minlength=ds.num_items + 1)[1:]
    top = max(1, int(np.ceil(0.01 * ds.num_items)))
    total = int(counts.sum())
    text, image = ds.has_text()[1:], ds.has_image()[1:]
    return {
        "name": ds.name,
        "format": (ds.meta.get("source") or {}).get("format"),
        "users": ds.num_users,
        "items": ds.num_items,
        "interactions": int(ds.items.size),
        "density": float(ds.items.size / max(1, ds.num_users * ds.num_items)),
        "sequence_length": {f"p{p}": float(np.percentile(lengths, p)) for p in PERCENTILES} | {"mean": float(lengths.mean())},
        "items_never_seen": int((counts == 0).sum()),
        "top1pct_items": top,
        "top1pct_share": float(np.sort(counts)[::-1][:top].sum() / total) if total else 0.0,
        "with_text": int(text.sum()),
        "with_image": int(image.sum()),
        "with_both": int((text & image).sum()),
        "with_neither": int((~text & ~image).sum()),
        "fingerprint": ds.fingerprint[:12],
    }


def headline(d: dict[str, Any]) -> str:
    """The counts a paper's dataset table gives, from :func:`describe`."""
    return (
        f"dataset: {d['users']:,} users, {d['items']:,} items, {d['interactions']:,} interactions, "
        f"average length {d['sequence_length']['mean']:.2f}"
    )


def format_info(d: dict[str, Any]) -> str:
    n = max(1, d["items"])
    sl = d["sequence_length"]
    lines = [
        f"dataset       {d['name']} ({d['format']})  fingerprint {d['fingerprint']}",
        f"users         {d['users']:,}",
        f"items         {d['items']:,}  ({d['items_never_seen']:,} never interacted)",
        f"interactions  {d['interactions']:,}  (density {d['density']:.5f})",
        "seq length    " + "  ".join(f"{k}={v:g}" for k, v in sl.items() if k != "mean") + f"  mean={sl['mean']:.2f}",
        f"text          {d['with_text']:,} items ({d['with_text'] / n:.1%})",
        f"image         {d['with_image']:,} items ({d['with_image'] / n:.1%})",
        f"both/neither  {d['with_both']:,} / {d['with_neither']:,}",
        f"popularity    top 1% of items ({d['top1pct_items']:,}) hold {d['top1pct_share']:.1%} of interactions",
    ]
    return "\n".join(lines)


def plot_info(ds: SequenceDataset, path: str | os.PathLike) -> Path:
    """Two panels: sequence-length histogram and item popularity (rank vs count, log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = np.diff(ds.offsets)
    counts = np.sort(np.bincount(ds.items, minlength=ds.num_items + 1)[1:])[::-1]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.hist(lengths, bins=min(50, max(5, int(lengths.max() - lengths.min() + 1))), color="#4477aa")
    a.set_xlabel("sequence length")
    a.set_ylabel("users")
    a.set_yscale("log")
    nz = counts[counts > 0]
    b.loglog(np.arange(1, len(nz) + 1), nz, color="#cc3311")
    b.set_xlabel("item rank")
    b.set_ylabel("interactions")
    fig.suptitle(f"{ds.name}: {ds.num_users:,} users, {ds.num_items:,} items, {ds.items.size:,} interactions")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}{out.suffix}")
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
