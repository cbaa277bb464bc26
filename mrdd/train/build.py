"""From a model to a stage ready to train: device, memory format, DDP, ``torch.compile``.

The training run and the benchmark both build their stages here, so the
benchmark measures exactly what training runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mrdd.config import RunConfig
from mrdd.data import MultiViewData
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train.device import maybe_compile
from mrdd.train.distributed import DistContext, data_parallel
from mrdd.train.stages import ConsistencyStage, DisentangleStage


def place_model(model: nn.Module, cfg: RunConfig, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device``, in channels-last memory format if ``train.channels_last``."""
    model = model.to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _trainable(
    module: nn.Module, cfg: RunConfig, device: torch.device, ctx: DistContext
) -> Callable[..., Any]:
    """What a stage calls for ``module``'s forward: DDP-wrapped across ranks, then compiled."""
    return maybe_compile(data_parallel(module, ctx, device), cfg.train.compile)


def consistency_stage(
    model: ConsistencyModel, cfg: RunConfig, device: torch.device, ctx: DistContext | None = None
) -> ConsistencyStage:
    """Stage 1 for a placed ``model`` (see :func:`place_model`)."""
    net = _trainable(model, cfg, device, ctx or DistContext())
    return ConsistencyStage(model, cfg.model, cfg.train, device, net=net)


def disentangle_stage(
    model: MRDD,
    cfg: RunConfig,
    device: torch.device,
    ctx: DistContext | None = None,
    train_data: MultiViewData | None = None,
) -> DisentangleStage:
    """Stage 2 for a placed ``model``: only the view models and the estimators are wrapped,
    the frozen consistency model runs as is. Given the ``train_data`` it will train on,
    and with ``train.cache_consistent_code``, the stage computes ``c`` of every sample
    up front (in batches of ``eval.batch_size``, the size of every inference pass)."""
    ctx = ctx or DistContext()
    stage = DisentangleStage(
        model,
        cfg.train,
        device,
        view_net=_trainable(model.specific, cfg, device, ctx),
        estimator_net=_trainable(model.club, cfg, device, ctx),
    )
    if train_data is not None and cfg.train.cache_consistent_code:
        stage.cache_codes(train_data, cfg.eval.batch_size)
    return stage
