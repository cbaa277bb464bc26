"""Faults and bad input: every user error is one actionable message raised before training,
NaN/inf stops a run (or is skipped) without spoiling its checkpoint, and damaged or foreign
checkpoints are refused by name."""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import copy_run, make_views, run_train_script, tiny_run_dict, write_image_npz

from mrdd.config import ConfigError, RunConfig
from mrdd.data import BatchLoader, DataError, MultiViewData
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train import (
    CheckpointError,
    ConsistencyStage,
    DisentangleStage,
    NonFiniteLossError,
    StageCheckpoint,
    check_compatible,
    fit,
    load_checkpoint,
    resume,
    run,
)

CPU = torch.device("cpu")
_VIEWS, _LABELS = make_views(48)  # what write_image_npz writes
VIEW_1, LABELS = _VIEWS[1].numpy(), _LABELS.numpy()
NAN_VIEW = _VIEWS[0].numpy().copy()
NAN_VIEW[5, 0, 0, 0] = np.nan

# (config sections with {tmp} for the test's folder, npz arrays, error, message)
BAD_INPUTS = {
    "unknown config key": (
        {"stage1": {"epoch": 3}},
        {},
        ConfigError,
        r"Unknown config key 'stage1.epoch'. Did you mean 'stage1.epochs'\? Valid keys of stage1: ",
    ),
    "unknown dataset": (
        {"dataset": {"name": "mnist_edges"}},
        {},
        DataError,
        r"Unknown dataset 'mnist_edges'. Known datasets: .*edge_mnist",
    ),
    "mask ratio 1": (
        {"stage1": {"mask_ratio": 1.0}},
        {},
        ConfigError,
        r"stage1.mask_ratio must be in \[0, 1\) .* got 1.0",
    ),
    "negative mask ratio": (
        {"stage1": {"mask_ratio": -0.1}},
        {},
        ConfigError,
        r"stage1.mask_ratio must be in \[0, 1\)",
    ),
    "patch size does not divide the image": (
        {"stage1": {"mask_patch_size": 3}},
        {},
        ConfigError,
        r"stage1.mask_patch_size=3 does not divide the images of view 0 \(8×8\), view 1 \(8×8\) "
        r"in data; .* Use one of \[1, 2, 4, 8\]",
    ),
    "views with different sample counts": (
        {},
        {"view_1": VIEW_1[:40]},
        DataError,
        r"every view needs the same number of samples as labels \(48\); got view_0: 48, "
        r"view_1: 40",
    ),
    "labels missing": ({}, {"labels": None}, DataError, r"no 'labels' array"),
    "labels misaligned": (
        {},
        {"labels": LABELS[:47]},
        DataError,
        r"same number of samples as labels \(47\); got view_0: 48, view_1: 48",
    ),
    "a view with NaN": (
        {},
        {"view_0": NAN_VIEW},
        DataError,
        r"view_0 contains NaN or inf values in 1 samples",
    ),
    "dataset file missing": (
        {"dataset": {"path": "{tmp}/elsewhere.npz"}},
        {},
        DataError,
        r"file .*elsewhere.npz not found. Pass dataset.path=",
    ),
    "dataset root without the expected files": (
        {"dataset": {"name": "edge_mnist", "path": None, "root": "{tmp}/nowhere"}},
        {},
        DataError,
        r"the MNIST files are missing under .*nowhere/MNIST/raw: train-images-idx3-ubyte",
    ),
    "empty split": (
        {},
        {"split": np.zeros(48, dtype=np.int64)},
        DataError,
        r"the split leaves 48 training and 0 test samples; both must be non-empty",
    ),
    "non-positive dimension": (
        {"model": {"c_dim": 0}},
        {},
        ConfigError,
        r"model.c_dim must be positive, got 0",
    ),
    "stage 2 without a stage-1 checkpoint": (
        {"stage": "disentangle"},
        {},
        ConfigError,
        r"stage=disentangle needs the stage-1 checkpoint: pass consistency_ckpt=",
    ),
    "stage 2 with a missing stage-1 checkpoint": (
        {"stage": "disentangle", "consistency_ckpt": "{tmp}/old/consistency.pt"},
        {},
        CheckpointError,
        r"Checkpoint .*old/consistency.pt does not exist",
    ),
    "batch size larger than the data": (
        {"stage1": {"batch_size": 64}},
        {},
        ConfigError,
        r"stage1.batch_size=64 is larger than the 34 training samples of data; .* at most 34",
    ),
    "stage-2 batch size larger than the data": (
        {"stage2": {"batch_size": 39}},
        {},
        ConfigError,
        r"stage2.batch_size=39 is larger than the 34 training samples",
    ),
}


def _config_dict(tmp_path: Path, sections: dict) -> dict:
    """The tiny run config on ``tmp_path/data.npz`` with ``sections`` merged in
    (``None`` values in ``sections`` remove a key)."""
    sections = json.loads(json.dumps(sections).replace("{tmp}", str(tmp_path)))
    config = tiny_run_dict(tmp_path / "data.npz", **sections)
    for name, section in sections.items():
        if isinstance(section, dict):
            for key in [k for k, v in section.items() if v is None]:
                del config[name][key]
    return config


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_fails_before_training_with_one_message(tmp_path, case):
    sections, arrays, error, message = BAD_INPUTS[case]
    write_image_npz(tmp_path / "data.npz", **arrays)
    out = tmp_path / "run"
    with pytest.raises(error, match=message) as raised:
        run(RunConfig.from_dict(_config_dict(tmp_path, sections)), out)
    assert "\n" not in str(raised.value)
    assert not list(out.glob("*.pt"))  # nothing was trained


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model.c_dim=0"], "error: model.c_dim must be positive, got 0.\n"),
        (
            ["+stage1.epoch=3"],
            "error: Unknown config key 'stage1.epoch'. Did you mean 'stage1.epochs",
        ),
        (["stage1.lr=nan"], "error: stage1.lr must be a finite number, got nan.\n"),
        (["run.device=tpu"], "error: run.device must be auto, cpu or cuda[:N], got 'tpu'.\n"),
        (["consistency_ckpt=c.pt"], "error: consistency_ckpt=c.pt is read only by stage="),
        (
            ["resume=outputs/x", "run.seed=1"],
            "error: resume=<run_dir> continues a run with the config",
        ),
    ],
)
def test_script_prints_one_error_line_and_exits_2(tmp_path, monkeypatch, capsys, args, message):
    with pytest.raises(SystemExit) as exited:
        run_train_script(monkeypatch, *args, f"hydra.run.dir={tmp_path}")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_override_typo_is_refused_at_composition(tmp_path, monkeypatch, capsys):
    """Hydra's struct mode refuses an override of a key no config file has."""
    with pytest.raises(SystemExit) as exited:
        run_train_script(monkeypatch, "stage1.epoch=3", f"hydra.run.dir={tmp_path}")
    assert exited.value.code != 0
    assert "Could not override 'stage1.epoch'" in capsys.readouterr().err


# --- NaN / inf ---------------------------------------------------------------------------


def _tiny_stage(tiny_config, kind, epochs, **runtime):
    """A stage of ``kind`` on 16 samples (2 steps per epoch) for ``epochs`` epochs, with
    ``runtime`` settings (the ``run`` section); its config, loader and first module."""
    section = "stage1" if kind == "consistency" else "stage2"
    cfg = tiny_config.with_overrides({section: {"epochs": epochs}, "run": runtime})
    torch.manual_seed(0)
    views, labels = make_views(16)
    data = MultiViewData(views, labels, "tiny")
    if kind == "consistency":
        model = ConsistencyModel(data.view_shapes, cfg.model)
        stage = ConsistencyStage(model, cfg, CPU)
        first_module = model
    else:
        model = MRDD(data.view_shapes, cfg.model)
        stage = DisentangleStage(model, cfg, CPU)
        first_module = model.specific  # sees the views after the frozen encoder
    assert stage.settings.epochs == epochs
    return stage, cfg, BatchLoader(data, 8, seed=0), first_module


def poison_inputs(module: torch.nn.Module, steps) -> None:
    """Multiply the views that ``module`` sees by NaN on the given (1-based) calls."""
    calls = itertools.count(1)

    def hook(_, args):
        if next(calls) in steps:
            return ([x * float("nan") for x in args[0]], *args[1:])
        return None

    module.register_forward_pre_hook(hook)


def poison_gradient(model: torch.nn.Module, step: int) -> None:
    """Make one parameter's gradient NaN on the given backward pass (the loss stays finite)."""
    calls = itertools.count(1)
    param = next(model.parameters())
    param.register_hook(lambda g: g * float("nan") if next(calls) == step else g)


@pytest.mark.parametrize(
    ("poison", "log_every", "expected"),
    [
        ("inputs", 10, r"loss=nan.*grad_norm=nan"),  # found by the epoch-end read
        ("gradient", 1, r"loss=\d[^,]*, .*grad_norm=nan"),  # found at a log point
    ],
)
def test_nonfinite_step_stops_the_run_and_keeps_the_last_good_checkpoint(
    tiny_config, tmp_path, poison, log_every, expected
):
    stage, cfg, loader, first_module = _tiny_stage(
        tiny_config, "consistency", 3, log_every=log_every, ckpt_every=1
    )
    if poison == "inputs":
        poison_inputs(first_module, {3})
    else:
        poison_gradient(stage.model, 3)
    checkpoint = StageCheckpoint(tmp_path / "consistency_state.pt", cfg, loader.data.view_shapes)
    saved = {}
    with pytest.raises(NonFiniteLossError) as raised:
        fit(
            stage,
            loader,
            show_progress=False,
            checkpoint=checkpoint,
            on_epoch_end=lambda epoch, _: saved.update(
                {k: v.clone() for k, v in stage.model.state_dict().items()}
            ),
        )
    message = str(raised.value)
    assert message.startswith("consistency: non-finite loss or gradient at step 3 (epoch 2): ")
    assert re.search(expected, message)
    assert f"the last good checkpoint, {tmp_path / 'consistency_state.pt'} (after epoch 1)" in (
        message
    )
    state = load_checkpoint(tmp_path / "consistency_state.pt", kind="consistency_state")
    assert state["epoch"] == 1
    for key, value in state["state_dict"].items():
        assert torch.equal(value, saved[key]), key
        assert torch.isfinite(value.float()).all(), key


@pytest.mark.parametrize("kind", ["consistency", "disentangle"])
def test_skip_nonfinite_skips_and_counts_the_faulty_step(tiny_config, kind):
    stage, _, loader, first_module = _tiny_stage(tiny_config, kind, 3, skip_nonfinite=True)
    poison_inputs(first_module, {3})
    history = fit(stage, loader, show_progress=False)
    assert [rec["skipped_steps"] for rec in history] == [0, 1, 0]
    assert all(np.isfinite(rec["loss"]) for rec in history)
    for optimizer in stage.optimizers:  # 6 steps, one of them not applied
        steps = {float(s["step"]) for s in optimizer.state_dict()["state"].values()}
        assert steps == {5.0}
    assert all(torch.isfinite(p).all() for p in stage.model.parameters())


# Every optimizer step is skipped on purpose, so torch warns that the schedule moved first.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_an_epoch_of_only_faulty_steps_stops_even_when_skipping(tiny_config):
    stage, _, loader, first_module = _tiny_stage(tiny_config, "consistency", 2, skip_nonfinite=True)
    poison_inputs(first_module, {1, 2})
    with pytest.raises(NonFiniteLossError, match="every step of epoch 1 was non-finite"):
        fit(stage, loader, show_progress=False)


# --- damaged and foreign checkpoints ------------------------------------------------------


def _stage2_config(tmp_path: Path, ckpt: Path, **sections) -> RunConfig:
    """A stage-2 run from ``ckpt``; its stage-1 settings, left at their defaults, are taken
    from the checkpoint when it runs (none given differently, none refused)."""
    write_image_npz(tmp_path / "data.npz")
    config = tiny_run_dict(
        tmp_path / "data.npz", stage="disentangle", consistency_ckpt=str(ckpt), **sections
    )
    config["stage1"] = {}
    return RunConfig.from_dict(config)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], r"could not be read .*truncated, corrupted"),
        (lambda b: b"\x00" * 64 + b[64:], r"could not be read"),
        (lambda b: b"", r"could not be read"),
    ],
    ids=["truncated", "overwritten", "empty"],
)
def test_damaged_stage1_checkpoint_is_refused_before_training(
    stage1_run, tmp_path, damage, message
):
    ckpt = copy_run(stage1_run, tmp_path) / "consistency.pt"
    ckpt.write_bytes(damage(ckpt.read_bytes()))
    out = tmp_path / "stage2"
    with pytest.raises(CheckpointError, match=message):
        run(_stage2_config(tmp_path, ckpt), out)
    assert not list(out.glob("*.pt"))


def test_damaged_resume_state_is_refused_by_name(stage1_run, tmp_path):
    run_dir = copy_run(stage1_run, tmp_path)
    state = run_dir / "consistency_state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"consistency_state.pt could not be read"):
        resume(run_dir)


def test_checkpoints_load_weights_only(tmp_path):
    """A pickled object (which could run code when loaded) is refused, not executed."""
    torch.save(torch.nn.Linear(2, 2), tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match=r"could not be read \(UnpicklingError"):
        load_checkpoint(tmp_path / "model.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="is not a mrdd checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_stage1_checkpoint_from_other_settings_is_refused_naming_them(stage1_run, tmp_path):
    ckpt = copy_run(stage1_run, tmp_path) / "consistency.pt"
    cfg = _stage2_config(tmp_path, ckpt, model={"c_dim": 5, "v_dim": 4})
    with pytest.raises(CheckpointError) as raised:
        run(cfg, tmp_path / "stage2")
    message = str(raised.value)
    assert "model.c_dim (checkpoint 4, this run 5)" in message
    assert "v_dim" not in message  # stage 1 has no view-specific codes
    assert "retrain stage 1" in message


def test_stage1_checkpoint_of_other_views_is_refused(stage1_run, tmp_path):
    ckpt = copy_run(stage1_run, tmp_path) / "consistency.pt"
    cfg = _stage2_config(tmp_path, ckpt)
    write_image_npz(tmp_path / "data.npz", view_1=np.random.rand(48, 1, 16, 16).astype(np.float32))
    with pytest.raises(
        CheckpointError, match=r"view_shapes \(checkpoint \[\[1, 8, 8\], \[1, 8, 8\]"
    ):
        run(cfg, tmp_path / "stage2")


def test_resume_state_of_other_settings_is_refused_naming_them(stage1_run, tmp_path):
    run_dir = copy_run(stage1_run, tmp_path)
    config = json.loads((run_dir / "config.json").read_text())
    config["stage1"]["lr"] = 0.01
    (run_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"stage1.lr \(checkpoint 0.002, this run 0.01\)"):
        resume(run_dir)


def test_mrdd_checkpoint_compares_its_architecture_only(stage1_run):
    payload = {**load_checkpoint(stage1_run / "consistency.pt"), "kind": "mrdd"}
    shapes = payload["view_shapes"]
    config = copy.deepcopy(payload["config"])
    config["stage1"]["lr"] = config["stage2"]["lr"] = 0.1
    check_compatible(payload, RunConfig.from_dict(config), shapes, "mrdd.pt")  # lr is no matter
    config["model"]["v_dim"] = 7
    with pytest.raises(CheckpointError) as raised:
        check_compatible(payload, RunConfig.from_dict(config), shapes, "mrdd.pt")
    assert str(raised.value).startswith(
        "mrdd.pt was written with other settings than this run: "
        "model.v_dim (checkpoint 3, this run 7). Rebuild the model"
    )
