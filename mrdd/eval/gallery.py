"""The figures of a trained run: decode its codes into pictures (drawn by mrdd.eval.figures).

* ``reconstructions.png``: originals, masked inputs, stage 1 from the masked and
  from the unmasked input, and stage 2 from ``[s_v, c]``, per view.
* ``swap_view{v}.png``: ``decode_v(s_v of sample i, c of sample j)`` over an
  n×n grid — what the view-specific code holds (style) versus the consistent
  code (content).
* ``samples_view{v}.png``: ``c ~ N(0, I)`` with each sample's ``s_v`` fixed, and
  ``s_v ~ N(0, I)`` with each sample's ``c`` fixed.
* ``tsne.png`` and ``umap.png``: 2-D embeddings of ``C`` and ``C‖S_best`` coloured by
  label; ``umap.png`` draws the embedding the umap clustering method clusters (fitted on
  the train split, :mod:`mrdd.eval.manifold`), by its first two principal components.
* ``curves.png``: every logged loss term and the periodic evaluation per epoch.

Swap grids and samples need image views; vector views are skipped with a note
in the log (their reconstructions are drawn as line plots).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from torch import Tensor

from mrdd.config import RunConfig
from mrdd.data import MultiViewData
from mrdd.eval.figures import (
    curves_figure,
    embedding_figure,
    image_grids_figure,
    reconstruction_figure,
)
from mrdd.eval.representations import headline
from mrdd.models import MRDD, ConsistencyModel, mask_views

log = logging.getLogger("mrdd")


def figure_indices(labels: Tensor, n: int) -> Tensor:
    """``n`` sample indices that cycle through the classes (first unused sample of each),
    so that a grid shows as many different classes as it can."""
    labels = labels.cpu()
    per_class = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(n, len(labels)):
        for idx in per_class:
            if depth < len(idx) and len(chosen) < n:
                chosen.append(int(idx[depth]))
        depth += 1
    return torch.tensor(chosen)


def _first_stage(model: MRDD | ConsistencyModel) -> ConsistencyModel:
    return model.consistency if isinstance(model, MRDD) else model


@torch.no_grad()
def reconstruction_rows(
    model: MRDD | ConsistencyModel, views: list[Tensor], cfg: RunConfig
) -> dict[str, list[Tensor]]:
    """Rows of the reconstruction figure for a batch of views (model in eval mode).

    The masked input uses the run's ``mask_ratio`` and ``mask_patch_size`` with a
    generator seeded by ``cfg.run.seed``, so the figure is reproducible.
    """
    consistency = _first_stage(model)
    generator = torch.Generator(views[0].device).manual_seed(cfg.run.seed)
    patch = cfg.stage1.patch_for([tuple(v.shape[1:]) for v in views])
    masked = mask_views(views, cfg.stage1.mask_ratio, patch, generator)
    rows = {
        "original": views,
        f"masked ({cfg.stage1.mask_ratio:g})": masked,
        "stage 1, masked input": consistency(masked).reconstructions,
        "stage 1, unmasked input": consistency(views).reconstructions,
    }
    if isinstance(model, MRDD):
        rows["stage 2 ([s_v, c])"] = model.reconstruct(views)
    return rows


@torch.no_grad()
def swap_grid(model: MRDD, views: list[Tensor], v: int) -> Tensor:
    """``(n+1)×(n+1)`` images of view ``v``: cell ``(i, j)`` decodes ``[s_v of sample i, c of
    sample j]``; the top row shows the ``c`` sources, the left column the ``s_v`` sources."""
    codes = model.encode(views)
    x, s, c = views[v], codes.s[v], codes.c
    n = x.shape[0]
    decoded = model.specific[v].decode(s.repeat_interleave(n, 0), c.repeat(n, 1)).float()
    body = torch.cat([x.unsqueeze(1), decoded.view(n, n, *x.shape[1:])], dim=1)
    top = torch.cat([torch.ones_like(x[:1]), x]).unsqueeze(0)
    return torch.cat([top, body])


@torch.no_grad()
def prior_samples(model: MRDD, views: list[Tensor], v: int, seed: int) -> dict[str, Tensor]:
    """Two ``n×(n+1)`` grids of view ``v``: the first column is the original; row ``i`` keeps
    sample i's ``s_v`` (resp. ``c``) and pairs it with ``n`` draws of ``c`` (resp. ``s_v``)
    from N(0, I), the same draws in every row."""
    codes = model.encode(views)
    x, s, c = views[v], codes.s[v], codes.c
    n = x.shape[0]
    generator = torch.Generator(x.device).manual_seed(seed)
    c_prior = torch.randn(n, c.shape[1], generator=generator, device=x.device)
    s_prior = torch.randn(n, s.shape[1], generator=generator, device=x.device)
    decode = model.specific[v].decode

    def grid(fixed_s: Tensor, fixed_c: Tensor) -> Tensor:
        decoded = decode(fixed_s, fixed_c).float().view(n, n, *x.shape[1:])
        return torch.cat([x.unsqueeze(1), decoded], dim=1)

    return {
        f"view {v}: s_v fixed per row, c ~ N(0, I)": grid(
            s.repeat_interleave(n, 0), c_prior.repeat(n, 1)
        ),
        f"view {v}: c fixed per row, s_v ~ N(0, I)": grid(
            s_prior.repeat(n, 1), c.repeat_interleave(n, 0)
        ),
    }


def tsne_2d(features: Mapping[str, Tensor], seed: int) -> dict[str, np.ndarray]:
    """2-D t-SNE of every representation (fitted on the points drawn)."""
    points = {}
    for name, x in features.items():
        perplexity = min(30.0, (len(x) - 1) / 3)  # must stay below the number of samples
        tsne = TSNE(perplexity=perplexity, init="pca", random_state=seed)
        points[name] = tsne.fit_transform(x.cpu().numpy())
    return points


def manifold_2d(embedded: Mapping[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """The first two principal components of each representation's manifold codes: the
    very embedding the umap clustering method clusters (fitted on train), seen in 2-D."""
    return {
        name: PCA(n_components=2, random_state=seed).fit_transform(x)
        for name, x in embedded.items()
    }


@dataclass
class SplitCodes:
    """The evaluated split's codes by representation name (``C``, ``C+S_best``, ...):
    ``raw`` as the model gives them, ``embedded`` their train-fitted manifold codes
    (:func:`mrdd.eval.manifold.manifold_codes`; at least the figures' representations)."""

    raw: dict[str, Tensor]
    embedded: Mapping[str, np.ndarray]


def write_figures(
    model: MRDD | ConsistencyModel,
    data: MultiViewData,
    codes: SplitCodes,
    history: dict[str, list[dict[str, float]]],
    cfg: RunConfig,
    out_dir: Path,
) -> list[str]:
    """Write every figure of the module docstring that applies; return their file names.

    ``data`` is the evaluated split (drawn on the model's device), ``codes`` its codes,
    ``history`` the per-stage training records.
    """
    model.eval()
    device = next(model.parameters()).device
    representations, embedded = codes.raw, codes.embedded
    written = []
    idx = figure_indices(data.labels, cfg.eval.num_figure_samples)
    views = [x[idx.to(x.device)].to(device) for x in data.views]
    reconstruction_figure(reconstruction_rows(model, views, cfg), out_dir / "reconstructions.png")
    written.append("reconstructions.png")

    if isinstance(model, MRDD):
        for v, x in enumerate(views):
            if x.ndim != 4:
                log.info("view %d holds feature vectors: no swap grid or samples figure", v)
                continue
            image_grids_figure(
                {
                    f"view {v}: rows s_v of left image, columns c of top image": swap_grid(
                        model, views, v
                    )
                },
                out_dir / f"swap_view{v}.png",
            )
            image_grids_figure(
                prior_samples(model, views, v, cfg.run.seed), out_dir / f"samples_view{v}.png"
            )
            written += [f"swap_view{v}.png", f"samples_view{v}.png"]

    shown = headline(representations)
    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.run.seed))[
        : cfg.eval.embedding_samples
    ]
    labels = data.labels.cpu()[keep].numpy()
    tsne = tsne_2d({k: x[keep] for k, x in shown.items()}, cfg.run.seed)
    embedding_figure(tsne, labels, "t-SNE", out_dir / "tsne.png")
    umap = manifold_2d({k: embedded[k][keep.numpy()] for k in shown}, cfg.run.seed)
    embedding_figure(umap, labels, "UMAP (train-fitted, 2 PCs)", out_dir / "umap.png")
    written += ["tsne.png", "umap.png"]

    if any(history.values()):
        curves_figure(history, out_dir / "curves.png")
        written.append("curves.png")
    return written
