"""Training: device and precision, the per-stage steps, the shared loop, checkpoints and
resume states, validation against the data, runs, data-parallel training under torchrun
(the benchmark lives apart, in :mod:`mrdd.bench`)."""

from mrdd.atomic import atomic_torch_save
from mrdd.train.checkpoint import (
    CheckpointError,
    check_compatible,
    load_checkpoint,
    save_model_checkpoint,
)
from mrdd.train.device import (
    autocast,
    keep_freed_cpu_memory,
    maybe_compile,
    resolve_device,
    seed_everything,
)
from mrdd.train.distributed import DistContext, distributed_session
from mrdd.train.loop import NonFiniteLossError, fit
from mrdd.train.provenance import environment_record
from mrdd.train.run import RunContext, resume, run, train_stage
from mrdd.train.stages import (
    STAGES,
    ConsistencyStage,
    DisentangleStage,
    Stage,
    place_model,
    stages_of,
)
from mrdd.train.state import StageCheckpoint
from mrdd.train.validate import validate_against_data

__all__ = [
    "CheckpointError",
    "ConsistencyStage",
    "DisentangleStage",
    "DistContext",
    "NonFiniteLossError",
    "STAGES",
    "Stage",
    "StageCheckpoint",
    "atomic_torch_save",
    "autocast",
    "check_compatible",
    "distributed_session",
    "environment_record",
    "fit",
    "keep_freed_cpu_memory",
    "load_checkpoint",
    "maybe_compile",
    "place_model",
    "resolve_device",
    "resume",
    "run",
    "save_model_checkpoint",
    "seed_everything",
    "stages_of",
    "train_stage",
    "RunContext",
    "validate_against_data",
]
