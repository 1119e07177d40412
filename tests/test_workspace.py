import pytest

from recx.workspace import CONFIG_NAME, Workspace, WorkspaceError


def test_init_find_and_record_store(tmp_path):
    (tmp_path / "data").mkdir()
    ws = Workspace.init(tmp_path, tmp_path / "data", has_text=False)
    assert (tmp_path / CONFIG_NAME).is_file()
    assert ws.section("train")["item_tower"] == "id"
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    found = Workspace.find(sub)
    assert found.root == tmp_path.resolve() and found.dataset_dir == (tmp_path / "data").resolve()
    found.record_store("text", tmp_path / "stores" / "minilm.h5")
    again = Workspace.find(tmp_path)
    assert again.config["stores"]["text"] == "stores/minilm.h5"
    assert again.store_for("text") == tmp_path.resolve() / "stores" / "minilm.h5"


def test_reinit_keeps_user_settings(tmp_path):
    Workspace.init(tmp_path, tmp_path / "d1")
    ws = Workspace.load(tmp_path)
    ws.config["train"]["loss"] = "bce"
    ws.save()
    ws2 = Workspace.init(tmp_path, tmp_path / "d2")
    assert ws2.config["train"]["loss"] == "bce" and ws2.config["workspace"]["dataset"] == "d2"


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(WorkspaceError, match="recx data synth"):
        Workspace.find(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("[workspace\n")
    with pytest.raises(WorkspaceError, match="not valid TOML"):
        Workspace.find(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("[workspace]\n")
    with pytest.raises(WorkspaceError, match="no finished run"):
        Workspace.find(tmp_path).latest_run()
