"""Per-sample view availability as weights: ``w`` is ``B×V``, 1 where a sample has a view
and 0 where it is absent (all ones for complete data).

Weights rather than an optional mask keep one code path for complete and incomplete
data: an absent view enters every encoder as zeros (``x · w``, the input MCP already
reads as "nothing seen here"), and every loss term of a view is a weighted mean over
the samples that have it (:func:`mrdd.models.objectives.weighted_mean`).
"""

from __future__ import annotations

import torch
from torch import Tensor


def view_weights(views: list[Tensor], available: Tensor | None = None) -> Tensor:
    """``available`` (``B×V`` bool; ``None``: every view present) as float weights on the
    views' device."""
    shape = (views[0].shape[0], len(views))
    if available is None:
        return torch.ones(shape, device=views[0].device)
    if tuple(available.shape) != shape:
        raise ValueError(
            f"available must be B×V = {shape[0]}×{shape[1]}, got {tuple(available.shape)}."
        )
    return available.to(views[0].device, torch.float32)


def zero_absent_views(views: list[Tensor], weights: Tensor) -> list[Tensor]:
    """Every view times its weight column: absent samples become zeros, present ones are
    unchanged (``x · 1 = x`` exactly)."""
    return [
        x * weights[:, v].to(x.dtype).view(-1, *([1] * (x.ndim - 1))) for v, x in enumerate(views)
    ]


def fill_absent(views: list[Tensor], predicted: list[Tensor], available: Tensor) -> list[Tensor]:
    """The imputation merge: each view's present samples as they are, its absent ones
    (``available`` False, ``B×V``) replaced by ``predicted`` (cast to the view's dtype)."""
    return [
        torch.where(available[:, v].view(-1, *([1] * (x.ndim - 1))), x, p.to(x.dtype))
        for v, (x, p) in enumerate(zip(views, predicted, strict=True))
    ]
