"""Per-sample view availability inside the models: absent views in, absent views out.

An absent view enters every encoder as zeros (the input MCP already learns to
read as "nothing seen here"), and every loss term of a view is averaged over the
samples that have the view only: ``term_v = Σ_{i present} e_i / max(1, n_v)``.
So a term keeps the scale it has on complete data (the mean per-sample error of
view ``v``) at any missing rate, and the loss weights keep their meaning.
"""

from __future__ import annotations

from torch import Tensor

from mrdd.data.base import zero_absent


def zero_absent_views(views: list[Tensor], available: Tensor | None) -> list[Tensor]:
    """Every view with its absent samples set to 0 (``available``: ``N×V`` bool or None)."""
    if available is None:
        return views
    if available.shape != (views[0].shape[0], len(views)):
        raise ValueError(
            f"available must be N×V = {views[0].shape[0]}×{len(views)}, "
            f"got {tuple(available.shape)}."
        )
    return [zero_absent(x, available[:, v]) for v, x in enumerate(views)]


def masked_mean(values: Tensor, present: Tensor | None) -> Tensor:
    """Mean of the per-sample ``values`` over the samples where ``present`` is True
    (0 when none is); the plain mean when ``present`` is None."""
    if present is None:
        return values.mean()
    weights = present.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def view_presence(available: Tensor | None, v: int) -> Tensor | None:
    """Column ``v`` of ``available`` (None stays None)."""
    return None if available is None else available[:, v]
