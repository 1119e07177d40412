"""`recx study`: which item tower, loss and model serve this catalog best, each tuned with the same budget.

    candidates.py  the towers x losses x models compared, and their labels
    storage.py     the Optuna storage a study lives in (SQLite by default; shared by workers)
    search.py      one Optuna search per candidate on validation NDCG@10, pruned on the curve
    verdict.py     the best trials retrained with more seeds, tested, compared pair by pair
    report.py      results.json -> report.md and a self-contained report.html
    run.py         the whole study, resumable: the same command continues where it stopped

A candidate's search space is read from the config fields that carry a range
(recx/trainer/space.py), so a study tunes exactly the options that apply to the candidate.
"""
