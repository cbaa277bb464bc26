"""Choose the umap clustering method's settings on val, across datasets.

python scripts/umap_settings.py                                 # the six suite datasets
python scripts/umap_settings.py --runs runs/a runs/b --out umap_settings.json
python scripts/umap_settings.py --umap-seeds 3 \
    --settings "10, 15, 0.0, nndescent" "10, 15, 0.0, auto"      # two rows, 3 UMAP seeds

For every feature set, each setting of :data:`GRID` is fitted as the umap method fits it
in a run (:func:`mrdd.eval.manifold.manifold_codes`: standardised on train, UMAP fitted on
the train split, the val split mapped into it) and the val split clustered by the same
KMeans (``n_init=10``, ``--kmeans-seeds`` seeds). The feature sets are

* the raw floor (``raw_best``, the best view's raw inputs) of every development-suite
  dataset (``data/suite/<name>.npz``, built by ``scripts/make_suite.py``), and
* the learned codes of every ``--runs`` directory (``C``, and ``C+S_best`` where the run
  has stage 2), computed on that run's own data.

Only val is read: the choice must not look at test. Prints one Markdown table (val ACC,
%, mean over the KMeans seeds and the ``--umap-seeds`` UMAP seeds; every seed's number is
in ``--out``) with each setting's mean difference to the default across
the feature sets and its wins, and writes every number to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from torch import Tensor

import mrdd
from mrdd.config import EvalConfig
from mrdd.data import load_dataset
from mrdd.data.suite import SUITE
from mrdd.eval.manifold import manifold_codes
from mrdd.eval.metrics import evaluate_clustering
from mrdd.eval.representations import RAW_FLOOR, raw_floor

#: (n_components, n_neighbors, min_dist, knn): the default first, then one change at a time.
GRID = (
    (10, 15, 0.0, "auto"),
    (10, 15, 0.0, "nndescent"),
    (10, 5, 0.0, "auto"),
    (10, 30, 0.0, "auto"),
    (10, 15, 0.1, "auto"),
    (2, 15, 0.0, "auto"),
    (5, 15, 0.0, "auto"),
)
SPLITS = ("train", "val")


def suite_features(name: str, data_root: Path) -> dict[str, dict[str, Tensor]]:
    """``{split: {"raw_best": N×d}}`` of a suite dataset's train and val splits."""
    splits = load_dataset({"name": "npz", "path": str(data_root / "suite" / f"{name}.npz")})
    features = {s: raw_floor(splits.split(s), 0) for s in SPLITS}  # view 0, as measured
    return {"features": features, "labels": splits.val.labels, "k": splits.num_classes}


def run_features(run_dir: Path) -> dict[str, object]:
    """The codes ``C`` (and ``C+S_best``) of a run's train and val splits, on its own data."""
    trained = mrdd.load(run_dir)
    splits = trained.load_data(trained.config.dataset)
    keep = ("C", "C+S_best")
    features = {}
    for split in SPLITS:
        reps = trained.representations(splits.split(split).views, prepared=True)
        features[split] = {name: reps[name] for name in keep if name in reps}
    return {"features": features, "labels": splits.val.labels, "k": splits.num_classes}


def label(setting: tuple[int, int, float, str]) -> str:
    """The setting's row name, e.g. ``10, 15, 0.0, nndescent``."""
    return ", ".join(map(str, setting))


def val_acc(
    item: dict, setting: tuple[int, int, float, str], kmeans_seeds: int, umap_seed: int
) -> dict[str, float]:
    """Val ACC of each representation of ``item`` under one UMAP setting and seed."""
    components, neighbors, min_dist, knn = setting
    ev = EvalConfig(
        umap_components=components, umap_neighbors=neighbors, umap_min_dist=min_dist, umap_knn=knn
    )
    names = list(item["features"]["train"])
    embedded = manifold_codes(item["features"], ["val"], names, ev, seed=umap_seed)
    scores = {
        name: evaluate_clustering(embedded["val"][name], item["labels"], item["k"], kmeans_seeds)
        for name in names
    }
    return {name: result["acc"]["mean"] for name, result in scores.items()}


def markdown(table: dict[str, dict[str, float]]) -> str:
    """Settings as rows, feature sets as columns, plus the mean difference to the default
    (the first setting) and the number of feature sets where the setting beats it."""
    columns = list(next(iter(table.values())))
    default = next(iter(table.values()))
    lines = [
        "| n_components, n_neighbors, min_dist, knn | "
        + " | ".join(columns)
        + " | Δ mean | wins |",
        "| :-- |" + " --: |" * (len(columns) + 2),
    ]
    for setting, row in table.items():
        deltas = [row[c] - default[c] for c in columns]
        cells = " | ".join(f"{100 * row[c]:.2f}" for c in columns)
        wins = sum(d > 0 for d in deltas)
        lines.append(f"| {setting} | {cells} | {100 * np.mean(deltas):+.2f} | {wins} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(SUITE), help="suite datasets")
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="run directories")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--kmeans-seeds", type=int, default=3)
    parser.add_argument(
        "--umap-seeds", type=int, default=1, help="UMAP seeds 0..N-1 per cell (ACC averaged)"
    )
    parser.add_argument(
        "--settings", nargs="*", default=None, help="only these GRID rows, e.g. '10, 15, 0.0, auto'"
    )
    parser.add_argument("--out", type=Path, default=Path("umap_settings.json"))
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"error: {args.out} exists; pass --out <new file>.", file=sys.stderr)
        return 2
    grid = [g for g in GRID if args.settings is None or label(g) in args.settings]
    if args.settings is not None and len(grid) != len(set(args.settings)):
        known = "; ".join(map(label, GRID))
        print(f"error: --settings names a row not in the grid; its rows: {known}", file=sys.stderr)
        return 2
    items = {f"{name}/{RAW_FLOOR}": suite_features(name, args.data_root) for name in args.datasets}
    for run_dir in args.runs:
        items[str(run_dir)] = run_features(run_dir)
    table: dict[str, dict[str, float]] = {}
    per_seed: dict[str, dict[str, list[float]]] = {}
    start = time.process_time()
    for setting in grid:
        row: dict[str, list[float]] = {}
        for umap_seed in range(args.umap_seeds):
            for item_label, item in items.items():
                accs = val_acc(item, setting, args.kmeans_seeds, umap_seed)
                for name, acc in accs.items():
                    floor = item_label.endswith(RAW_FLOOR)
                    row.setdefault(item_label if floor else f"{item_label}/{name}", []).append(acc)
        per_seed[label(setting)] = row
        table[label(setting)] = {column: float(np.mean(accs)) for column, accs in row.items()}
        cpu = time.process_time() - start
        print(f"[umap_settings] {label(setting)} done ({cpu:.0f} CPU-s)", flush=True)
    record = {
        "split": "val",
        "umap_seeds": list(range(args.umap_seeds)),
        "table": table,  # mean over the UMAP seeds
        "per_umap_seed": per_seed,
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
