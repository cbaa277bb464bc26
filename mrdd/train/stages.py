"""What one training step of each stage does.

A stage owns its model, optimisers and per-step logic; :func:`mrdd.train.loop.fit`
owns everything else (epochs, schedule, logging, checkpoints), so one loop
serves both stages. The objectives themselves live in :mod:`mrdd.models.objectives`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn

from mrdd.config import ModelConfig, TrainConfig
from mrdd.data import Batch, MultiViewData
from mrdd.eval.representations import extract_codes
from mrdd.models import (
    MRDD,
    ConsistencyModel,
    ConsistencyOutput,
    SpecificOutput,
    code_moment_sums,
    consistency_loss,
    drop_views_per_sample,
    estimator_loss,
    mask_views,
    view_model_loss,
    view_weights,
    zero_absent_views,
)
from mrdd.train.device import autocast
from mrdd.train.distributed import sum_across_ranks

#: Times a named part of a step (a context manager factory); see :attr:`Stage.phase`.
Phase = Callable[[str], AbstractContextManager]


def _no_phase(name: str) -> AbstractContextManager:
    return contextlib.nullcontext()


def _adamw(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda")


def _update(
    optimizer: torch.optim.Optimizer,
    loss: Tensor,
    params: list[nn.Parameter],
    cfg: TrainConfig,
    phase: Phase = _no_phase,
) -> Tensor:
    """Backward ``loss`` into ``params`` only, clip, step; return the gradient norm.

    The norm (before clipping) is returned so the loop can watch it for NaN/inf without a
    host sync. With ``skip_nonfinite`` the update is not applied when the loss or the norm
    is not finite; deciding that needs the value on the host (one sync per update).
    """
    with phase("backward"):
        optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
    with phase("optimizer"):
        grads = [p.grad for p in params if p.grad is not None]
        if cfg.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm(grads)
        if cfg.skip_nonfinite and not torch.isfinite(loss.detach() + norm).item():
            return norm
        optimizer.step()
    return norm


class Stage:
    """Base class: ``model`` (what is checkpointed), ``optimizers``, ``step``, on ``device``.

    ``phase`` wraps the parts of a step (``mask``, ``forward``, ``backward``,
    ``optimizer``); it does nothing in training, and the benchmark replaces it
    with a timer that synchronises the device at each boundary, so the split of
    a step's time is measured on the very code that trains.
    """

    name: str
    model: nn.Module
    optimizers: list[torch.optim.Optimizer]
    device: torch.device
    phase: Phase = staticmethod(_no_phase)

    def step(self, batch: Batch) -> dict[str, Tensor]:
        """Run one update on a batch already on the device; return the loss terms and
        gradient norms (detached, on the device). A step whose values are not all finite
        is a faulty step for the loop. Absent views (``batch.available``) carry weight 0
        in every term (see :mod:`mrdd.models.availability`)."""
        raise NotImplementedError


class ConsistencyStage(Stage):
    """Stage 1 (MCP): mask every view (and, with ``train.view_dropout``, hide whole views of
    some samples), encode jointly, reconstruct every full present view."""

    name = "consistency"

    def __init__(
        self,
        model: ConsistencyModel,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        device: torch.device,
        net: Callable[..., ConsistencyOutput] | None = None,
    ) -> None:
        self.model = model
        # what runs the forward: the model, or its DDP and/or torch.compile wrapper
        self.net = net or model
        self.model_cfg, self.train_cfg, self.device = model_cfg, train_cfg, device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizers = [_adamw(self.params, train_cfg.lr, train_cfg.weight_decay, device)]

    def step(self, batch: Batch) -> dict[str, Tensor]:
        cfg = self.train_cfg
        with self.phase("mask"):
            weights = view_weights(batch.views, batch.available)
            views = zero_absent_views(batch.views, weights)  # the targets: every present view
            seen = drop_views_per_sample(weights, cfg.view_dropout)  # what c is inferred from
            masked = mask_views(zero_absent_views(views, seen), cfg.mask_ratio, cfg.mask_patch_size)
        with self.phase("forward"):
            with autocast(self.device, cfg.precision):
                out = self.net(masked)
            terms = consistency_loss(
                out.mu, out.logvar, out.reconstructions, views, weights, self.model_cfg
            )
        (optimizer,) = self.optimizers
        terms["grad_norm"] = _update(optimizer, terms["loss"], self.params, cfg, self.phase)
        return {k: v.detach() for k, v in terms.items()}


class DisentangleStage(Stage):
    """Stage 2 (DD): forward, update the estimators, update the view models.

    1. The CLUB estimators minimise :func:`~mrdd.models.objectives.estimator_loss` on
       detached ``s_v``.
    2. The view models minimise :func:`~mrdd.models.objectives.view_model_loss` with θ
       fixed: the backward pass is restricted to the view models' parameters.
    Each update is guarded on its own: with ``skip_nonfinite``, a non-finite estimator
    update is skipped without skipping a finite view-model update, and vice versa.
    The consistency model is frozen and only provides ``c = μ_c`` without autograd,
    computed once per sample by :meth:`cache_codes` when asked for, else per batch.
    """

    #: ``c`` of every sample of the training split (row ``i``: sample ``i``), or None.
    codes: Tensor | None = None

    name = "disentangle"

    def __init__(
        self,
        model: MRDD,
        train_cfg: TrainConfig,
        device: torch.device,
        view_net: Callable[..., list[SpecificOutput]] | None = None,
        estimator_net: Callable[..., list[tuple[Tensor, Tensor]]] | None = None,
    ) -> None:
        self.model = model
        self.view_net = view_net or model.specific
        self.estimator_net = estimator_net or model.club
        self.train_cfg, self.device = train_cfg, device
        self.view_params = list(model.specific.parameters())
        self.estimator_params = list(model.club.parameters())
        self.optimizers = [
            _adamw(self.view_params, train_cfg.lr, train_cfg.weight_decay, device),
            _adamw(self.estimator_params, train_cfg.club_lr, train_cfg.weight_decay, device),
        ]

    def cache_codes(self, data: MultiViewData, batch_size: int) -> None:
        """Compute ``c`` of every sample of ``data`` once, in batches of ``batch_size``;
        steps then look ``c`` up by their batch's ``index`` instead of running the frozen
        encoder (13% of a step's FLOPs at the paper's Edge-MNIST setting).

        Exact, not an approximation: ``c = μ_c`` of the unmasked views is a fixed function
        of the sample, since the encoder is frozen and in eval mode and stage 2 neither
        masks nor augments its input (a stage 2 that did must not cache). The codes are
        those the evaluation extracts (:func:`mrdd.eval.extract_codes`: present views
        only, fp32 even where training steps run under bf16 autocast).
        """
        codes = extract_codes(self.model.consistency, data, batch_size, self.device)
        self.codes = codes.c.to(self.device)

    def _consistent_code(self, views: list[Tensor], index: Tensor) -> Tensor:
        if self.codes is not None:
            return self.codes[index]
        with autocast(self.device, self.train_cfg.precision):
            return self.model.consistent_code(views)

    def step(self, batch: Batch) -> dict[str, Tensor]:
        cfg, model_cfg = self.train_cfg, self.model.cfg
        view_opt, estimator_opt = self.optimizers
        with self.phase("forward"):
            weights = view_weights(batch.views, batch.available)
            views = zero_absent_views(batch.views, weights)
            c = self._consistent_code(views, batch.index)
            with autocast(self.device, cfg.precision):
                outputs = self.view_net(views, c)
            s = [out.s.float() for out in outputs]
            club_nll = estimator_loss(self.estimator_net([x.detach() for x in s]), c, weights)
        club_grad_norm = _update(estimator_opt, club_nll, self.estimator_params, cfg, self.phase)

        with self.phase("forward"):
            # CLUB's negative pairs span the global batch, also when it is sharded over ranks
            moments = sum_across_ranks(code_moment_sums(c, weights))
            predictions = self.model.club(s)  # θ after its update, held fixed below
            terms = view_model_loss(views, outputs, predictions, c, weights, model_cfg, moments)
        terms["grad_norm"] = _update(view_opt, terms["loss"], self.view_params, cfg, self.phase)
        terms["club_nll"] = club_nll
        terms["club_grad_norm"] = club_grad_norm
        return {k: v.detach() for k, v in terms.items()}


def lr_lambda(schedule: str, total_steps: int, warmup_steps: int):
    """Multiplier of the base learning rate at a step: linear warm-up, then cosine or constant."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor
