import pytest

from recx.data.importers import IMPORTERS, get_importer, import_dataset


def test_every_registered_importer_resolves():
    for fmt in IMPORTERS:
        assert callable(get_importer(fmt))


def test_options_a_format_does_not_take_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="format 'unisrec' does not take --k-core, --tmdb"):
        import_dataset("unisrec", tmp_path, tmp_path / "o", k_core=5, tmdb="x.csv", name=None)
    with pytest.raises(ValueError, match="unknown import format 'parquet'"):
        import_dataset("parquet", tmp_path, tmp_path / "o")
