"""The ablation sweeps: their configs compose cell by cell, a 2-cell sweep runs, and the
ablation table is built from fake run directories with known numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from config_schema import register
from helpers import train_script_result
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mrdd.config import RunConfig
from mrdd.eval.ablate import ABLATIONS, ablate
from mrdd.eval.tables import score_row

ROOT = Path(__file__).resolve().parents[1]
register()  # the config schema, as scripts/train.py registers it


def _swept(name: str) -> dict[str, list[str]]:
    """A sweep's ``hydra.sweeper.params``: every swept key and its values."""
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", [f"+sweep={name}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    return {k: [v.strip() for v in str(values).split(",")] for k, values in params.items()}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_every_swept_value_composes_to_a_valid_config(name):
    """One cell per swept value (the other keys at their first value): every value of
    the grid is composed and validated, without composing the whole product."""
    swept = _swept(name)
    assert set(swept) == {*ABLATIONS[name].keys, "run.seed"}
    assert all(len(values) >= 3 for values in swept.values())
    first = {k: values[0] for k, values in swept.items()}
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        for key, values in swept.items():
            for value in values:
                cell = {**first, key: value}
                cfg = compose("config", [f"+sweep={name}", *(f"{k}={v}" for k, v in cell.items())])
                config = RunConfig.from_dict(OmegaConf.to_container(cfg, resolve=True))
                section, _, field = key.rpartition(".")
                holder = getattr(config, section) if section else config
                assert float(getattr(holder, field)) == float(value)


def _fake_run(path: Path, club_weight: float, seed: int, acc: float, r2: float) -> None:
    """A run whose val scores are its test scores minus 0.1 (ACC) and 0.05 (R²)."""
    path.mkdir(parents=True)
    config = {"stage2": {"club_weight": club_weight}, "model": {"c_dim": 10}, "run": {"seed": seed}}
    scores = [
        row
        for split, shift in (("test", 0.0), ("val", 0.1))
        for row in (
            score_row("clustering", "C+S_best", "acc", split, [acc - shift]),
            score_row("redundancy", "S_0", "r2_C_ridge", split, [r2 - shift / 2]),
        )
    ]
    (path / "config.json").write_text(json.dumps(config))
    (path / "metrics.json").write_text(json.dumps({"scores": scores}))


def test_ablation_table_from_fake_runs(tmp_path):
    runs = [(10.0, 0, 0.5, 0.1), (0.0, 0, 0.6, 0.5), (0.0, 1, 0.8, 0.7), (10.0, 1, 0.7, 0.3)]
    for i, run in enumerate(runs):
        _fake_run(tmp_path / "sweep" / str(i), *run)
    markdown = ablate("club_weight", [tmp_path / "sweep"], tmp_path / "docs")
    lines = [line for line in markdown.splitlines() if line.startswith(("| 0", "| 10", "**"))]
    assert lines == [
        "**val split**",  # the verdict's split first, then test beside it
        "| 0.0 | 2 | 60.00 ± 10.00 | 0.550 ± 0.100 |",
        "| 10.0 | 2 | 50.00 ± 10.00 | 0.150 ± 0.100 |",
        "**test split**",
        "| 0.0 | 2 | 70.00 ± 10.00 | 0.600 ± 0.100 |",
        "| 10.0 | 2 | 60.00 ± 10.00 | 0.200 ± 0.100 |",
    ]
    assert (tmp_path / "docs" / "ablation_club_weight.md").read_text() == markdown
    for split, r2 in (("val", 0.15), ("test", 0.2)):
        with (tmp_path / "docs" / f"ablation_club_weight_{split}.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert [r["stage2.club_weight"] for r in rows] == ["0.0", "10.0"]
        assert float(rows[1]["redundancy.S_0.r2_C_ridge mean"]) == pytest.approx(r2)
        assert (tmp_path / "docs" / f"ablation_club_weight_{split}.png").stat().st_size > 0


def test_an_ablation_of_runs_without_val_scores_says_how_to_get_them(tmp_path):
    _fake_run(tmp_path / "run", 1.0, 0, 0.5, 0.1)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    metrics["scores"] = [row for row in metrics["scores"] if row["split"] == "test"]
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match=r"no scores on the val split \(it has \['test'\]\)"):
        ablate("club_weight", [tmp_path], tmp_path / "out")


def test_dims_ablation_draws_a_grid(tmp_path):
    for i, (c, v) in enumerate([(5, 5), (5, 20), (20, 5), (20, 20)]):
        path = tmp_path / str(i)
        _fake_run(path, 1.0, 0, 0.5 + 0.01 * i, 0.1)
        (path / "config.json").write_text(json.dumps({"model": {"c_dim": c, "v_dim": v}}))
    markdown = ablate("dims", [tmp_path], tmp_path / "out")
    assert "| 5 | 20 | 1 | 51.00 ± 0.00 |" in markdown
    assert "| 5 | 20 | 1 | 41.00 ± 0.00 |" in markdown  # val
    assert (tmp_path / "out" / "ablation_dims_val.png").stat().st_size > 0


def test_a_two_cell_sweep_runs_and_is_tabulated(tmp_path):
    from helpers import write_image_npz

    write_image_npz(tmp_path / "d.npz", n=48)
    overrides = [
        "dataset=npz",
        f"dataset.path={tmp_path / 'd.npz'}",
        "stage2.club_weight=0.0,1.0",
        "run.seed=0",
        "model.c_dim=4",
        "model.v_dim=3",
        "model.club_hidden=16",
        "model.backbone.base_width=4",
        "model.backbone.num_blocks=1",
        "model.backbone.channel_mults=[1,2]",
        "model.backbone.latent_channels=2",
        "stage1.epochs=1",
        "stage1.batch_size=8",
        "run.eval_every=0",
        "stage2.epochs=1",  # stage 2 as short as stage 1, not the default budget
        "stage2.batch_size=8",
        "eval.n_seeds=1",
        "eval.classifiers=[]",
        "eval.regressors=[ridge]",
        "eval.figures=false",
        "eval.clustering=[kmeans]",
        "run.device=cpu",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    result = train_script_result("-m", "+sweep=club_weight", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    markdown = ablate("club_weight", [tmp_path / "sweep"], tmp_path / "out")
    assert markdown.count("| 0.0 | 1 |") == 2 and markdown.count("| 1.0 | 1 |") == 2
