"""Resumable stage states: what :func:`mrdd.train.loop.fit` needs to continue a stage exactly.

A state file (``<stage>_state.pt`` in the run directory) holds the model, every
optimiser and LR scheduler, the RNG states (Python, NumPy, torch CPU and CUDA), the
number of finished epochs and steps, the epoch history so far, and the plateau stop's
state (best val score and weights, probes since; see :mod:`mrdd.train.plateau`). It is written
atomically, at epoch ends only: the loader's permutation is seeded per epoch and
masking and sampling draw from torch's global RNG, so restoring the RNG at an epoch
boundary makes the rest of the stage identical to an uninterrupted run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

from mrdd.atomic import atomic_torch_save
from mrdd.config import RunConfig
from mrdd.train.checkpoint import check_compatible, checkpoint_payload, load_checkpoint, load_state
from mrdd.train.stages import Stage


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every global RNG a training step on ``device`` may draw from, as tensors and plain
    values (so the state loads with ``weights_only=True``). Only the generator of the
    run's own GPU is read: reading all would start a CUDA context on every visible GPU."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what :func:`rng_state` captured (the CUDA generator onto ``device``)."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class Progress:
    """How far a stage got: finished epochs, optimiser steps, one record per epoch, and
    the state of its plateau stop (``None`` without one)."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    plateau: dict[str, Any] | None = None


class StageCheckpoint:
    """Saves one stage's resumable state to ``path`` and, when resuming, restores it.

    It saves after every ``run.ckpt_every`` epochs of ``config``, and after the last one.
    ``resume``: restore from ``path`` if it exists (a fresh run overwrites it instead).
    ``save``: whether to save at all (false on data-parallel ranks other than 0, which
    restore the state rank 0 saved but never write).
    ``data_identity``: the training data's ``splits.identity``, saved with the state; a
    state of other data is not restored.
    """

    def __init__(
        self,
        path: str | Path,
        config: RunConfig,
        view_shapes: list[tuple[int, ...]],
        resume: bool = False,
        save: bool = True,
        data_identity: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.data_identity = data_identity
        self.config = config
        self.view_shapes = [tuple(s) for s in view_shapes]
        self.every = config.run.ckpt_every
        self.resume = resume
        self.saves = save
        #: Where the last good state is (``None`` until one is saved or restored).
        self.last_saved: str | None = None

    def due(self, epochs_done: int, epochs: int, last: bool = False) -> bool:
        """Whether to save after ``epochs_done`` epochs (``last``: the stage ends early)."""
        return self.saves and (last or epochs_done % self.every == 0 or epochs_done == epochs)

    def save(self, stage: Stage, schedulers: list[LRScheduler], progress: Progress) -> None:
        payload = checkpoint_payload(
            stage.state_kind(),
            stage.model.state_dict(),
            self.config,
            self.view_shapes,
            self.data_identity,
            optimizers=[opt.state_dict() for opt in stage.optimizers],
            schedulers=[sched.state_dict() for sched in schedulers],
            rng=rng_state(stage.device),
            epoch=progress.epoch,
            step=progress.step,
            history=progress.history,
            plateau=progress.plateau,
        )
        atomic_torch_save(payload, self.path)
        self.last_saved = f"{self.path} (after epoch {progress.epoch})"

    def restore(self, stage: Stage, schedulers: list[LRScheduler]) -> Progress:
        """Load the saved state into ``stage`` and ``schedulers``; a fresh start if there
        is none (or this is not a resumed run)."""
        if not (self.resume and self.path.is_file()):
            return Progress()
        where = str(self.path)
        payload = load_checkpoint(self.path, kind=stage.state_kind())
        check_compatible(payload, self.config, self.view_shapes, where, self.data_identity)
        load_state(stage.model, payload["state_dict"], where)
        for module, state in zip(stage.optimizers, payload["optimizers"], strict=True):
            load_state(module, state, where)
        for module, state in zip(schedulers, payload["schedulers"], strict=True):
            load_state(module, state, where)
        set_rng_state(payload["rng"], stage.device)
        self.last_saved = f"{self.path} (after epoch {payload['epoch']})"
        plateau = payload.get("plateau")  # absent from states saved before it existed
        return Progress(payload["epoch"], payload["step"], payload["history"], plateau)
