"""Runs inside benchmarks/.venv-recbole (RecBole 1.2.1): time RecBole's full-sort evaluation of
a freshly initialised SASRec on the amazon-scientific test split.  Prints one JSON line.

Usage: python _recbole_eval.py DATA_PATH CONFIG_JSON REPEATS

What is timed (``evaluate_seconds``): ``Trainer.evaluate(test_data, load_best_model=False)``,
i.e. iterating RecBole's ``FullSortEvalDataLoader`` over every test user (collating histories
into ``Interaction`` batches), ``SASRec.full_sort_predict`` (encode the user, score all items),
RecBole's history masking / top-K collection and its metric computation (Hit, NDCG, MRR @10).
Dataset loading and ``data_preparation`` are timed separately (``prepare_seconds``).
"""

from __future__ import annotations

import json
import sys
import time

import torch
from _recbole_setup import prepare_recbole


def main() -> None:
    config_json, repeats = sys.argv[2], int(sys.argv[3])  # argv[1]: the data path, named inside the config
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer

    config, dataset, train_data, valid_data, test_data, prepare = prepare_recbole(config_json)
    model = SASRec(config, train_data.dataset).to(config["device"])
    model.eval()
    trainer = Trainer(config, model)
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        times.append(time.perf_counter() - t0)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({
        "prepare_seconds": prepare,
        "evaluate_seconds": times,
        "metrics": {k: float(v) for k, v in dict(result).items()},
        "users": int(test_data.dataset.inter_num) if hasattr(test_data, "dataset") else None,
        "items_incl_padding": int(dataset.item_num),
        "parameters": n_params,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
