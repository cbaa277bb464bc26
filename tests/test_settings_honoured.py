"""Every setting is typed and honoured: the dataset section has a schema like the rest,
and config.json describes the model it holds (issue 23, "settings accepted but not
honoured, or recorded falsely")."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    ScriptResult,
    tiny_run_dict,
    tiny_script_overrides,
    train_script_result,
    write_image_npz,
)

from mrdd.config import DATASET_SCHEMAS, ConfigError, DatasetConfig, RunConfig
from mrdd.data import load_dataset
from mrdd.data.registry import _REGISTRY
from mrdd.train import run
from mrdd.train.run import settled_config

ROOT = Path(__file__).resolve().parents[1]

#: The stage-1 settings of the checkpoint below, none of them the default.
STAGE1 = {"mask_ratio": 0.5, "view_dropout": 0.5, "calibrate_bn": False, "epochs": 1}


def _one_error_line(result: ScriptResult) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def stage1(tmp_path_factory) -> Path:
    """A stage-1 run trained at non-default stage-1 settings; returns its checkpoint."""
    tmp = tmp_path_factory.mktemp("stage1")
    write_image_npz(tmp / "data.npz")
    cfg = tiny_run_dict(
        tmp / "data.npz",
        stage="consistency",
        train=STAGE1,
        eval={"classifiers": [], "regressors": [], "figures": False},
    )
    run(RunConfig.from_dict(cfg), tmp / "run")
    return tmp / "run" / "consistency.pt"


def _stage2_dict(ckpt: Path, **train) -> dict:
    npz = ckpt.parent.parent / "data.npz"
    return tiny_run_dict(npz, stage="disentangle", consistency_ckpt=str(ckpt), train=train)


@pytest.mark.parametrize("name", sorted(DATASET_SCHEMAS))
def test_each_dataset_schema_has_its_loaders_keys_and_defaults(name):
    """The schema and the loader cannot drift apart: same keys, same defaults."""
    shared = {f.name for f in dataclasses.fields(DatasetConfig)}
    schema = {
        f.name: f.default for f in dataclasses.fields(DATASET_SCHEMAS[name]) if f.name not in shared
    }
    loader = inspect.signature(_REGISTRY[name]).parameters
    assert set(schema) == set(loader)
    for key, parameter in loader.items():
        if parameter.default is not inspect.Parameter.empty and key != "root":
            assert schema[key] == parameter.default, key


def test_standardize_off_is_a_real_false_and_the_views_stay_raw(tmp_path):
    raw = np.arange(60, dtype=np.float32).reshape(20, 3) * 7.0
    labels = np.arange(20) % 2
    np.savez(tmp_path / "v.npz", view_0=raw, view_1=raw[:, :2] + 1.0, labels=labels)
    section = {"name": "npz", "path": str(tmp_path / "v.npz"), "standardize": "off"}
    cfg = RunConfig.from_dict({"dataset": section})
    assert cfg.dataset["standardize"] is False
    splits = load_dataset(cfg.dataset)
    rows = {tuple(r) for r in raw.tolist()}
    assert {tuple(r) for r in splits.train.views[0].tolist()} <= rows  # unscaled values


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"test_fraction": "abc"}, "dataset.test_fraction must be a number, got 'abc'"),
        ({"test_fraction": 1.0}, r"dataset.test_fraction must be in \(0, 1\)"),
        ({"standardize": "maybe"}, "dataset.standardize must be true or false"),
        ({"image_size": 32}, r"Unknown config key 'dataset.image_size'.*'standardize'"),
        ({"seed": -1}, r"dataset.seed must be in \[0, "),
        ({"best_view": -1}, "dataset.best_view must be non-negative"),
    ],
)
def test_a_bad_dataset_value_is_refused_by_name(section, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"dataset": {"name": "npz", "path": "x.npz", **section}})


def test_the_script_refuses_a_mistyped_dataset_key_before_config_json(tmp_path):
    write_image_npz(tmp_path / "data.npz")
    args = [*tiny_script_overrides(tmp_path / "data.npz"), "dataset.test_fraction=abc"]
    line = _one_error_line(
        train_script_result(*args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    )
    assert "dataset.test_fraction must be a number, got 'abc'" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_stage2_alone_records_the_stage1_settings_of_its_checkpoint(stage1):
    settled = settled_config(RunConfig.from_dict(_stage2_dict(stage1, epochs=2)))
    train = settled.train
    assert (train.mask_ratio, train.view_dropout, train.calibrate_bn) == (0.5, 0.5, False)
    # stage 2's budget (train.epochs=2 with a null disentangle_epochs) is kept, spelled out
    assert (train.epochs, train.disentangle_epochs) == (1, 2)
    assert (train.batch_size, train.disentangle_batch_size) == (8, 8)


def test_stage2_alone_refuses_a_stage1_setting_given_differently(stage1):
    cfg = RunConfig.from_dict(_stage2_dict(stage1, mask_ratio=0.3))
    with pytest.raises(
        ConfigError, match=r"train.mask_ratio=0.3 .* trained with train.mask_ratio=0.5"
    ):
        settled_config(cfg)
    # named on the command line, even the default value is refused
    with pytest.raises(ConfigError, match=r"train.view_dropout=0.0 .*train.view_dropout=0.5"):
        settled_config(RunConfig.from_dict(_stage2_dict(stage1)), named=["train.view_dropout"])


def test_the_script_refuses_a_stage1_setting_for_stage2_before_config_json(stage1, tmp_path):
    args = [
        *tiny_script_overrides(stage1.parent.parent / "data.npz"),
        "stage=disentangle",
        f"consistency_ckpt={stage1}",
        "train.mask_ratio=0.3",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    line = _one_error_line(train_script_result(*args, cwd=tmp_path))
    assert "train.mask_ratio=0.3" in line and "train.mask_ratio=0.5" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_stage2_run_writes_the_checkpoints_settings_into_config_json(stage1, tmp_path):
    cfg = RunConfig.from_dict(
        _stage2_dict(stage1, epochs=1, eval_every=0)
        | {"eval": {"n_seeds": 2, "classifiers": [], "regressors": [], "figures": False}}
    )
    run(cfg, tmp_path / "run")
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert {k: recorded[k] for k in STAGE1} == STAGE1


def test_stage_consistency_refuses_a_named_stage2_setting(tmp_path):
    cfg = RunConfig.from_dict(tiny_run_dict(tmp_path / "x.npz", stage="consistency"))
    with pytest.raises(ConfigError, match="model.club_weight is read only by stage 2"):
        settled_config(cfg, named=["model.club_weight", "train.epochs"])
    assert settled_config(cfg, named=["train.epochs"]) is cfg
