"""Build the development suite of real multi-view datasets, offline, and their floors.

python scripts/make_suite.py                                   # every dataset, into data/suite
python scripts/make_suite.py --only breast_cancer mnist_edge16 # some of them
python scripts/make_suite.py --floors docs/datasets_suite_floors.json   # and the floors

Each dataset becomes <out>/<name>.npz, which trains with
``python scripts/train.py dataset=npz dataset.path=<out>/<name>.npz`` (or
``dataset=suite/<name>``). With --floors, every dataset is loaded back through the npz
loader (validation carved as training carves it) and its raw-feature floors (KMeans on
the concatenated views and on the best single view, chosen on val) are written to that
JSON file (datasets already there and not rebuilt are kept) and printed as a markdown
table. See docs/datasets_suite.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mrdd.cli import reporting_user_errors
from mrdd.data import load_dataset
from mrdd.data.suite import SUITE, build, describe, write
from mrdd.eval.floors import floor_summary_markdown, floors_markdown, raw_floors


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/suite", help="folder of the .npz files")
    parser.add_argument("--only", nargs="+", choices=list(SUITE), help="datasets to build")
    parser.add_argument("--floors", help="write the floors to this JSON file")
    parser.add_argument("--n-seeds", type=int, default=10, help="KMeans seeds per floor")
    return parser.parse_args(argv)


def read_report(path: str) -> dict:
    """The floors already in ``path`` (none if it does not exist yet)."""
    file = Path(path)
    return json.loads(file.read_text()) if file.is_file() else {}


def main(argv: list[str]) -> int:
    args = parse(argv)
    report = read_report(args.floors) if args.floors else {}
    with reporting_user_errors() as refusal:
        for name in args.only or list(SUITE):
            data = build(name)
            path = write(data, args.out)
            splits = load_dataset({"name": "npz", "path": str(path)})
            entry = describe(data, splits)
            print(f"{path}: {entry['samples']}", flush=True)
            if args.floors:  # written after every dataset: a long run keeps what it did
                report[name] = {**entry, "floors": raw_floors(splits, args.n_seeds)}
                report = {n: report[n] for n in SUITE if n in report}  # in the suite's order
                Path(args.floors).parent.mkdir(parents=True, exist_ok=True)
                Path(args.floors).write_text(json.dumps(report, indent=1) + "\n")
    if refusal:
        return refusal.status
    if args.floors:
        print(floor_summary_markdown(report))
        print(floors_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
