"""Fixtures shared by every test folder: tiny local models, no downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import recx  # noqa: F401 - the torchvision guard before timm / open_clip
from tiny_models import WORDS, save_bert_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# "auto" precision picks bf16 on CPUs with native bf16 (and featurize keeps it where it measures
# faster, which depends on the load): pin fp32 so results do not depend on the CPU or its load;
# the tests of the bf16 paths ask for bf16 explicitly
os.environ["RECX_CPU_BF16"] = "off"


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
