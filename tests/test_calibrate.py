"""Stage-1 BatchNorm statistics re-estimated on unmasked views match those views."""

import copy

import torch
from helpers import make_views

from mrdd.config import ModelConfig
from mrdd.data import Batch, MultiViewData
from mrdd.models import ConsistencyModel, mask_views
from mrdd.train.calibrate import batch_norms, recalibrate_batch_norm

CPU = torch.device("cpu")


def _trained_on_masked_views(cfg: ModelConfig, data: MultiViewData) -> ConsistencyModel:
    """A model whose running statistics come from masked inputs only, as after stage 1."""
    torch.manual_seed(0)
    model = ConsistencyModel(data.view_shapes, cfg).train()
    with torch.no_grad():
        for _ in range(20):
            model(mask_views(data.views, 0.9, 2))
    return model


def test_recalibrated_statistics_are_those_of_the_unmasked_inputs(tiny_config):
    views, labels = make_views(32)
    data = MultiViewData(views, labels)
    model = _trained_on_masked_views(tiny_config.model, data)
    first = batch_norms(model)[0]
    seen = {}
    hook = first.register_forward_hook(lambda _m, inputs, _out: seen.update(x=inputs[0]))
    model.eval()
    with torch.no_grad():
        model(Batch.of(views).views)  # what the layer gets at evaluation
    hook.remove()
    x = seen["x"].transpose(0, 1).flatten(1)  # channels × (N·H·W)
    masked_mean = first.running_mean.clone()
    assert not torch.allclose(masked_mean, x.mean(1), atol=1e-3)  # the mismatch exists

    weights = copy.deepcopy(model.state_dict())
    count = recalibrate_batch_norm(model, data, batch_size=len(data), device=CPU)
    assert count == len(batch_norms(model)) > 0
    torch.testing.assert_close(first.running_mean, x.mean(1), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first.running_var, x.var(1, unbiased=True), rtol=1e-4, atol=1e-5)
    assert not model.training and all(m.momentum == 0.1 for m in batch_norms(model))
    for name, value in model.state_dict().items():  # weights untouched, only BN buffers move
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(value, weights[name]), name


def test_a_model_without_batch_norm_is_left_alone(tiny_config):
    cfg = copy.deepcopy(tiny_config.model)
    cfg.backbone.norm = "group"
    views, labels = make_views(8)
    model = ConsistencyModel([tuple(v.shape[1:]) for v in views], cfg).train()
    before = copy.deepcopy(model.state_dict())
    assert recalibrate_batch_norm(model, MultiViewData(views, labels), 4, CPU) == 0
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_run_with_calibrate_bn_saves_the_recalibrated_stage_1(tmp_path):
    """consistency.pt holds the statistics of the unmasked training views; the resumable
    state (saved by the loop before calibration) holds the masked ones."""
    from helpers import tiny_run_dict, write_image_npz

    from mrdd.config import RunConfig
    from mrdd.data import load_dataset
    from mrdd.train import run

    npz = tmp_path / "data.npz"
    write_image_npz(npz)
    cfg = RunConfig.from_dict(
        tiny_run_dict(
            npz,
            stage="consistency",
            stage1={"epochs": 1, "calibrate_bn": True},
            run={"eval_every": 0},
            eval={"classifiers": [], "regressors": [], "figures": False},
        )
    )
    run(cfg, tmp_path / "run")
    saved = torch.load(tmp_path / "run" / "consistency.pt", weights_only=True)["state_dict"]
    state = torch.load(tmp_path / "run" / "consistency_state.pt", weights_only=True)
    splits = load_dataset(cfg.dataset)
    model = ConsistencyModel(splits.view_shapes, cfg.model)
    model.load_state_dict(state["state_dict"])
    recalibrate_batch_norm(model, splits.train, cfg.stage1.inference_batch_size, CPU)
    calibrated = model.state_dict()
    assert any(k.endswith("running_mean") for k in saved)
    for name, value in saved.items():
        torch.testing.assert_close(value, calibrated[name], rtol=1e-5, atol=1e-6)
    moved = [
        k
        for k in saved
        if k.endswith("running_var") and not torch.equal(saved[k], state["state_dict"][k])
    ]
    assert moved  # the state file kept the masked-input statistics


def test_measure_calibration_script_scores_the_same_weights_twice(stage1_run, capsys, tmp_path):
    import json
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "measure_calibration.py"
    main = runpy.run_path(str(script))["main"]
    out = tmp_path / "calibration.json"
    assert main([str(stage1_run), "--split", "val", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "C clustering on the val split" in printed and "mean ± std (1 runs)" in printed
    row = json.loads(out.read_text())["runs"][str(stage1_run)]
    assert set(row) == {
        "as trained acc",
        "as trained nmi",
        "re-calibrated acc",
        "re-calibrated nmi",
    }
    assert all(0.0 <= v <= 1.0 for v in row.values())
