"""One results table from many runs (e.g. a Hydra multirun): mean ± std across runs.

Every run directory holds ``metrics.json`` and ``config.json``. Runs are grouped by
the config values that differ between them (the sweep's overrides), ignoring the keys
being averaged over (``seed`` by default). The score rows of every run (``metrics.json``
→ ``scores``) are pivoted (:func:`mrdd.eval.tables.pivot`) into one table row per group
and one column per ``task.representation.metric``; a cell is the mean ± std (ddof=0)
across the group's runs of each run's own mean over its R repetitions.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrdd.eval.tables import (
    SCORE_NAME,
    Pivot,
    ScoreRow,
    across_runs,
    markdown_table,
    pivot,
    score_text,
)

log = logging.getLogger("mrdd")

#: The CSV's two columns per score.
MEAN_STD = ("mean", "std")

#: Scores shown in the Markdown table unless others are asked for (fnmatch patterns).
DEFAULT_COLUMNS = (
    "clustering.C.acc",
    "clustering.C+S_best.acc",
    "clustering.C+S_best.nmi",
    "clustering_umap.C.acc",
    "clustering_umap.C+S_best.acc",
    "classification.C+S_best.svm.accuracy",
    "redundancy.S_*.r2_C_ridge",
    "redundancy.S_*.club",
)


@dataclass
class Run:
    """One run directory: its flattened config and its score rows."""

    path: Path
    config: dict[str, str]
    scores: list[ScoreRow]


@dataclass
class Group:
    """Runs that share every config value but the averaged-over ones."""

    setting: dict[str, str]
    runs: list[Run]

    @property
    def key(self) -> tuple[str, ...]:
        """The group's row key in :func:`groups_table`: its setting's values."""
        return tuple(self.setting.values())


def read_scores(path: Path) -> list[ScoreRow]:
    """The score rows of a ``metrics.json``; a file of an earlier mrdd version (nested
    ``clustering`` / ``classification`` / ``redundancy`` blocks) is refused."""
    metrics = json.loads(path.read_text())
    if "scores" not in metrics:
        raise ValueError(
            f"{path} has no 'scores' rows: it was written by an earlier mrdd version. "
            "Evaluate the run again to rewrite it: "
            f"python scripts/evaluate.py run_dir={path.parent}"
        )
    return metrics["scores"]


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted keys to text values (strings as they are, the rest JSON-encoded)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return flat


def find_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Every run under ``paths`` (directories searched recursively for ``metrics.json``)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file() and path.name == "metrics.json":
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(path.rglob("metrics.json")))
        else:
            raise FileNotFoundError(f"{path} is neither a directory nor a metrics.json file.")
    if not files:
        raise FileNotFoundError(f"No metrics.json under {[str(p) for p in paths]}.")
    runs = []
    for file in files:
        config_file = file.parent / "config.json"
        if config_file.is_file():
            config = flat_config(json.loads(config_file.read_text()))
        else:
            log.warning(
                "%s has no config.json; it is grouped as if it had no settings", file.parent
            )
            config = {}
        runs.append(Run(file.parent, config, read_scores(file)))
    return runs


def on_split(runs: Sequence[Run], split: str) -> list[Run]:
    """The runs with only their scores on ``split``, so that no table cell mixes splits
    (a run clusters ``eval.split`` and ``eval.also_cluster``; its probes score test)."""
    selected = [
        Run(run.path, run.config, [row for row in run.scores if row["split"] == split])
        for run in runs
    ]
    lacking = [run for run, kept in zip(runs, selected, strict=True) if not kept.scores]
    if lacking:
        has = sorted({r["split"] for r in lacking[0].scores})
        raise ValueError(
            f"{lacking[0].path} has no scores on the {split} split (it has {has}); choose "
            f"another split, or evaluate it there: python scripts/evaluate.py "
            f"run_dir={lacking[0].path} eval.split={split}"
        )
    return selected


def group_runs(runs: Sequence[Run], average_over: Sequence[str] = ("seed",)) -> list[Group]:
    """Group runs by the config keys whose values differ between them (but ``average_over``)."""
    keys = sorted({k for run in runs for k in run.config})
    varying = [
        k for k in keys if k not in average_over and len({run.config.get(k) for run in runs}) > 1
    ]
    groups: dict[tuple, Group] = {}
    for run in runs:
        setting = {k: run.config.get(k, "–") for k in varying}
        groups.setdefault(tuple(setting.values()), Group(setting, [])).runs.append(run)
    return list(groups.values())


def groups_table(groups: Sequence[Group]) -> Pivot:
    """Every run's rows pivoted: one table row per group (its setting's values, in group
    order), one column per ``task.representation.metric``, a cell holding one row per run."""
    return pivot(
        (
            {**row, "setting": group.key}
            for group in groups
            for run in group.runs
            for row in run.scores
        ),
        "setting",
        SCORE_NAME,
    )


def group_summary(table: Pivot, group: Group, score: str) -> dict[str, Any] | None:
    """Mean ± std across the group's runs of ``score`` (``None`` if no run has it)."""
    return across_runs(table.rows(group.key, score))


def select_columns(table: Pivot, patterns: Sequence[str]) -> list[str]:
    """Score names matching ``patterns``, in pattern order, then sorted within a pattern."""
    names = sorted(table.columns)
    chosen: list[str] = []
    for pattern in patterns:
        chosen += [n for n in names if fnmatch.fnmatchcase(n, pattern) and n not in chosen]
    return chosen


def results_markdown(groups: Sequence[Group], patterns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """Markdown table: one row per group, one column per chosen score (% but redundancy)."""
    table = groups_table(groups)
    columns = select_columns(table, patterns)
    setting_keys = list(groups[0].setting)
    header = [*(setting_keys or ["runs"]), "n", *columns]
    rows = [
        [
            *(group.setting.values() if setting_keys else ["all"]),
            len(group.runs),
            *(score_text(group_summary(table, group, c), c.split(".")[0]) for c in columns),
        ]
        for group in groups
    ]
    note = (
        "Mean ± std (ddof=0) across runs of each run's mean over its R repetitions; "
        "clustering and classification in %, redundancy as R² and CLUB (nats)."
    )
    return markdown_table(header, rows) + "\n\n" + note + "\n"


def write_results_csv(groups: Sequence[Group], path: Path) -> None:
    """Every score of every group as ``<score> mean`` and ``<score> std`` columns."""
    table = groups_table(groups)
    columns = select_columns(table, ["*"])
    scores = [f"{c} {k}" for c in columns for k in MEAN_STD]
    header = [*groups[0].setting, "n_runs", "runs", *scores]
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for group in groups:
            summaries = [group_summary(table, group, c) for c in columns]
            writer.writerow(
                [
                    *group.setting.values(),
                    len(group.runs),
                    ";".join(str(run.path) for run in group.runs),
                    *(s[k] if s else "" for s in summaries for k in MEAN_STD),
                ]
            )


def collect(
    paths: Iterable[str | Path],
    out: str | Path,
    patterns: Sequence[str] = DEFAULT_COLUMNS,
    average_over: Sequence[str] = ("seed",),
    split: str = "test",
) -> str:
    """Write ``<out>.md`` and ``<out>.csv`` for the runs' scores on ``split`` (runs under
    ``paths``); return the Markdown."""
    groups = group_runs(on_split(find_runs(paths), split), average_over)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    markdown = results_markdown(groups, patterns)
    out.with_suffix(".md").write_text(markdown)
    write_results_csv(groups, out.with_suffix(".csv"))
    return markdown
