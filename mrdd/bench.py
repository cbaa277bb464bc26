"""Training speed, measured: throughput, where a step's time goes, memory, FLOPs, and the
device's own ceiling (what ``scripts/benchmark.py`` runs).

Kept apart from training, which never imports it: it uses only the public interface a
run uses too. Each stage is built by :meth:`mrdd.train.Stage.build`, exactly as a training
run builds it, and stepped (:meth:`mrdd.train.Stage.step`) for a few batches of the
configured dataset. Every
figure is a median over the timed steps, so a short hiccup of a shared machine
does not move it. The ceiling is measured in the same process on the same
device, in the dtype training computes in, so "fraction of ceiling" compares
like with like.
"""

from __future__ import annotations

import contextlib
import copy
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mrdd.config import BenchmarkConfig, RunConfig
from mrdd.data import Batch, BatchLoader, DatasetSplits, load_dataset
from mrdd.eval import evaluate_model, extract_codes
from mrdd.models import MRDD
from mrdd.train.device import (
    keep_freed_cpu_memory,
    resolve_device,
    seed_everything,
    uses_bf16,
)
from mrdd.train.provenance import environment_record
from mrdd.train.run import place_data
from mrdd.train.stages import Stage, stages_of
from mrdd.train.validate import validate_against_data

#: The parts of a training step, in order; ``mask`` is stage 1's input masking.
PHASES = ("data", "mask", "forward", "backward", "optimizer")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU, which runs synchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PhaseTimer:
    """Seconds spent in each phase of the current step.

    It synchronises the device at every phase boundary, so asynchronous CUDA
    work is charged to the phase that queued it. That costs a little
    host/device overlap, which is why training never does it: only the
    benchmark installs this timer as a stage's ``phase``.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = dict.fromkeys(PHASES, 0.0)

    def new_step(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] += time.perf_counter() - start


class PeakMemory:
    """Peak memory since :meth:`reset`: ``max_memory_allocated`` on CUDA, peak RSS on CPU.

    The RSS peak is the process's high-water mark (``getrusage``); on Linux,
    writing 5 to ``/proc/self/clear_refs`` resets it, so each stage reports its
    own peak (dataset and models in memory included). Where that is impossible
    the record says ``memory_reset: false``: the peak is the process's so far.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.was_reset = False

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.was_reset = True
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.was_reset = True
        except OSError:
            self.was_reset = False

    def record(self) -> dict[str, Any]:
        if self.device.type == "cuda":
            peak, kind = torch.cuda.max_memory_allocated(self.device), "cuda_max_allocated"
        else:
            maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            peak, kind = (maxrss if sys.platform == "darwin" else maxrss * 1024), "rss"
        return {"peak_memory_mb": peak / 2**20, "memory_kind": kind, "memory_reset": self.was_reset}


def _forever(loader: BatchLoader) -> Iterator[Batch]:
    epoch = 0
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def time_steps(
    stage: Stage, loader: BatchLoader, device: torch.device, steps: int, warmup: int
) -> list[dict[str, float]]:
    """Seconds per phase, ``other`` (the loop itself) and ``total`` of each of ``steps`` steps
    taken after ``warmup`` untimed ones (which absorb one-off costs: allocator growth,
    kernel selection, compilation)."""
    timer = PhaseTimer(device)
    stage.phase = timer
    stage.model.train()
    batches = _forever(loader)
    records = []
    try:
        for i in range(warmup + steps):
            timer.new_step()
            synchronize(device)
            start = time.perf_counter()
            with timer("data"):
                batch = next(batches).to(device)
            stage.step(batch)
            synchronize(device)
            total = time.perf_counter() - start
            if i >= warmup:
                other = total - sum(timer.seconds.values())
                records.append({**timer.seconds, "other": other, "total": total})
    finally:
        del stage.phase  # back to the class's no-op
    return records


def step_flops(stage: Stage, loader: BatchLoader, device: torch.device) -> int:
    """FLOPs of one training step on the loader's first batch (forward and backward of
    every network it runs; not stage 2's frozen encoder when its codes are cached), as
    ``torch.utils.flop_counter`` counts them (matmuls and convolutions)."""
    batch = next(iter(loader)).to(device)
    with FlopCounterMode(display=False) as counter:
        stage.step(batch)
    return int(counter.get_total_flops())


def _best_seconds(fn: Callable[[], Any], repeats: int, device: torch.device) -> float:
    """The fastest of ``repeats`` runs: a ceiling is what the device *can* reach, so a run
    slowed by another process on a shared machine must not lower it."""
    fn()  # warm-up: kernel selection, allocation
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_ceiling(n: int, dtype: torch.dtype, device: torch.device, repeats: int) -> dict:
    """GFLOP/s of an ``n×n`` by ``n×n`` matmul: what the device's GEMM reaches."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = _best_seconds(lambda: a @ b, repeats, device)
    return {"shape": [n, n, n], "gflops_per_s": 2 * n**3 / seconds / 1e9}


def conv_ceiling(
    shape: tuple[int, int, int, int],
    dtype: torch.dtype,
    device: torch.device,
    channels_last: bool,
    repeats: int,
) -> dict:
    """GFLOP/s of forward and backward of a 3×3 conv, ``C→C`` channels on ``N×C×H×W``
    input: the layer that holds most of the model's FLOPs, run as training runs it."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(shape, device=device, dtype=dtype).to(memory_format=memory_format)
    weight = torch.randn(shape[1], shape[1], 3, 3, device=device, dtype=dtype)
    weight = weight.to(memory_format=memory_format)
    x.requires_grad_(True)
    weight.requires_grad_(True)
    grad_out = torch.randn_like(x)

    def forward_backward() -> None:
        torch.autograd.grad(F.conv2d(x, weight, padding=1), (x, weight), grad_out)

    with FlopCounterMode(display=False) as counter:
        forward_backward()
    seconds = _best_seconds(forward_backward, repeats, device)
    return {
        "shape": list(shape),
        "gflops_per_s": counter.get_total_flops() / seconds / 1e9,
    }


def training_dtypes(cfg: RunConfig, device: torch.device) -> list[torch.dtype]:
    """The dtypes whose ceilings the benchmark measures: fp32 always, and bf16 beside it
    when training runs under bf16 autocast (whose convolutions and matmuls compute in
    bf16, while the rest stays fp32), so a bf16 run reports the fraction of both."""
    if uses_bf16(device, cfg.run.precision):
        return [torch.float32, torch.bfloat16]
    return [torch.float32]


def measure_ceiling(
    cfg: RunConfig,
    bench: BenchmarkConfig,
    view_shapes: list[tuple[int, ...]],
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, Any]:
    """The device's reachable GFLOP/s in ``dtype``: the best of a large matmul and the
    model's main conv (each the fastest of ``bench.ceiling_repeats`` runs)."""
    n = bench.matmul_size.get(device.type, max(bench.matmul_size.values()))
    result: dict[str, Any] = {
        "dtype": str(dtype).removeprefix("torch."),
        "matmul": matmul_ceiling(n, dtype, device, bench.ceiling_repeats),
        "conv": None,
    }
    images = [s for s in view_shapes if len(s) == 3]
    if images:
        backbone = cfg.model.backbone
        _, h, w = images[0]
        width = backbone.base_width * backbone.mults_for(images[0])[0]
        shape = (cfg.stage1.batch_size, width, h, w)
        result["conv"] = conv_ceiling(
            shape, dtype, device, cfg.run.channels_last, bench.ceiling_repeats
        )
    result["gflops_per_s"] = max(
        part["gflops_per_s"] for part in (result["matmul"], result["conv"]) if part
    )
    return result


def measure_ceilings(
    cfg: RunConfig, bench: BenchmarkConfig, splits: DatasetSplits, device: torch.device
) -> dict[str, dict[str, Any]]:
    """:func:`measure_ceiling` per dtype of :func:`training_dtypes`, keyed by its name."""
    records = [
        measure_ceiling(cfg, bench, splits.view_shapes, device, dtype)
        for dtype in training_dtypes(cfg, device)
    ]
    return {record["dtype"]: record for record in records}


def best_ceiling(*records: dict[str, Any]) -> dict[str, Any]:
    """Per op, the fastest of several ceiling measurements (the benchmark takes one before
    and one after training, so a busy moment of a shared machine does not lower it)."""
    best = dict(records[0])
    for part in ("matmul", "conv"):
        measured = [r[part] for r in records if r[part]]
        best[part] = max(measured, key=lambda m: m["gflops_per_s"]) if measured else None
    best["gflops_per_s"] = max(r["gflops_per_s"] for r in records)
    return best


def _median_ms(records: list[dict[str, float]], key: str) -> float:
    return 1000 * statistics.median(r[key] for r in records)


def measure_stage(
    stage_type: type[Stage],
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    bench: BenchmarkConfig,
    previous: Stage | None = None,
) -> tuple[dict[str, Any], Stage]:
    """Throughput, time split, peak memory and FLOPs of ``bench.steps`` steps of one stage,
    built as a run builds it (on ``previous``, the stage before it), and the seconds that
    build takes (``setup_s``: wrapping, stage 2's code cache); also the stage.

    FLOPs are counted on an eager build of the stage (the counter cannot see inside
    compiled graphs) before the peak memory is reset.
    """
    settings = getattr(cfg, stage_type.section)
    loader = BatchLoader(
        splits.train, settings.batch_size, shuffle=True, drop_last=True, seed=cfg.run.seed
    )
    eager = copy.deepcopy(cfg)
    eager.run.compile = False
    flops = step_flops(stage_type.build(eager, splits, device, previous=previous), loader, device)
    memory = PeakMemory(device)
    memory.reset()
    start = time.perf_counter()
    stage = stage_type.build(cfg, splits, device, previous=previous)
    setup_s = time.perf_counter() - start
    records = time_steps(stage, loader, device, bench.steps, bench.warmup)
    total_s = statistics.median(r["total"] for r in records)
    record = {
        "batch_size": settings.batch_size,
        "setup_s": setup_s,
        "timed_steps": len(records),
        "samples_per_s": settings.batch_size / total_s,
        "ms_per_step": {k: _median_ms(records, k) for k in (*PHASES, "other", "total")},
        "flops_per_sample": flops / settings.batch_size,
        "gflops_per_s": flops / total_s / 1e9,
        **memory.record(),
    }
    return record, stage


def time_evaluation(
    model: MRDD, cfg: RunConfig, splits: DatasetSplits, device: torch.device, out_dir: Path
) -> dict[str, Any]:
    """Seconds of extracting the codes of the evaluated split, and of the whole evaluation
    a run ends with (codes of both splits, KMeans, probes, redundancy, figures into
    ``out_dir``), as :func:`mrdd.eval.evaluate_model` does it."""
    data = splits.split(cfg.eval.split)
    start = time.perf_counter()
    extract_codes(model, data, cfg.eval.batch_size, device)
    extracted = time.perf_counter()
    evaluate_model(model, cfg, splits, device, out_dir)
    return {
        "split": cfg.eval.split,
        "samples": len(data),
        "kmeans_runs": cfg.eval.n_seeds,
        "extract_s": extracted - start,
        "evaluate_s": time.perf_counter() - extracted,
    }


def measure_stages(
    cfg: RunConfig, splits: DatasetSplits, bench: BenchmarkConfig, device: torch.device
) -> tuple[dict[str, Any], nn.Module]:
    """:func:`measure_stage` of every stage the config trains, each on top of the one before;
    also returns the last stage's model (trained for the benchmark's few steps) for the
    evaluation timing."""
    records: dict[str, Any] = {}
    stage = None
    for stage_type in stages_of(cfg):
        records[stage_type.name], stage = measure_stage(
            stage_type, cfg, splits, device, bench, stage
        )
    return records, stage.model


def benchmark(cfg: RunConfig, bench: BenchmarkConfig, out_dir: str | Path) -> dict[str, Any]:
    """Measure stage 1, stage 2, one evaluation (its files go to ``out_dir``) and the
    device's ceiling; return the record."""
    runtime = cfg.run
    seed_everything(runtime.seed, runtime.deterministic)
    device = resolve_device(runtime.device)
    kept = device.type == "cpu" and runtime.cpu_keep_freed_memory and keep_freed_cpu_memory()
    load_before = os.getloadavg()
    splits = load_dataset(cfg.dataset)
    validate_against_data(cfg, splits)
    splits.train = place_data(splits.train, device)
    before = measure_ceilings(cfg, bench, splits, device)
    stages, model = measure_stages(cfg, splits, bench, device)
    evaluation = None
    if bench.evaluate:
        evaluation = time_evaluation(model, cfg, splits, device, Path(out_dir))
    after = measure_ceilings(cfg, bench, splits, device)
    ceilings = {dtype: best_ceiling(before[dtype], after[dtype]) for dtype in before}
    ceiling = ceilings["bfloat16" if uses_bf16(device, runtime.precision) else "float32"]
    for record in stages.values():
        record["ceiling_fraction"] = record["gflops_per_s"] / ceiling["gflops_per_s"]
        record["ceiling_fractions"] = {
            dtype: record["gflops_per_s"] / c["gflops_per_s"] for dtype, c in ceilings.items()
        }
    return {
        "environment": {
            **environment_record(device),
            "cpu_keep_freed_memory": kept,
            "load_average_before": list(load_before),
            "load_average_after": list(os.getloadavg()),
        },
        "settings": {
            "dataset": splits.name,
            "view_shapes": [list(s) for s in splits.view_shapes],
            "steps": bench.steps,
            "warmup": bench.warmup,
            **{key: cfg.to_dict()[key] for key in ("model", "stage1", "stage2", "run")},
        },
        "stages": stages,
        "evaluation": evaluation,
        "ceiling": ceiling,
        "ceilings": ceilings,
    }


def _ceiling_line(ceiling: dict[str, Any]) -> str:
    matmul, conv = ceiling["matmul"], ceiling["conv"]
    line = (
        f"ceiling ({ceiling['dtype']}): matmul {'x'.join(map(str, matmul['shape']))} "
        f"{matmul['gflops_per_s']:.1f} GFLOP/s"
    )
    if conv:
        line += (
            f"; 3x3 conv fwd+bwd on {'x'.join(map(str, conv['shape']))} "
            f"{conv['gflops_per_s']:.1f} GFLOP/s"
        )
    return line


def format_report(result: dict[str, Any]) -> str:
    """The benchmark record as a plain-text table (one ceiling column per measured dtype)."""
    env = result["environment"]
    ceilings = result["ceilings"]
    short = {"float32": "fp32", "bfloat16": "bf16"}
    lines = [
        f"device {env['device']} ({env['device_name']}), {env['cpu_threads']} threads, "
        f"torch {env['torch']}; load average {env['load_average_before'][0]:.2f} before, "
        f"{env['load_average_after'][0]:.2f} after; "
        f"{result['settings']['steps']} timed steps after {result['settings']['warmup']}",
        "",
        f"{'stage':<12} {'batch':>5} {'samples/s':>9} "
        + " ".join(f"{p:>8}" for p in (*PHASES, "total"))
        + f" {'peak MB':>8} {'MFLOP/smp':>9} {'GFLOP/s':>8}"
        + "".join(f" {'of ' + short.get(d, d):>7}" for d in ceilings),
    ]
    for name, s in result["stages"].items():
        ms = s["ms_per_step"]
        fractions = s["ceiling_fractions"]
        lines.append(
            f"{name:<12} {s['batch_size']:>5} {s['samples_per_s']:>9.1f} "
            + " ".join(f"{ms[p]:>8.1f}" for p in (*PHASES, "total"))
            + f" {s['peak_memory_mb']:>8.0f} {s['flops_per_sample'] / 1e6:>9.1f}"
            f" {s['gflops_per_s']:>8.1f}" + "".join(f" {fractions[d]:>7.0%}" for d in ceilings)
        )
    lines.append(
        "(phase columns: median ms per step; peak memory: "
        + ("max_memory_allocated" if s["memory_kind"] == "cuda_max_allocated" else "process RSS")
        + "; of fp32 / bf16: fraction of that dtype's ceiling)"
    )
    lines.append(
        "setup before the first step (wrapping; stage 2: its cache of c): "
        + ", ".join(f"{name} {s['setup_s']:.2f} s" for name, s in result["stages"].items())
    )
    lines += [_ceiling_line(c) for c in ceilings.values()]
    evaluation = result["evaluation"]
    if evaluation:
        lines.append(
            f"evaluation: codes of the {evaluation['samples']} {evaluation['split']} samples "
            f"{evaluation['extract_s']:.2f} s; the whole evaluation (both splits' codes, "
            f"{evaluation['kmeans_runs']} KMeans runs, probes, figures) "
            f"{evaluation['evaluate_s']:.1f} s"
        )
    return "\n".join(lines)
