"""RecBole 1.2.1 in its own virtual environment, and amazon-scientific as RecBole input.

RecBole 1.2.1 needs old libraries (numpy<2; pandas<2.2, since pandas 3's copy-on-write breaks
its ID remapping; and torch.load without ``weights_only`` for its checkpoints), so it never
shares recx's venv.  ``ensure_recbole_venv()`` creates
``benchmarks/.venv-recbole`` (git-ignored) on first use with torch pinned by
``constraints/cpu.txt``; ``recbole_env()`` is the environment to run its python with.

The UniSRec files in ``amazon-scientific`` (``Scientific.{train,valid,test}.inter``) are
RecBole "benchmark files": RecBole reads them as they are with ``benchmark_filename:
[train, valid, test]`` and ``alias_of_item_id: [item_id_list]``, so "conversion" is a folder
of symlinks named the way RecBole expects (``<data_path>/<dataset>/<dataset>.<part>.inter``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / "benchmarks" / ".venv-recbole"
RECBOLE_VERSION = "1.2.1"
PINS = ("numpy<2", "pandas<2.2")
PARTS = ("train", "valid", "test")


def shared_data_dir() -> Path:
    """``../shared/data`` next to the repository, or $RECX_SHARED_DATA."""
    env = os.environ.get("RECX_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def recbole_env() -> dict[str, str]:
    """Environment for RecBole's python: full torch.load (RecBole 1.2.1 saves pickled state)."""
    env = dict(os.environ)
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def _python() -> Path:
    return VENV / "bin" / "python"


def _installed() -> bool:
    if not _python().is_file():
        return False
    r = subprocess.run([str(_python()), "-c", "import recbole, numpy, pandas; print(recbole.__version__, numpy.__version__, pandas.__version__)"],
                       capture_output=True, text=True, env=recbole_env())
    if r.returncode != 0:
        return False
    recbole, numpy, pandas = r.stdout.split()
    return recbole == RECBOLE_VERSION and numpy.startswith("1.") and tuple(int(x) for x in pandas.split(".")[:2]) < (2, 2)


def ensure_recbole_venv(quiet: bool = True) -> Path:
    """Create ``benchmarks/.venv-recbole`` with RecBole 1.2.1 if missing; return its python."""
    if _installed():
        return _python()
    if not _python().is_file():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    q = ["-q"] if quiet else []
    cmd = [str(_python()), "-m", "pip", "install", *q, "-c", str(REPO / "constraints" / "cpu.txt"),
           "torch", *PINS, f"recbole=={RECBOLE_VERSION}"]
    subprocess.run(cmd, check=True)
    if not _installed():
        raise RuntimeError(f"{VENV}: RecBole {RECBOLE_VERSION} did not import after installation")
    return _python()


def recbole_dataset_dir(out_root: Path, dataset: str = "Scientific", source: Path | None = None) -> Path:
    """``out_root/<dataset>/<dataset>.<part>.inter`` symlinked to the UniSRec files; returns
    ``out_root`` (RecBole's ``data_path``).  Nothing is copied."""
    src = source or shared_data_dir() / "amazon-scientific"
    folder = Path(out_root) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        target = src / f"{dataset}.{part}.inter"
        if not target.is_file():
            raise FileNotFoundError(f"{target}: missing (RecBole benchmark file)")
        link = folder / f"{dataset}.{part}.inter"
        if not link.exists():
            link.symlink_to(target.resolve())
    return Path(out_root)


def recbole_config(data_path: Path, dataset: str = "Scientific", **overrides: object) -> dict[str, object]:
    """RecBole config for the benchmark files: full-catalog ranking, one target per user."""
    cfg: dict[str, object] = {
        "data_path": str(data_path),
        "dataset": dataset,
        "benchmark_filename": list(PARTS),
        "alias_of_item_id": ["item_id_list"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "MAX_ITEM_LIST_LENGTH": 50,
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "eval_args": {"split": {"RS": [1, 0, 0]}, "order": "TO", "mode": "full"},
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "seed": 0,
        "reproducibility": True,
        "checkpoint_dir": str(Path(data_path) / "saved"),
        "log_wandb": False,
    }
    cfg.update(overrides)
    return cfg
