"""Measure what re-estimating stage 1's BatchNorm statistics does to ``C`` (paired).

python scripts/measure_calibration.py outputs/a outputs/b outputs/c [--split val] [--out x.json]

For every run (trained with ``stage1.calibrate_bn=false``), the stage-1 encoder is
evaluated twice with the *same* weights: with the running statistics it ended training
with (those of masked views), and after :func:`mrdd.train.calibrate.recalibrate_batch_norm`
on the unmasked training views. Each is scored by KMeans clustering of ``C`` on the chosen
split (``eval.n_seeds`` seeds, as the run's evaluation does), and the table gives every
run's pair and the mean ± std across runs. Choose on ``val``; report ``test``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import mrdd
from mrdd.data import load_dataset
from mrdd.eval import extract_codes
from mrdd.eval.metrics import evaluate_clustering
from mrdd.train.calibrate import recalibrate_batch_norm

CPU = torch.device("cpu")


def paired_scores(run_dir: str, split: str) -> dict[str, float]:
    """Clustering ACC and NMI of ``C`` on ``split``, before and after re-calibration."""
    trained = mrdd.load(run_dir)
    cfg = trained.config
    splits = load_dataset(cfg.dataset)
    encoder = trained.model.consistency if hasattr(trained.model, "consistency") else trained.model
    data = splits.split(split)
    scores = {}
    for state in ("as trained", "re-calibrated"):
        if state == "re-calibrated":
            recalibrate_batch_norm(encoder, splits.train, cfg.eval.batch_size, CPU)
        c = extract_codes(encoder, data, cfg.eval.batch_size, CPU).c
        result = evaluate_clustering(
            c, data.labels, splits.num_classes, cfg.eval.n_seeds, cfg.run.seed
        )
        scores.update(
            {f"{state} acc": result["acc"]["mean"], f"{state} nmi": result["nmi"]["mean"]}
        )
    return scores


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows = {run: paired_scores(run, args.split) for run in args.runs}
    keys = list(next(iter(rows.values())))
    print(f"C clustering on the {args.split} split, same stage-1 weights per run")
    print("| run | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for run, row in rows.items():
        print(f"| {run} | " + " | ".join(f"{row[k]:.4f}" for k in keys) + " |")
    means = {
        k: (
            float(np.mean([r[k] for r in rows.values()])),
            float(np.std([r[k] for r in rows.values()])),
        )
        for k in keys
    }
    print(
        f"| mean ± std ({len(rows)} runs) | "
        + " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in means.values())
        + " |"
    )
    if args.out:
        args.out.write_text(
            json.dumps({"split": args.split, "runs": rows, "mean_std": means}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
