import pytest
from PIL import Image

from recx.data.importers.reading import ImportFault
from recx.data.importers.movielens import import_movielens, movie_text

GENRES = "unknown|0\nAction|1\nComedy|2\n"


def write_100k(root, data=None):
    root.mkdir(parents=True, exist_ok=True)
    data = data or "1\t10\t5\t100\n1\t20\t3\t90\n1\t30\t4\t100\n2\t10\t1\t50\n2\t20\t2\t60\n2\t30\t5\t70\n3\t10\t4\t1\n"
    (root / "u.data").write_text(data)
    (root / "u.genre").write_text(GENRES)
    (root / "u.item").write_bytes(
        "10|Caf\u00e9 Society (1999)|01-Jan-1999||url|0|1|0\n20|Heat (1995)|01-Jan-1995||url|0|1|1\n30|Up (2009)|x||url|1|0|0\n".encode("latin-1")
    )
    return root


def test_ml100k_latin1_genres_and_tie_order(tmp_path):
    ds = import_movielens(write_100k(tmp_path / "ml"), tmp_path / "o")
    assert ds.user_ids == ["1", "2"]
    assert ds.item_ids[1:] == ["10", "20", "30"]
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["20", "10", "30"], ["10", "20", "30"]]
    assert ds.texts[1] == "Caf\u00e9 Society (1999). Genres: Action."
    assert ds.texts[2] == "Heat (1995). Genres: Action, Comedy."
    assert ds.meta["import"]["rows"] == {"kept": 6, "filtered: min sequence length": 1}
    assert not ds.has_image().any()


def test_tmdb_overviews_first_non_empty_wins_and_posters(tmp_path):
    src = write_100k(tmp_path / "ml")
    (src / "items_tmdb.csv").write_text(
        'movie_id,title,overview\n10,x,\n10,x,"Woody Allen, in LA."\n10,x,later one\n20,y,A heist.\n'
    )
    (src / "posters").mkdir()
    Image.new("RGB", (4, 6)).save(src / "posters" / "20.jpg")
    ds = import_movielens(src, tmp_path / "o")
    assert ds.texts[1] == "Caf\u00e9 Society (1999). Genres: Action. Woody Allen, in LA."
    assert ds.texts[3] == "Up (2009). Genres: unknown."
    assert [p is not None for p in ds.image_paths[1:]] == [False, True, False]
    assert ds.image_paths[2].endswith("posters/20.jpg")
    w = ds.meta["import"]["warnings"]
    assert w["TMDB rows repeating a movie id (first overview kept)"] == 1
    assert w["movies without a TMDB overview"] == 1 and w["items without image"] == 2


def test_ml1m_and_min_rating(tmp_path):
    root = tmp_path / "ml1m"
    root.mkdir()
    (root / "ratings.dat").write_text("1::1::5::3\n1::2::4::2\n1::3::2::1\n1::4::5::4\n")
    (root / "movies.dat").write_bytes("1::A (2000)::Drama|War\n2::B::Comedy\n3::C::\n4::D\u00e9::Drama\n".encode("latin-1"))
    ds = import_movielens(root, tmp_path / "o", min_rating=4)
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["2", "1", "4"]]
    assert ds.texts[ds.index_of("4")] == "D\u00e9. Genres: Drama."
    assert ds.meta["import"]["rows"] == {"kept": 3, "skipped: rating below 4": 1}


def test_malformed_ratings_row(tmp_path):
    src = write_100k(tmp_path / "ml", data="1\t10\t5\t100\n1\t20\t3\n")
    with pytest.raises(ImportFault, match=r"u\.data:2: malformed row: expected 4"):
        import_movielens(src, tmp_path / "o")
    src = write_100k(tmp_path / "ml", data="1\t10\t5\tyesterday\n")
    with pytest.raises(ImportFault, match=r"u\.data:1: column 'timestamp': 'yesterday' is not an integer"):
        import_movielens(src, tmp_path / "o")


def test_movie_text_without_genres():
    assert movie_text({"title": "X.", "genres": []}, "Plot.") == "X. Plot."


@pytest.mark.realdata
def test_ml100k_real_counts(shared_data, tmp_path):
    ds = import_movielens(shared_data("ml-100k", "u.data"), tmp_path / "o")
    assert (ds.num_users, ds.num_items, ds.items.size) == (943, 1682, 100000)
    assert int(ds.has_image().sum()) == 1663
    assert int(ds.has_text().sum()) == 1682
