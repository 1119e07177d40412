"""What recx writes to disk, and how: atomic publication, what ``--force`` may replace, disk faults
(and the one reader of its JSON configs, :func:`read_json_config`).

Three promises, kept here so every command keeps them the same way:

- **Atomic.** A file or folder is written under a partial name beside its target
  (``.NAME.partial-PID-XXXX``) and renamed onto the target only when complete, so a killed
  command never leaves a half-written artifact under the real name.  Partials left by a killed
  process (its PID no longer runs) are removed by the next command that writes the same target.
- **``--force`` replaces only what recx wrote.** Each kind of folder artifact has a marker file
  recx writes last (``dataset.json``, ``manifest.json``, ...) and a list of the names it puts
  inside; a folder without the marker, or holding anything else, is refused, never deleted.
- **Disk faults are one line.** A full disk, a quota or a read-only folder while writing becomes
  a :class:`DiskError` naming the target; what was written is removed and earlier artifacts stay.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from recx.errors import RecxError, os_fault

PARTIAL_TAG = ".partial-"


class ArtifactError(RecxError, ValueError):
    """A target cannot be written or replaced; the message names it and what to do."""


class DiskError(ArtifactError):
    """The disk refused a write (full, quota, read-only, permissions)."""


# -- the kinds of folder recx writes -----------------------------------------------------------
@dataclass(frozen=True)
class FolderKind:
    """A folder artifact: its marker file (written last, so it proves completion) and every
    name recx itself puts inside (anything else belongs to the user)."""

    name: str
    marker: str
    members: frozenset[str]
    is_marker_valid: Callable[[Path], bool] = lambda path: True

    def owns(self, folder: Path) -> bool:
        marker = folder / self.marker
        return marker.is_file() and self.is_marker_valid(marker)


def _json_has(*keys: str, **values: Any) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and all(k in data for k in keys) and all(data.get(k) == v for k, v in values.items())

    return check


DATASET = FolderKind(
    "dataset", "dataset.json",
    frozenset({"dataset.json", "items.jsonl", "users.jsonl", "sequences.npz", "images", "reolm-tokens"}),
    _json_has("format_version", "catalog_fingerprint", "fingerprint"),
)
EXPORT = FolderKind(
    "export", "manifest.json",
    frozenset({"manifest.json", "vectors.npy", "vectors.h5", "items.jsonl", "user_encoder.pt", "user_encoder.onnx",
               "index.faiss", "index.json"}),
    _json_has("format", "files", format="recx-export"),
)
QUICKSTART = FolderKind(
    "quickstart folder", ".recx-quickstart",
    frozenset({".recx-quickstart", "recx.toml", "data", "stores", "runs"}),
)


def check_replaceable(target: str | os.PathLike, kind: FolderKind, force: bool, option: str = "--out",
                      error: type[Exception] = ArtifactError) -> None:
    """Refuse (raising ``error``) to write the folder ``target`` unless it is absent, empty, or
    (with ``force``) a recx ``kind`` holding nothing but what recx wrote into it."""
    target = Path(target).resolve()
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise error(f"{target}: is the current folder{'' if target == here else ' or holds it'}, which recx would have "
                            f"to replace; write into a sub-folder instead, e.g. {option} {kind.name.split()[0]}")
    shown = target
    if not target.exists():
        return
    if not target.is_dir():
        raise error(f"{shown}: exists and is not a folder; choose another {option}")
    entries = sorted(p.name for p in target.iterdir() if not _is_partial_of_dead(p))
    if not entries:
        return
    if not kind.owns(target):
        listed = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise error(f"{shown}: not a recx {kind.name} (it holds {listed}); --force replaces only a {kind.name} "
                            f"that recx wrote, so nothing was changed: choose another {option}")
    foreign = [e for e in entries if e not in kind.members and not e.startswith(".")]
    if foreign:
        raise error(f"{shown}: a recx {kind.name}, but it also holds {', '.join(foreign[:3])}, which recx did not "
                            f"write; move {'them' if len(foreign) > 1 else 'it'} out first or choose another {option}")
    if not force:
        raise error(f"{shown}: a recx {kind.name} already exists; pass --force to replace it or choose another {option}")


# -- partial names and their clean-up ---------------------------------------------------------
def partial_prefix(target: Path) -> str:
    return f".{target.name}{PARTIAL_TAG}{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _partial_pid(path: Path) -> int | None:
    """The PID recorded in a partial name ``.NAME.partial-PID-XXXX``, or None if it is not one."""
    _, tag, rest = path.name.rpartition(PARTIAL_TAG)
    if not tag or not path.name.startswith("."):
        return None
    pid = rest.split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _is_partial_of_dead(path: Path) -> bool:
    pid = _partial_pid(path)
    return pid is not None and pid != os.getpid() and not _pid_alive(pid)


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove partials of ``target`` left by processes that no longer run; returns them."""
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for p in target.parent.glob(f".{target.name}{PARTIAL_TAG}*"):
        if _is_partial_of_dead(p):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def sha256_file(path: str | os.PathLike, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def read_json_config(path: Path, error: type[Exception], missing: str) -> dict[str, Any]:
    """A JSON config file; ``error(missing)`` when it is absent, ``error`` naming the file when it is not JSON."""
    if not path.is_file():
        raise error(missing)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON ({e.msg})") from None


# -- disk faults --------------------------------------------------------------------------------
@contextlib.contextmanager
def disk_faults(target: str | os.PathLike) -> Iterator[None]:
    """Turn a refused write (ENOSPC, EDQUOT, EROFS, EACCES) inside the block into a DiskError
    naming ``target``, however the writing library reports it."""
    try:
        yield
    except DiskError:
        raise
    except OSError as e:
        fault = os_fault(e, target)
        if fault is not None:
            raise DiskError(fault) from None
        if re.search(r"\d+ requested and \d+ written", str(e)):  # numpy's tofile: a short write, no errno
            raise DiskError(f"{target}: no space left on device") from None
        raise
    except RuntimeError as e:  # h5py: "... (file write failed: ..., errno = 28, ...)"
        text = str(e)
        if "errno = 28" in text or _NO_SPACE in text:
            raise DiskError(f"{target}: no space left on device") from None
        if "file write failed" in text:
            raise DiskError(f"{target}: writing failed, most likely no space left on device ({text.splitlines()[0]})") from None
        raise


_NO_SPACE = "No space left on device"


# -- atomic writers -----------------------------------------------------------------------------
def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` to a partial file beside ``path``, then rename it onto ``path``.

    A failure (a full disk included: DiskError naming ``path``) removes the partial and leaves
    an earlier ``path`` untouched."""
    path = Path(path)
    with disk_faults(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path)
        fd, tmp = tempfile.mkstemp(prefix=partial_prefix(path), dir=path.parent)
        os.close(fd)
        try:
            write(Path(tmp))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a partial file and a rename."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically.  Serialized in memory first and written by Python, so a full
    disk is an OSError (a DiskError naming ``path``), not a C++ error from torch's writer."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buf.getbuffer()))


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A partial folder beside ``target``; on success it replaces ``target`` (an old one moves
    aside first and goes only after the rename), on failure it is removed.

    The caller checks whether ``target`` may be replaced (:func:`check_replaceable`) first."""
    target = Path(target)
    with disk_faults(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(target)
        tmp = Path(tempfile.mkdtemp(prefix=partial_prefix(target), dir=target.parent))
        try:
            yield tmp
            publish_folder(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def publish_folder(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` onto ``target``; an existing ``target`` is moved aside
    (under a partial name) first and deleted once the new one is in place."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=partial_prefix(target), dir=target.parent))
        os.rename(target, old / "replaced")
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old / "replaced", target)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

