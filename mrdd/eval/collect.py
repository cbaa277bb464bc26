"""One results table from many runs (e.g. a Hydra multirun): mean ± std across runs.

Every run directory holds ``metrics.json`` and ``config.json``; an evaluation written
elsewhere (``scripts/evaluate.py out_dir=<run>/val``) holds only ``metrics.json`` and takes
the config of the run above it, with ``evaluated_in`` naming its folder, so it is never
averaged with its run. The evaluation settings are those ``metrics.json`` records. A run
directory without results (failed, still running) or an evaluation whose run is unknown
is skipped and named with the reason (:class:`Skipped`). Runs are grouped by
the config values that differ between them (the sweep's overrides), ignoring the keys
being averaged over (``run.seed`` by default). The score rows of every run (``metrics.json``
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

from mrdd.config import flatten_keys, upgrade_record
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


@dataclass
class Skipped:
    """A folder that looks like a run but gives no table row, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def read_metrics(path: Path) -> dict[str, Any]:
    """A ``metrics.json``; a file of an earlier mrdd version (nested ``clustering`` /
    ``classification`` / ``redundancy`` blocks, no score rows) is refused."""
    metrics = json.loads(path.read_text())
    if "scores" not in metrics:
        raise ValueError(
            f"{path} has no 'scores' rows: it was written by an earlier mrdd version. "
            "Evaluate the run again to rewrite it: "
            f"python scripts/evaluate.py run_dir={path.parent}"
        )
    return metrics


def flat_config(config: dict[str, Any]) -> dict[str, str]:
    """Dotted keys to text values (strings as they are, the rest JSON-encoded)."""
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in flatten_keys(config).items()
    }


def find_runs(paths: Iterable[str | Path], skipped: list[Skipped] | None = None) -> list[Run]:
    """Every run under ``paths`` (directories searched recursively for ``metrics.json``).
    Run directories without results, and results whose run is unknown, are logged and
    added to ``skipped``."""
    skipped = [] if skipped is None else skipped
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file() and path.name == "metrics.json":
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(path.rglob("metrics.json")))
            skipped.extend(_runs_without_results(path))
        else:
            raise FileNotFoundError(f"{path} is neither a directory nor a metrics.json file.")
    runs = []
    for file in files:
        metrics = read_metrics(file)
        config = _run_config(file.parent, metrics)
        if config is None:
            skipped.append(
                Skipped(
                    file.parent,
                    "no config.json here or in a folder above: its settings are unknown",
                )
            )
            continue
        runs.append(Run(file.parent, config, metrics["scores"]))
    for skip in skipped:
        log.warning("skipped %s", skip)
    if not runs:
        found = f"; skipped: {'; '.join(map(str, skipped))}" if skipped else ""
        raise FileNotFoundError(f"No run with results under {[str(p) for p in paths]}{found}.")
    return runs


def _run_config(folder: Path, metrics: dict[str, Any]) -> dict[str, str] | None:
    """The flattened settings behind the ``metrics.json`` in ``folder``: its run's
    ``config.json`` (here, or in the nearest folder above for an evaluation written
    elsewhere, then with ``evaluated_in`` naming the folder), with the evaluation
    settings the metrics record; ``None`` if no run is found."""
    for run_dir in (folder, *folder.parents):
        if (run_dir / "config.json").is_file():
            # a run of the layout before each stage had its own section, read in today's
            config = upgrade_record(json.loads((run_dir / "config.json").read_text()))
            if "eval" in metrics:
                config["eval"] = metrics["eval"]
            flat = flat_config(config)
            if run_dir != folder:
                flat["evaluated_in"] = str(folder.relative_to(run_dir))
            return flat
    return None


def _runs_without_results(folder: Path) -> list[Skipped]:
    """The run directories under ``folder`` (``folder`` included) that hold no metrics.json,
    each with the reason its ``run_info.json`` gives (a sweep job refused before it ran
    has only Hydra's ``.hydra/``)."""
    found = {p.parent for name in ("run_info.json", ".hydra") for p in folder.rglob(name)}
    return [
        Skipped(run_dir, _why_no_results(run_dir))
        for run_dir in sorted(found)
        if not (run_dir / "metrics.json").is_file()
    ]


def _why_no_results(run_dir: Path) -> str:
    record = run_dir / "run_info.json"
    if not record.is_file():
        return "no results: refused before it ran (its train.log says why)"
    try:
        info = json.loads(record.read_text())
    except (OSError, ValueError):
        return "no metrics.json, and its run_info.json is unreadable"
    status, cause = info.get("status"), info.get("cause")
    if status == "failed":
        return f"its run failed ({cause})"
    if status == "interrupted":
        return f"its run was interrupted; continue it: python scripts/train.py resume={run_dir}"
    if status == "running":
        return "its run has not finished (still training, or killed before it could say)"
    return f"no metrics.json (status {status})"


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


def group_runs(runs: Sequence[Run], average_over: Sequence[str] = ("run.seed",)) -> list[Group]:
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
    average_over: Sequence[str] = ("run.seed",),
    split: str = "test",
) -> str:
    """Write ``<out>.md`` and ``<out>.csv`` for the runs' scores on ``split`` (runs under
    ``paths``); return the Markdown, which names the folders skipped and why."""
    skipped: list[Skipped] = []
    groups = group_runs(on_split(find_runs(paths, skipped), split), average_over)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    markdown = results_markdown(groups, patterns)
    if skipped:
        markdown += "\nSkipped (no table row):\n\n" + "".join(f"- {s}\n" for s in skipped)
    out.with_suffix(".md").write_text(markdown)
    write_results_csv(groups, out.with_suffix(".csv"))
    return markdown
