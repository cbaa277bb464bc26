"""Evaluate a training run: metrics.json, metrics.md (printed) and the figures.

python scripts/evaluate.py run_dir=outputs/2026-11-24/10-00-00
python scripts/evaluate.py run_dir=<run> eval.split=train eval.n_seeds=3 out_dir=<run>/eval_train
python scripts/evaluate.py run_dir=<run> eval.figures=false device=cpu

Any other key=value overrides the run's saved config (the eval block, device, ...).
Results go into the run directory unless out_dir= is given; an out_dir= that cannot be
a folder (a file, a path under a file) and a run_dir= that does not exist are refused
before anything is loaded. Overrides that change the data or its split (dataset.seed,
dataset.test_fraction, dataset.val_fraction, another file, ...) are refused, since the
"test" split would then hold training samples, unless other_data=true asks to score other
data on purpose (metrics.json's "data" says how they differ from the training data).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

import mrdd
from mrdd.cli import reporting_user_errors
from mrdd.config import ConfigError
from mrdd.eval import metrics_markdown


def check_paths(run_dir: Path, out_dir: Path | None) -> None:
    """Refuse, before any work, a run directory that is not there and an ``out_dir`` that
    cannot be made a folder, naming the path at fault."""
    if not run_dir.exists():
        raise ConfigError(f"run_dir={run_dir} does not exist; pass a training run's directory.")
    if out_dir is None:
        return
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == out_dir else f"is under {existing}, a file"
        raise ConfigError(f"out_dir={out_dir} {where}; name a folder for the results.")


def main(argv: list[str]) -> int:
    args = OmegaConf.to_container(OmegaConf.from_dotlist(argv), resolve=True)
    run_dir = args.pop("run_dir", None)
    if run_dir is None:
        print(
            "usage: python scripts/evaluate.py run_dir=<training run> [key=value ...]",
            file=sys.stderr,
        )
        return 2
    out_dir = args.pop("out_dir", None)
    other_data = args.pop("other_data", False)
    if not isinstance(other_data, bool):
        print(f"error: other_data= must be true or false, got {other_data!r}.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with reporting_user_errors() as refusal:
        check_paths(Path(str(run_dir)), None if out_dir is None else Path(str(out_dir)))
        metrics = mrdd.evaluate(run_dir, args, out_dir, other_data=other_data)
    if refusal:
        return refusal.status
    print(metrics_markdown(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
