"""Each candidate's search space comes from the config fields that carry a range and apply to it."""

import pytest

from recx.study.candidates import Candidate, StudyError, default_towers, parse_list, varying_parts
from recx.trainer.config import TrainConfig
from recx.trainer.space import Choice, FloatRange, suggest


def space_of(**options):
    return set(TrainConfig.from_options(**options).search_space())


def test_space_follows_what_applies():
    base = {"lr", "weight_decay", "hidden", "dropout", "temperature"}
    assert space_of(item_tower="id", loss="debiased_ce") == base
    assert space_of(item_tower="id+text", loss="debiased_ce") == base | {"whiten", "adapter"}
    assert space_of(item_tower="id", loss="bce") == base - {"temperature"}  # bce never reads a temperature
    assert space_of(model="reo-lm", loss="debiased_ce") == {"lr", "weight_decay", "temperature", "encoder_lr"}


class FakeTrial:
    """Answers each suggest_* with the range's upper end (categorical: the last choice)."""

    def suggest_float(self, name, low, high, *, log=False, step=None):
        return high

    def suggest_int(self, name, low, high, *, step=1, log=False):
        return high

    def suggest_categorical(self, name, choices):
        return choices[-1]


def test_suggest_asks_each_range_and_values_make_a_valid_config():
    space = TrainConfig.from_options(item_tower="id+text").search_space()
    values = suggest(FakeTrial(), space)
    assert values == {"lr": 1e-2, "weight_decay": 0.1, "hidden": 128, "dropout": 0.6, "temperature": 0.2, "whiten": True, "adapter": "mlp"}
    TrainConfig.from_options(item_tower="id+text", **values)  # every value is one the config accepts


def test_range_contains():
    assert FloatRange(0.1, 0.6, step=0.1).contains(0.5) and not FloatRange(0.1, 0.6, step=0.1).contains(0.55)
    assert FloatRange(1e-4, 1e-2, log=True).contains(1e-3) and not FloatRange(1e-4, 1e-2, log=True).contains(0.1)
    assert Choice((32, 64)).contains(64) and not Choice((32, 64)).contains(48)


def test_default_towers_and_labels():
    assert default_towers({}) == ["id"]
    assert default_towers({"text": "t.h5"}) == ["id", "text", "id+text"]
    assert default_towers({"text": "t.h5", "image": "i.h5"}) == ["id", "text", "image", "id+text", "id+image", "id+text+image"]
    cands = [Candidate("sasrec", t, loss) for t in ("id", "text") for loss in ("bce", "debiased_ce")]
    assert varying_parts(cands) == ("tower", "loss")
    assert cands[1].label(varying_parts(cands)) == "id debiased_ce" and cands[1].key == "sasrec-id-debiased_ce"


def test_parse_list_refuses_unknown_and_repeated():
    assert parse_list(" id, id+text ", "towers") == ["id", "id+text"]
    with pytest.raises(StudyError, match="--losses nce: expected"):
        parse_list("nce", "losses", ("bce", "debiased_ce"))
    with pytest.raises(StudyError, match="names one entry twice"):
        parse_list("id,id", "towers")
