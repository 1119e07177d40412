import pytest

from recx.data.importers.reading import ImportFault
from recx.data.importers.mind import import_mind

NEWS = (
    "N1\tnews\tpolitics\tVote today\tVote today\turl\t[]\t[]\n"
    "N2\tsports\tgolf\tPar three\tA long abstract.\turl\t[]\t[]\n"
    "N3\tnews\tworld\tRain\t\turl\t[]\t[]\n"
    "N4\tnews\tworld\tSun\t\turl\t[]\t[]\n"
)
BEHAVIORS = (
    "1\tU1\t11/12/2019 2:00:00 PM\tN1 N9 N2\tN3-1 N4-0\n"
    "2\tU1\t11/12/2019 1:00:00 PM\tN1 N9 N2\tN4-1 N8-1\n"
    "3\tU2\t11/13/2019 9:00:00 AM\t\tN1-1 N2-0\n"
)


def write(root, behaviors=BEHAVIORS):
    root.mkdir(parents=True, exist_ok=True)
    (root / "news.tsv").write_text(NEWS)
    (root / "behaviors.tsv").write_text(behaviors)
    return root


def test_history_then_clicks_in_time_order(tmp_path):
    ds = import_mind(write(tmp_path / "m"), tmp_path / "o")
    assert ds.user_ids == ["U1"]
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["N1", "N2", "N4", "N3"]]
    assert ds.texts[ds.index_of("N1")] == "Vote today."
    assert ds.texts[ds.index_of("N2")] == "Par three. A long abstract."
    t0 = 1573563600  # 2019-11-12 13:00 UTC, the earliest impression of U1
    assert ds.timestamps.tolist() == [t0 - 1, t0 - 1, t0, t0 + 3600]
    rows = ds.meta["import"]["rows"]
    assert rows == {
        "kept": 4,
        "skipped: history click on news not in news.tsv": 1,
        "skipped: history repeated by a later impression": 3,
        "skipped: click on news not in news.tsv": 1,
        "filtered: min sequence length": 1,
    }
    assert ds.meta["source"]["impressions_not_clicked"] == 2


def test_bad_impression_label(tmp_path):
    src = write(tmp_path / "m", behaviors="1\tU1\t11/12/2019 2:00:00 PM\tN1\tN3-2\n")
    with pytest.raises(ImportFault, match=r"behaviors\.tsv:1: impression 'N3-2'"):
        import_mind(src, tmp_path / "o")
    src = write(tmp_path / "m", behaviors="1\tU1\t2019-11-12\tN1\tN3-1\n")
    with pytest.raises(ImportFault, match=r"behaviors\.tsv:1: column 'time'"):
        import_mind(src, tmp_path / "o")


@pytest.mark.realdata
def test_mind_fragment_real(shared_data, tmp_path):
    ds = import_mind(shared_data("mind-fragment", "news.tsv"), tmp_path / "o")
    imp = ds.meta["import"]
    assert imp["files"][str(shared_data("mind-fragment", "news.tsv") / "behaviors.tsv")] == 5000
    assert (ds.num_users, ds.num_items, ds.items.size) == (721, 516, 3228)
    assert imp["rows"]["skipped: history click on news not in news.tsv"] == 133578
