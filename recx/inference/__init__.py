"""Using a trained run: one layer that loads a run (or an export dir) into item vectors and a
user encoder, for `recx eval`, `recx recommend`, `recx export` and the Python `Recommender`.

Python API::

    from recx.inference import Recommender, export_run
    rec = Recommender.from_run("runs/sasrec-id")             # or .from_export("export/")
    top = rec.recommend([["B001", "B002"]], k=10)             # ids in, ids + scores out
    export_run("runs/sasrec-id", "export/", index="hnsw")     # vectors, FAISS index, TorchScript encoder
"""

from __future__ import annotations

from recx.lazy import lazy_exports

# imported lazily so `recx --help` does not load torch
_EXPORTS = {
    "Recommender": "recx.inference.recommender",
    "Recommendations": "recx.inference.recommender",
    "RecommendError": "recx.inference.recommender",
    "Catalog": "recx.inference.catalog",
    "UserEncoder": "recx.inference.encoders",
    "HistoryEncoder": "recx.inference.encoders",
    "ModelUserEncoder": "recx.inference.encoders",
    "ScriptedUserEncoder": "recx.inference.encoders",
    "LoadedRun": "recx.inference.run",
    "RunEmbeddings": "recx.inference.run",
    "load_run": "recx.inference.run",
    "export_embeddings": "recx.inference.run",
    "ExportError": "recx.inference.export",
    "ExportedRun": "recx.inference.export",
    "export_run": "recx.inference.export",
    "load_export": "recx.inference.export",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
