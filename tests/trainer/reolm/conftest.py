"""Fixtures for the Reo-LM tests: a synthetic dataset and a tiny BERT whose vocabulary covers it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tiny_models import save_tiny_bert

KEYS = ["adjective", "colour", "material", "category", "brand", "size"]


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from recx.data.synth import synthesize

    out = tmp_path_factory.mktemp("reolm") / "syn"
    synthesize(out, num_items=60, num_users=200, seed=0, image_size=16)
    return out


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory, synth_dir) -> Path:
    """A tiny BERT whose WordPiece vocabulary holds every word of the synthetic item texts."""
    from recx.data.dataset import SequenceDataset
    from recx.trainer.reolm.tokens import item_texts

    words = set(KEYS) | {":", ";", ",", "."}
    for t in item_texts(SequenceDataset(synth_dir))[1:]:
        words |= set(re.findall(r"\w+", (t or "").lower()))
    folder = tmp_path_factory.mktemp("lm")
    save_tiny_bert(folder, sorted(words), hidden=32, layers=2, max_positions=256)
    return folder


@pytest.fixture(scope="session")
def other_lm_dir(tmp_path_factory) -> Path:
    """Another tiny BERT: a different vocabulary (tokenizer) and width."""
    folder = tmp_path_factory.mktemp("other-lm")
    save_tiny_bert(folder, None, hidden=16, layers=1, max_positions=128)
    return folder

