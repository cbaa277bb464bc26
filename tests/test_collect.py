"""The cross-run results table, built from fake run directories with known numbers."""

from __future__ import annotations

import csv
import json
import runpy
from pathlib import Path

import pytest

from mrdd.eval.collect import collect, find_runs, flat_scores, group_runs


def _summary(value: float) -> dict:
    return {"mean": value, "std": 0.01, "runs": [value - 0.01, value + 0.01]}


def _fake_run(path: Path, club_weight: float, seed: int, acc: float, r2: float) -> None:
    path.mkdir(parents=True)
    config = {"model": {"club_weight": club_weight, "c_dim": 10}, "seed": seed, "stage": "all"}
    metrics = {
        "clustering": {
            "split": "test",
            "n_runs": 2,
            "representations": {"C": {"acc": _summary(acc), "n_runs": 2}},
        },
        "classification": None,
        "redundancy": {
            "representations": {
                "S_0": {"r2": {"C": {"ridge": _summary(r2)}}, "club": r2 / 10},
            }
        },
    }
    (path / "config.json").write_text(json.dumps(config))
    (path / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def sweep(tmp_path) -> Path:
    """λ ∈ {0, 1} × two seeds, as a Hydra multirun lays it out (numbered subfolders)."""
    for i, (lam, seed, acc, r2) in enumerate(
        [(0.0, 0, 0.60, 0.5), (0.0, 1, 0.80, 0.7), (1.0, 0, 0.70, 0.1), (1.0, 1, 0.70, 0.3)]
    ):
        _fake_run(tmp_path / "multirun" / str(i), lam, seed, acc, r2)
    return tmp_path / "multirun"


def test_flat_scores_names_every_number():
    metrics = {
        "clustering": {"representations": {"C": {"acc": _summary(0.5), "n_runs": 2}}},
        "classification": {
            "representations": {"C": {"svm": {"accuracy": _summary(0.9)}, "n_runs": 2}}
        },
        "redundancy": {
            "representations": {
                "S_0": {"r2": {"C": {"mlp": _summary(0.2)}}, "club": 0.3},
                "C": {"r2": {"labels": {"mlp": _summary(0.4)}}},
            }
        },
    }
    assert flat_scores(metrics) == {
        "clustering.C.acc": 0.5,
        "classification.C.svm.accuracy": 0.9,
        "redundancy.S_0.r2_C_mlp": 0.2,
        "redundancy.S_0.club": 0.3,
        "redundancy.C.r2_labels_mlp": 0.4,
    }


def test_runs_are_grouped_by_the_differing_config_and_averaged_over_seeds(sweep):
    groups = group_runs(find_runs([sweep]))
    assert [g.setting for g in groups] == [
        {"model.club_weight": "0.0"},
        {"model.club_weight": "1.0"},
    ]
    assert [len(g.runs) for g in groups] == [2, 2]
    acc = groups[0].summary("clustering.C.acc")
    assert acc["mean"] == pytest.approx(0.7) and acc["std"] == pytest.approx(0.1)
    r2 = groups[1].summary("redundancy.S_0.r2_C_ridge")
    assert r2["mean"] == pytest.approx(0.2) and r2["std"] == pytest.approx(0.1)
    assert groups[0].summary("classification.C.svm.accuracy") is None


def test_collect_writes_markdown_and_csv(sweep, tmp_path):
    markdown = collect([sweep], tmp_path / "out" / "results")
    assert markdown == (tmp_path / "out" / "results.md").read_text()
    lines = markdown.splitlines()
    assert lines[0] == (
        "| model.club_weight | n | clustering.C.acc | redundancy.S_0.r2_C_ridge "
        "| redundancy.S_0.club |"
    )
    assert lines[2] == "| 0.0 | 2 | 70.00 ± 10.00 | 0.600 ± 0.100 | 0.060 ± 0.010 |"
    assert lines[3] == "| 1.0 | 2 | 70.00 ± 0.00 | 0.200 ± 0.100 | 0.020 ± 0.010 |"
    with (tmp_path / "out" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["model.club_weight"] for r in rows] == ["0.0", "1.0"]
    assert float(rows[0]["clustering.C.acc mean"]) == pytest.approx(0.7)
    assert float(rows[0]["clustering.C.acc std"]) == pytest.approx(0.1)
    assert rows[1]["n_runs"] == "2" and len(rows[1]["runs"].split(";")) == 2


def test_collect_script_picks_metrics_and_reports_missing_runs(sweep, tmp_path, capsys):
    main = runpy.run_path("scripts/collect.py")["main"]
    assert main([str(sweep), "--metrics", "redundancy.*.club"]) == 0
    out = capsys.readouterr().out
    assert "| model.club_weight | n | redundancy.S_0.club |" in out
    assert (sweep / "results.csv").is_file()
    assert main([str(tmp_path / "nothing")]) == 2
    assert "neither a directory" in capsys.readouterr().err
