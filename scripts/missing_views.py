"""Evaluate a trained run with views missing at test time: clustering ACC and imputation.

python scripts/missing_views.py outputs/<run>
python scripts/missing_views.py outputs/<run> --rates 0 0.3 0.7 --n-seeds 5 --out docs/missing_views
python scripts/missing_views.py <run seed 0> <run seed 1> <run seed 2> --out docs/mv_default

Writes <out>.md, <out>.csv and <out>.png (default out: <first run>/missing_views) and
prints the table. With several runs (training seeds of one config) every cell is the
mean ± std across the runs. See mrdd/eval/missing.py for what is measured.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import mrdd
from mrdd.cli import reporting_user_errors
from mrdd.config import SPLITS
from mrdd.eval.missing import (
    DEFAULT_RATES,
    across_runs,
    evaluate_missing_views,
    write_missing_views,
)


def evaluate_run(run_dir: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The missing-view rows of one run, on its own dataset made complete again."""
    trained = mrdd.load(run_dir, device=args.device)
    # prepared as the model's training data, with C‖S_best's view as the run settled it
    splits = trained.load_data({**trained.config.dataset, "missing_rate": 0.0})
    return evaluate_missing_views(
        trained.model, splits, args.rates, args.n_seeds, args.seed, split=args.split
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", help="training run directories (hold mrdd.pt)")
    parser.add_argument("--rates", nargs="+", type=float, default=list(DEFAULT_RATES))
    parser.add_argument("--n-seeds", type=int, default=5, help="KMeans seeds per score")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masks and probes")
    parser.add_argument("--out", help="output path without suffix")
    parser.add_argument(
        "--split", default="test", choices=SPLITS, help="val to choose, test to report"
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with reporting_user_errors() as refusal:
        per_run = [evaluate_run(run_dir, args) for run_dir in args.run_dirs]
        rows = per_run[0] if len(per_run) == 1 else across_runs(per_run)
    if refusal:
        return refusal.status
    out = args.out or f"{args.run_dirs[0]}/missing_views"
    print(write_missing_views(rows, out))
    print(f"written: {out}.md, {out}.csv, {out}.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
