"""Runs inside benchmarks/.venv-recbole (RecBole 1.2.1): train RecBole's SASRec on the
amazon-scientific benchmark files with early stopping, timing every epoch; prints one JSON line.

Usage: python _recbole_train.py DATA_PATH CONFIG_JSON [BUDGET_SECONDS]

With a budget, training stops after the first epoch whose validation ends more than
BUDGET_SECONDS after the start of ``Trainer.fit`` (``budget_reached`` in the output); the
best checkpoint so far is tested.

Timing (all ``time.perf_counter`` seconds):
- ``prepare_seconds``: ``create_dataset`` + ``data_preparation`` (not part of time to best).
- per epoch: ``train_seconds`` (``Trainer._train_epoch``), ``valid_seconds``
  (``Trainer._valid_epoch``: full-sort evaluation of every valid user) and ``t_end`` (seconds
  from the start of ``Trainer.fit`` to the end of that epoch's validation and, on improvement,
  its checkpoint save, via ``fit``'s ``callback_fn``).
- ``test``: ``Trainer.evaluate(test_data, load_best_model=True)`` at the best epoch.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from _recbole_setup import prepare_recbole


class BudgetReached(Exception):
    """Raised from ``fit``'s end-of-epoch callback once the time budget is spent."""


def main() -> None:
    config_json = sys.argv[2]  # argv[1]: the data path, named inside the config
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    config, dataset, train_data, valid_data, test_data, prepare = prepare_recbole(config_json)
    init_seed(config["seed"], config["reproducibility"])
    model = SASRec(config, train_data.dataset).to(config["device"])

    epochs: dict[int, dict[str, float]] = {}

    class TimedTrainer(Trainer):
        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            s = time.perf_counter()
            loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
            epochs[epoch_idx] = {"epoch": epoch_idx, "train_seconds": time.perf_counter() - s, "loss": float(loss)}
            self._current_epoch = epoch_idx
            return loss

        def _valid_epoch(self, valid_data, show_progress=False):
            s = time.perf_counter()
            score, result = super()._valid_epoch(valid_data, show_progress)
            row = epochs[self._current_epoch]
            row["valid_seconds"] = time.perf_counter() - s
            row["valid"] = {k: float(v) for k, v in dict(result).items()}
            return score, result

    trainer = TimedTrainer(config, model)
    fit_start = time.perf_counter()

    def on_epoch_end(epoch_idx: int, valid_score: float) -> None:
        epochs[epoch_idx]["t_end"] = time.perf_counter() - fit_start
        if budget and epochs[epoch_idx]["t_end"] > budget:
            raise BudgetReached

    budget_reached = False
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, verbose=False, callback_fn=on_epoch_end)
    except BudgetReached:
        budget_reached = True
    best_score = trainer.best_valid_score
    fit_seconds = time.perf_counter() - fit_start
    rows = [epochs[e] for e in sorted(epochs)]
    best_epoch = next(r["epoch"] for r in rows if r.get("valid", {}).get(config["valid_metric"].lower()) == best_score)
    s = time.perf_counter()
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    test_seconds = time.perf_counter() - s
    print(json.dumps({
        "prepare_seconds": prepare,
        "fit_seconds": fit_seconds,
        "epochs": rows,
        "best_epoch": best_epoch,
        "best_valid_score": float(best_score),
        "budget_reached": budget_reached,
        "test": {k: float(v) for k, v in dict(test).items()},
        "test_seconds": test_seconds,
        "train_rows": len(train_data.dataset),
        "train_batches_per_epoch": len(train_data),
        "items_incl_padding": int(dataset.item_num),
        "parameters": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "config": {k: config[k] for k in ("hidden_size", "inner_size", "n_layers", "n_heads", "hidden_dropout_prob",
                                          "attn_dropout_prob", "hidden_act", "loss_type", "learning_rate", "train_batch_size",
                                          "eval_batch_size", "epochs", "stopping_step", "MAX_ITEM_LIST_LENGTH", "weight_decay")},
    }))


if __name__ == "__main__":
    main()
