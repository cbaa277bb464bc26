"""Figures a researcher looks at after a run (PNG files via matplotlib).

These functions only draw: they take tensors and arrays (images, 2-D
embeddings, per-epoch records) and never touch a model; :mod:`mrdd.eval.gallery`
decodes the codes into what is drawn here. Figures are saved at :data:`DPI`
without tight bounding boxes, so a figure's pixel size is its ``figsize`` × DPI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

DPI = 100

#: Keys of a per-epoch training record that are bookkeeping, not loss terms.
RECORD_META = ("epoch", "seconds", "samples_per_s", "lr", "skipped_steps")

#: Prefix of the periodic-evaluation scores added to a record (see mrdd.train.monitor).
EVAL_PREFIX = "eval_"


def _save(fig: plt.Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _show_images(ax: plt.Axes, grid: Tensor) -> None:
    """Draw a ``rows×cols×C×H×W`` batch of images in [0, 1] as one picture."""
    rows, cols = grid.shape[:2]
    picture = (
        make_grid(grid.flatten(0, 1).float().clamp(0, 1).cpu(), nrow=cols, padding=1, pad_value=1.0)
        .permute(1, 2, 0)
        .numpy()
    )
    ax.imshow(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, cmap="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def reconstruction_figure(
    rows: dict[str, list[Tensor]], path: Path, cell_inches: float = 0.6
) -> None:
    """One panel per view; in each, one row per entry of ``rows`` (e.g. original, stage 1, stage 2).

    ``rows[name][v]`` is a batch of n images of view ``v``. Vector views are shown
    as line plots of their first four samples instead. Size: (V · max(n, 5) · cell
    + 2) × (rows · cell + 0.5) inches, the extra width holding the row names.
    """
    names = list(rows)
    num_views = len(rows[names[0]])
    n = max(rows[names[0]][0].shape[0], 5)
    fig, axes = plt.subplots(
        len(names),
        num_views,
        figsize=(num_views * n * cell_inches + 2.0, len(names) * cell_inches + 0.5),
        squeeze=False,
    )
    for v in range(num_views):
        for r, name in enumerate(names):
            ax = axes[r][v]
            x = rows[name][v]
            if x.ndim == 4:
                _show_images(ax, x.unsqueeze(0))
            else:
                ax.plot(x[:4].float().cpu().T.numpy(), linewidth=0.7)
                ax.tick_params(labelsize=6)
            if v == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0:
                ax.set_title(f"view {v}", fontsize=9)
    fig.tight_layout(pad=0.3)
    _save(fig, path)


def image_grids_figure(panels: Mapping[str, Tensor], path: Path, cell_inches: float = 0.6) -> None:
    """Side-by-side panels, each a ``rows×cols×C×H×W`` grid of images titled by its key.

    Size: (Σ cols · cell + 0.4) × (rows · cell + 0.6) inches, with rows the
    largest panel's.
    """
    cols = [grid.shape[1] for grid in panels.values()]
    rows = max(grid.shape[0] for grid in panels.values())
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(sum(cols) * cell_inches + 0.4, rows * cell_inches + 0.6),
        squeeze=False,
        gridspec_kw={"width_ratios": cols},
    )
    for ax, (title, grid) in zip(axes[0], panels.items(), strict=True):
        _show_images(ax, grid)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def embedding_figure(
    points: Mapping[str, np.ndarray], labels: np.ndarray, method: str, path: Path
) -> None:
    """One scatter panel per representation of its 2-D ``method`` embedding, coloured by label.

    Size: (4.5 · panels + 1.2) × 4.5 inches (the extra width holds the legend).
    """
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(points), figsize=(4.5 * len(points) + 1.2, 4.5), squeeze=False)
    for ax, (name, xy) in zip(axes[0], points.items(), strict=True):
        for i, cls in enumerate(classes):
            sel = labels == cls
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=cmap(i % cmap.N), label=str(cls))
        ax.set_title(f"{method} of {name}")
        ax.set_xticks([])
        ax.set_yticks([])
    if len(classes) <= 20:
        axes[0][-1].legend(
            loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, fontsize=7, frameon=False
        )
    fig.tight_layout()
    _save(fig, path)


def curves_figure(history: Mapping[str, list[dict[str, float]]], path: Path) -> None:
    """Per stage, one panel per logged loss term and one for the periodic evaluation.

    ``history`` maps a stage name to its per-epoch records (``history.json``).
    Size: 12 × (2.4 · panel rows) inches, four panels per row.
    """
    panels: list[tuple[str, dict[str, list[tuple[float, float]]]]] = []
    for stage, records in history.items():
        keys = [k for k in records[0] if k not in RECORD_META] if records else []
        terms = [k for k in keys if not k.startswith(EVAL_PREFIX)]
        for term in terms:
            panels.append((f"{stage}: {term}", {term: _series(records, term)}))
        scores = sorted({k for r in records for k in r if k.startswith(EVAL_PREFIX)})
        if scores:
            panels.append(
                (f"{stage}: periodic evaluation", {k: _series(records, k) for k in scores})
            )
    if not panels:
        raise ValueError("history holds no logged loss terms to plot.")
    ncols = 4
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 2.4 * nrows), squeeze=False)
    for ax, (title, lines) in zip(axes.flat, panels, strict=False):
        for name, series in lines.items():
            epochs, values = zip(*series, strict=True)
            ax.plot(epochs, values, marker="." if len(series) < 30 else None, label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path)


def _series(records: list[dict[str, float]], key: str) -> list[tuple[float, float]]:
    """``(epoch, value)`` of every record that has ``key`` (evaluation runs every N epochs)."""
    return [(r["epoch"], r[key]) for r in records if key in r]
