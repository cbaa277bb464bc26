"""Score rows, and the one pivot that turns them into every table the project writes.

A run's scores are flat rows (``metrics.json`` → ``scores``), one per
(task, representation, metric); each clustering method has its own task
(:data:`CLUSTERING_TASKS`)::

    {"task": "clustering", "representation": "C+S_best", "metric": "acc",
     "split": "test", "runs": 10, "mean": 0.71, "std": 0.02, "values": [... 10 runs ...]}

:func:`pivot` spreads rows into a table; ``metrics.md`` (:func:`metrics_markdown`,
one run: representations × metrics), ``scripts/collect.py`` and ``scripts/ablate.py``
(many runs: settings × ``task.representation.metric``) are all built with it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from mrdd.atomic import atomic_write_json
from mrdd.eval.metrics import summarize

#: The fields that name a score; joined with dots they are its column name across runs,
#: e.g. ``clustering.C+S_best.acc`` or ``redundancy.S_0.r2_C_ridge``.
SCORE_NAME = ("task", "representation", "metric")

#: The task of each clustering method's rows (``eval.clustering``). The paper's KMeans keeps
#: the bare name, so every earlier run, sweep table and ``optimize_metric`` keeps its
#: meaning; any other method is named in its task, hence in every column built from it
#: (``clustering_umap.C.acc``), so no table cell or plot mixes two methods.
CLUSTERING_TASKS = {"kmeans": "clustering", "umap": "clustering_umap"}

#: The tasks in the order ``metrics.md`` shows them, with the unit its tables use.
UNITS = {
    "clustering": "%",
    "clustering_umap": "%",
    "classification": "%",
    "redundancy": "R², CLUB in nats",
}

#: The heading of each task's sections in ``metrics.md``.
TITLES = {
    "clustering": "Clustering: kmeans, the paper's protocol",
    "clustering_umap": "Clustering: umap, UMAP fitted on train, then KMeans",
    "classification": "Classification",
    "redundancy": "Redundancy",
}


class ScoreRow(TypedDict):
    """One reported number: a mean ± std (ddof=0) over ``runs`` repetitions on ``split``."""

    task: str
    representation: str
    metric: str
    split: str
    runs: int
    mean: float
    std: float
    values: list[float]


def score_row(
    task: str, representation: str, metric: str, split: str, values: Sequence[float]
) -> ScoreRow:
    """The row of one score, from the values of its repeated runs."""
    summary = summarize(values)
    return ScoreRow(
        task=task,
        representation=representation,
        metric=metric,
        split=split,
        runs=len(summary["runs"]),
        mean=summary["mean"],
        std=summary["std"],
        values=summary["runs"],
    )


@dataclass(frozen=True)
class Pivot:
    """``cells[(i, c)]``: the rows of table row ``i`` and column ``c`` (first-seen order)."""

    index: list[Hashable]
    columns: list[str]
    cells: dict[tuple[Hashable, str], list[Mapping[str, Any]]]

    def rows(self, i: Hashable, column: str) -> list[Mapping[str, Any]]:
        return self.cells.get((i, column), [])

    def only(self, i: Hashable, column: str) -> Mapping[str, Any] | None:
        """The row of a cell that holds one row or none (a single run's table)."""
        return next(iter(self.rows(i, column)), None)


def find_score(rows: Iterable[Mapping[str, Any]], key: str) -> float:
    """The mean of the one row that ``key`` = ``"<split>/<representation>/<metric>"`` names,
    e.g. ``val/C+S_best/acc`` (what ``optimize_metric`` hands a Hydra sweeper); a clustering
    metric is the paper's KMeans one, never another method's."""
    split, representation, metric = parse_score_key(key)
    other_methods = set(CLUSTERING_TASKS.values()) - {CLUSTERING_TASKS["kmeans"]}
    found = [
        row
        for row in rows
        if (row["split"], row["representation"], row["metric"]) == (split, representation, metric)
        and row["task"] not in other_methods
    ]
    if len(found) != 1:
        raise ValueError(
            f"{key!r} names {len(found)} scores of this run, not one; use "
            "<split>/<representation>/<metric> as metrics.json's rows spell them."
        )
    return float(found[0]["mean"])


def parse_score_key(key: str) -> tuple[str, str, str]:
    """``"val/C+S_best/acc"`` → ``("val", "C+S_best", "acc")``."""
    parts = key.split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"a score is named <split>/<representation>/<metric>, got {key!r}.")
    return parts[0], parts[1], parts[2]


def pivot(rows: Iterable[Mapping[str, Any]], index: str, columns: Sequence[str]) -> Pivot:
    """Long rows to a wide table: one table row per value of ``row[index]``, one column per
    dotted combination of the ``columns`` fields; a cell keeps every row that falls in it
    (one per run when several runs share a table row)."""
    cells: dict[tuple[Hashable, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (row[index], ".".join(str(row[k]) for k in columns))
        cells.setdefault(key, []).append(row)
    index_values = list(dict.fromkeys(i for i, _ in cells))
    return Pivot(index_values, list(dict.fromkeys(column for _, column in cells)), cells)


def across_runs(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Mean ± std across runs of each run's own mean (``None`` for an empty cell)."""
    return summarize([row["mean"] for row in rows]) if rows else None


def score_text(summary: Mapping[str, Any] | None, task: str) -> str:
    """``"mean ± std"``: in % with 2 digits, but redundancy (R², CLUB in nats) with 3."""
    if summary is None:
        return "–"
    if task == "redundancy":
        return mean_std(summary, digits=3)
    return mean_std(summary, scale=100)


def mean_std(summary: Mapping[str, Any], scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± std"`` of a ``{"mean", "std"}`` summary, both multiplied by ``scale``."""
    return f"{summary['mean'] * scale:.{digits}f} ± {summary['std'] * scale:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; the first column is left-aligned, the rest right."""
    align = [":--"] + ["--:"] * (len(header) - 1)
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def metrics_markdown(metrics: Mapping[str, Any]) -> str:
    """``metrics.md``: per task and split (``eval.split`` first), its sample count, runs and
    method, then a table of representations × metrics (clustering and classification in %,
    redundancy as R²/nats)."""
    parts = [
        f"# Evaluation of {metrics['dataset']} ({metrics['model']} model, "
        f"stage {metrics['stage']}, seed {metrics['seed']})",
        *_choices(metrics),
    ]
    sections = pivot(metrics["scores"], "task", ["split"])
    for task, unit in UNITS.items():
        for split in sections.columns:
            rows = sections.rows(task, split)
            if rows:
                parts += _task_section(task, unit, rows, metrics)
    return "\n\n".join(parts) + "\n"


def _choices(metrics: Mapping[str, Any]) -> list[str]:
    """What was chosen on val: the view of ``C+S_best`` and the code to report (metrics
    written before either was recorded have neither)."""
    lines = []
    choice = metrics.get("best_view_choice")
    if choice and metrics["model"] == "mrdd":
        how = choice["by"]
        if "val_acc" in choice:
            scores = ", ".join(f"view {v} {acc:.1f}" for v, acc in enumerate(choice["val_acc"]))
            how = f"chosen on {how}: {scores}"
        lines.append(f"`C+S_best` is `C‖S_{choice['view']}` ({how}).")
    best = metrics.get("best_on_val")
    if best and metrics["model"] == "mrdd":
        scores = ", ".join(f"{name} {acc:.1f}" for name, acc in best["val_acc"].items())
        lines.append(
            f"Best on val (KMeans ACC, %): **{best['representation']}** ({scores}); the "
            "code to report on test is the one chosen on val."
        )
    return lines


def _task_section(
    task: str, unit: str, rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]
) -> list[str]:
    """The heading, method, table and skip notes of one task on one split."""
    table = pivot(rows, "representation", ["metric"])
    return [
        f"## {TITLES[task]} ({_provenance(rows, metrics['splits'], metrics['seed'])}; {unit})",
        metrics["methods"][task],
        markdown_table(
            ["representation", *table.columns],
            [
                [name, *(score_text(table.only(name, c), task) for c in table.columns)]
                for name in table.index
            ],
        ),
        *(
            f"Skipped: {what} ({reason})."
            for what, reason in metrics["skipped"].get(task, {}).items()
        ),
    ]


def _provenance(rows: Sequence[Mapping[str, Any]], sizes: Mapping[str, int], seed: int) -> str:
    """``"test split, 200 samples; mean ± std over 10 runs, seeds 0–9 (club: 1)"``: where a
    task's numbers come from (run ``r`` is seeded ``seed + r``), naming the metrics whose
    number of runs differs from the rest."""
    splits = dict.fromkeys(row["split"] for row in rows)
    runs: dict[int, dict[str, None]] = {}
    for row in rows:
        runs.setdefault(row["runs"], {})[row["metric"]] = None
    common = max(runs, key=lambda n: len(runs[n]))
    others = "; ".join(f"{', '.join(metrics)}: {n}" for n, metrics in runs.items() if n != common)
    where = ", ".join(f"{split} split, {sizes[split]} samples" for split in splits)
    seeds = f"seed {seed}" if common == 1 else f"seeds {seed}–{seed + common - 1}"
    return f"{where}; mean ± std over {common} runs, {seeds}" + (f" ({others})" if others else "")


def save_metrics(metrics: dict[str, Any], out_dir: Path) -> None:
    """``metrics.json`` (written atomically) and its human-readable twin ``metrics.md``:
    what a training run and :func:`mrdd.evaluate` both write."""
    atomic_write_json(metrics, out_dir / "metrics.json")
    (out_dir / "metrics.md").write_text(metrics_markdown(metrics))
