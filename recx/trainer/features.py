"""Frozen item features for the trainer: an H5 store read and checked against the dataset.

The SASRec-family feature towers and Reo-LM's image token both read stores through
:func:`load_store_features`; tests pass another :data:`StoreLoader` to build towers from arrays.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from recx.data.dataset import SequenceDataset

StoreLoader = Callable[[str, SequenceDataset, str], tuple[torch.Tensor, torch.Tensor]]


def load_store_features(path: str, dataset: SequenceDataset, modality: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N+1, F] float32, present [N+1] bool) from an H5 store checked against the dataset."""
    from recx.featurize.store import check_store, open_store

    store = open_store(path)
    check_store(store, dataset, expect={"modality": modality} if modality != "clip" else None)
    return torch.from_numpy(np.asarray(store.embeddings, dtype=np.float32)), torch.from_numpy(np.asarray(store.present, dtype=bool))
