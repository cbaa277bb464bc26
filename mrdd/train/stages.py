"""A stage of MRDD as one unit: what it builds, how it steps, what it does after its last
epoch, where it is saved, and what it checks against the data.

:class:`ConsistencyStage` (stage 1) and :class:`DisentangleStage` (stage 2) each read their
own config section (:attr:`Stage.section`: ``stage1``, ``stage2``) and the run-wide one
(``run``). :func:`mrdd.train.run.run`, the benchmark and the checks against the data iterate
over :data:`STAGES` and call the same methods of each; nothing outside a stage's class asks
which stage it is. :func:`mrdd.train.loop.fit` owns the epochs (schedule, logging,
checkpoints), so one loop serves both. The objectives live in :mod:`mrdd.models.objectives`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from mrdd.config import ConfigError, RunConfig, RuntimeConfig, StageConfig
from mrdd.data import Batch, DatasetSplits, MultiViewData
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
from mrdd.models.masking import check_patch_size
from mrdd.nn.blocks import ResBlock
from mrdd.train.calibrate import recalibrate_batch_norm
from mrdd.train.checkpoint import check_compatible, load_checkpoint, load_state
from mrdd.train.device import autocast, maybe_compile
from mrdd.train.distributed import DistContext, data_parallel, sum_across_ranks

log = logging.getLogger("mrdd")
#: Times a named part of a step (a context manager factory); see :attr:`Stage.phase`.
Phase = Callable[[str], AbstractContextManager]


def _no_phase(name: str) -> AbstractContextManager:
    return contextlib.nullcontext()


def _adamw(params, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=device.type == "cuda")


def place_model(model: nn.Module, cfg: RunConfig, device: torch.device) -> nn.Module:
    """Move ``model`` to ``device``, in channels-last memory format if ``run.channels_last``;
    its residual blocks recompute their activations in backward if
    ``run.recompute_activations``."""
    model = model.to(device)
    if cfg.run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    for module in model.modules():
        if isinstance(module, ResBlock):
            module.recompute = cfg.run.recompute_activations
    return model


def _trainable(
    module: nn.Module, cfg: RunConfig, device: torch.device, dist: DistContext
) -> Callable[..., Any]:
    """What a stage calls for ``module``'s forward: DDP-wrapped across ranks, then compiled."""
    return maybe_compile(data_parallel(module, dist, device), cfg.run.compile)


class Stage:
    """One stage: ``model`` (what is checkpointed), ``optimizers`` and :meth:`step`, on
    ``device``, with its ``settings`` (its config section) and the run-wide ``runtime``.

    ``phase`` wraps the parts of a step (``mask``, ``forward``, ``backward``,
    ``optimizer``); it does nothing in training, and the benchmark replaces it
    with a timer that synchronises the device at each boundary, so the split of
    a step's time is measured on the very code that trains.
    """

    #: The stage's name in logs, progress bars, ``history.json`` and its state file.
    name: ClassVar[str]
    label: ClassVar[str]  #: "stage 1", "stage 2"
    section: ClassVar[str]  #: the config section of its settings
    model_kind: ClassVar[str]  #: the kind of its model checkpoint, and that file's stem

    model: nn.Module
    optimizers: list[torch.optim.Optimizer]
    device: torch.device
    settings: StageConfig
    runtime: RuntimeConfig
    phase: Phase = staticmethod(_no_phase)

    @classmethod
    def state_kind(cls) -> str:
        """The kind of its resumable state (:mod:`mrdd.train.state`)."""
        return f"{cls.name}_state"

    @classmethod
    def state_file(cls) -> str:
        """The file of its resumable state in the run directory."""
        return f"{cls.state_kind()}.pt"

    @classmethod
    def model_file(cls) -> str:
        """The file of its trained model in the run directory."""
        return f"{cls.model_kind}.pt"

    @classmethod
    def check_data(cls, cfg: RunConfig, splits: DatasetSplits) -> None:
        """Refuse the stage's settings that cannot work with ``splits`` (before training)."""
        settings, n = getattr(cfg, cls.section), len(splits.train)
        size = settings.batch_size
        if size > n:
            raise ConfigError(
                f"{cls.section}.batch_size={size} is larger than the {n} training samples of "
                f"{splits.name}; batches drop the incomplete last one, so an epoch would have "
                f"no batch. Set {cls.section}.batch_size to at most {n}."
            )
        settings.epochs_for(n // size)  # refuses a warm-up as long as the derived budget

    @classmethod
    def build(
        cls,
        cfg: RunConfig,
        splits: DatasetSplits,
        device: torch.device,
        dist: DistContext | None = None,
        previous: Stage | None = None,
    ) -> Stage:
        """The stage ready to train on ``splits.train``: a fresh model on ``device``,
        wrapped for ``dist`` and ``run.compile``, with its optimisers; ``previous``: the
        stage trained before it in this run (``None``: the first)."""
        raise NotImplementedError

    def step(self, batch: Batch) -> dict[str, Tensor]:
        """Run one update on a batch already on the device; return the loss terms and
        gradient norms (detached, on the device). A step whose values are not all finite
        is a faulty step for the loop. Absent views (``batch.available``) carry weight 0
        in every term (see :mod:`mrdd.models.availability`)."""
        raise NotImplementedError

    def finish(self, train: MultiViewData) -> None:
        """What runs after the stage's last epoch, before its model is saved."""

    def _update(self, optimizer: torch.optim.Optimizer, loss: Tensor, params: list) -> Tensor:
        """Backward ``loss`` into ``params`` only, clip, step; return the gradient norm.

        The norm (before clipping) is returned so the loop can watch it for NaN/inf without
        a host sync. With ``run.skip_nonfinite`` the update is not applied when the loss or
        the norm is not finite; deciding that needs the value on the host (one sync per
        update).
        """
        with self.phase("backward"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=params)
        with self.phase("optimizer"):
            grads = [p.grad for p in params if p.grad is not None]
            if self.settings.grad_clip is not None:
                norm = torch.nn.utils.clip_grad_norm_(params, self.settings.grad_clip)
            else:
                norm = torch.nn.utils.get_total_norm(grads)
            if self.runtime.skip_nonfinite and not torch.isfinite(loss.detach() + norm).item():
                return norm
            optimizer.step()
        return norm


class ConsistencyStage(Stage):
    """Stage 1 (MCP): mask every view (and, with ``stage1.view_dropout``, hide whole views
    of some samples), encode jointly, reconstruct every full present view; after the last
    epoch, re-estimate the BatchNorm statistics on unmasked views (``stage1.calibrate_bn``)."""

    name = "consistency"
    label = "stage 1"
    section = "stage1"
    model_kind = "consistency"

    def __init__(
        self,
        model: ConsistencyModel,
        cfg: RunConfig,
        device: torch.device,
        net: Callable[..., ConsistencyOutput] | None = None,
    ) -> None:
        self.model = model
        # what runs the forward: the model, or its DDP and/or torch.compile wrapper
        self.net = net or model
        self.settings, self.runtime, self.device = cfg.stage1, cfg.run, device
        self.params = [p for p in model.parameters() if p.requires_grad]
        settings = self.settings
        self.optimizers = [_adamw(self.params, settings.lr, settings.weight_decay, device)]
        self.patch_size = settings.patch_for(model.view_shapes)

    @classmethod
    def check_data(cls, cfg: RunConfig, splits: DatasetSplits) -> None:
        super().check_data(cfg, splits)
        if cfg.stage1.mask_ratio > 0:
            check_patch_size(
                cfg.stage1.patch_for(splits.view_shapes), splits.view_shapes, splits.name
            )

    @classmethod
    def build(cls, cfg, splits, device, dist=None, previous=None) -> ConsistencyStage:
        return cls.around(ConsistencyModel(splits.view_shapes, cfg.model), cfg, device, dist)

    @classmethod
    def around(
        cls,
        model: ConsistencyModel,
        cfg: RunConfig,
        device: torch.device,
        dist: DistContext | None = None,
    ) -> ConsistencyStage:
        """The stage for ``model``, placed on ``device`` and wrapped for ``dist``."""
        model = place_model(model, cfg, device)
        return cls(model, cfg, device, net=_trainable(model, cfg, device, dist or DistContext()))

    def step(self, batch: Batch) -> dict[str, Tensor]:
        cfg = self.settings
        with self.phase("mask"):
            weights = view_weights(batch.views, batch.available)
            views = zero_absent_views(batch.views, weights)  # the targets: every present view
            seen = drop_views_per_sample(weights, cfg.view_dropout)  # what c is inferred from
            masked = mask_views(zero_absent_views(views, seen), cfg.mask_ratio, self.patch_size)
        with self.phase("forward"):
            with autocast(self.device, self.runtime.precision):
                out = self.net(masked)
            terms = consistency_loss(out.mu, out.logvar, out.reconstructions, views, weights, cfg)
        (optimizer,) = self.optimizers
        terms["grad_norm"] = self._update(optimizer, terms["loss"], self.params)
        return {k: v.detach() for k, v in terms.items()}

    def finish(self, train: MultiViewData) -> None:
        """Before the model is saved: stage 2 and the evaluation read these statistics."""
        if self.settings.calibrate_bn:
            count = recalibrate_batch_norm(
                self.model, train, self.settings.inference_batch_size, self.device
            )
            log.info("stage 1: %d BatchNorm layers re-estimated on unmasked training views", count)


class DisentangleStage(Stage):
    """Stage 2 (DD): forward, update the estimators, update the view models.

    1. The CLUB estimators minimise :func:`~mrdd.models.objectives.estimator_loss` on
       detached ``s_v``.
    2. The view models minimise :func:`~mrdd.models.objectives.view_model_loss` with θ
       fixed: the backward pass is restricted to the view models' parameters.
    Each update is guarded on its own: with ``run.skip_nonfinite``, a non-finite estimator
    update is skipped without skipping a finite view-model update, and vice versa.
    The consistency model is frozen and only provides ``c = μ_c`` without autograd,
    computed once per sample by :meth:`cache_codes` when asked for, else per batch.
    """

    name = "disentangle"
    label = "stage 2"
    section = "stage2"
    model_kind = "mrdd"

    #: ``c`` of every sample of the training split (row ``i``: sample ``i``), or None.
    codes: Tensor | None = None

    def __init__(
        self,
        model: MRDD,
        cfg: RunConfig,
        device: torch.device,
        view_net: Callable[..., list[SpecificOutput]] | None = None,
        estimator_net: Callable[..., list[tuple[Tensor, Tensor]]] | None = None,
    ) -> None:
        self.model = model
        self.view_net = view_net or model.specific
        self.estimator_net = estimator_net or model.club
        self.settings, self.runtime, self.device = cfg.stage2, cfg.run, device
        self.view_params = list(model.specific.parameters())
        self.estimator_params = list(model.club.parameters())
        lr, club_lr, decay = self.settings.lr, self.settings.club_lr, self.settings.weight_decay
        self.optimizers = [
            _adamw(self.view_params, lr, decay, device),
            _adamw(self.estimator_params, club_lr, decay, device),
        ]

    @classmethod
    def check_data(cls, cfg: RunConfig, splits: DatasetSplits) -> None:
        """Also the stage-1 checkpoint a stage-2-only run starts from (``consistency_ckpt``),
        which would otherwise be read only when training begins."""
        super().check_data(cfg, splits)
        if cfg.consistency_ckpt:
            payload = load_checkpoint(cfg.consistency_ckpt, kind=ConsistencyStage.model_kind)
            where = str(cfg.consistency_ckpt)
            check_compatible(payload, cfg, splits.view_shapes, where, splits.identity)

    @classmethod
    def build(cls, cfg, splits, device, dist=None, previous=None) -> DisentangleStage:
        """Around the stage-1 model of ``previous``, or of ``consistency_ckpt``; with
        ``stage2.cache_consistent_code``, ``c`` of every training sample computed up front."""
        model = MRDD(splits.view_shapes, cfg.model)
        if previous is not None:
            model.consistency.load_state_dict(previous.model.state_dict())
        else:
            load_consistency_into(model, cfg.consistency_ckpt, cfg, splits)
        stage = cls.around(model, cfg, device, dist)
        if cfg.stage2.cache_consistent_code:
            stage.cache_codes(splits.train, cfg.stage2.inference_batch_size)
        return stage

    @classmethod
    def around(
        cls, model: MRDD, cfg: RunConfig, device: torch.device, dist: DistContext | None = None
    ) -> DisentangleStage:
        """The stage for ``model``, placed on ``device``: only the view models and the
        estimators are wrapped for ``dist``, the frozen consistency model runs as is."""
        dist = dist or DistContext()
        model = place_model(model, cfg, device)
        view_net = _trainable(model.specific, cfg, device, dist)
        return cls(model, cfg, device, view_net, _trainable(model.club, cfg, device, dist))

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
        with autocast(self.device, self.runtime.precision):
            return self.model.consistent_code(views)

    def step(self, batch: Batch) -> dict[str, Tensor]:
        view_opt, estimator_opt = self.optimizers
        with self.phase("forward"):
            weights = view_weights(batch.views, batch.available)
            views = zero_absent_views(batch.views, weights)
            c = self._consistent_code(views, batch.index)
            with autocast(self.device, self.runtime.precision):
                outputs = self.view_net(views, c)
            s = [out.s.float() for out in outputs]
            club_nll = estimator_loss(self.estimator_net([x.detach() for x in s]), c, weights)
        club_grad_norm = self._update(estimator_opt, club_nll, self.estimator_params)

        with self.phase("forward"):
            # CLUB's negative pairs span the global batch, also when it is sharded over ranks
            moments = sum_across_ranks(code_moment_sums(c, weights))
            predictions = self.model.club(s)  # θ after its update, held fixed below
            terms = view_model_loss(views, outputs, predictions, c, weights, self.settings, moments)
        terms["grad_norm"] = self._update(view_opt, terms["loss"], self.view_params)
        terms["club_nll"] = club_nll
        terms["club_grad_norm"] = club_grad_norm
        return {k: v.detach() for k, v in terms.items()}


def load_consistency_into(
    model: MRDD, path: str, cfg: RunConfig, splits: DatasetSplits
) -> list[dict[str, float]]:
    """Load a stage-1 checkpoint into ``model.consistency`` after checking that its
    settings, view shapes, data and split are this run's."""
    payload = load_checkpoint(path, kind=ConsistencyStage.model_kind)
    check_compatible(payload, cfg, splits.view_shapes, str(path), splits.identity)
    load_state(model.consistency, payload["state_dict"], str(path))
    return payload["history"]


#: Every stage, in training order, by the config section of its settings.
STAGES: dict[str, type[Stage]] = {cls.section: cls for cls in (ConsistencyStage, DisentangleStage)}


def stages_of(cfg: RunConfig) -> list[type[Stage]]:
    """The stages ``cfg`` trains (``stage=all|consistency|disentangle``), in order."""
    return [STAGES[section] for section in cfg.trained_sections]


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
