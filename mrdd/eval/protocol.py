"""The evaluation protocol of a trained model: every number of docs/method.md.

:func:`evaluate_model` is the one function behind both the end of training
(:func:`mrdd.train.run`) and ``scripts/evaluate.py`` (via :func:`mrdd.evaluate`). It
extracts the codes of every split, names the representations
(:func:`~mrdd.eval.representations.named_representations`) and the raw floor, clusters
them with each method of ``eval.clustering`` (the umap one embeds them with
:mod:`mrdd.eval.manifold`), scores them as flat rows
(:mod:`mrdd.eval.tables`) and draws the figures of :mod:`mrdd.eval.gallery` unless
``eval.figures`` is off. Its callers save the returned dict as ``metrics.json`` and
:func:`~mrdd.eval.tables.metrics_markdown` as ``metrics.md``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mrdd.config import EvalConfig, RunConfig
from mrdd.data import DatasetSplits
from mrdd.eval.best_view import best_on_val, settle_best_view
from mrdd.eval.gallery import SplitCodes, write_figures
from mrdd.eval.manifold import EXACT_BELOW, FIT_SPLIT, manifold_codes
from mrdd.eval.metrics import (
    CLASSIFICATION_SUBSAMPLE,
    REDUNDANCY_TEST_FRACTION,
    evaluate_classification,
    evaluate_clustering,
    redundancy_r2,
)
from mrdd.eval.representations import (
    MANIFOLD,
    RAW_FLOOR,
    extract_codes,
    headline,
    named_representations,
    raw_floor,
    specific_name,
)
from mrdd.eval.tables import CLUSTERING_TASKS, UNITS, ScoreRow, score_row
from mrdd.models import MRDD, Codes, ConsistencyModel

log = logging.getLogger("mrdd")

#: How each task's numbers are made (``metrics.json`` → ``methods``, and ``metrics.md``);
#: the umap method's text names its settings (:func:`method_texts`).
METHODS = {
    "clustering": (
        "KMeans(k=num_classes, n_init=10) on the codes (the paper's protocol), one run per "
        f"seed; {RAW_FLOOR}: the same on the best view's raw inputs (the floor)."
    ),
    "classification": (
        "StandardScaler + SVC(rbf) ('svm') or LogisticRegression ('linear'), fitted on a "
        f"stratified {CLASSIFICATION_SUBSAMPLE:.0%} subsample of the train split per run "
        "and scored on the test split."
    ),
    "redundancy": (
        "r2_<target>_<regressor>: held-out R² (variance-weighted) of predicting C or the "
        "one-hot labels with RidgeCV ('ridge') or MLPRegressor(128) ('mlp') on standardised "
        f"inputs/targets, {REDUNDANCY_TEST_FRACTION:.0%} of the split held out at random per "
        "run; club: the trained CLUB estimator's I_CLUB(s_v; c) over all pairs of the split."
    ),
}


#: How each ``eval.umap_knn`` finds neighbours, as ``metrics.md`` says it.
KNN_TEXTS = {
    "auto": f"exact below {EXACT_BELOW:,} train codes, NN-descent from there (auto)",
    "nndescent": "NN-descent (nndescent)",
}


def method_texts(ev: EvalConfig) -> dict[str, str]:
    """:data:`METHODS` and the umap clustering method's text, with ``ev``'s settings."""
    umap = (
        f"UMAP(n_components={ev.umap_components}, n_neighbors={ev.umap_neighbors}, "
        f"min_dist={ev.umap_min_dist:g}, random_state=seed; "
        f"neighbours: {KNN_TEXTS[ev.umap_knn]}) fitted once per representation "
        "on the train split's codes (standardised on train), every split mapped into it; "
        "KMeans(k=num_classes, n_init=10) on the embedded codes, one run per seed (one "
        f"embedding for all runs); {RAW_FLOOR}: the same on the best view's raw inputs."
    )
    texts = {**METHODS, CLUSTERING_TASKS["umap"]: umap}
    return {task: texts[task] for task in UNITS}


def evaluate_model(
    model: MRDD | ConsistencyModel,
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    out_dir: Path,
    history: dict[str, list[dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """Score the codes of every split and write the figures into ``out_dir``.

    Clustering (each method of ``cfg.eval.clustering``) and redundancy use
    ``cfg.eval.split``, and the splits of ``cfg.eval.also_cluster`` that the dataset has
    are clustered too (every row names its split); the probes are fitted on train and
    scored on test. ``history`` (per-stage training records) feeds the training-curves
    figure. Returns the metrics dict (schema: docs/running.md, "metrics.json").
    """
    ev = cfg.eval
    data = splits.split(ev.split)
    codes = {
        name: extract_codes(model, splits.split(name), ev.batch_size, device)
        for name in splits.names
    }
    splits, best_view = settle_best_view(model, splits, cfg, device, codes.get("val"))
    reps = {name: named_representations(c.c, c.s, splits.best_view) for name, c in codes.items()}
    features = {
        name: {**reps[name], **raw_floor(splits.split(name), splits.best_view)}
        for name in splits.names
    }
    clustered = clustered_splits(ev, splits.names)
    scores, embedded = all_clustering_rows(features, splits, clustered, ev, cfg.run.seed)
    if ev.classifiers:
        scores += classification_rows(reps, splits, ev, cfg.run.seed)
    skipped = {"clustering": _raw_floor_skips(features, clustered) if ev.clustering else {}}
    if isinstance(model, MRDD):
        club = club_estimates(model, codes[ev.split], device)
        redundancy, skipped["redundancy"] = redundancy_rows(
            codes[ev.split], data.labels, splits.num_classes, club, ev, cfg.run.seed
        )
        scores += redundancy
    tasks = {row["task"] for row in scores}
    figures = (
        write_figures(
            model, data, SplitCodes(reps[ev.split], embedded), history or {}, cfg, Path(out_dir)
        )
        if ev.figures
        else []
    )
    return {
        "dataset": splits.name,
        "stage": cfg.stage,
        "model": "mrdd" if isinstance(model, MRDD) else "consistency",
        "best_view": splits.best_view,
        "best_view_choice": best_view,
        "best_on_val": best_on_val(scores),
        "seed": cfg.run.seed,
        "eval": cfg.to_dict()["eval"],
        "splits": {name: len(splits.split(name)) for name in codes},
        "representations": {name: int(x.shape[1]) for name, x in reps["test"].items()},
        "methods": {task: text for task, text in method_texts(ev).items() if task in tasks},
        "skipped": {task: reasons for task, reasons in skipped.items() if reasons},
        "scores": scores,
        "figures": figures,
    }


def all_clustering_rows(
    features: Mapping[str, Mapping[str, Tensor]],
    splits: DatasetSplits,
    clustered: Sequence[str],
    ev: EvalConfig,
    seed: int,
) -> tuple[list[ScoreRow], dict[str, np.ndarray]]:
    """The rows of every method of ``ev.clustering`` on every ``clustered`` split, and the
    evaluated split's manifold codes (what ``umap.png`` draws).

    ``features[split][name]`` are the representations and raw floor of every split. The
    UMAP embedding is fitted once per representation of :data:`MANIFOLD` (on train) and
    serves every split, every KMeans seed and the figure; without the umap method it is
    fitted for the figure's representations only, and not at all without figures.
    """
    shown = (
        {n: x for n, x in features[ev.split].items() if n in MANIFOLD}
        if "umap" in ev.clustering
        else headline(features[ev.split])
    )
    names = [name for name in shown if name in features[FIT_SPLIT]]
    needed = "umap" in ev.clustering or ev.figures
    embedded = (
        manifold_codes(_fitted_on(features, ev), clustered, names, ev, seed) if needed else {}
    )
    rows = []
    for method in ev.clustering:
        for split in clustered:
            x = features[split] if method == "kmeans" else embedded[split]
            rows += clustering_rows(x, splits, split, CLUSTERING_TASKS[method], ev, seed)
    return rows, embedded.get(ev.split, {})


def _fitted_on(
    features: Mapping[str, Mapping[str, Tensor]], ev: EvalConfig
) -> Mapping[str, Mapping[str, Tensor]]:
    """``features`` whose train split the UMAP is fitted on: all of it for the umap method;
    for the figure alone (umap not in ``ev.clustering``) its first ``ev.embedding_samples``
    codes, as many as the figure draws, since a fit on every train code costs minutes."""
    if "umap" in ev.clustering:
        return features
    train = {name: x[: ev.embedding_samples] for name, x in features[FIT_SPLIT].items()}
    return {**features, FIT_SPLIT: train}


def _raw_floor_skips(
    features: Mapping[str, Mapping[str, Tensor]], clustered: Sequence[str]
) -> dict[str, str]:
    """Why the raw floor is left out of a clustered split (missing views), if it is."""
    lacking = [split for split in clustered if RAW_FLOOR not in features[split]]
    if RAW_FLOOR not in features[FIT_SPLIT]:
        lacking.append(f"{FIT_SPLIT} (umap)")
    if not lacking:
        return {}
    return {RAW_FLOOR: f"missing views in {', '.join(lacking)}: absent inputs are zeros"}


def clustered_splits(ev: EvalConfig, available: Sequence[str]) -> list[str]:
    """``ev.split``, then each split of ``ev.also_cluster`` that the dataset has (a missing
    one, e.g. ``val`` with ``dataset.val_fraction=0``, is skipped with a log line)."""
    extra = [name for name in ev.also_cluster if name != ev.split]
    for name in extra:
        if name not in available:
            log.info("eval.also_cluster: the dataset has no %s split; not clustered", name)
    return [ev.split, *(name for name in extra if name in available)]


def clustering_rows(
    representations: Mapping[str, Tensor | np.ndarray],
    splits: DatasetSplits,
    split: str,
    task: str,
    ev: EvalConfig,
    seed: int,
) -> list[ScoreRow]:
    """KMeans scores (acc, nmi, ari, fscore, purity; ``ev.n_seeds`` seeds from ``seed``)
    of every representation of ``split``, as rows of ``task`` (the clustering method's)."""
    labels = splits.split(split).labels
    rows = []
    for name, features in representations.items():
        scores = evaluate_clustering(features, labels, splits.num_classes, ev.n_seeds, seed)
        values = {metric: s["runs"] for metric, s in scores.items() if metric != "n_runs"}
        rows += _logged_rows(task, name, split, values)
    return rows


def classification_rows(
    representations: Mapping[str, Mapping[str, Tensor]],
    splits: DatasetSplits,
    ev: EvalConfig,
    seed: int,
) -> list[ScoreRow]:
    """Probe classifiers fitted on the train representations and scored on the test ones
    (``representations[split][name]``); metrics ``<classifier>.<accuracy|precision_macro|
    f1_macro>``. Run ``r`` fits on a stratified random share of the training samples
    (seed ``seed + r``), so the std is the sensitivity to the training sample."""
    train, test = representations["train"], representations["test"]
    rows = []
    for name, features in train.items():
        scores = evaluate_classification(
            (features, splits.train.labels),
            (test[name], splits.test.labels),
            ev.n_seeds,
            seed,
            ev.classifiers,
        )
        values = {
            f"{clf}.{metric}": summary["runs"]
            for clf in ev.classifiers
            for metric, summary in scores[clf].items()
        }
        rows += _logged_rows("classification", name, "test", values)
    return rows


def redundancy_rows(
    codes: Codes,
    labels: Tensor,
    num_classes: int,
    club: Mapping[str, float],
    ev: EvalConfig,
    seed: int,
) -> tuple[list[ScoreRow], dict[str, str]]:
    """How much of ``C`` each ``S_v`` still carries, and how much of the labels, for context.

    For every ``S_v``: ``r2_C_<regressor>``, the held-out R² of predicting ``C`` from it,
    ``club``, the trained CLUB estimator's bound on ``I(s_v; c)`` (nats, all samples of
    the split, one run), and ``r2_labels_<regressor>``, the held-out R² of predicting the
    one-hot labels; ``C`` gets ``r2_labels_*`` too, as the reference for how much label
    information a code can carry. One-hot R² rather than probe accuracy, so that both
    targets are measured by the same regressors and protocol. Each R² is over
    ``ev.n_seeds`` random held-out splits. Returns the rows and the regressors the split
    is too small for, with the reason (they are left out).
    """
    n_samples = int(labels.shape[0])
    skipped = {}
    if "mlp" in ev.regressors and (reason := mlp_skip_reason(n_samples)):
        log.warning("redundancy: MLP regressor skipped on the %s split: %s", ev.split, reason)
        skipped["mlp"] = reason
    regressors = [r for r in ev.regressors if r not in skipped]
    onehot = np.eye(num_classes)[labels.cpu().numpy()]

    def r2(target_name: str, source: Tensor, target: np.ndarray | Tensor) -> dict[str, Any]:
        return {
            f"r2_{target_name}_{reg}": [
                redundancy_r2(source, target, seed + r, REDUNDANCY_TEST_FRACTION, regressor=reg)
                for r in range(ev.n_seeds)
            ]
            for reg in regressors
        }

    rows = []
    for v, s in enumerate(codes.s):
        name = specific_name(v)
        values = {**r2("C", s, codes.c), "club": [club[name]], **r2("labels", s, onehot)}
        rows += _logged_rows("redundancy", name, ev.split, values)
    rows += _logged_rows("redundancy", "C", ev.split, r2("labels", codes.c, onehot))
    return rows, skipped


@torch.no_grad()
def club_estimates(model: MRDD, codes: Codes, device: torch.device) -> dict[str, float]:
    """The trained CLUB estimators' ``I_CLUB(s_v; c)`` over all pairs of the given codes."""
    model.eval()
    c = codes.c.to(device)
    return {
        specific_name(v): float(club.mi_upper_bound(s.to(device), c, sampled=False))
        for v, (club, s) in enumerate(zip(model.club, codes.s, strict=True))
    }


def mlp_skip_reason(n_samples: int) -> str | None:
    """Why the MLP regressor cannot run on ``n_samples`` samples, or ``None`` if it can.

    ``MLPRegressor(early_stopping=True)`` validates on 10% (rounded up) of its
    fitting samples and refuses fewer than 2, i.e. fewer than 11 fitting samples.
    """
    n_fit = n_samples - math.ceil(REDUNDANCY_TEST_FRACTION * n_samples)
    if math.ceil(0.1 * n_fit) >= 2:
        return None
    return (
        f"{n_samples} samples leave {n_fit} for fitting; the MLP needs at least 11 "
        "(10% of them validate its early stopping)"
    )


def _logged_rows(
    task: str, representation: str, split: str, values: Mapping[str, Sequence[float]]
) -> list[ScoreRow]:
    """Rows of one representation's scores (``values``: metric → per-run values), logged
    on one line as they come."""
    rows = [score_row(task, representation, m, split, runs) for m, runs in values.items()]
    if not rows:  # e.g. no regressors: nothing to score C with in the redundancy task
        return rows
    log.info(
        "%s %-9s (%s split, %d runs): %s",
        task, representation, split, max(row["runs"] for row in rows),
        "  ".join(f"{row['metric']} {row['mean']:.4f} ± {row['std']:.4f}" for row in rows),
    )  # fmt: skip
    return rows
