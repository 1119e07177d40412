import pytest
from typer.testing import CliRunner

from recx.cli import app
from recx.trainer.config import ConfigError, TrainConfig


def test_round_trip_and_layering(tmp_path):
    cfg = TrainConfig(item_tower="id+text", stores={"text": "s.h5"}, hidden=32, heads=4)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    toml = tmp_path / "run.toml"
    toml.write_text('[train]\nloss = "bce"\nhidden = 48\nstores = { image = "i.h5" }\n')
    merged = TrainConfig.resolve({"loss": "full_ce", "stores": {"text": "t.h5"}}, TrainConfig.read_toml(toml), {"hidden": 96, "loss": None})
    assert merged.loss == "bce" and merged.hidden == 96  # file over workspace, CLI over file, None never overrides
    assert merged.stores == {"text": "t.h5", "image": "i.h5"}
    assert merged.tower_parts == ["id"]


@pytest.mark.parametrize(
    "values,message",
    [
        ({"loss": "hinge"}, "--loss"),
        ({"item_tower": "id+audio"}, "--item-tower"),
        ({"item_tower": "e2e"}, "--encoder"),
        ({"hidden": 30, "heads": 4}, "divisible"),
        ({"model": "bert4rec", "mask_scope": "past"}, "causal"),
        ({"colour": "red"}, "unknown option"),
    ],
)
def test_invalid_values_name_the_option(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values)


def test_train_help_lists_every_option_with_default():
    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    for option, default in [("--loss", "debiased_ce"), ("--hidden", "64"), ("--dropout", "0.5"), ("--max-len", "50"), ("--patience", "10"), ("--amp", "auto")]:
        assert option in out and f"[default: {default}]" in out
