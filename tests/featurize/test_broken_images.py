"""Broken image files (stored as absent and listed, or an error with --strict-images) and stores
with no or few present items (an error before any store is written, a warning)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recx.cli import app
from recx.data.dataset import SequenceDataset
from recx.data.synth import synthesize
from recx.errors import RecxError
from recx.featurize.runner import broken_list_path, run
from recx.featurize.store import StoreWriter, open_store, partial_path
from recx.workspace import Workspace


def _synth(tmp_path: Path) -> SequenceDataset:
    """40 items, 36 of them with a 32x32 PNG under <dataset>/images."""
    ds = synthesize(tmp_path / "data", num_items=40, num_users=20, image_size=32, seed=0)  # the seed these counts come from
    assert ds.meta["counts"]["with_image"] == int(ds.has_image().sum()) == 36
    return ds


def _break(ds: SequenceDataset) -> dict[int, str]:
    """Empty the first item's image and cut the last one's in half: {row: path}."""
    rows = np.flatnonzero(ds.has_image())
    first, last = int(rows[0]), int(rows[-1])
    paths = ds.image_paths
    Path(paths[first]).write_bytes(b"")
    data = Path(paths[last]).read_bytes()
    Path(paths[last]).write_bytes(data[: len(data) // 2])
    return {first: paths[first], last: paths[last]}


def _lines(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


def test_write_rows_absent_rows_count_as_done(tmp_path):
    attrs = {"modality": "image", "catalog_fingerprint": "abc", "item_count": 4}
    w = StoreWriter(tmp_path / "s.h5", 5, 2, attrs, dtype="float32", planned=3)
    w.write_rows(np.array([3, 1]), np.ones((2, 2)), present=np.array([True, False]), notes={1: "empty file (0 bytes)"})
    w.write_rows(np.array([2]), np.full((1, 2), 2.0))
    assert (w.rows_done, w.rows_absent, w.absent_notes()) == (3, 1, {1: "empty file (0 bytes)"})
    store = open_store(w.finish())
    np.testing.assert_array_equal(store.present, [False, False, True, True, False])
    np.testing.assert_array_equal(store.embeddings[:, 0], [0, 0, 2, 1, 0])  # the absent row stays zeros
    assert store.attrs["rows_absent"] == 1


def test_transform_names_pil_faults_in_one_line(tmp_path, monkeypatch):
    from PIL import Image

    from recx.featurize.image import ImageDecodeError, ImageTransform

    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1,200 pixels: over twice the limit, a decompression bomb
    with pytest.raises(ImageDecodeError, match="a.png: cannot decode image") as e:
        ImageTransform(size=8, resize=None)(str(tmp_path / "a.png"))
    assert "decompression bomb" in e.value.reason and "\n" not in str(e.value)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match=r"empty.png: cannot decode image \(empty file, 0 bytes\)"):
        ImageTransform(size=8, resize=None)(str(tmp_path / "empty.png"))


def test_broken_images_are_absent_listed_and_kept_across_resume(tiny_swin, tmp_path):
    ds = _synth(tmp_path)
    broken = _break(ds)
    kw = dict(model=str(tiny_swin), batch_size=4, chunk_rows=8, dtype="float32", num_workers=0, progress=False)
    full = run(ds.path, out=tmp_path / "full.h5", **kw)
    store = open_store(full)
    want = ds.has_image()
    want[list(broken)] = False
    np.testing.assert_array_equal(store.present, want)
    assert not store.embeddings[list(broken)].any() and store.embeddings[want].any(axis=1).all()
    listed = [line.split("\t") for line in broken_list_path(full).read_text(encoding="utf-8").splitlines()]
    assert [fields[:2] for fields in listed] == [[ds.item_ids[r], p] for r, p in sorted(broken.items())]
    assert "empty file" in listed[0][2] and "truncated" in listed[1][2]

    class Killed(Exception):
        pass

    def die_after_first_chunk(rows_done):  # the first chunk holds the empty image, the last the truncated one
        if rows_done == 8:
            raise Killed

    target = tmp_path / "resumed.h5"
    with pytest.raises(Killed):
        run(ds.path, out=target, on_chunk=die_after_first_chunk, **kw)
    assert partial_path(target).exists()
    seen = []
    run(ds.path, out=target, on_chunk=seen.append, **kw)
    assert seen[0] == 16  # resumed after the first chunk
    assert broken_list_path(target).read_text(encoding="utf-8") == broken_list_path(full).read_text(encoding="utf-8")
    resumed = open_store(target)
    assert resumed.embeddings.tobytes() == store.embeddings.tobytes() and resumed.attrs["rows_absent"] == 2


def test_strict_images_refuses_a_broken_file(tiny_swin, tmp_path):
    ds = _synth(tmp_path)
    broken = _break(ds)
    out = tmp_path / "s.h5"
    first = broken[min(broken)]
    kw = dict(model=str(tiny_swin), out=out, batch_size=4, chunk_rows=8, num_workers=0, progress=False)
    with pytest.raises(RecxError, match=re.escape(first) + r": cannot decode image \(empty file"):
        run(ds.path, strict_images=True, **kw)
    assert not out.exists() and not broken_list_path(out).exists()

    def stop(rows_done):  # after the first chunk, whose empty image is written as absent
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(ds.path, on_chunk=stop, **kw)
    with pytest.raises(RecxError, match=re.escape(first) + r": cannot decode image \(empty file.*written as absent by an earlier run"):
        run(ds.path, strict_images=True, **kw)


def test_cli_broken_images_summary_and_strict(tiny_swin, tmp_path, monkeypatch):
    ds = _synth(tmp_path)
    broken = _break(ds)
    Workspace.init(tmp_path, ds.path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["featurize", "--model", str(tiny_swin), "--quiet", "--workers", "1", "--batch-size", "8"]
    res = runner.invoke(app, args + ["--strict-images"])
    assert res.exit_code == 1, res.output
    errors = _lines(res.output, "error:")
    assert len(errors) == 1 and broken[min(broken)] in errors[0] and "cannot decode image" in errors[0], res.output
    assert "Traceback" not in res.output and Workspace.find(tmp_path).store_for("image") is None

    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    path = tmp_path / "stores" / f"{tiny_swin.name}.h5"
    listing = broken_list_path(path)
    summary = _lines(res.output, "wrote")
    assert len(summary) == 1 and "34 with image" in summary[0], res.output
    assert f"2 broken images stored as absent (listed in {listing})" in summary[0]
    assert len(listing.read_text(encoding="utf-8").splitlines()) == 2
    assert Workspace.find(tmp_path).store_for("image") == path
    assert "Traceback" not in res.output and not _lines(res.output, "warning:")


def test_missing_image_folder_is_an_error_before_any_store(tiny_swin, tmp_path):
    ds = _synth(tmp_path)
    shutil.move(ds.path / "images", tmp_path / "images-moved")
    out = tmp_path / "s.h5"
    folder = re.escape(str(ds.path / "images"))
    with pytest.raises(RecxError, match=rf"none of the 36 items with an image path has a readable file \(image folder {folder} does not exist"):
        run(ds.path, model=str(tiny_swin), out=out, num_workers=0, progress=False)
    assert not out.exists() and not partial_path(out).exists()


def test_cli_missing_image_folder_records_nothing(tiny_swin, tmp_path, monkeypatch):
    ds = _synth(tmp_path)
    shutil.move(ds.path / "images", tmp_path / "images-moved")
    Workspace.init(tmp_path, ds.path)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["featurize", "--model", str(tiny_swin), "--quiet", "--workers", "0"])
    assert res.exit_code == 1, res.output
    errors = _lines(res.output, "error:")
    assert len(errors) == 1 and str(ds.path / "images") in errors[0] and "none of the 36 items" in errors[0], res.output
    assert "Traceback" not in res.output
    assert Workspace.find(tmp_path).store_for("image") is None and not (tmp_path / "stores" / f"{tiny_swin.name}.h5").exists()


def test_no_text_at_all_is_an_error(tiny_bert, dataset_factory, tmp_path):
    ds = dataset_factory([None] * 5)
    with pytest.raises(RecxError, match=re.escape(str(ds.path)) + ": no item has a text"):
        run(ds.path, model=str(tiny_bert), out=tmp_path / "s.h5", progress=False)
    assert not (tmp_path / "s.h5").exists() and not partial_path(tmp_path / "s.h5").exists()


def _thin(ds: SequenceDataset) -> None:
    """17 of the 36 image files removed and 2 broken: 17 stored, under half (19 without the broken ones)."""
    for p in [p for p in ds.image_paths if p][1:18]:
        Path(p).unlink()
    _break(ds)


def test_thin_coverage_warns_once_naming_the_numbers(tiny_swin, tmp_path, capsys):
    ds = _synth(tmp_path)
    _thin(ds)
    out = run(ds.path, model=str(tiny_swin), out=tmp_path / "s.h5", num_workers=0, progress=False)
    assert int(open_store(out).present.sum()) == 17
    warnings = _lines(capsys.readouterr().err, "warning:")
    assert len(warnings) == 1, warnings
    assert "only 17 of the 36 items with an image" in warnings[0] and "17 files missing, 2 broken" in warnings[0]
    assert f"image root {ds.path}" in warnings[0]


def test_cli_thin_coverage_warns(tiny_swin, tmp_path, monkeypatch):
    ds = _synth(tmp_path)
    _thin(ds)
    Workspace.init(tmp_path, ds.path)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["featurize", "--model", str(tiny_swin), "--quiet", "--workers", "0"])
    assert res.exit_code == 0, res.output
    warnings = _lines(res.output, "warning:")
    assert len(warnings) == 1 and "only 17 of the 36 items with an image" in warnings[0], res.output
