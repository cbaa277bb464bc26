"""Check the CUDA path on any GPU machine in under 8 minutes and write one report of it.

python scripts/gpu_check.py                      # writes gpu_check.json and gpu_check.md
python scripts/gpu_check.py --report out/h100    # out/h100.json, out/h100.md

Runs, one subprocess each (so that one failure does not hide the others), with the code
of this checkout:

1. ``tests/test_cuda.py`` (pytest): a training step never waits for the GPU;
2. ``scripts/benchmark.py`` at the paper's Edge-MNIST setting (``experiment=paper_edge_mnist``:
   batch 512 / 1024) in bf16 and channels-last, eager and with ``torch.compile``;
3. a short training of the default config (``--epochs`` per stage), with its clustering
   quality on val and test.

The sub-runs' own files go to ``<report>_runs/``. Nothing is overwritten: an existing
report or runs folder is refused. Exit status: 0 all passed, 1 a check failed or ran out of
time, 2 a usage error or no visible GPU (one ``error: ...`` line).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from mrdd.train.provenance import environment_record

ROOT = Path(__file__).resolve().parents[1]
#: The whole check must end within this many seconds (8 minutes, less a margin).
BUDGET_S = 450
#: The benchmark variants: (name, run.compile).
BENCHMARKS = (("benchmark_eager", False), ("benchmark_compiled", True))
#: The most seconds each check may take (within BUDGET_S, in the order they run: the
#: short training before the compiled benchmark, whose compilation time is the least known).
LIMITS_S = {"cuda_tests": 120, "benchmark_eager": 120, "training": 200, "benchmark_compiled": 300}


class UsageError(Exception):
    """A bad argument or an unusable machine: printed as one ``error:`` line, exit 2."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--report",
        type=Path,
        default=Path("gpu_check"),
        help="path of the report without suffix: writes REPORT.json, REPORT.md, REPORT_runs/",
    )
    parser.add_argument("--steps", type=_positive, default=20, help="timed benchmark steps")
    parser.add_argument("--epochs", type=_positive, default=5, help="epochs per training stage")
    parser.add_argument("--device", default="cuda", help="the CUDA device to check (cuda:N)")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def report_paths(report: Path) -> dict[str, Path]:
    return {
        "json": report.with_name(report.name + ".json"),
        "markdown": report.with_name(report.name + ".md"),
        "runs": report.with_name(report.name + "_runs"),
    }


def require_usable(args: argparse.Namespace) -> None:
    """Refuse, before anything runs, an existing report and a machine without a GPU."""
    existing = [str(p) for p in report_paths(args.report).values() if p.exists()]
    if existing:
        raise UsageError(
            f"{', '.join(existing)} already exist(s); the GPU check never overwrites a "
            "report: pass --report <new path>."
        )
    if not args.device.startswith("cuda"):
        raise UsageError(f"--device must be cuda or cuda:N, got {args.device!r}.")
    if not torch.cuda.is_available():
        raise UsageError(
            f"no CUDA device is visible (torch {torch.__version__}, built for CUDA "
            f"{torch.version.cuda}); run the GPU check on a machine with a GPU."
        )


def commands(args: argparse.Namespace, runs: Path) -> dict[str, list[str]]:
    """The subprocess of every check, by name, in the order they run."""
    python = sys.executable
    benchmark = {
        name: [
            python,
            "scripts/benchmark.py",
            "experiment=paper_edge_mnist",
            f"run.device={args.device}",
            "run.precision=bf16",
            "run.channels_last=true",
            f"run.compile={str(compiled).lower()}",
            f"benchmark.steps={args.steps}",
            "benchmark.evaluate=false",
            f"benchmark.json={runs / name / 'benchmark.json'}",
            f"hydra.run.dir={runs / name}",
        ]
        for name, compiled in BENCHMARKS
    }
    return {
        "cuda_tests": [python, "-m", "pytest", "tests/test_cuda.py", "-q", "-rs"],
        "benchmark_eager": benchmark["benchmark_eager"],
        "training": [
            python,
            "scripts/train.py",
            f"run.device={args.device}",
            f"stage1.epochs={args.epochs}",
            f"stage2.epochs={args.epochs}",
            f"hydra.run.dir={runs / 'training'}",
        ],
        "benchmark_compiled": benchmark["benchmark_compiled"],
    }


def run_check(cmd: list[str], timeout: float) -> dict[str, Any]:
    """One check's subprocess, with this checkout first on the path: its status, seconds
    and the end of its output."""
    if timeout <= 0:
        return {"status": "skipped: no time left", "seconds": 0.0, "output_tail": ""}
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    start = time.perf_counter()
    try:
        done = subprocess.run(
            cmd,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        output = err.stdout.decode(errors="replace") if isinstance(err.stdout, bytes) else ""
        status = f"timed out after {timeout:.1f} s"
    else:
        status = "passed" if done.returncode == 0 else f"failed (exit {done.returncode})"
        output = done.stdout + done.stderr
    return {"status": status, "seconds": time.perf_counter() - start, "output_tail": output[-3000:]}


def summarize_tests(output: str) -> dict[str, int]:
    """pytest's counts from its summary line (``3 passed, 1 skipped in 2.1s``)."""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error)", output)}


def summarize_benchmark(record: dict[str, Any]) -> dict[str, Any]:
    """Per stage of a ``benchmark.json``: what the report shows."""
    return {
        name: {
            "batch_size": s["batch_size"],
            "samples_per_s": s["samples_per_s"],
            "ms_per_step": s["ms_per_step"]["total"],
            "peak_memory_mb": s["peak_memory_mb"],
            "ceiling_fractions": s["ceiling_fractions"],
            "setup_s": s["setup_s"],
        }
        for name, s in record["stages"].items()
    }


def summarize_training(metrics: dict[str, Any]) -> dict[str, Any]:
    """The clustering ACC (mean and std over the KMeans seeds) per split and representation
    of a run's ``metrics.json``, and its wall-clock seconds."""
    acc = {}
    for row in metrics["scores"]:
        if row["task"] == "clustering" and row["metric"] == "acc":
            acc.setdefault(row["split"], {})[row["representation"]] = [row["mean"], row["std"]]
    return {"seconds": metrics["seconds"], "clustering_acc": acc}


def read_result(name: str, run_dir: Path) -> dict[str, Any]:
    """A passed check's own result, from the files its run wrote into ``run_dir``."""
    if name.startswith("benchmark"):
        return summarize_benchmark(json.loads((run_dir / "benchmark.json").read_text()))
    return summarize_training(json.loads((run_dir / "metrics.json").read_text()))


def run_checks(args: argparse.Namespace, runs: Path) -> dict[str, dict[str, Any]]:
    """Every check in turn, each within its :data:`LIMITS_S` and all within
    :data:`BUDGET_S`; a failed one does not stop the rest."""
    deadline = time.perf_counter() + BUDGET_S
    results = {}
    for name, cmd in commands(args, runs).items():
        print(f"[gpu_check] {name}: {' '.join(cmd[1:])}", flush=True)
        result = run_check(cmd, min(LIMITS_S[name], deadline - time.perf_counter()))
        if name == "cuda_tests":
            result["counts"] = summarize_tests(result["output_tail"])
        elif result["status"] == "passed":
            result["result"] = read_result(name, runs / name)
        print(f"[gpu_check] {name}: {result['status']} ({result['seconds']:.0f} s)", flush=True)
        results[name] = result
    return results


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def markdown_report(report: dict[str, Any]) -> str:
    """The report as Markdown: one status table, the benchmark table, the training's quality."""
    env, checks = report["environment"], report["checks"]
    lines = [
        f"# GPU check: {env['device_name']}",
        "",
        f"torch {env['torch']}, CUDA {env['cuda']}, mrdd {env['mrdd_version']}, commit "
        f"{env['git_commit']}{' (dirty)' if env['git_dirty'] else ''}; "
        f"{report['seconds']:.0f} s in all.",
        "",
        "| check | status | seconds |",
        "|---|---|---|",
        *(f"| {name} | {c['status']} | {c['seconds']:.0f} |" for name, c in checks.items()),
    ]
    counts = checks["cuda_tests"].get("counts")
    if counts:
        lines += ["", "tests/test_cuda.py: " + ", ".join(f"{n} {k}" for k, n in counts.items())]
    bench_rows = [
        (name, stage, s)
        for name, _ in BENCHMARKS
        if "result" in checks.get(name, {})
        for stage, s in checks[name]["result"].items()
    ]
    if bench_rows:
        lines += [
            "",
            "## Benchmark: paper Edge-MNIST setting, bf16 autocast, channels-last",
            "",
            "| run | stage | batch | samples/s | ms/step | peak MB (allocated) "
            "| of bf16 ceiling | of fp32 ceiling | setup s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, stage, s in bench_rows:
            fractions = s["ceiling_fractions"]
            lines.append(
                f"| {name.removeprefix('benchmark_')} | {stage} | {s['batch_size']} "
                f"| {s['samples_per_s']:.0f} | {s['ms_per_step']:.1f} | {s['peak_memory_mb']:.0f} "
                f"| {_pct(fractions.get('bfloat16', float('nan')))} "
                f"| {_pct(fractions['float32'])} | {s['setup_s']:.1f} |"
            )
    training = checks.get("training", {}).get("result")
    if training:
        lines += [
            "",
            f"## Short training of the default ({report['settings']['epochs']} epochs per "
            f"stage, one seed; {training['seconds']:.0f} s)",
            "",
            "Clustering ACC in %, mean ± std over the evaluation's KMeans seeds; a short run, "
            "so below the default's 30 / 15 epochs.",
            "",
            "| split | representation | ACC |",
            "|---|---|---|",
        ]
        for split, reps in training["clustering_acc"].items():
            for rep, (mean, std) in reps.items():
                lines.append(f"| {split} | {rep} | {100 * mean:.1f} ± {100 * std:.1f} |")
    return "\n".join(lines) + "\n"


def build_report(
    results: dict[str, dict[str, Any]],
    environment: dict[str, Any],
    args: argparse.Namespace,
    seconds: float,
) -> dict[str, Any]:
    """The JSON report: environment, settings, each check's result, and whether all passed."""
    return {
        "passed": all(r["status"] == "passed" for r in results.values()),
        "seconds": seconds,
        "environment": environment,
        "settings": {"steps": args.steps, "epochs": args.epochs, "device": args.device},
        "checks": results,
    }


def write_report(report: dict[str, Any], paths: dict[str, Path]) -> None:
    paths["json"].write_text(json.dumps(report, indent=2))
    paths["markdown"].write_text(markdown_report(report))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        require_usable(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    paths = report_paths(args.report)
    paths["runs"].mkdir(parents=True)
    start = time.perf_counter()
    results = run_checks(args, paths["runs"])
    environment = environment_record(torch.device(args.device))
    report = build_report(results, environment, args, time.perf_counter() - start)
    write_report(report, paths)
    print(f"[gpu_check] {'all passed' if report['passed'] else 'FAILED'}; {paths['markdown']}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
