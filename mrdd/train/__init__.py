"""Training: device and precision, the per-stage steps, the shared loop, checkpoints, runs."""

from mrdd.train.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    check_consistency_compatible,
    load_checkpoint,
    save_model_checkpoint,
)
from mrdd.train.device import autocast, resolve_device, seed_everything
from mrdd.train.loop import NonFiniteLossError, fit
from mrdd.train.run import run, train_consistency, train_disentangle
from mrdd.train.stages import ConsistencyStage, DisentangleStage, Stage

__all__ = [
    "CheckpointError",
    "ConsistencyStage",
    "DisentangleStage",
    "NonFiniteLossError",
    "Stage",
    "atomic_torch_save",
    "autocast",
    "check_consistency_compatible",
    "fit",
    "load_checkpoint",
    "resolve_device",
    "run",
    "save_model_checkpoint",
    "seed_everything",
    "train_consistency",
    "train_disentangle",
]
