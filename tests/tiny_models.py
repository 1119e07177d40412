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
