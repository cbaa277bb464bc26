"""scripts/benchmark.py end to end on a tiny config, and the timing helpers it relies on."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_MODEL_OVERRIDES, make_views, write_image_npz

from mrdd.bench import PHASES, format_report, measure_ceilings, time_steps
from mrdd.config import BenchmarkConfig
from mrdd.data import BatchLoader, MultiViewData
from mrdd.models import ConsistencyModel
from mrdd.train import ConsistencyStage
from mrdd.train.device import cpu_bf16_support

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    *TINY_MODEL_OVERRIDES,
    "stage1.batch_size=8",
    "stage2.batch_size=8",
    "eval.n_seeds=1",
    "eval.classifiers=[linear]",
    "eval.regressors=[ridge]",
    # no UMAP (the umap method, the figures): a process's first one compiles for ~15-30 s
    "eval.clustering=[kmeans]",
    "eval.figures=false",
    "run.device=cpu",
    "benchmark.steps=2",
    "benchmark.warmup=1",
    "benchmark.matmul_size.cpu=64",
    "benchmark.ceiling_repeats=2",
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict, str]:
    tmp = tmp_path_factory.mktemp("bench")
    write_image_npz(tmp / "tiny.npz", n=24, split=np.array([0] * 16 + [1] * 8))
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "benchmark.py"),
        *TINY,
        "dataset=npz",
        f"dataset.path={tmp / 'tiny.npz'}",
        f"benchmark.json={tmp / 'bench.json'}",
        f"hydra.run.dir={tmp / 'run'}",
        "run.precision=fp32",  # its record holds the fp32 ceiling only; bf16's: a test below
    ]
    result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((tmp / "bench.json").read_text()), result.stdout


def test_benchmark_json_has_every_field(bench):
    record, _ = bench
    assert set(record) == {"environment", "settings", "stages", "evaluation", "ceiling", "ceilings"}
    assert record["settings"]["steps"] == 2 and record["settings"]["warmup"] == 1
    assert set(record["stages"]) == {"consistency", "disentangle"}
    for name, stage in record["stages"].items():
        assert stage["batch_size"] == 8 and stage["timed_steps"] == 2, name
        assert stage["setup_s"] >= 0
        ms = stage["ms_per_step"]
        assert set(ms) == {*PHASES, "other", "total"}
        assert all(v >= 0 for v in ms.values()) and ms["total"] > 0
        assert stage["samples_per_s"] == pytest.approx(8 / (ms["total"] / 1000))
        assert stage["flops_per_sample"] > 0
        assert stage["gflops_per_s"] == pytest.approx(
            stage["flops_per_sample"] * stage["samples_per_s"] / 1e9
        )
        assert stage["memory_kind"] == "rss" and stage["peak_memory_mb"] > 0
        assert (
            0
            < stage["ceiling_fraction"]
            == pytest.approx(stage["gflops_per_s"] / record["ceiling"]["gflops_per_s"])
        )
    assert record["stages"]["disentangle"]["ms_per_step"]["mask"] == 0  # no masking in stage 2
    ceiling = record["ceiling"]
    assert ceiling["dtype"] == "float32"
    assert ceiling["matmul"]["shape"] == [64, 64, 64]
    assert ceiling["conv"]["shape"] == [8, 4, 8, 8]  # batch × base_width × the 8×8 images
    assert ceiling["gflops_per_s"] == max(
        ceiling["matmul"]["gflops_per_s"], ceiling["conv"]["gflops_per_s"]
    )
    assert record["ceilings"] == {"float32": ceiling}  # fp32 training: no bf16 ceiling
    for stage in record["stages"].values():
        assert stage["ceiling_fractions"] == {"float32": stage["ceiling_fraction"]}
    assert record["environment"]["cpu_bf16"] == cpu_bf16_support().record()
    evaluation = record["evaluation"]
    assert evaluation["samples"] == 8 and evaluation["kmeans_runs"] == 1
    assert evaluation["extract_s"] > 0 and evaluation["evaluate_s"] > 0
    assert record["environment"]["device"] == "cpu"


def test_benchmark_prints_a_table(bench):
    _, stdout = bench
    lines = stdout.splitlines()
    assert any(line.startswith("consistency ") for line in lines)
    assert any(line.startswith("disentangle ") for line in lines)
    assert "samples/s" in stdout and "ceiling" in stdout and "JSON:" in stdout
    assert "stage 2: its cache of c" in stdout


def test_time_steps_times_each_phase_and_leaves_training_unsynchronised(tiny_config):
    views, labels = make_views(16)
    model = ConsistencyModel([tuple(v.shape[1:]) for v in views], tiny_config.model)
    stage = ConsistencyStage(model, tiny_config, torch.device("cpu"))
    loader = BatchLoader(MultiViewData(views, labels), 8)
    records = time_steps(stage, loader, torch.device("cpu"), steps=3, warmup=1)
    assert len(records) == 3
    for r in records:
        assert all(r[p] > 0 for p in PHASES)
        assert r["total"] == pytest.approx(sum(r[p] for p in (*PHASES, "other")))
    assert "phase" not in vars(stage)  # the stage is back to its no-op phase


def test_bf16_training_measures_the_bf16_ceiling_beside_the_fp32_one(tiny_config, tiny_splits):
    cfg = tiny_config.with_overrides({"run": {"precision": "bf16"}})
    bench = BenchmarkConfig(matmul_size={"cpu": 64}, ceiling_repeats=1)
    ceilings = measure_ceilings(cfg, bench, tiny_splits, torch.device("cpu"))
    assert list(ceilings) == ["float32", "bfloat16"]
    assert all(c["dtype"] == d and c["gflops_per_s"] > 0 for d, c in ceilings.items())
    fp32 = measure_ceilings(tiny_config, bench, tiny_splits, torch.device("cpu"))
    assert list(fp32) == ["float32"]


def test_the_report_has_one_ceiling_column_per_dtype(bench):
    record = copy.deepcopy(bench[0])
    fp32 = record["ceiling"]
    bf16 = {**fp32, "dtype": "bfloat16", "gflops_per_s": 4 * fp32["gflops_per_s"]}
    record["ceiling"], record["ceilings"] = bf16, {"float32": fp32, "bfloat16": bf16}
    for stage in record["stages"].values():
        fraction = stage["ceiling_fraction"]
        stage["ceiling_fraction"] = fraction / 4
        stage["ceiling_fractions"] = {"float32": fraction, "bfloat16": fraction / 4}
    lines = format_report(record).splitlines()
    header = next(line for line in lines if line.startswith("stage "))
    assert header.split()[-4:] == ["of", "fp32", "of", "bf16"]
    row = next(line for line in lines if line.startswith("consistency "))
    fraction = record["stages"]["consistency"]["ceiling_fractions"]
    assert row.split()[-2:] == [f"{fraction['float32']:.0%}", f"{fraction['bfloat16']:.0%}"]
    assert sum(line.startswith("ceiling (") for line in lines) == 2
