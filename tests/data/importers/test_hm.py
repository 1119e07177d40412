import pytest
from PIL import Image

from recx.data.importers.hm import import_hm

TX = (
    "t_dat,customer_id,article_id,price,sales_channel_id\n"
    "2020-01-02,c1,0100000002,0.1,1\n"
    "2020-01-01,c1,0100000001,0.1,1\n"
    "2020-01-02,c1,0100000002,0.1,1\n"  # same-day repeat
    "2020-01-02,c1,0200000003,0.1,2\n"
    "2020-01-01,c2,0100000001,0.1,1\n"
    "2020-01-03,c2,0100000001,0.1,1\n"
)
ART = (
    "article_id,prod_name,product_type_name,colour_group_name,graphical_appearance_name,section_name,detail_desc,department_name\n"
    '0100000001,Tee,T-shirt,Black,Solid,Men,"Soft, cotton.",Jersey\n'
    "0100000002,Cap,Hat,Red,Solid,Men,,Accessories\n"
    "0999999999,Unsold,Sock,Blue,Solid,Men,x,Socks\n"
)


def write(root):
    (root / "images" / "010").mkdir(parents=True)
    (root / "transactions_train_sample.csv").write_text(TX)
    (root / "articles_train_sample.csv").write_text(ART)
    Image.new("RGB", (3, 3)).save(root / "images" / "010" / "0100000001.jpg")
    return root


def test_hm_same_day_repeats_text_and_images(tmp_path):
    (tmp_path / "hm").mkdir()
    ds = import_hm(write(tmp_path / "hm"), tmp_path / "o")
    assert ds.user_ids == ["c1"]
    assert [[ds.item_ids[i] for i in s] for s in ds.sequences()] == [["0100000001", "0100000002", "0200000003"]]
    assert ds.texts[ds.index_of("0100000001")] == "Tee. T-shirt. Black. Solid. Men. Soft, cotton."
    assert ds.texts[ds.index_of("0200000003")] is None
    assert ds.image_paths[ds.index_of("0100000001")].endswith("images/010/0100000001.jpg")
    assert ds.image_paths[ds.index_of("0100000002")] is None
    rows = ds.meta["import"]["rows"]
    assert rows == {"kept": 3, "filtered: exact duplicate (same user, item, time)": 1, "filtered: min sequence length": 2}
    w = ds.meta["import"]["warnings"]
    assert w["article rows for articles never bought"] == 1
    assert w["items without a metadata row"] == 1 and w["items without image"] == 2
    assert ds.timestamps.tolist() == [1577836800, 1577923200, 1577923200]


@pytest.mark.realdata
def test_hm_sample_real_counts(shared_data, tmp_path):
    ds = import_hm(shared_data("hm-sample", "transactions_train_sample.csv"), tmp_path / "o")
    imp = ds.meta["import"]
    assert sum(imp["rows"].values()) == 31662
    assert imp["rows"]["filtered: exact duplicate (same user, item, time)"] == 3146
    assert (ds.num_users, ds.num_items, ds.items.size) == (1094, 16866, 28117)
    assert int(ds.has_image().sum()) == 5469 and int(ds.has_text().sum()) == 4078
