"""Builders of tiny local models and tokenizers shared by the test folders (no downloads)."""

from __future__ import annotations

from pathlib import Path

WORDS = "red blue green widget gadget sensor cable roll grit sanding tape glue acid lab glass steel".split()


def save_bert_tokenizer(folder: Path):
    """A WordPiece tokenizer over WORDS, saved to ``folder``."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n", encoding="utf-8")
    tok = BertTokenizer(vocab=str(vocab))  # transformers 5.x ignores vocab_file=
    tok.save_pretrained(str(folder))
    return tok


def save_tiny_bert(folder: Path, words: list[str] | None = None, hidden: int = 32, layers: int = 2, heads: int = 2, max_positions: int = 256, seed: int = 0):
    """A randomly initialised BERT (``hidden`` wide, ``layers`` blocks) and a WordPiece tokenizer
    over ``words`` (default WORDS) saved to ``folder``, loadable with AutoModel / AutoTokenizer."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    words = sorted(set(words or WORDS))
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n", encoding="utf-8")
    tok = BertTokenizer(vocab=str(vocab))
    tok.save_pretrained(str(folder))
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(words) + 5, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                     intermediate_size=2 * hidden, max_position_embeddings=max_positions)
    BertModel(cfg).save_pretrained(str(folder))
    return tok


def write_random_image_store(ds, path: Path, dim: int = 8, seed: int = 0) -> Path:
    """A finished random image store of ``ds`` (rows of items that have an image)."""
    import numpy as np

    from recx.featurize.store import StoreWriter

    rows = np.flatnonzero(ds.has_image())
    w = StoreWriter(path, ds.num_items + 1, dim, {"modality": "image", "catalog_fingerprint": ds.catalog_fingerprint, "item_count": ds.num_items}, planned=len(rows))
    w.write_rows(rows, np.random.default_rng(seed).normal(size=(len(rows), dim)).astype(np.float32))
    return w.finish()
