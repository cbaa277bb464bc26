"""Every setting is typed and honoured: the dataset section has a schema like the rest,
and config.json describes the model it holds (issue 23, "settings accepted but not
honoured, or recorded falsely")."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
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
        stage1=STAGE1,
        eval={"classifiers": [], "regressors": [], "figures": False},
    )
    run(RunConfig.from_dict(cfg), tmp / "run")
    return tmp / "run" / "consistency.pt"


def _stage2_dict(ckpt: Path, stage1: dict | None = None, **sections) -> dict:
    """A stage-2 run from ``ckpt``: its ``stage1`` section holds only the settings given
    (``stage1``), the others left at their defaults; ``sections`` update the rest."""
    npz = ckpt.parent.parent / "data.npz"
    config = tiny_run_dict(npz, stage="disentangle", consistency_ckpt=str(ckpt), **sections)
    config["stage1"] = dict(stage1 or {})
    return config


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
    settled = settled_config(
        RunConfig.from_dict(_stage2_dict(stage1, stage2={"epochs": 2, "batch_size": 4}))
    )
    first = settled.stage1
    assert (first.mask_ratio, first.view_dropout, first.calibrate_bn) == (0.5, 0.5, False)
    # stage 1's budget is the checkpoint's; stage 2's own budget is kept
    assert (first.epochs, first.batch_size) == (1, 8)
    assert (settled.stage2.epochs, settled.stage2.batch_size) == (2, 4)


def test_stage2_alone_refuses_a_named_stage1_setting_and_adopts_the_others(stage1, caplog):
    named = ["stage1.mask_ratio"]
    cfg = RunConfig.from_dict(_stage2_dict(stage1, {"mask_ratio": 0.3}))
    with pytest.raises(
        ConfigError, match=r"stage1.mask_ratio=0.3 .* trained with stage1.mask_ratio=0.5"
    ):
        settled_config(cfg, named=named)
    # named on the command line, even the default value is refused
    with pytest.raises(ConfigError, match=r"stage1.view_dropout=0.0 .*stage1.view_dropout=0.5"):
        settled_config(RunConfig.from_dict(_stage2_dict(stage1)), named=["stage1.view_dropout"])
    # not named (a preset's, a dict's): the checkpoint's value is recorded, and logged
    cfg = RunConfig.from_dict(_stage2_dict(stage1, {"mask_ratio": 0.3, "epochs": 2}))
    with caplog.at_level(logging.INFO, logger="mrdd"):
        settled = settled_config(cfg)
    assert (settled.stage1.mask_ratio, settled.stage1.epochs) == (0.5, 1)
    assert "stage1.mask_ratio=0.5 (was 0.3)" in caplog.text
    assert "stage1.epochs=1 (was 2)" in caplog.text


def test_the_script_refuses_a_stage1_setting_for_stage2_before_config_json(stage1, tmp_path):
    args = [
        *tiny_script_overrides(stage1.parent.parent / "data.npz"),
        "stage=disentangle",
        f"consistency_ckpt={stage1}",
        "stage1.mask_ratio=0.3",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    line = _one_error_line(train_script_result(*args, cwd=tmp_path))
    assert "stage1.mask_ratio=0.3" in line and "stage1.mask_ratio=0.5" in line
    assert not (tmp_path / "run" / "config.json").exists()


def test_a_stage2_run_writes_the_checkpoints_settings_into_config_json(stage1, tmp_path):
    cfg = RunConfig.from_dict(
        _stage2_dict(stage1, stage2={"epochs": 1}, run={"eval_every": 0})
        | {"eval": {"n_seeds": 2, "classifiers": [], "regressors": [], "figures": False}}
    )
    run(cfg, tmp_path / "run")
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["stage1"]
    assert {k: recorded[k] for k in STAGE1} == STAGE1


def test_stage_consistency_refuses_a_named_stage2_setting(tmp_path):
    cfg = RunConfig.from_dict(tiny_run_dict(tmp_path / "x.npz", stage="consistency"))
    with pytest.raises(ConfigError, match="stage2.club_weight is read only by stage 2"):
        settled_config(cfg, named=["stage2.club_weight", "stage1.epochs"])
    with pytest.raises(ConfigError, match="stage2.epochs is read only by stage 2"):
        settled_config(cfg, named=["stage2.epochs"])
    with pytest.raises(ConfigError, match="model.club_hidden is read only by stage 2"):
        settled_config(cfg, named=["model.club_hidden"])
    assert settled_config(cfg, named=["stage1.epochs", "run.seed", "model.c_dim"]) is cfg
