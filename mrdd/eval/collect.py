"""One results table from many runs (e.g. a Hydra multirun): mean ± std across runs.

Every run directory holds ``metrics.json`` and ``config.json``. Runs are grouped
by the config values that differ between them (the sweep's overrides), ignoring
the keys being averaged over (``seed`` by default); each group gets the mean ±
std (ddof=0) across its runs of every run's score. A run's score is its own
mean over R repetitions (e.g. the mean ACC over its KMeans seeds).
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

from mrdd.eval.metrics import summarize
from mrdd.eval.tables import markdown_table, mean_std

log = logging.getLogger("mrdd")

#: Scores shown in the Markdown table unless others are asked for (fnmatch patterns).
DEFAULT_COLUMNS = (
    "clustering.C.acc",
    "clustering.C+S_best.acc",
    "clustering.C+S_best.nmi",
    "classification.C+S_best.svm.accuracy",
    "redundancy.S_*.r2_C_ridge",
    "redundancy.S_*.club",
)


@dataclass
class Run:
    """One run directory: its flattened config and its scores."""

    path: Path
    config: dict[str, str]
    scores: dict[str, float]


@dataclass
class Group:
    """Runs that share every config value but the averaged-over ones."""

    setting: dict[str, str]
    runs: list[Run]

    def summary(self, score: str) -> dict[str, Any] | None:
        values = [run.scores[score] for run in self.runs if score in run.scores]
        return summarize(values) if values else None


def flat_scores(metrics: dict[str, Any]) -> dict[str, float]:
    """One number per score of a ``metrics.json``, keyed by a dotted name.

    ``clustering.<rep>.<score>``, ``classification.<rep>.<classifier>.<metric>``,
    ``redundancy.<rep>.r2_<target>_<regressor>`` and ``redundancy.<rep>.club``;
    each is the run's mean over its R repetitions.
    """
    scores: dict[str, float] = {}
    for rep, entry in metrics["clustering"]["representations"].items():
        scores.update(
            {f"clustering.{rep}.{k}": v["mean"] for k, v in entry.items() if k != "n_runs"}
        )
    for rep, entry in ((metrics.get("classification") or {}).get("representations") or {}).items():
        for clf, per_metric in entry.items():
            if clf != "n_runs":
                scores.update(
                    {f"classification.{rep}.{clf}.{m}": v["mean"] for m, v in per_metric.items()}
                )
    for rep, entry in ((metrics.get("redundancy") or {}).get("representations") or {}).items():
        for target, per_reg in entry["r2"].items():
            scores.update(
                {f"redundancy.{rep}.r2_{target}_{reg}": v["mean"] for reg, v in per_reg.items()}
            )
        if "club" in entry:
            scores[f"redundancy.{rep}.club"] = entry["club"]
    return scores


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
        runs.append(Run(file.parent, config, flat_scores(json.loads(file.read_text()))))
    return runs


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


def _columns(groups: Sequence[Group], patterns: Sequence[str]) -> list[str]:
    """Score names matching ``patterns``, in pattern order, then sorted within a pattern."""
    names = sorted({s for g in groups for run in g.runs for s in run.scores})
    chosen: list[str] = []
    for pattern in patterns:
        chosen += [n for n in names if fnmatch.fnmatchcase(n, pattern) and n not in chosen]
    return chosen


def _format(summary: dict[str, Any] | None, score: str) -> str:
    if summary is None:
        return "–"
    if score.startswith("redundancy."):
        return mean_std(summary, digits=3)
    return mean_std(summary, scale=100)


def results_markdown(groups: Sequence[Group], patterns: Sequence[str] = DEFAULT_COLUMNS) -> str:
    """Markdown table: one row per group, one column per chosen score (% but redundancy)."""
    columns = _columns(groups, patterns)
    setting_keys = list(groups[0].setting)
    header = [*(setting_keys or ["runs"]), "n", *columns]
    rows = [
        [
            *(g.setting.values() if setting_keys else ["all"]),
            len(g.runs),
            *(_format(g.summary(c), c) for c in columns),
        ]
        for g in groups
    ]
    note = (
        "Mean ± std (ddof=0) across runs of each run's mean over its R repetitions; "
        "clustering and classification in %, redundancy as R² and CLUB (nats)."
    )
    return markdown_table(header, rows) + "\n\n" + note + "\n"


def write_results_csv(groups: Sequence[Group], path: Path) -> None:
    """Every score of every group as ``<score> mean`` and ``<score> std`` columns."""
    columns = _columns(groups, ["*"])
    setting_keys = list(groups[0].setting)
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                *setting_keys,
                "n_runs",
                "runs",
                *(f"{c} {s}" for c in columns for s in ("mean", "std")),
            ]
        )
        for g in groups:
            cells: list[Any] = []
            for c in columns:
                summary = g.summary(c)
                cells += [summary["mean"], summary["std"]] if summary else ["", ""]
            writer.writerow(
                [
                    *g.setting.values(),
                    len(g.runs),
                    ";".join(str(run.path) for run in g.runs),
                    *cells,
                ]
            )


def collect(
    paths: Iterable[str | Path],
    out: str | Path,
    patterns: Sequence[str] = DEFAULT_COLUMNS,
    average_over: Sequence[str] = ("seed",),
) -> str:
    """Write ``<out>.md`` and ``<out>.csv`` for the runs under ``paths``; return the Markdown."""
    groups = group_runs(find_runs(paths), average_over)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    markdown = results_markdown(groups, patterns)
    out.with_suffix(".md").write_text(markdown)
    write_results_csv(groups, out.with_suffix(".csv"))
    return markdown
