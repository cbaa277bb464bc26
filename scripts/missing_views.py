"""Evaluate a trained run with views missing at test time: clustering ACC and imputation.

python scripts/missing_views.py outputs/<run>
python scripts/missing_views.py outputs/<run> --rates 0 0.3 0.7 --n-seeds 5 --out docs/missing_views

Writes <out>.md, <out>.csv and <out>.png (default out: <run>/missing_views) and prints
the table. See mrdd/eval/missing.py for what is measured.
"""

from __future__ import annotations

import argparse
import logging
import sys

import mrdd
from mrdd.config import ConfigError
from mrdd.data import DataError, load_dataset
from mrdd.eval.missing import DEFAULT_RATES, evaluate_missing_views, write_missing_views
from mrdd.train import CheckpointError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a training run directory (holds mrdd.pt)")
    parser.add_argument("--rates", nargs="+", type=float, default=list(DEFAULT_RATES))
    parser.add_argument("--n-seeds", type=int, default=5, help="KMeans seeds per score")
    parser.add_argument("--seed", type=int, default=0, help="seed of the masks and probes")
    parser.add_argument("--out", help="output path without suffix")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        trained = mrdd.load(args.run_dir, device=args.device)
        dataset = {**trained.config.dataset, "missing_rate": 0.0}
        splits = load_dataset(dataset)
        rows = evaluate_missing_views(trained, splits, args.rates, args.n_seeds, args.seed)
    except (ConfigError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or f"{args.run_dir}/missing_views"
    print(write_missing_views(rows, out))
    print(f"written: {out}.md, {out}.csv, {out}.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
