"""Re-estimate the stage-1 model's BatchNorm statistics on the inputs it sees at evaluation.

Stage 1 trains on heavily masked views, so its BatchNorm running statistics describe
masked images; evaluation and stage 2 feed it *unmasked* views (and its decoders
``c = μ`` instead of a sample). Statistics accumulated on one input distribution and
applied to another shift every normalised activation. One no-gradient pass over the
unmasked training split, in train mode for the BatchNorm layers only, replaces the
running moments by those of the evaluation-time inputs (a cumulative average over the
pass, not an exponential one). Weights are untouched.
"""

from __future__ import annotations

import torch
from torch import nn

from mrdd.data import BatchLoader, MultiViewData
from mrdd.models import ConsistencyModel, view_weights, zero_absent_views


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model`` (SyncBatchNorm included)."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_batch_norm(
    model: ConsistencyModel, data: MultiViewData, batch_size: int, device: torch.device
) -> int:
    """Replace the running mean and variance of every BatchNorm of ``model`` by their
    average over the unmasked views of ``data`` (absent views as zeros, ``c = μ`` into the
    decoders); return the number of layers re-estimated (0 without BatchNorm).

    Every rank of a data-parallel run calls it on the whole split, so all get the same
    statistics. The last incomplete batch is dropped: a statistic over a handful of
    samples would only add noise.
    """
    norms = batch_norms(model)
    if not norms:
        return 0
    was_training = model.training
    model.eval()  # c = μ, as at evaluation
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    loader = BatchLoader(data, min(batch_size, len(data)), shuffle=False, drop_last=True)
    for batch in loader:
        batch = batch.to(device)
        model(zero_absent_views(batch.views, view_weights(batch.views, batch.available)))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)
