"""Gather the metrics.json of many runs into one Markdown and CSV table (mean ± std).

python scripts/collect.py multirun/2026-11-24/10-00-00
python scripts/collect.py outputs/a outputs/b --out results/ablation --metrics 'clustering.*.acc'

Runs are grouped by the config values that differ between them; the seed is
averaged over (--average-over changes that). The scores of one split are tabled
(--split, default test; runs also cluster val, the split to choose on). Writes
<out>.md and <out>.csv (default: results.md / results.csv in the first path) and
prints the Markdown. An evaluation written below its run (evaluate.py out_dir=<run>/val)
is a row of its own (evaluated_in); a folder that gives no row (a failed or unfinished
run, a sweep job refused before it ran) is named with the reason under the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mrdd.config import SPLITS
from mrdd.eval.collect import DEFAULT_COLUMNS, collect


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="run directories or folders holding runs")
    parser.add_argument("--out", help="output path without suffix (default: <first path>/results)")
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=list(DEFAULT_COLUMNS),
        help="fnmatch patterns of the scores shown in the Markdown table (the CSV has all)",
    )
    parser.add_argument(
        "--average-over", nargs="+", default=["run.seed"], help="config keys averaged over"
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=SPLITS,
        help="the split whose scores are tabled (choose on val, report test)",
    )
    args = parser.parse_args(argv)
    out = args.out or Path(args.paths[0]) / "results"
    try:
        print(collect(args.paths, out, args.metrics, args.average_over, args.split))
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"written: {Path(out).with_suffix('.md')}, {Path(out).with_suffix('.csv')}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
