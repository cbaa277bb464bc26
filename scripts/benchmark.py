"""Measure training speed: samples/s, time split, memory, FLOPs, fraction of the ceiling.

python scripts/benchmark.py experiment=paper_edge_mnist           # the paper's setting
python scripts/benchmark.py benchmark.steps=50 run.channels_last=false
python scripts/benchmark.py benchmark.json=bench.json device=cuda

Prints a table and writes the same numbers as JSON (benchmark.json in the run
directory, or benchmark.json=<path>); the timed evaluation writes its metrics and
figures into the run directory. Any training override applies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from config_schema import refuse_renamed_overrides, register
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mrdd.bench import benchmark, format_report
from mrdd.cli import reporting_user_errors
from mrdd.config import BenchmarkConfig, RunConfig


@hydra.main(config_path="../configs", config_name="benchmark", version_base="1.3")
def benchmark_run(cfg: DictConfig) -> None:
    with reporting_user_errors() as refusal:
        options = OmegaConf.to_container(cfg, resolve=True)
        bench = BenchmarkConfig.from_dict(options.pop("benchmark"))
        out_dir = Path(HydraConfig.get().runtime.output_dir)
        result = benchmark(RunConfig.from_dict(options), bench, out_dir)
    if refusal:
        sys.exit(refusal.status)
    path = Path(bench.json or out_dir / "benchmark.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(format_report(result))
    print(f"JSON: {path}")


def main() -> None:
    register()
    refuse_renamed_overrides(sys.argv[1:])
    benchmark_run()


if __name__ == "__main__":
    main()
