"""Evaluation checks the data identity (issue 23, item 4): a re-split is refused, other
data are evaluated only on request and are named as such in metrics.json."""

from __future__ import annotations

import json
import re
import runpy

import pytest

import mrdd
from mrdd.data import DataError

#: A quick evaluation (no figures, no classifiers).
QUICK = ["eval.n_seeds=1", "eval.figures=false", "eval.classifiers=[]", "eval.regressors=[]"]


def _evaluate(args: list[str]) -> int:
    return runpy.run_path("scripts/evaluate.py")["main"](args)


@pytest.mark.parametrize(
    ("override", "field", "changed"),
    [
        ("dataset.seed=5", r"split\.seed \(model 0, now 5\)", "test"),
        ("dataset.test_fraction=0.3", r"split\.test_fraction \(model 0\.2, now 0\.3\)", "test"),
        ("dataset.val_fraction=0.2", r"split\.val_fraction \(model 0\.1, now 0\.2\)", "val"),
        ("dataset.val_seed=3", r"split\.val_seed \(model 0, now 3\)", "val"),
    ],
)
def test_evaluate_refuses_a_resplit_naming_the_fields(
    stage1_run, tmp_path, capsys, override, field, changed
):
    code = _evaluate([f"run_dir={stage1_run}", f"out_dir={tmp_path}", override, *QUICK])
    err = capsys.readouterr().err
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: these are not the data") and "other_data=true" in line
    assert re.search(field, line)
    assert f"{changed}.content" in line  # the split's samples differ
    assert not (tmp_path / "metrics.json").exists()


def test_evaluate_on_the_training_data_says_so(stage1_run, tmp_path):
    metrics = mrdd.evaluate(stage1_run, {"eval": {"n_seeds": 1, "figures": False}}, tmp_path)
    assert metrics["data"] == {"checked": True, "same_as_training": True, "differences": []}


def test_other_data_on_purpose_is_named_in_metrics(stage1_run, tmp_path, capsys):
    args = [f"run_dir={stage1_run}", f"out_dir={tmp_path}", "dataset.seed=5", "other_data=true"]
    assert _evaluate([*args, *QUICK]) == 0
    data = json.loads((tmp_path / "metrics.json").read_text())["data"]
    assert data["checked"] and not data["same_as_training"]
    assert any(d.startswith("split.seed (model 0, now 5)") for d in data["differences"])


def test_other_data_must_be_a_boolean(stage1_run, capsys):
    assert _evaluate([f"run_dir={stage1_run}", "other_data=maybe"]) == 2
    assert capsys.readouterr().err == "error: other_data= must be true or false, got 'maybe'.\n"


def test_api_refuses_other_data_too(stage1_run, tmp_path):
    with pytest.raises(DataError, match=r"missing_rate \(model 0\.0, now 0\.5\)"):
        mrdd.evaluate(stage1_run, {"dataset": {"missing_rate": 0.5}}, tmp_path)
