"""Figures a researcher looks at after a run (PNG files via matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402


def _image_row(x: Tensor) -> Tensor:
    """A batch of images as one grid row (H×W×C numpy-ready, values in [0, 1])."""
    grid = make_grid(x.float().clamp(0, 1).cpu(), nrow=x.shape[0], padding=1, pad_value=1.0)
    return grid.permute(1, 2, 0)


def reconstruction_figure(rows: dict[str, list[Tensor]], path: Path) -> None:
    """One panel per view; in each, one row per entry of ``rows`` (e.g. original, stage 1, stage 2).

    ``rows[name][v]`` is a batch of images of view ``v``. Vector views are shown
    as line plots of their first samples instead.
    """
    names = list(rows)
    num_views = len(rows[names[0]])
    fig, axes = plt.subplots(
        len(names), num_views, figsize=(3.2 * num_views, 1.0 + 0.9 * len(names)), squeeze=False
    )
    for v in range(num_views):
        for r, name in enumerate(names):
            ax = axes[r][v]
            x = rows[name][v]
            if x.ndim == 4:
                img = _image_row(x)
                ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray")
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.plot(x[:4].float().cpu().T.numpy(), linewidth=0.7)
            if v == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center")
            if r == 0:
                ax.set_title(f"view {v}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["reconstruction_figure"]
