"""Which view's specific code joins ``C`` in ``C‖S_best``: the user's, or chosen on val.

With ``dataset.best_view`` null (the default) the view is chosen on the **validation**
split, never on test, by the evaluation's own protocol (KMeans, ``eval.n_seeds`` seeds,
mean ACC; ties to the lower index):

* a two-stage model: the view v whose ``C‖S_v`` clusters best;
* a stage-1 model, which has no ``S_v``: the view whose raw inputs cluster best (the
  choice behind the raw floor ``raw_best``).

Without a validation split (``dataset.val_fraction=0``) nothing honest can choose, so it
is view 0, with a warning in the log and ``"by": "no val split: view 0"`` in the record.
The choice is made after each stage (:func:`mrdd.train.run`, saved in the model file) and
again, identically, by the evaluation, which writes the record into ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from mrdd.config import RunConfig
from mrdd.data import DatasetSplits
from mrdd.eval.metrics import evaluate_clustering
from mrdd.eval.representations import REPORTABLE, extract_codes
from mrdd.models import MRDD, Codes, ConsistencyModel

log = logging.getLogger("mrdd")

#: How each way of settling the view is named in the record (``"by"``).
SET_BY_USER = "dataset.best_view"
BY_SPECIFIC_CODES = "val: KMeans ACC of C‖S_v"
BY_RAW_VIEWS = "val: KMeans ACC of the raw view"
NO_VAL_SPLIT = "no val split: view 0"


def settle_best_view(
    model: MRDD | ConsistencyModel,
    splits: DatasetSplits,
    cfg: RunConfig,
    device: torch.device,
    val_codes: Codes | None = None,
) -> tuple[DatasetSplits, dict[str, Any]]:
    """``splits`` with ``best_view`` set, and the record of how: ``{"view", "by"}`` plus,
    when chosen, ``"val_acc"`` (the mean ACC of every candidate view, in %).

    ``cfg.dataset["best_view"]`` set: that view. Otherwise chosen on ``splits.val`` as the
    module says; ``val_codes`` (the val split's codes, if already extracted) saves the
    pass over it."""
    chosen = cfg.dataset.get("best_view")
    if chosen is not None:
        return dataclasses.replace(splits, best_view=int(chosen)), {
            "view": int(chosen),
            "by": SET_BY_USER,
        }
    if splits.val is None:
        log.warning(
            "dataset.best_view is null but there is no val split to choose it on: C‖S_best "
            "uses view 0. Set dataset.best_view, or keep dataset.val_fraction > 0."
        )
        return dataclasses.replace(splits, best_view=0), {"view": 0, "by": NO_VAL_SPLIT}
    scores, by = _candidate_scores(model, splits, cfg, device, val_codes)
    view = max(range(len(scores)), key=lambda v: (scores[v], -v))
    log.info("C‖S_best uses view %d, chosen on val (%s: %s)", view, by, _percent(scores))
    record = {"view": view, "by": by, "val_acc": [round(100 * s, 2) for s in scores]}
    return dataclasses.replace(splits, best_view=view), record


def _candidate_scores(
    model: MRDD | ConsistencyModel,
    splits: DatasetSplits,
    cfg: RunConfig,
    device: torch.device,
    val_codes: Codes | None,
) -> tuple[list[float], str]:
    """The mean val ACC of every view's candidate, and what the candidates are."""
    val, ev = splits.val, cfg.eval
    if isinstance(model, MRDD):
        codes = val_codes or extract_codes(model, val, ev.batch_size, device)
        candidates = [torch.cat([codes.c, s_v], dim=1) for s_v in codes.s]
        by = BY_SPECIFIC_CODES
    else:
        candidates = [view.flatten(1).float() for view in val.views]
        by = BY_RAW_VIEWS
    scores = [
        evaluate_clustering(x, val.labels, splits.num_classes, ev.n_seeds, cfg.run.seed)["acc"]
        for x in candidates
    ]
    return [float(s["mean"]) for s in scores], by


def _percent(scores: list[float]) -> str:
    return ", ".join(f"view {v} {100 * s:.1f}" for v, s in enumerate(scores))


def best_on_val(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Which of :data:`REPORTABLE` clusters best on val (mean KMeans ACC of the ``rows``
    of the paper's clustering protocol), with every candidate's val ACC in %; ``None``
    without val rows. The code a run reports is the one this names."""
    val_acc = {
        row["representation"]: row["mean"]
        for row in rows
        if row["task"] == "clustering"
        and row["split"] == "val"
        and row["metric"] == "acc"
        and row["representation"] in REPORTABLE
    }
    if not val_acc:
        return None
    best = max(val_acc, key=lambda name: (val_acc[name], -REPORTABLE.index(name)))
    return {"representation": best, "val_acc": {k: round(100 * v, 2) for k, v in val_acc.items()}}
