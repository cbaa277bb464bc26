"""collect never drops a run without a word and never averages different runs in one row
(issue 23, "tables that mix or drop runs"): run directories as train.py and evaluate.py
lay them out, with known numbers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mrdd.eval.collect import collect, find_runs, group_runs
from mrdd.eval.tables import score_row

EVAL = {"split": "test", "n_seeds": 2}


def _metrics(folder: Path, acc: float, split: str = "test", eval_split: str = "test") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    scores = [score_row("clustering", "C", "acc", split, [acc, acc])]
    metrics = {"eval": {**EVAL, "split": eval_split}, "scores": scores}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def _run(folder: Path, seed: int, acc: float, dataset: str = "npz") -> Path:
    folder.mkdir(parents=True)
    config = {
        "dataset": {"name": dataset},
        "run": {"seed": seed},
        "eval": EVAL,
        "model": {"c_dim": 4},
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "run_info.json").write_text(json.dumps({"status": "finished"}))
    _metrics(folder, acc)
    return folder


def _csv_rows(out: Path) -> list[dict[str, str]]:
    with out.with_suffix(".csv").open() as f:
        return list(csv.DictReader(f))


def test_an_evaluation_below_its_run_is_its_own_row_never_averaged_with_it(tmp_path):
    """README's layout: evaluate.py out_dir=<run>/val beside the run's own metrics.json."""
    for seed, acc in ((0, 0.6), (1, 0.8)):
        run = _run(tmp_path / "runs" / f"s{seed}", seed, acc)
        _metrics(run / "val", acc - 0.5, eval_split="val")  # test rows of another evaluation
    markdown = collect([tmp_path / "runs"], tmp_path / "out", ["clustering.C.acc"])
    rows = _csv_rows(tmp_path / "out")
    assert [(r["evaluated_in"], r["n_runs"]) for r in rows] == [("–", "2"), ("val", "2")]
    assert float(rows[0]["clustering.C.acc mean"]) == pytest.approx(0.7)  # seeds averaged
    assert float(rows[1]["clustering.C.acc mean"]) == pytest.approx(0.2)  # the evaluations
    assert all(run.endswith("/val") for run in rows[1]["runs"].split(";"))
    assert "| test | – | 2 | 70.00 ± 10.00 |" in markdown  # eval.split, evaluated_in, n
    assert "| val | val | 2 | 20.00 ± 10.00 |" in markdown


def test_runs_on_different_datasets_are_different_rows(tmp_path):
    _run(tmp_path / "a", 0, 0.6, dataset="npz")
    _run(tmp_path / "b", 0, 0.8, dataset="folder")
    groups = group_runs(find_runs([tmp_path]))
    assert [g.setting for g in groups] == [{"dataset.name": "npz"}, {"dataset.name": "folder"}]


def test_a_failed_run_passed_by_name_is_named_with_its_cause(tmp_path, capsys):
    good = _run(tmp_path / "good", 0, 0.6)
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "config.json").write_text(json.dumps({"run": {"seed": 1}}))
    cause = "DataError: npz dataset: file /d/missing.npz not found."
    (failed / "run_info.json").write_text(json.dumps({"status": "failed", "cause": cause}))
    markdown = collect([good, failed], tmp_path / "out")
    assert f"- {failed}: its run failed ({cause})" in markdown
    assert _csv_rows(tmp_path / "out")[0]["runs"] == str(good)


def test_unknown_settings_and_a_refused_sweep_job_are_skipped_by_name(tmp_path):
    _run(tmp_path / "sweep" / "0", 0, 0.6)
    (tmp_path / "sweep" / "1" / ".hydra").mkdir(parents=True)  # refused: no run_info.json
    _metrics(tmp_path / "loose", 0.9)  # no config.json here or above
    skipped = []
    runs = find_runs([tmp_path / "sweep", tmp_path / "loose"], skipped)
    assert [run.path.name for run in runs] == ["0"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert reasons == {
        "1": "no results: refused before it ran (its train.log says why)",
        "loose": "no config.json here or in a folder above: its settings are unknown",
    }
