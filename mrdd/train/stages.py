"""What one training step of each stage does.

A stage owns its model, optimisers and per-step logic; :func:`mrdd.train.loop.fit`
owns everything else (epochs, schedule, logging, checkpoints), so one loop
serves both stages.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import Tensor, nn

from mrdd.config import ModelConfig, TrainConfig
from mrdd.data import MultiViewData
from mrdd.eval.representations import extract_codes
from mrdd.models import (
    MRDD,
    ConsistencyModel,
    ConsistencyOutput,
    SpecificOutput,
    batch_moments,
    consistency_loss,
    mask_views,
    view_model_loss,
)
from mrdd.models.availability import zero_absent_views
from mrdd.train.device import autocast
from mrdd.train.distributed import mean_across_ranks

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

    def step(
        self, views: list[Tensor], available: Tensor | None = None, index: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Run one update on a batch; return the loss terms and gradient norms (detached,
        on device). A step whose values are not all finite is a faulty step for the loop.
        ``available`` (``B×V`` bool, None = all present) marks the views each sample has;
        ``index`` (the batch's row numbers in the training split, or None) lets a stage
        look up what it computed once per sample."""
        raise NotImplementedError


class ConsistencyStage(Stage):
    """Stage 1 (MCP): mask every view, encode jointly, reconstruct every full view.

    An absent view is a fully masked input (zeros) and its reconstruction is not scored."""

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

    def step(
        self, views: list[Tensor], available: Tensor | None = None, index: Tensor | None = None
    ) -> dict[str, Tensor]:
        cfg = self.train_cfg
        with self.phase("mask"):
            views = zero_absent_views(views, available)
            masked = mask_views(views, cfg.mask_ratio, cfg.mask_patch_size)
        with self.phase("forward"):
            with autocast(self.device, cfg.precision):
                out = self.net(masked, available)
            terms = consistency_loss(
                out, views, self.model_cfg.alpha, self.model_cfg.beta_c, available
            )
        (optimizer,) = self.optimizers
        terms["grad_norm"] = _update(optimizer, terms["loss"], self.params, cfg, self.phase)
        return {k: v.detach() for k, v in terms.items()}


class DisentangleStage(Stage):
    """Stage 2 (DD): two updates per step, as DESIGN.md section 2 specifies.

    1. The CLUB estimators maximise ``log q_θ(c | s_v)`` on true pairs, ``s_v`` detached.
    2. The view models minimise ``recon + β_s·KL + λ·I_CLUB`` with θ fixed: the
       backward pass is restricted to the view models' parameters.
    Each update is guarded on its own: with ``skip_nonfinite``, a non-finite estimator
    update is skipped without skipping a finite view-model update, and vice versa.
    The consistency model is frozen and only provides ``c = μ_c`` without autograd,
    computed once per sample by :meth:`cache_codes` when asked for, else per batch.
    With missing views, ``c`` comes from the present views and each view's model and
    estimator are trained on the samples that have that view only.
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
        estimator_net: Callable[..., Tensor] | None = None,
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
        steps given their batch's ``index`` into ``data`` then look ``c`` up instead of
        running the frozen encoder (13% of a step's FLOPs at the paper's Edge-MNIST setting).

        Exact, not an approximation: ``c = μ_c`` of the unmasked views is a fixed function
        of the sample, since the encoder is frozen and in eval mode and stage 2 neither
        masks nor augments its input (a stage 2 that did must not cache). The codes are
        those the evaluation extracts (:func:`mrdd.eval.extract_codes`: present views
        only, fp32 even where training steps run under bf16 autocast).
        """
        codes = extract_codes(self.model.consistency, data, batch_size, self.device)
        self.codes = codes.c.to(self.device)

    def step(
        self, views: list[Tensor], available: Tensor | None = None, index: Tensor | None = None
    ) -> dict[str, Tensor]:
        cfg = self.train_cfg
        view_opt, estimator_opt = self.optimizers
        with self.phase("forward"):
            views = zero_absent_views(views, available)
            cached = self.codes is not None and index is not None
            c = self.codes[index.to(self.codes.device)] if cached else None
            with autocast(self.device, cfg.precision):
                if c is None:
                    c = self.model.consistent_code(views, available)
                outputs = self.view_net(views, c)
            s = [out.s.detach().float() for out in outputs]
            estimator_loss = -self.estimator_net(s, c, available)
        club_grad_norm = _update(
            estimator_opt, estimator_loss, self.estimator_params, cfg, self.phase
        )

        with self.phase("forward"):
            # CLUB's negative pairs span the global batch, also when it is sharded over
            # ranks (with missing views: the present samples of this rank's shard)
            c_moments = mean_across_ranks(batch_moments(c)) if available is None else None
            terms = view_model_loss(self.model, outputs, views, c, available, c_moments)
        terms["grad_norm"] = _update(view_opt, terms["loss"], self.view_params, cfg, self.phase)
        terms["club_nll"] = estimator_loss
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
