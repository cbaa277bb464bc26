"""The evaluation of a trained model: every number of DESIGN.md section 3, and the figures.

:func:`evaluate_model` is the one function behind both the end of training
(:func:`mrdd.train.run`) and ``scripts/evaluate.py`` (via :func:`mrdd.evaluate`).
It returns the metrics dict (schema in the README, "Evaluation") and draws the
figures of :mod:`mrdd.eval.gallery` unless ``eval.figures`` is off; its callers
save the dict as ``metrics.json`` and :func:`metrics_markdown` as ``metrics.md``
(:func:`mrdd.train.run.save_metrics`, with the run's environment added).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mrdd.config import RunConfig
from mrdd.data import DatasetSplits
from mrdd.eval.evaluate import (
    classification_report,
    clustering_report,
    redundancy_report,
)
from mrdd.eval.gallery import write_figures
from mrdd.eval.representations import extract_codes
from mrdd.eval.tables import markdown_table, mean_std
from mrdd.models import MRDD, Codes, ConsistencyModel

log = logging.getLogger("mrdd")


def named_representations(codes: Codes, best_view: int) -> dict[str, Tensor]:
    """``C``, every ``S_v``, ``C+S_best``, ``C+S_all`` (only ``C`` for a stage-1 model)."""
    return codes.as_dict(best_view) if codes.s else {"C": codes.c}


@torch.no_grad()
def club_estimates(model: MRDD, codes: Codes, device: torch.device) -> dict[str, float]:
    """The trained CLUB estimators' ``I_CLUB(s_v; c)`` over all pairs of the given codes."""
    model.eval()
    c = codes.c.to(device)
    return {
        f"S_{v}": float(club.mi_upper_bound(s.to(device), c, sampled=False))
        for v, (club, s) in enumerate(zip(model.club, codes.s, strict=True))
    }


def evaluate_model(
    model: MRDD | ConsistencyModel,
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    out_dir: Path,
    history: dict[str, list[dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """Score the codes of both splits and write the figures into ``out_dir``.

    Clustering and redundancy use ``cfg.eval.split``; the probes are fitted on
    train and scored on test. ``history`` (per-stage training records) feeds
    the training-curves figure. Returns the metrics dict.
    """
    out_dir = Path(out_dir)
    ev = cfg.eval
    data = splits.split(ev.split)
    codes = {
        name: extract_codes(model, splits.split(name), ev.batch_size, device)
        for name in ("train", "test")
    }
    reps = {name: named_representations(c, splits.best_view) for name, c in codes.items()}
    metrics: dict[str, Any] = {
        "dataset": splits.name,
        "stage": cfg.stage,
        "model": "mrdd" if isinstance(model, MRDD) else "consistency",
        "best_view": splits.best_view,
        "seed": cfg.seed,
        "eval": cfg.to_dict()["eval"],
        "representations": {name: int(x.shape[1]) for name, x in reps["test"].items()},
        "clustering": clustering_report(
            reps[ev.split], data.labels, splits.num_classes, ev.split, ev.n_seeds, cfg.seed
        ),
        "classification": None,
        "redundancy": None,
    }
    if ev.classifiers:
        metrics["classification"] = classification_report(
            reps["train"],
            splits.train.labels,
            reps["test"],
            splits.test.labels,
            ev.classifiers,
            ev.n_seeds,
            cfg.seed,
        )
    if isinstance(model, MRDD):
        split_codes = codes[ev.split]
        metrics["redundancy"] = redundancy_report(
            split_codes.c,
            {f"S_{v}": s for v, s in enumerate(split_codes.s)},
            data.labels,
            splits.num_classes,
            club_estimates(model, split_codes, device),
            ev.split,
            ev.regressors,
            ev.n_seeds,
            cfg.seed,
        )
    metrics["figures"] = (
        write_figures(model, data, reps[ev.split], history or {}, cfg, device, out_dir)
        if ev.figures
        else []
    )
    return metrics


_CLUSTER_SCORES = {
    "acc": "ACC",
    "nmi": "NMI",
    "ari": "ARI",
    "fscore": "F-score",
    "purity": "Purity",
}
_CLASS_SCORES = {"accuracy": "acc", "precision_macro": "macro P", "f1_macro": "macro F1"}


def metrics_markdown(metrics: dict[str, Any]) -> str:
    """The tables of ``metrics.md``: clustering, classification, redundancy (in %, but R²)."""
    clu = metrics["clustering"]
    parts = [
        f"# Evaluation of {metrics['dataset']} ({metrics['model']} model, seed {metrics['seed']})",
        f"## Clustering ({clu['split']} split, {clu['n_samples']} samples, "
        f"mean ± std over {clu['n_runs']} KMeans seeds, %)",
        markdown_table(
            ["representation", *_CLUSTER_SCORES.values()],
            [
                [name, *(mean_std(scores[k], 100) for k in _CLUSTER_SCORES)]
                for name, scores in clu["representations"].items()
            ],
        ),
    ]
    cls = metrics["classification"]
    if cls:
        parts += [
            f"## Classification (fit on train, {cls['n_train']} samples; scored on test, "
            f"{cls['n_test']} samples; mean ± std over {cls['n_runs']} runs, %)",
            markdown_table(
                [
                    "representation",
                    *(
                        f"{c} {label}"
                        for c in cls["classifiers"]
                        for label in _CLASS_SCORES.values()
                    ),
                ],
                [
                    [
                        name,
                        *(
                            mean_std(s[c][k], 100)
                            for c in cls["classifiers"]
                            for k in _CLASS_SCORES
                        ),
                    ]
                    for name, s in cls["representations"].items()
                ],
            ),
        ]
    red = metrics["redundancy"]
    if red:
        regs = red["regressors"]
        parts += [
            f"## Redundancy ({red['split']} split, {red['n_samples']} samples; held-out R² "
            f"mean ± std over {red['n_runs']} splits; CLUB in nats)",
            markdown_table(
                [
                    "representation",
                    *(f"R²(C) {r}" for r in regs),
                    "CLUB I(s_v; c)",
                    *(f"R²(labels) {r}" for r in regs),
                ],
                [
                    [
                        name,
                        *(
                            mean_std(e["r2"]["C"][r], digits=3) if "C" in e["r2"] else "–"
                            for r in regs
                        ),
                        f"{e['club']:.3f}" if "club" in e else "–",
                        *(mean_std(e["r2"]["labels"][r], digits=3) for r in regs),
                    ]
                    for name, e in red["representations"].items()
                ],
            ),
            *(f"Skipped: {reg} ({reason})." for reg, reason in red["skipped"].items()),
        ]
    return "\n\n".join(parts) + "\n"
