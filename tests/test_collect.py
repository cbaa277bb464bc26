"""The cross-run results table, built from fake run directories with known numbers."""

from __future__ import annotations

import csv
import json
import runpy
from pathlib import Path

import pytest

from mrdd.eval.collect import collect, find_runs, group_runs, group_summary, groups_table
from mrdd.eval.tables import metrics_markdown, pivot, score_row


def _fake_run(path: Path, club_weight: float, seed: int, acc: float, r2: float) -> None:
    path.mkdir(parents=True)
    config = {
        "stage2": {"club_weight": club_weight},
        "model": {"c_dim": 10},
        "run": {"seed": seed},
        "stage": "all",
    }
    scores = [
        score_row("clustering", "C", "acc", "test", [acc - 0.01, acc + 0.01]),
        score_row("redundancy", "S_0", "r2_C_ridge", "test", [r2 - 0.01, r2 + 0.01]),
        score_row("redundancy", "S_0", "club", "test", [r2 / 10]),
    ]
    (path / "config.json").write_text(json.dumps(config))
    (path / "metrics.json").write_text(json.dumps({"scores": scores}))


@pytest.fixture
def sweep(tmp_path) -> Path:
    """λ ∈ {0, 1} × two seeds, as a Hydra multirun lays it out (numbered subfolders)."""
    for i, (lam, seed, acc, r2) in enumerate(
        [(0.0, 0, 0.60, 0.5), (0.0, 1, 0.80, 0.7), (1.0, 0, 0.70, 0.1), (1.0, 1, 0.70, 0.3)]
    ):
        _fake_run(tmp_path / "multirun" / str(i), lam, seed, acc, r2)
    return tmp_path / "multirun"


def test_a_metrics_json_of_the_earlier_nested_schema_is_refused(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"clustering": {"representations": {}}}))
    with pytest.raises(ValueError, match="earlier mrdd version.*scripts/evaluate.py run_dir="):
        find_runs([tmp_path])


def test_pivot_spreads_rows_in_first_seen_order_and_keeps_every_row_of_a_cell():
    rows = [
        {"rep": "C", "task": "t", "metric": "b", "mean": 1.0},
        {"rep": "S_0", "task": "t", "metric": "a", "mean": 2.0},
        {"rep": "C", "task": "t", "metric": "a", "mean": 3.0},
        {"rep": "C", "task": "t", "metric": "a", "mean": 5.0},
    ]
    table = pivot(rows, "rep", ["task", "metric"])
    assert table.index == ["C", "S_0"] and table.columns == ["t.b", "t.a"]
    assert [r["mean"] for r in table.rows("C", "t.a")] == [3.0, 5.0]
    assert table.rows("S_0", "t.b") == []


def test_one_run_gives_the_same_numbers_in_metrics_md_and_in_collect(tmp_path):
    """metrics.md (within-run mean ± std) and collect (across runs of the run means) pivot
    the same rows: with one run, collect's means are metrics.md's means."""
    _fake_run(tmp_path / "run", 0.0, 0, 0.6, 0.5)
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())["scores"]
    metrics = {
        "dataset": "d", "model": "mrdd", "stage": "all", "seed": 0, "scores": rows,
        "splits": {"test": 4}, "methods": {"clustering": "K.", "redundancy": "R."}, "skipped": {},
    }  # fmt: skip
    text = metrics_markdown(metrics)
    assert "| C | 60.00 ± 1.00 |" in text
    assert "| S_0 | 0.500 ± 0.010 | 0.050 ± 0.000 |" in text
    collected = collect([tmp_path / "run"], tmp_path / "out", ["*"]).splitlines()
    assert collected[0] == (
        "| runs | n | clustering.C.acc | redundancy.S_0.club | redundancy.S_0.r2_C_ridge |"
    )
    assert collected[2] == "| all | 1 | 60.00 ± 0.00 | 0.050 ± 0.000 | 0.500 ± 0.000 |"


def test_runs_are_grouped_by_the_differing_config_and_averaged_over_seeds(sweep):
    groups = group_runs(find_runs([sweep]))
    table = groups_table(groups)
    assert [g.setting for g in groups] == [
        {"stage2.club_weight": "0.0"},
        {"stage2.club_weight": "1.0"},
    ]
    assert [len(g.runs) for g in groups] == [2, 2]
    acc = group_summary(table, groups[0], "clustering.C.acc")
    assert acc["mean"] == pytest.approx(0.7) and acc["std"] == pytest.approx(0.1)
    r2 = group_summary(table, groups[1], "redundancy.S_0.r2_C_ridge")
    assert r2["mean"] == pytest.approx(0.2) and r2["std"] == pytest.approx(0.1)
    assert group_summary(table, groups[0], "classification.C.svm.accuracy") is None


def test_collect_writes_markdown_and_csv(sweep, tmp_path):
    markdown = collect([sweep], tmp_path / "out" / "results")
    assert markdown == (tmp_path / "out" / "results.md").read_text()
    lines = markdown.splitlines()
    assert lines[0] == (
        "| stage2.club_weight | n | clustering.C.acc | redundancy.S_0.r2_C_ridge "
        "| redundancy.S_0.club |"
    )
    assert lines[2] == "| 0.0 | 2 | 70.00 ± 10.00 | 0.600 ± 0.100 | 0.060 ± 0.010 |"
    assert lines[3] == "| 1.0 | 2 | 70.00 ± 0.00 | 0.200 ± 0.100 | 0.020 ± 0.010 |"
    with (tmp_path / "out" / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["stage2.club_weight"] for r in rows] == ["0.0", "1.0"]
    assert float(rows[0]["clustering.C.acc mean"]) == pytest.approx(0.7)
    assert float(rows[0]["clustering.C.acc std"]) == pytest.approx(0.1)
    assert rows[1]["n_runs"] == "2" and len(rows[1]["runs"].split(";")) == 2


def test_collect_script_picks_metrics_and_reports_missing_runs(sweep, tmp_path, capsys):
    main = runpy.run_path("scripts/collect.py")["main"]
    assert main([str(sweep), "--metrics", "redundancy.*.club"]) == 0
    out = capsys.readouterr().out
    assert "| stage2.club_weight | n | redundancy.S_0.club |" in out
    assert (sweep / "results.csv").is_file()
    assert main([str(tmp_path / "nothing")]) == 2
    assert "neither a directory" in capsys.readouterr().err


def test_collect_tables_one_split_and_names_what_a_run_lacks(sweep, tmp_path, capsys):
    """A run clusters val as well as test: the table of one split never mixes the other in."""
    metrics_file = sweep / "0" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["scores"].append(score_row("clustering", "C", "acc", "val", [0.1]))
    metrics_file.write_text(json.dumps(metrics))
    test_table = collect([sweep / "0"], tmp_path / "test", ["clustering.C.acc"])
    assert "| all | 1 | 60.00 ± 0.00 |" in test_table  # test only: 0.59 and 0.61
    val_table = collect([sweep / "0"], tmp_path / "val", ["clustering.C.acc"], split="val")
    assert "| all | 1 | 10.00 ± 0.00 |" in val_table
    main = runpy.run_path("scripts/collect.py")["main"]
    assert main([str(sweep), "--split", "val"]) == 2  # runs 1-3 have no val scores
    err = capsys.readouterr().err
    assert "has no scores on the val split (it has ['test'])" in err
    assert "scripts/evaluate.py run_dir=" in err
