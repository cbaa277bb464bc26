"""The paper's ablations from finished sweeps: one table and one plot per sweep.

Each sweep of ``configs/sweep/`` varies one or two config keys over several seeds;
:func:`ablate` groups its runs by the swept values (averaging over ``seed``, as
:mod:`mrdd.eval.collect` does), and writes ``ablation_<name>.md`` / ``.csv`` (mean ±
std over seeds of each run's own mean over its R repetitions) and ``ablation_<name>.png``:
the scores against the swept value, or a heat map for a two-key grid. Each split gets
its own table, CSV and plots (:data:`REPORTED_SPLITS`), and each clustering method its
own columns and plot (``_umap`` in the name for the manifold method), so the paper's
KMeans verdict and the manifold one are read side by side, never mixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mrdd.eval.collect import (  # noqa: E402
    Group,
    Run,
    find_runs,
    group_summary,
    groups_table,
    on_split,
    results_markdown,
    select_columns,
    write_results_csv,
)
from mrdd.eval.tables import CLUSTERING_TASKS  # noqa: E402

#: The splits an ablation tables: its verdict is read on val, test is reported beside it.
REPORTED_SPLITS = ("val", "test")


@dataclass(frozen=True)
class Ablation:
    """What one sweep varies (``keys``, dotted config names) and what it reports."""

    keys: tuple[str, ...]
    scores: tuple[str, ...]
    question: str


ABLATIONS = {
    "mask_ratio": Ablation(
        ("stage1.mask_ratio",),
        ("clustering.C.acc", "clustering.C.nmi"),
        "Does a higher mask ratio give a better consistency code C?",
    ),
    "dims": Ablation(
        ("model.c_dim", "model.v_dim"),
        ("clustering.C+S_best.acc", "clustering.C+S_best.nmi"),
        "Is c_dim < v_dim better for C‖S_best?",
    ),
    "club_weight": Ablation(
        ("stage2.club_weight",),
        ("clustering.C+S_best.acc", "redundancy.S_*.r2_C_ridge"),
        "Does λ > 0 lower the redundancy of C in S_v, and at what cost?",
    ),
}


def group_by(runs: Sequence[Run], keys: Sequence[str]) -> list[Group]:
    """Runs grouped by their values of ``keys``, sorted numerically by those values."""
    missing = [str(run.path) for run in runs if any(k not in run.config for k in keys)]
    if missing:
        raise ValueError(
            f"runs without a value for {list(keys)} (not runs of this sweep?): {missing[:3]}"
        )
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        setting = {k: run.config[k] for k in keys}
        groups.setdefault(tuple(setting.values()), Group(setting, [])).runs.append(run)
    return [groups[k] for k in sorted(groups, key=lambda values: tuple(map(float, values)))]


def _plot_line(
    groups: Sequence[Group], key: str, scores: Sequence[str], path: Path, title: str
) -> None:
    table = groups_table(groups)
    x = np.array([float(g.setting[key]) for g in groups])
    clustering = [s for s in scores if not s.startswith("redundancy.")]
    redundancy = [s for s in scores if s.startswith("redundancy.")]
    fig, axes = plt.subplots(1, 1 + bool(redundancy), figsize=(4.5 * (1 + bool(redundancy)), 3.5))
    axes = np.atleast_1d(axes)
    for ax, names, scale, label in (
        (axes[0], clustering, 100, "score (%)"),
        (axes[-1], redundancy, 1, "R² of C from S_v"),
    ):
        for name in names:
            summaries = [group_summary(table, g, name) for g in groups]
            keep = [i for i, s in enumerate(summaries) if s]
            mean = [scale * summaries[i]["mean"] for i in keep]
            std = [scale * summaries[i]["std"] for i in keep]
            ax.errorbar(x[keep], mean, yerr=std, marker="o", capsize=3, label=name)
        if names:
            ax.set(xlabel=key, ylabel=label, title=title)
            positive = x[x > 0]
            if positive.size and x.max() / positive.min() >= 100:  # e.g. λ ∈ {0, 0.1, 1, 10}
                ax.set_xscale("symlog", linthresh=positive.min())
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_grid(
    groups: Sequence[Group], keys: Sequence[str], score: str, path: Path, title: str
) -> None:
    rows = sorted({float(g.setting[keys[0]]) for g in groups})
    cols = sorted({float(g.setting[keys[1]]) for g in groups})
    grid = np.full((len(rows), len(cols)), np.nan)
    table = groups_table(groups)
    for g in groups:
        summary = group_summary(table, g, score)
        if summary:
            i, j = rows.index(float(g.setting[keys[0]])), cols.index(float(g.setting[keys[1]]))
            grid[i, j] = 100 * summary["mean"]
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2, 1.0 * len(rows) + 1.5))
    image = ax.imshow(grid, cmap="viridis", origin="lower")
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="w")
    ax.set_xticks(range(len(cols)), [f"{c:g}" for c in cols])
    ax.set_yticks(range(len(rows)), [f"{r:g}" for r in rows])
    ax.set(xlabel=keys[1], ylabel=keys[0], title=f"{score} (%), {title}")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def method_scores(scores: Sequence[str], method: str) -> tuple[str, ...]:
    """``scores`` (an :class:`Ablation`'s, named for the paper's KMeans) with every
    clustering score renamed to clustering ``method``'s task; other tasks' kept."""
    kmeans = CLUSTERING_TASKS["kmeans"] + "."
    task = CLUSTERING_TASKS[method]
    return tuple(f"{task}.{s[len(kmeans) :]}" if s.startswith(kmeans) else s for s in scores)


def ablate(
    name: str,
    paths: Iterable[str | Path],
    out_dir: str | Path,
    splits: Sequence[str] = REPORTED_SPLITS,
) -> str:
    """Write ``ablation_<name>.md`` and, per split, ``ablation_<name>_<split>.csv`` and one
    plot per clustering method the runs report into ``out_dir`` (runs under ``paths``):
    ``ablation_<name>_<split>.png`` for the paper's KMeans, ``…_<split>_<method>.png`` for
    any other; return the Markdown.

    Every split of ``splits`` gets its own table, with every method's columns (each named
    by its task): the verdict is read on ``val`` (the runs' ``eval.also_cluster``),
    ``test`` is reported beside it and never chosen on.
    """
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}.")
    spec = ABLATIONS[name]
    runs = find_runs(paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_method = {method: method_scores(spec.scores, method) for method in CLUSTERING_TASKS}
    patterns = list(dict.fromkeys(p for scores in per_method.values() for p in scores))
    sections = [spec.question]
    for split in splits:
        groups = group_by(on_split(runs, split), spec.keys)
        sections += [f"**{split} split**", results_markdown(groups, patterns)]
        stem = out / f"ablation_{name}_{split}"
        write_results_csv(groups, stem.with_suffix(".csv"))
        for method, method_patterns in per_method.items():
            scores = select_columns(groups_table(groups), method_patterns)
            if not any(s.startswith(CLUSTERING_TASKS[method] + ".") for s in scores):
                continue  # runs evaluated without this method
            path = Path(f"{stem}{'' if method == 'kmeans' else '_' + method}.png")
            title = f"{split} split, {method}"
            if len(spec.keys) == 1:
                _plot_line(groups, spec.keys[0], scores, path, title)
            else:
                _plot_grid(groups, spec.keys, scores[0], path, title)
    markdown = "\n\n".join(sections)
    (out / f"ablation_{name}.md").write_text(markdown)
    return markdown
