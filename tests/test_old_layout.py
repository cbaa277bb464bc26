"""The layout before each stage had its own config section: every old key is refused naming
its new one, and what that code wrote (tests/fixtures/run_v0_1) still loads, resumes,
evaluates, encodes and starts a stage 2."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from config_schema import refuse_renamed_overrides
from helpers import train_script_result

import mrdd
from mrdd.config import RENAMED_KEYS, ConfigError, RunConfig, flatten_keys, upgrade_record
from mrdd.eval.collect import find_runs
from mrdd.train import resume, run

FIXTURE = Path(__file__).parent / "fixtures" / "run_v0_1"
OLD_CONFIG = json.loads((FIXTURE / "run" / "config.json").read_text())


def _nested(key: str, value: object) -> dict:
    """``a.b`` = value as ``{"a": {"b": value}}``."""
    *sections, name = key.split(".")
    tree: dict = {name: value}
    for section in reversed(sections):
        tree = {section: tree}
    return tree


def _old_value(key: str) -> object:
    """A valid value of ``key`` in the old layout (the fixture's, which has them all)."""
    return flatten_keys(OLD_CONFIG)[key]


@pytest.mark.parametrize("key", sorted(RENAMED_KEYS))
def test_every_old_key_is_refused_in_from_dict_naming_its_new_keys(key):
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict(_nested(key, _old_value(key)))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{key} was renamed: set ")
    for new in RENAMED_KEYS[key]:
        assert new in message


@pytest.mark.parametrize("key", sorted(RENAMED_KEYS))
def test_every_old_key_is_refused_on_the_command_line(key, capsys):
    with pytest.raises(SystemExit) as exit_:
        refuse_renamed_overrides([f"{key}=1", "model.c_dim=4"])
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {key} was renamed: set {RENAMED_KEYS[key][0]}")


def test_every_new_key_exists_and_no_old_key_does():
    today = flatten_keys(RunConfig().to_dict())
    for old, new_keys in RENAMED_KEYS.items():
        assert old not in today
        assert all(new in today for new in new_keys), old


def test_the_old_train_section_and_preset_are_refused(capsys):
    with pytest.raises(ConfigError, match="the train section is gone; .* stages=paper"):
        RunConfig.from_dict({"train": {}})
    with pytest.raises(SystemExit):
        refuse_renamed_overrides(["train=paper"])
    assert "stages=paper" in capsys.readouterr().err


def test_the_train_script_refuses_an_old_key_with_one_line(tmp_path):
    result = train_script_result("train.epochs=3", "seed=1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: train.epochs was renamed: set stage1.epochs. Each stage's settings are in "
        'its own section now (docs/configuration.md, "Renamed keys").'
    ]
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.pt"))


def test_the_old_default_config_upgrades_to_todays_default():
    """The default run of the old code, read today, is today's default run with the
    values that today's default derives from the default data (issue 21's sizing rules:
    3 conv levels for 32×32 views, 2-pixel patches, MLP widths that no image view uses)
    and its fixed C‖S_best view 0 written out, as the old code recorded them, with the
    stage-1 re-calibration it had on."""
    old_default = json.loads((FIXTURE / "default_config.json").read_text())
    assert "train" in old_default  # it really is the old layout
    today = RunConfig.from_dict(
        {
            "dataset": {**RunConfig().dataset, "best_view": 0},
            "model": {"backbone": {"channel_mults": [1, 2, 4], "mlp_hidden": [512, 256]}},
            "stage1": {"mask_patch_size": 2, "calibrate_bn": True},
        }
    )
    assert RunConfig.from_record(old_default) == today


def test_an_upgraded_record_keeps_every_value():
    new = upgrade_record(OLD_CONFIG)
    old = flatten_keys(OLD_CONFIG)
    flat = flatten_keys(new)
    as_stage1 = {"train.disentangle_epochs": "epochs", "train.disentangle_batch_size": "batch_size"}
    for key, new_keys in RENAMED_KEYS.items():
        value = old[key]
        if value is None and key in as_stage1:  # null: "as stage 1"
            value = old[f"train.{as_stage1[key]}"]
        for target in new_keys:
            assert flat[target] == value, (key, target)
    assert flat["stage1.inference_batch_size"] == flat["stage2.inference_batch_size"]
    assert flat["stage2.inference_batch_size"] == old["eval.batch_size"]
    assert RunConfig.from_record(RunConfig.from_record(OLD_CONFIG).to_dict()) == (
        RunConfig.from_record(OLD_CONFIG)
    )


def test_a_null_stage2_budget_of_the_old_layout_becomes_stage1s():
    old = json.loads(json.dumps(OLD_CONFIG))
    old["train"].update(epochs=7, batch_size=4, disentangle_epochs=None)
    old["train"]["disentangle_batch_size"] = None
    cfg = RunConfig.from_record(old)
    assert (cfg.stage2.epochs, cfg.stage2.batch_size) == (7, 4)


@pytest.fixture
def old_run(tmp_path, monkeypatch) -> Path:
    """A copy of the fixture; the working directory is its folder (``dataset.path`` is
    relative)."""
    shutil.copytree(FIXTURE, tmp_path / "v0_1")
    monkeypatch.chdir(tmp_path / "v0_1")
    return tmp_path / "v0_1" / "run"


def test_an_old_run_loads_and_encodes(old_run):
    trained = mrdd.load(old_run)
    assert trained.config.stage2.epochs == 2 and trained.config.run.device == "cpu"
    data = np.load(old_run.parent / "data.npz")
    codes = trained.encode([data["view_0"][:5], data["view_1"][:5]])
    assert codes.c.shape == (5, trained.config.model.c_dim)
    assert all(s.shape == (5, trained.config.model.v_dim) for s in codes.s)


def test_an_old_run_evaluates_again(old_run, tmp_path):
    metrics = mrdd.evaluate(old_run, out_dir=tmp_path / "again")
    before = json.loads((old_run / "metrics.json").read_text())

    def rows(scores: list[dict]) -> dict:
        return {(r["split"], r["representation"], r["task"], r["metric"]): r for r in scores}

    key = ("test", "C", "clustering", "acc")
    assert rows(metrics["scores"])[key]["mean"] == pytest.approx(
        rows(before["scores"])[key]["mean"]
    )


def test_an_old_run_resumes_without_training_again(old_run):
    metrics = resume(old_run)
    assert metrics["scores"]
    history = json.loads((old_run / "history.json").read_text())
    assert [len(history[s]) for s in ("consistency", "disentangle")] == [2, 2]
    written = json.loads((old_run / "config.json").read_text())
    assert "train" in written  # resume keeps the directory's record as it was written


def test_an_old_stage1_checkpoint_starts_a_stage2_run(old_run, tmp_path):
    cfg = upgrade_record(OLD_CONFIG)
    cfg.update(stage="disentangle", consistency_ckpt=str(old_run / "consistency.pt"))
    cfg["eval"]["n_seeds"] = 1
    metrics = run(RunConfig.from_dict(cfg), tmp_path / "stage2")
    assert metrics["stage"] == "disentangle"
    assert (tmp_path / "stage2" / "mrdd.pt").is_file()


def test_old_runs_are_collected_by_their_new_keys(old_run):
    (found,) = find_runs([old_run])
    assert found.config["stage1.epochs"] == "2" and "train.epochs" not in found.config


def test_the_configuration_page_lists_the_rename_table():
    page = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    rows = page.split("## Renamed keys", 1)[1]
    listed = {
        old: tuple(re.findall(r"`([^`]+)`", new))
        for old, new in re.findall(r"^\| `([^`]+)` \| (.+) \|$", rows, re.MULTILINE)
    }
    assert listed == RENAMED_KEYS
