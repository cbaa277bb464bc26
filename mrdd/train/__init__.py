"""Training: device and precision, the per-stage steps, the shared loop, checkpoints and
resume states, validation against the data, runs."""

from mrdd.train.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    check_compatible,
    load_checkpoint,
    save_model_checkpoint,
)
from mrdd.train.device import autocast, resolve_device, seed_everything
from mrdd.train.loop import NonFiniteLossError, fit
from mrdd.train.provenance import environment_record
from mrdd.train.run import resume, run, train_consistency, train_disentangle
from mrdd.train.stages import ConsistencyStage, DisentangleStage, Stage
from mrdd.train.state import StageCheckpoint
from mrdd.train.validate import validate_against_data

__all__ = [
    "CheckpointError",
    "ConsistencyStage",
    "DisentangleStage",
    "NonFiniteLossError",
    "Stage",
    "atomic_torch_save",
    "autocast",
    "StageCheckpoint",
    "check_compatible",
    "environment_record",
    "fit",
    "load_checkpoint",
    "resolve_device",
    "resume",
    "run",
    "save_model_checkpoint",
    "seed_everything",
    "train_consistency",
    "train_disentangle",
    "validate_against_data",
]
