"""Featurize: items -> encoder -> H5 embedding store (see DESIGN.md, "H5 embedding store").

Public API (imported lazily so `recx --help` does not load torch)::

    run(dataset_dir, model="minilm", out=None, ...) -> Path        # write a store
    open_store(path) -> EmbeddingStore                              # read one
    check_store(store, dataset, expect=None)                        # refuse a mismatched one
    load_encoder(name_or_path, ...) -> Encoder                      # the encoder as an nn.Module
"""

from __future__ import annotations

from recx.lazy import lazy_exports

_EXPORTS = {
    "run": "recx.featurize.runner",
    "open_store": "recx.featurize.store",
    "check_store": "recx.featurize.store",
    "EmbeddingStore": "recx.featurize.store",
    "StoreError": "recx.featurize.store",
    "StoreMismatchError": "recx.featurize.store",
    "load_encoder": "recx.featurize.registry",
    "REGISTRY": "recx.featurize.registry",
    "ModelSpec": "recx.featurize.registry",
    "Encoder": "recx.featurize.base",
    "TopBlocks": "recx.featurize.topk",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
