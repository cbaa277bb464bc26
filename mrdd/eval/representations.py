"""The learned codes of a split, and the named representations scored from them.

:func:`named_representations` is the one place that decides which representations a
run reports (docs/method.md, "Evaluation protocol"): the evaluation, the training probe, figures,
the missing-view study and the notebook API all take their names from it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mrdd.data import BatchLoader, MultiViewData
from mrdd.models import MRDD, Codes, ConsistencyModel

#: The consistent code alone and with the best view's specific code: what the training
#: probe, the embedding figures and the missing-view study look at (the last one present).
HEADLINE = ("C", "C+S_best")


#: The codes a run may report as its representation: ``metrics.md`` names the best of them
#: on val (:func:`mrdd.eval.best_view.best_on_val`), the one to report on test.
REPORTABLE = ("C", "C+S_best", "C+S_all")

#: The raw-input floor among the clustered representations (see :func:`raw_floor`).
RAW_FLOOR = "raw_best"

#: What the umap clustering method embeds: the combined codes and the raw floor. The
#: single specific codes ``S_v`` are left to KMeans: each UMAP fit costs ~30 CPU-s at the
#: default size (docs/evaluation.md), and no verdict reads ``S_v`` under it.
MANIFOLD = ("C", "C+S_best", "C+S_all", RAW_FLOOR)


def specific_name(v: int) -> str:
    """The name of view ``v``'s specific code ``s_v`` among the representations."""
    return f"S_{v}"


def named_representations(c: Tensor, s: list[Tensor], best_view: int | None) -> dict[str, Tensor]:
    """``C``, ``S_0`` … ``S_{V-1}``, ``C+S_best`` (``C‖S_best``) and ``C+S_all``
    (``C‖S_0‖…‖S_{V-1}``), in this order; only ``C`` for a stage-1 model (``s == []``);
    no ``C+S_best`` while ``best_view`` is ``None`` (not chosen yet, during training).

    ``c`` is N×c_dim and every ``s[v]`` N×v_dim, so ``C+S_all`` is N×(c_dim + V·v_dim).
    """
    if not s:
        return {"C": c}
    named = {"C": c, **{specific_name(v): s_v for v, s_v in enumerate(s)}}
    if best_view is not None:
        named["C+S_best"] = torch.cat([c, s[best_view]], dim=1)
    return {**named, "C+S_all": torch.cat([c, *s], dim=1)}


def raw_floor(data: MultiViewData, best_view: int) -> dict[str, Tensor]:
    """``{"raw_best": N×D}``: the best view's inputs flattened (pixels or features), the
    floor every learned code is compared with under each clustering method; ``{}`` for a
    split with missing views, whose absent inputs are zeros, not data."""
    if not data.complete:
        return {}
    return {RAW_FLOOR: data.views[best_view].flatten(1).float()}


def headline(representations: dict[str, Tensor]) -> dict[str, Tensor]:
    """The :data:`HEADLINE` representations among ``representations`` (``C`` only in stage 1)."""
    return {name: representations[name] for name in HEADLINE if name in representations}


def probed(representations: dict[str, Tensor]) -> Tensor:
    """The one representation the training probe clusters: ``C+S_best``; ``C+S_all`` while
    the best view is not chosen (``dataset.best_view`` null, chosen after training); ``C``
    for a stage-1 model."""
    for name in ("C+S_best", "C+S_all"):
        if name in representations:
            return representations[name]
    return representations["C"]


@torch.no_grad()
def extract_codes(
    model: MRDD | ConsistencyModel, data: MultiViewData, batch_size: int, device: torch.device
) -> Codes:
    """``Codes`` of every sample of ``data``, in order, on the CPU (eval mode, posterior
    means, no masking).

    A :class:`ConsistencyModel` (stage 1 only) yields ``c`` and no ``s``. Samples with
    missing views (``data.available``) are encoded from their present views only.
    """
    was_training = model.training
    model.eval()
    loader = BatchLoader(data, batch_size, shuffle=False, drop_last=False)
    cs: list[Tensor] = []
    ss: list[list[Tensor]] = []
    for views, _, available, _ in loader:
        views = [x.to(device, non_blocking=True) for x in views]
        available = None if data.complete else available.to(device)
        if isinstance(model, MRDD):
            codes = model.encode(views, available)
            cs.append(codes.c.cpu())
            ss.append([s.cpu() for s in codes.s])
        else:
            cs.append(model.encode(views, available)[0].float().cpu())
    model.train(was_training)
    s = [torch.cat(per_view) for per_view in zip(*ss, strict=True)] if ss else []
    return Codes(torch.cat(cs), s)
