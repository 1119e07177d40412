"""Fixtures shared by every test folder: tiny local models, no downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import recx  # noqa: F401 - the torchvision guard before timm / open_clip
from tiny_models import WORDS, save_bert_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with a handwritten vocab, saved to a folder."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    save_bert_tokenizer(folder)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).eval().save_pretrained(str(folder))
    return folder
