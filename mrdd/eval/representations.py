"""Extract the learned codes of a whole split (eval mode, posterior means, no masking)."""

from __future__ import annotations

import torch
from torch import Tensor

from mrdd.data import BatchLoader, MultiViewData
from mrdd.models import MRDD, Codes, ConsistencyModel


@torch.no_grad()
def extract_codes(
    model: MRDD | ConsistencyModel, data: MultiViewData, batch_size: int, device: torch.device
) -> Codes:
    """``Codes`` of every sample of ``data``, in order, on the CPU.

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
