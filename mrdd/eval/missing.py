"""How a trained run copes with missing views at test time (``scripts/missing_views.py``).

For every missing rate (the fraction of the split's samples — test unless asked — that
lose a random proper subset of their views, :mod:`mrdd.data.missing`) this measures

* clustering ACC of ``C`` and ``C‖S_best`` when codes come from the present views only
  (an absent view's ``s_v`` is its prior mean 0);
* how well the present views alone recover the code of all views
  (:func:`code_agreement` of ``c`` over the incomplete samples);
* imputation error: the per-entry MSE of the imputed absent views against the real
  ones, next to the MSE of a mean-view baseline (the training mean of that view), for
  both imputers of :meth:`mrdd.models.MRDD.impute`: ``spec`` (stage-2 decoder with
  ``s_v = 0``) and ``cons`` (stage-1 decoder from ``c``);
* whether an imputed view is usable: a logistic regression fitted on the real,
  flattened ``best_view`` of the training split is scored on the split's samples whose
  ``best_view`` was imputed — on the real, the imputed and the mean view.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from torch import Tensor  # noqa: E402

from mrdd.config import EvalConfig  # noqa: E402
from mrdd.data import BatchLoader, DataError, DatasetSplits, MultiViewData  # noqa: E402
from mrdd.data.missing import drop_views  # noqa: E402
from mrdd.eval.metrics import evaluate_clustering, summarize  # noqa: E402
from mrdd.eval.representations import (  # noqa: E402
    extract_codes,
    headline,
    named_representations,
)
from mrdd.eval.tables import markdown_table, mean_std  # noqa: E402
from mrdd.models import MRDD, ConsistencyModel, impute_views  # noqa: E402

DEFAULT_RATES = (0.0, 0.1, 0.3, 0.5, 0.7)


@torch.no_grad()
def impute_split(
    model: MRDD | ConsistencyModel, data: MultiViewData, batch_size: int, source: str = "specific"
) -> list[Tensor]:
    """Every view of ``data`` with the absent ones imputed (on the CPU) by ``model``
    (:func:`mrdd.models.impute_views`)."""
    model.eval()
    device = next(model.parameters()).device
    parts: list[list[Tensor]] = []
    for views, _, available, _ in BatchLoader(data, batch_size, shuffle=False, drop_last=False):
        views, available = [x.to(device) for x in views], available.to(device)
        parts.append([x.cpu() for x in impute_views(model, views, available, source)])
    return [torch.cat(per_view) for per_view in zip(*parts, strict=True)]


def code_agreement(c_partial: Tensor, c_full: Tensor) -> float:
    """``1 − E‖c_partial − c_full‖² / E‖c_full − E[c_full]‖²`` over the rows given (``N×d``):
    1 when the present views give the code of all views, 0 when they do no better than the
    mean code (negative when worse); an R² of ``c_full`` predicted by ``c_partial``."""
    error = (c_partial - c_full).pow(2).sum(dim=1).mean()
    spread = (c_full - c_full.mean(dim=0)).pow(2).sum(dim=1).mean()
    return float(1.0 - error / spread)


def view_classifier(train: Tensor, labels: Tensor, seed: int) -> LogisticRegression:
    """Logistic regression on flattened real views (the judge of imputed views)."""
    clf = LogisticRegression(max_iter=300, random_state=seed)
    return clf.fit(train.flatten(1).numpy(), labels.numpy())


def _accuracy(clf: LogisticRegression, x: Tensor, labels: Tensor) -> float:
    return float((clf.predict(x.flatten(1).numpy()) == labels.numpy()).mean())


def _mse_on_absent(predicted: Sequence[Tensor], truth: Sequence[Tensor], absent: Tensor) -> float:
    """Squared error per entry, averaged over the entries of absent views only
    (``absent``: N×V bool; ``predicted[v]`` and ``truth[v]``: N×…)."""
    errors = [
        (p - t)[absent[:, v]].flatten()
        for v, (p, t) in enumerate(zip(predicted, truth, strict=True))
    ]
    return float(torch.cat(errors).pow(2).mean())


def evaluate_missing_views(
    model: MRDD | ConsistencyModel,
    splits: DatasetSplits,
    rates: Sequence[float] = DEFAULT_RATES,
    n_seeds: int = 5,
    seed: int = 0,
    split: str = "test",
) -> list[dict[str, Any]]:
    """One row of scores per missing rate on ``split`` (see the module docstring; ``val``
    to choose, e.g. between imputers, ``test`` to report). ``model``: a trained model
    (``mrdd.load(run_dir).model``) on the device it is evaluated on; ``splits.best_view``
    set (``mrdd.load(run_dir).best_view``: the view the run settled on)."""
    device = next(model.parameters()).device
    batch_size = EvalConfig.batch_size  # the evaluation's extraction batch (eval.batch_size)
    best = splits.best_view
    if best is None:
        raise ValueError(
            f"{splits.name}: splits.best_view is not set; pass the trained model's, "
            "dataclasses.replace(splits, best_view=mrdd.load(run_dir).best_view)."
        )
    complete = splits.split(split)
    clf = view_classifier(splits.train.views[best].cpu(), splits.train.labels.cpu(), seed)
    truth = [x.cpu() for x in complete.views]
    mean_views = [
        x.cpu().mean(dim=0).expand_as(t) for x, t in zip(splits.train.views, truth, strict=True)
    ]
    c_full = extract_codes(model, complete, batch_size, device).c
    rows = []
    for rate in rates:
        data = drop_views(complete, rate, seed)
        codes = extract_codes(model, data, batch_size, device)
        incomplete = ~data.available.cpu().all(dim=1)
        row: dict[str, Any] = {
            "split": split,
            "missing_rate": rate,
            "n_samples": len(data),
            "incomplete": int(incomplete.sum()),
        }
        if incomplete.sum() > 1:
            row["c_agreement"] = code_agreement(codes.c[incomplete], c_full[incomplete])
        reps = headline(named_representations(codes.c, codes.s, best))
        for name, features in reps.items():
            scores = evaluate_clustering(features, data.labels, splits.num_classes, n_seeds, seed)
            row[f"acc_{name}"] = scores["acc"]
        absent = ~data.available.cpu()
        if absent.any():
            row["mse_mean_view"] = _mse_on_absent(mean_views, truth, absent)
            gone = absent[:, best]
            row["n_best_view_imputed"] = int(gone.sum())
            labels = complete.labels.cpu()[gone]
            if gone.any():
                row["clf_acc_real"] = _accuracy(clf, truth[best][gone], labels)
                row["clf_acc_mean_view"] = _accuracy(clf, mean_views[best][gone], labels)
            for source, tag in (("specific", "spec"), ("consistency", "cons")):
                filled = impute_split(model, data, batch_size, source)
                row[f"mse_{tag}"] = _mse_on_absent(filled, truth, absent)
                if gone.any():
                    row[f"clf_acc_{tag}"] = _accuracy(clf, filled[best][gone], labels)
        rows.append(row)
    return rows


#: Row entries fixed by the split and the seeded masks, hence the same in every run.
_SHARED_KEYS = ("split", "missing_rate", "n_samples", "incomplete", "n_best_view_imputed")


def across_runs(per_run: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of several training runs (each a list of :func:`evaluate_missing_views` rows
    at the same rates) as one row per rate: every score the mean ± std (ddof=0) across runs
    of each run's value (its mean over KMeans seeds, for clustering), and ``runs``. Runs whose
    rates or shared entries (split, sample counts) differ were not scored on the same
    samples, so they are refused with a :class:`~mrdd.data.DataError`."""
    rates = [[row["missing_rate"] for row in rows] for rows in per_run]
    if any(r != rates[0] for r in rates):
        raise DataError(f"runs were evaluated at different missing rates: {rates}")
    merged = []
    for rows in zip(*per_run, strict=True):
        shared = {key: rows[0][key] for key in _SHARED_KEYS if key in rows[0]}
        differing = sorted({k for r in rows for k in shared if r.get(k) != shared[k]})
        if differing:
            raise DataError(
                f"at missing rate {shared['missing_rate']} the runs differ in {differing}: they "
                "were not evaluated on the same samples. Pass training runs of one config on "
                "one dataset (and the same split)."
            )
        row: dict[str, Any] = {"missing_rate": shared["missing_rate"], "runs": len(rows)}
        for key in rows[0]:
            if key in shared:
                row[key] = shared[key]
            elif all(key in r for r in rows):
                row[key] = summarize([_value(r[key]) for r in rows])
        merged.append(row)
    return merged


def _value(score: Any) -> float:
    """A run's number: its mean over KMeans seeds for a clustering summary."""
    return score["mean"] if isinstance(score, dict) else float(score)


_COLUMNS = (
    ("missing_rate", "missing rate"),
    ("runs", "training runs"),
    ("split", "split"),
    ("n_samples", "samples"),
    ("incomplete", "incomplete samples"),
    ("c_agreement", "c agreement (R²)"),
    ("acc_C", "ACC C (%)"),
    ("acc_C+S_best", "ACC C+S_best (%)"),
    ("mse_spec", "MSE imputed spec"),
    ("mse_cons", "MSE imputed cons"),
    ("mse_mean_view", "MSE mean view"),
    ("n_best_view_imputed", "best view imputed"),
    ("clf_acc_real", "LogReg acc real (%)"),
    ("clf_acc_spec", "LogReg acc spec (%)"),
    ("clf_acc_cons", "LogReg acc cons (%)"),
    ("clf_acc_mean_view", "LogReg acc mean view (%)"),
)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    raw = key.startswith("mse") or key == "c_agreement"  # not a fraction shown in %
    if isinstance(value, dict):
        return mean_std(value, digits=4) if raw else mean_std(value, scale=100)
    if key.startswith("clf_acc"):
        return f"{100 * value:.2f}"
    return f"{value:.4f}" if raw else str(value)


def missing_views_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The table of :func:`evaluate_missing_views` rows as Markdown."""
    keys = [k for k, _ in _COLUMNS if any(k in row for row in rows)]
    header = [title for k, title in _COLUMNS if k in keys]
    body = [[_cell(k, row.get(k)) for k in keys] for row in rows]
    return markdown_table(header, body) + "\n"


def write_missing_views(rows: Sequence[dict[str, Any]], out: str | Path) -> str:
    """``<out>.md``, ``<out>.csv`` and ``<out>.png`` (ACC and MSE against the missing rate)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    markdown = missing_views_markdown(rows)
    out.with_suffix(".md").write_text(markdown)
    flat = [_flat(row) for row in rows]
    columns = [
        c for k, _ in _COLUMNS for c in (k, f"{k} mean", f"{k} std") if any(c in f for f in flat)
    ]
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(flat)
    _plot(rows, out.with_suffix(".png"))
    return markdown


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A row with every ``{"mean", "std"}`` summary spread into ``<key> mean``/``<key> std``."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key} mean": value["mean"], f"{key} std": value["std"]})
        else:
            flat[key] = value
    return flat


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    rates = np.array([row["missing_rate"] for row in rows])
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key in ("acc_C", "acc_C+S_best"):
        if all(key in row for row in rows):
            mean = np.array([100 * row[key]["mean"] for row in rows])
            std = np.array([100 * row[key]["std"] for row in rows])
            left.errorbar(rates, mean, yerr=std, marker="o", capsize=3, label=key[4:])
    split = rows[0]["split"]
    left.set(xlabel=f"missing rate ({split})", ylabel="clustering ACC (%)")
    left.legend()
    imputed = [row for row in rows if "mse_spec" in row]
    x = [row["missing_rate"] for row in imputed]
    for key, marker, label in (
        ("mse_spec", "o", "stage-2 decoder, s_v=0"),
        ("mse_cons", "^", "stage-1 decoder"),
        ("mse_mean_view", "s", "mean view"),
    ):
        right.plot(x, [_value(row[key]) for row in imputed], marker=marker, label=label)
    right.set(xlabel=f"missing rate ({split})", ylabel="MSE per entry")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
