import pytest

from mrdd.config import ConfigError, RunConfig


def test_defaults_validate():
    cfg = RunConfig.from_dict({})
    assert cfg.model.c_dim == 10 and cfg.train.mask_ratio == 0.7


def test_round_trip_through_a_plain_dict():
    cfg = RunConfig.from_dict({"model": {"c_dim": 5}, "train": {"epochs": 3}})
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"modle": {}}, r"Unknown config key\(s\) \['modle'\]"),
        ({"model": {"cdim": 3}}, r"\['model.cdim'\]"),
        ({"train": {"mask_ratio": 1.0}}, r"train.mask_ratio must be in \[0, 1\)"),
        ({"train": {"mask_ratio": -0.1}}, r"train.mask_ratio must be in \[0, 1\)"),
        ({"model": {"c_dim": 0}}, "model.c_dim must be positive"),
        ({"model": {"backbone": {"channel_mults": []}}}, "channel_mults"),
        ({"model": {"c_dim": "ten"}}, "model.c_dim must be a int"),
        ({"train": {"epochs": 1.5}}, "train.epochs must be a int"),
        ({"stage": "both"}, "stage must be one of"),
        ({"stage": "disentangle"}, "consistency_ckpt"),
        ({"device": "tpu"}, "device must be auto, cpu or cuda"),
        ({"eval": {"split": "val"}}, "eval.split must be one of"),
        ({"dataset": {"root": "x"}}, "dataset.name is missing"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(data, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(data)
