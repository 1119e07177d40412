import pytest
from typer.testing import CliRunner

from recx.cli import app
from recx.trainer.config import ConfigError, TrainConfig


def test_round_trip_and_layering(tmp_path):
    cfg = TrainConfig.from_options(item_tower="id+text", stores={"text": "s.h5"}, hidden=32, heads=4)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # nested (config.json)
    assert TrainConfig.from_options(**cfg.options()) == cfg  # flat (command line, recx.toml)
    assert cfg.to_dict()["model"]["hidden"] == 32 and cfg.to_dict()["tower"]["kind"] == "id+text"
    toml = tmp_path / "run.toml"
    toml.write_text('[train]\nloss = "bce"\nhidden = 48\nstores = { image = "i.h5" }\n[train.optim]\nlr = 0.01\n')
    merged = TrainConfig.resolve({"loss": "full_ce", "stores": {"text": "t.h5"}}, TrainConfig.read_toml(toml), {"hidden": 96, "loss": None})
    assert merged.loss.name == "bce" and merged.model.hidden == 96  # file over workspace, CLI over file, None never overrides
    assert merged.optim.lr == 0.01  # a section table in the file
    assert merged.run.stores == {"text": "t.h5", "image": "i.h5"}
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
        ({"amp": "off"}, "amp was renamed: use --precision"),
    ],
)
def test_invalid_values_name_the_option(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_options(**values)


def test_nested_form_refuses_unknown_sections_and_fields():
    with pytest.raises(ConfigError, match="unknown section 'training'"):
        TrainConfig.from_dict({"training": {"lr": 1}})
    with pytest.raises(ConfigError, match="model.colour"):
        TrainConfig.from_dict({"model": {"colour": "red"}})


def test_train_help_lists_every_option_with_default():
    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    for option, default in [("--loss", "debiased_ce"), ("--hidden", "64"), ("--dropout", "0.5"), ("--max-len", "50"), ("--patience", "10"), ("--precision", "auto")]:
        assert option in out and f"[default: {default}]" in out


def test_help_lists_every_generated_option_once():
    from recx.trainer.config import OPTIONS

    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "300"}).output
    for spec in OPTIONS.values():
        assert out.count(spec.flag + " ") + out.count(spec.flag + "/") >= 1, spec.flag


@pytest.mark.parametrize(
    "options,refused",
    [
        ({"loss": "debiased_ce", "num_negatives": 64}, "--num-negatives applies to --loss sampled_softmax"),
        ({"model": "reo-lm", "adapter": "moe"}, "--adapter applies to towers with a text"),
        ({"item_tower": "id", "fusion": "gated"}, "--fusion applies to fused towers"),
        ({"model": "sasrec", "mask_ratio": 0.3}, "--mask-ratio applies to --model bert4rec"),
        ({"model": "gru4rec", "heads": 4}, "--heads applies to --model sasrec | bert4rec"),
        ({"lora_rank": 4}, "--lora-rank applies to --model reo-lm --reo-tuning lora"),
    ],
)
def test_inapplicable_options_are_named(options, refused):
    cfg = TrainConfig.from_options(**options)
    assert cfg.inapplicable(set(options))[0].startswith(refused)


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "sampled_softmax", "num_negatives": 64, "negative_sampler": "popularity"},
        {"model": "bert4rec", "mask_ratio": 0.3, "heads": 4, "hidden": 16},
        {"item_tower": "id+text", "fusion": "gated", "adapter": "moe", "whiten": True},
        {"model": "reo-lm", "reo_tuning": "lora", "lora_rank": 4, "encoder_lr": 1e-4, "pooling": "cls"},
        {"item_tower": "e2e", "encoder": "minilm", "tune_blocks": 2, "encoder_lr": 1e-5},
    ],
)
def test_applicable_options_pass(options):
    assert TrainConfig.from_options(**options).inapplicable(set(options)) == []


def test_cli_refuses_an_inapplicable_option_in_one_line(tmp_path):
    from recx.data.synth import synthesize

    synthesize(tmp_path / "data", num_items=40, num_users=12, seed=0, progress=False)
    res = CliRunner().invoke(app, ["train", "--dataset", str(tmp_path / "data"), "--loss", "debiased_ce", "--num-negatives", "64",
                                   "-o", str(tmp_path / "runs" / "x"), "--epochs", "1"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1].endswith("--num-negatives applies to --loss sampled_softmax, not to --model sasrec --loss debiased_ce --item-tower id")
    assert not (tmp_path / "runs").exists()
