"""scripts/gpu_check.py on the CPU: its arguments, its refusals (no GPU, an existing report),
the commands it composes, and its report built from recorded sub-results."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import gpu_check
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def script(monkeypatch, capsys):
    """``python scripts/gpu_check.py *args`` run in this process on a machine whose CUDA is
    hidden (``torch.cuda.is_available()`` is False even where a GPU is present)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def run(*args: str, cwd: Path) -> Done:
        monkeypatch.chdir(cwd)
        try:
            code = gpu_check.main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def test_without_a_gpu_it_refuses_in_one_line_and_writes_nothing(tmp_path, script):
    done = script("--report", str(tmp_path / "report"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: no CUDA device is visible (torch ")
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_an_existing_report_is_never_overwritten(tmp_path, script):
    (tmp_path / "report.md").write_text("an earlier check")
    done = script("--report", str(tmp_path / "report"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {tmp_path / 'report.md'} already exist(s); the GPU check never overwrites "
        "a report: pass --report <new path>.\n"
    )
    assert (tmp_path / "report.md").read_text() == "an earlier check"


def test_bad_arguments_exit_2_with_usage(tmp_path, script):
    done = script("--steps", "0", cwd=tmp_path)
    assert done.returncode == 2 and "--steps: must be a positive integer, got 0" in done.stderr
    assert done.stderr.startswith("usage: ")
    args = gpu_check.parse_args([])
    assert (args.report, args.steps, args.epochs, args.device) == (Path("gpu_check"), 20, 5, "cuda")
    with pytest.raises(gpu_check.UsageError, match="--device must be cuda or cuda:N"):
        gpu_check.require_usable(argparse.Namespace(report=tmp_path / "r", device="cpu"))


def test_the_checks_compose_the_existing_scripts_at_the_paper_setting(tmp_path):
    args = gpu_check.parse_args(["--steps", "7", "--epochs", "2", "--device", "cuda:1"])
    cmds = gpu_check.commands(args, tmp_path)
    assert list(cmds) == ["cuda_tests", "benchmark_eager", "training", "benchmark_compiled"]
    assert cmds["cuda_tests"][1:4] == ["-m", "pytest", "tests/test_cuda.py"]
    for name, compiled in (("benchmark_eager", "false"), ("benchmark_compiled", "true")):
        cmd = cmds[name]
        assert cmd[1] == "scripts/benchmark.py"
        assert {
            "experiment=paper_edge_mnist",
            "run.device=cuda:1",
            "run.precision=bf16",
            "run.channels_last=true",
            f"run.compile={compiled}",
            "benchmark.steps=7",
            f"benchmark.json={tmp_path / name / 'benchmark.json'}",
        } <= set(cmd)
    assert cmds["training"][1] == "scripts/train.py"
    assert {"stage1.epochs=2", "stage2.epochs=2"} <= set(cmds["training"])
    assert gpu_check.BUDGET_S < 8 * 60 <= sum(gpu_check.LIMITS_S.values())


def test_a_check_that_runs_out_of_time_is_recorded_not_fatal():
    result = gpu_check.run_check([sys.executable, "-c", "import time; time.sleep(5)"], 0.5)
    assert result["status"] == "timed out after 0.5 s" and result["seconds"] < 5
    assert gpu_check.run_check(["true"], 0)["status"] == "skipped: no time left"
    assert gpu_check.run_check([sys.executable, "-c", "print('ok')"], 30)["status"] == "passed"


def _benchmark_record(samples_per_s: float) -> dict:
    """The fields of a ``benchmark.json`` the report reads (a bf16 run: two ceilings)."""
    stage = {
        "batch_size": 512,
        "samples_per_s": samples_per_s,
        "ms_per_step": {"total": 512 / samples_per_s * 1000},
        "peak_memory_mb": 2048.0,
        "ceiling_fractions": {"float32": 0.9, "bfloat16": 0.25},
        "setup_s": 0.5,
    }
    return {"stages": {"consistency": stage, "disentangle": {**stage, "batch_size": 1024}}}


def test_the_report_from_recorded_sub_results(tmp_path, stage1_run):
    """Sub-results as the checks' runs leave them: two benchmark records and a real
    finished run's metrics.json (the tiny stage-1 run of conftest)."""
    for name, speed in (("benchmark_eager", 4000.0), ("benchmark_compiled", 5120.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "benchmark.json").write_text(json.dumps(_benchmark_record(speed)))
    results = {
        "cuda_tests": {"status": "passed", "seconds": 12.0, "output_tail": "1 passed in 3.2s\n"},
        "benchmark_eager": {"status": "passed", "seconds": 60.0},
        "training": {"status": "passed", "seconds": 100.0},
        "benchmark_compiled": {"status": "passed", "seconds": 200.0},
    }
    results["cuda_tests"]["counts"] = gpu_check.summarize_tests("1 passed, 2 skipped in 3.2s")
    for name in ("benchmark_eager", "benchmark_compiled"):
        results[name]["result"] = gpu_check.read_result(name, tmp_path / name)
    results["training"]["result"] = gpu_check.read_result("training", stage1_run)
    from mrdd.train.provenance import environment_record

    env = {**environment_record(torch.device("cpu")), "device_name": "NVIDIA X", "cuda": "13.0"}
    args = gpu_check.parse_args(["--epochs", "2"])
    report = gpu_check.build_report(results, env, args, 372.4)
    assert report["passed"] and report["settings"] == {"steps": 20, "epochs": 2, "device": "cuda"}
    paths = gpu_check.report_paths(tmp_path / "out")
    gpu_check.write_report(report, paths)
    assert json.loads(paths["json"].read_text()) == report
    text = paths["markdown"].read_text()
    assert text.startswith("# GPU check: NVIDIA X\n")
    assert "372 s in all" in text and "| benchmark_compiled | passed | 200 |" in text
    assert "tests/test_cuda.py: 1 passed, 2 skipped" in text
    assert "| eager | consistency | 512 | 4000 | 128.0 | 2048 | 25% | 90% | 0.5 |" in text
    assert "| compiled | disentangle | 1024 | 5120 | 100.0 | 2048 | 25% | 90% | 0.5 |" in text
    metrics = json.loads((stage1_run / "metrics.json").read_text())
    row = next(
        r
        for r in metrics["scores"]
        if (r["task"], r["split"], r["metric"], r["representation"])
        == ("clustering", "test", "acc", "C")
    )
    assert f"| test | C | {100 * row['mean']:.1f} ± {100 * row['std']:.1f} |" in text
    assert "## Short training of the default (2 epochs per stage, one seed;" in text


def test_a_failed_check_fails_the_report():
    results = {"cuda_tests": {"status": "failed (exit 1)", "seconds": 3.0, "counts": {}}}
    report = gpu_check.build_report(results, {}, gpu_check.parse_args([]), 3.0)
    assert report["passed"] is False
