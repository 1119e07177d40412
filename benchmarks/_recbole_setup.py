"""Shared by the scripts that run inside benchmarks/.venv-recbole: RecBole config, seed and data."""

from __future__ import annotations

import json
import time

import torch


def prepare_recbole(config_json: str):
    """(config, dataset, train_data, valid_data, test_data, prepare_seconds) for RecBole's SASRec.

    ``config_json``: the RecBole config dict as JSON; an optional ``threads`` key sets torch's
    thread count.  ``prepare_seconds`` covers ``create_dataset`` + ``data_preparation``.
    """
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    cfg = json.loads(config_json)
    torch.set_num_threads(int(cfg.pop("threads", torch.get_num_threads())))
    t0 = time.perf_counter()
    config = Config(model="SASRec", dataset=cfg["dataset"], config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    return config, dataset, train_data, valid_data, test_data, time.perf_counter() - t0
