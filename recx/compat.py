"""Compatibility guards that must run before third-party imports.

torchvision from PyPI is a CUDA build.  Next to a CPU-only torch its C extension fails to load,
and ``import torchvision`` then dies in ``_meta_registrations`` with "operator torchvision::nms
does not exist", which also breaks timm, open_clip and transformers' image utilities.  recx
decodes images with PIL and never calls torchvision's C++ ops, so it is enough to define the two
op schemas that torchvision registers fake kernels for unconditionally (``nms``, ``qnms``).

The guard is installed as an import hook when ``recx`` is imported: it runs at the first import
of torchvision (directly or through timm / open_clip / transformers), costs nothing otherwise,
and does nothing where torchvision's extension loads cleanly.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

_MISSING_OPS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_applied = False
_library = None  # keeps the torch.library.Library alive for the life of the process


def _extension_loads(package_dir: Path) -> bool:
    """Whether torchvision's compiled ops load next to this torch."""
    import torch

    for lib in sorted(package_dir.glob("_C*.so")) + sorted(package_dir.glob("_C*.pyd")):
        try:
            torch.ops.load_library(str(lib))
            return True
        except (OSError, RuntimeError, ImportError):
            return False
    return False


def guard_torchvision() -> bool:
    """Define torchvision's missing op schemas if its extension cannot load.

    Returns True if the guard defined the schemas, False if nothing was needed.  Must run
    before the first ``import torchvision``; calling it again is a no-op.
    """
    global _applied, _library
    if _applied or "torchvision" in sys.modules:
        return False
    _applied = True
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return False
    if _extension_loads(Path(spec.origin).parent):
        return False
    import torch

    missing = {name: schema for name, schema in _MISSING_OPS.items() if not _op_exists(f"torchvision::{name}")}
    if not missing:
        return False
    _library = torch.library.Library("torchvision", "DEF")
    for schema in missing.values():
        _library.define(schema)
    if os.environ.get("RECX_DEBUG"):
        print("recx: torchvision C++ ops unavailable; defined schemas for", sorted(missing), file=sys.stderr)
    return True


def _op_exists(qualname: str) -> bool:
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(qualname, "")
        return True
    except RuntimeError:
        return False


class _TorchvisionImportHook(importlib.abc.MetaPathFinder):
    """Runs :func:`guard_torchvision` right before torchvision is first imported."""

    def find_spec(self, fullname, path, target=None):  # noqa: D102
        if fullname == "torchvision":
            uninstall_import_hook()
            guard_torchvision()
        return None  # let the normal finders import it


_hook = _TorchvisionImportHook()


def install_import_hook() -> None:
    if "torchvision" in sys.modules:
        return
    if _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)


def uninstall_import_hook() -> None:
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)
