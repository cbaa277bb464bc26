"""Data-parallel training under ``torchrun``: one process per device, ranks in lock-step.

``torchrun --nproc_per_node=K scripts/train.py ...`` starts K copies of the script
and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`distributed_session` reads them and joins the process
group (NCCL on CUDA, gloo on CPU). Without them it is a single process and every
helper here is a no-op, so the same code path serves one and many processes.

Each rank holds the whole dataset and takes its shard of every *global* batch
(:class:`mrdd.data.BatchLoader`), the trained modules are wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel`, which averages gradients, so
K ranks with global batch B take the same step as one process with batch B.

BatchNorm: on CUDA the wrapped modules use :class:`~torch.nn.SyncBatchNorm`, so
the batch statistics are those of the global batch, as in one process (the cost
is one small all-reduce per normalisation layer). PyTorch has no SyncBatchNorm on
CPU; there each rank normalises with its own shard's statistics (a warning says
so), which is the usual DDP behaviour but not bit-equivalent to one process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mrdd.config import ConfigError

log = logging.getLogger("mrdd")

#: Ranks other than 0 wait at a barrier while rank 0 evaluates (KMeans can take minutes).
BARRIER_TIMEOUT = timedelta(hours=1)


@dataclass(frozen=True)
class DistContext:
    """This process's place among the training processes (single process by default)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs, evaluates and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError) as err:
        raise ConfigError(
            f"WORLD_SIZE is set but {name} is missing or not an integer; start "
            "distributed runs with torchrun, which sets RANK, LOCAL_RANK and WORLD_SIZE."
        ) from err


@contextlib.contextmanager
def distributed_session(device: torch.device) -> Iterator[tuple[DistContext, torch.device]]:
    """Join the process group that torchrun describes; yield the context and this rank's device.

    On CUDA each rank uses ``cuda:LOCAL_RANK``. A process group that is already
    initialised (e.g. by a notebook or a test) is used as is and left open;
    one created here is destroyed on exit.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield DistContext(), device
        return
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices are "
                "visible; use --nproc_per_node at most the number of GPUs per node."
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=BARRIER_TIMEOUT)
    ctx = DistContext(rank, world_size, local_rank)
    try:
        yield ctx, device
    finally:
        if owned:
            dist.destroy_process_group()


def barrier(ctx: DistContext, device: torch.device) -> None:
    """Wait until every rank arrives (no-op in a single process)."""
    if ctx.enabled:
        dist.barrier(device_ids=[device.index] if device.type == "cuda" else None)


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def sum_across_ranks(values: Tensor) -> Tensor:
    """The element-wise sum of ``values`` over all ranks (``values`` itself in one process).

    Every rank must call it at the same point: it is a collective operation.
    """
    if _world_size() == 1:
        return values
    total = values.clone()
    dist.all_reduce(total)
    return total


def mean_across_ranks(values: Tensor) -> Tensor:
    """The element-wise mean of ``values`` over all ranks (a collective, like
    :func:`sum_across_ranks`)."""
    return sum_across_ranks(values) / _world_size()


def data_parallel(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """Wrap ``module`` in DistributedDataParallel (unchanged in a single process).

    The module's BatchNorm layers become SyncBatchNorm on CUDA (in place, so the
    checkpointed model holds them too; their state-dict keys are unchanged).
    """
    if not ctx.enabled:
        return module
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
    if has_batchnorm and device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    elif has_batchnorm and ctx.is_main:
        log.warning(
            "BatchNorm under DDP on CPU uses each rank's own shard statistics (PyTorch has no "
            "CPU SyncBatchNorm); use model.backbone.norm=group for rank-count-independent results."
        )
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)
