"""One training run: stage 1, stage 2, evaluation, files (what ``scripts/train.py`` calls).

The run directory receives ``config.json`` (the resolved config), ``run_info.json``
(config, seed, package and git versions, torch/CUDA, device; one entry per resumption),
``consistency.pt`` and ``mrdd.pt``, the resumable states ``consistency_state.pt`` and
``disentangle_state.pt``, ``history.json`` (per-epoch loss terms, throughput and
periodic evaluation), ``progress.csv`` and ``tb/`` (the same, as training goes, see
:mod:`mrdd.train.monitor`), ``train.log``, and the evaluation of
:func:`mrdd.eval.report.evaluate_model`: ``metrics.json``, ``metrics.md`` and the
figures. :func:`resume` continues a stopped run in its own directory with its saved config.

Under ``torchrun`` every rank trains its shard of each global batch
(:mod:`mrdd.train.distributed`); only rank 0 logs, monitors, evaluates and writes.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from mrdd.config import RunConfig
from mrdd.data import BatchLoader, DatasetSplits, MultiViewData, load_dataset
from mrdd.eval.report import evaluate_model, metrics_markdown
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train.build import consistency_stage, disentangle_stage, place_model
from mrdd.train.checkpoint import (
    CheckpointError,
    atomic_write_json,
    check_compatible,
    load_checkpoint,
    load_state,
    remove_stale_temporaries,
    save_model_checkpoint,
)
from mrdd.train.device import keep_freed_cpu_memory, resolve_device, seed_everything
from mrdd.train.distributed import DistContext, barrier, distributed_session
from mrdd.train.loop import fit
from mrdd.train.monitor import TrainingMonitor
from mrdd.train.provenance import environment_record
from mrdd.train.stages import Stage
from mrdd.train.state import StageCheckpoint
from mrdd.train.validate import validate_against_data

log = logging.getLogger("mrdd")
#: The line format of train.log (that of Hydra's job log, which may write the same file).
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def _attach_log_file(out_dir: Path) -> logging.Handler | None:
    """Log to ``out_dir/train.log``, unless a handler already writes there (Hydra's job
    log has that name), which would print every line twice."""
    log.setLevel(logging.INFO)
    path = (out_dir / "train.log").resolve()
    for existing in logging.getLogger().handlers:
        if isinstance(existing, logging.FileHandler) and Path(existing.baseFilename) == path:
            return None
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    return handler


def _loader(data: MultiViewData, batch_size: int, cfg: RunConfig, ctx: DistContext) -> BatchLoader:
    return BatchLoader(
        data,
        batch_size,
        shuffle=True,
        drop_last=True,
        seed=cfg.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
    )


def _checkpoint(
    out_dir: Path,
    stage: str,
    cfg: RunConfig,
    splits: DatasetSplits,
    resume: bool,
    ctx: DistContext,
) -> StageCheckpoint:
    """Every rank restores a resumed stage's state; only rank 0 saves."""
    path = out_dir / f"{stage}_state.pt"
    return StageCheckpoint(
        path, cfg, splits.view_shapes, cfg.train.ckpt_every, resume, save=ctx.is_main,
        data_identity=splits.identity,
    )  # fmt: skip


#: The training split goes to the GPU when it takes at most this share of the free memory.
GPU_DATA_SHARE = 0.5


def place_data(data: MultiViewData, device: torch.device) -> MultiViewData:
    """``data`` on ``device`` when it fits (see :data:`GPU_DATA_SHARE`), else left on the
    CPU, from where each batch is copied over: slower, but the run does not die of memory."""
    if device.type == "cuda":
        size = sum(x.numel() * x.element_size() for x in [*data.views, data.labels])
        free, _ = torch.cuda.mem_get_info(device)
        if size > GPU_DATA_SHARE * free:
            log.warning(
                "%s (%.1f GiB) takes more than %.0f%% of the free GPU memory (%.1f GiB); "
                "keeping it on the CPU and copying each batch.",
                data.name,
                size / 2**30,
                100 * GPU_DATA_SHARE,
                free / 2**30,
            )
            return data
    return data.to(device)


def _fit_and_save(
    stage: Stage,
    label: str,
    kind: str,
    epochs: int,
    batch_size: int,
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    out_dir: Path,
    resume: bool,
    monitor: TrainingMonitor | None,
    ctx: DistContext,
) -> list[dict[str, float]]:
    """Train ``stage`` on its shard of the training split (resumable from its state file,
    monitored), then save its model as ``<kind>.pt`` (rank 0); return the epoch history."""
    loader = _loader(splits.train, batch_size, cfg, ctx)
    log.info("%s (%s): %d epochs of %d steps", label, stage.name, epochs, len(loader))
    history = fit(
        stage,
        loader,
        epochs,
        cfg.train,
        device,
        show_progress=ctx.is_main,
        checkpoint=_checkpoint(out_dir, stage.name, cfg, splits, resume, ctx),
        on_epoch_end=monitor.callback(stage.name, stage.model) if monitor else None,
    )
    if ctx.is_main:
        path = out_dir / f"{kind}.pt"
        save_model_checkpoint(
            path, kind, stage.model, cfg, splits.view_shapes, history, splits.identity
        )
    return history


def train_consistency(
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    out_dir: Path,
    *,
    resume: bool = False,
    monitor: TrainingMonitor | None = None,
    ctx: DistContext | None = None,
) -> tuple[ConsistencyModel, list[dict[str, float]]]:
    """Stage 1 (MCP); saves ``consistency.pt``; returns the model and its epoch history.

    With ``resume``, continues from ``consistency_state.pt`` if the stage saved one (a
    finished stage then trains no further epochs). ``ctx``: this process's rank (only
    rank 0 saves)."""
    ctx = ctx or DistContext()
    model = place_model(ConsistencyModel(splits.view_shapes, cfg.model), cfg, device)
    stage = consistency_stage(model, cfg, device, ctx)
    history = _fit_and_save(
        stage, "stage 1", "consistency", cfg.train.epochs, cfg.train.batch_size,
        cfg, splits, device, out_dir, resume, monitor, ctx,
    )  # fmt: skip
    return model, history


def load_consistency_into(
    model: MRDD,
    path: str | Path,
    cfg: RunConfig,
    view_shapes: list[tuple[int, ...]],
    data_identity: dict[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Load a stage-1 checkpoint into ``model.consistency`` after checking its settings
    and (given ``data_identity``, the run's ``splits.identity``) its training data."""
    payload = load_checkpoint(path, kind="consistency")
    check_compatible(payload, cfg, view_shapes, str(path), data_identity)
    load_state(model.consistency, payload["state_dict"], str(path))
    return payload["history"]


def train_disentangle(
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    out_dir: Path,
    consistency: ConsistencyModel | None,
    *,
    resume: bool = False,
    monitor: TrainingMonitor | None = None,
    ctx: DistContext | None = None,
) -> tuple[MRDD, list[dict[str, float]]]:
    """Stage 2 (DD) on top of a frozen stage-1 model; saves ``mrdd.pt`` (rank 0).

    With ``resume``, continues from ``disentangle_state.pt`` if the stage saved one."""
    ctx = ctx or DistContext()
    model = MRDD(splits.view_shapes, cfg.model)
    if consistency is not None:
        model.consistency.load_state_dict(consistency.state_dict())
    else:
        load_consistency_into(model, cfg.consistency_ckpt, cfg, splits.view_shapes, splits.identity)
    model = place_model(model, cfg, device)
    stage = disentangle_stage(model, cfg, device, ctx, train_data=splits.train)
    history = _fit_and_save(
        stage, "stage 2", "mrdd", cfg.train.stage2_epochs, cfg.train.stage2_batch_size,
        cfg, splits, device, out_dir, resume, monitor, ctx,
    )  # fmt: skip
    return model, history


def save_metrics(metrics: dict[str, Any], out_dir: Path) -> None:
    """``metrics.json`` (written atomically) and its human-readable twin ``metrics.md``."""
    atomic_write_json(metrics, out_dir / "metrics.json")
    (out_dir / "metrics.md").write_text(metrics_markdown(metrics))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record_run_info(out_dir: Path, cfg: RunConfig, device: torch.device, resume: bool) -> None:
    """Write ``run_info.json`` (what made this run), or add a resumption entry to it."""
    path = out_dir / "run_info.json"
    environment = environment_record(device)
    if resume and path.is_file():
        info = json.loads(path.read_text())
        info.setdefault("resumed", []).append({"at": _now(), "environment": environment})
    else:
        info = {
            "started": _now(),
            "seed": cfg.seed,
            "environment": environment,
            "config": cfg.to_dict(),
            "resumed": [],
        }
    atomic_write_json(info, path)


def run(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False) -> dict[str, Any]:
    """Train the configured stage(s) and evaluate; return the metrics dict.

    Every user error (config, data, checkpoint) is raised before training starts.
    With ``resume``, each stage continues from its saved state in ``out_dir``.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank trains its shard of each global
    batch; rank 0 alone logs, writes into ``out_dir`` and evaluates, while the other
    ranks, which only read ``out_dir`` to resume, wait for it and return ``{}``."""
    out_dir = Path(out_dir)
    with distributed_session(resolve_device(cfg.device)) as (ctx, device):
        # per-rank seeds: masks and noise differ across shards; DDP syncs the initial weights
        seed_everything(cfg.seed + ctx.rank, cfg.deterministic)
        if device.type == "cpu" and cfg.train.cpu_keep_freed_memory:
            keep_freed_cpu_memory()
        if not ctx.is_main:
            log.setLevel(logging.WARNING)
            _train_stages(cfg, _load_splits(cfg, device), device, out_dir, resume, None, ctx)
            barrier(ctx, device)
            return {}
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = _attach_log_file(out_dir)
        try:
            metrics = _main_rank(cfg, device, out_dir, resume, ctx)
        finally:
            if handler is not None:
                log.removeHandler(handler)
                handler.close()
        barrier(ctx, device)
        return metrics


def _load_splits(cfg: RunConfig, device: torch.device) -> DatasetSplits:
    splits = load_dataset(cfg.dataset)
    log.info(
        "dataset %s: %d train / %d test samples, views %s",
        splits.name,
        len(splits.train),
        len(splits.test),
        splits.view_shapes,
    )
    validate_against_data(cfg, splits)
    splits.train = place_data(splits.train, device)
    return splits


def _train_stages(
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    out_dir: Path,
    resume: bool,
    monitor: TrainingMonitor | None,
    ctx: DistContext,
) -> tuple[MRDD | ConsistencyModel, dict[str, list[dict[str, float]]]]:
    """The configured stage(s); returns the last stage's model and every stage's history."""
    model: MRDD | ConsistencyModel | None = None
    histories = {}
    if cfg.stage in ("all", "consistency"):
        model, histories["consistency"] = train_consistency(
            cfg, splits, device, out_dir, resume=resume, monitor=monitor, ctx=ctx
        )
    if cfg.stage in ("all", "disentangle"):
        model, histories["disentangle"] = train_disentangle(
            cfg, splits, device, out_dir, model, resume=resume, monitor=monitor, ctx=ctx
        )
    return model, histories


def _main_rank(
    cfg: RunConfig, device: torch.device, out_dir: Path, resume: bool, ctx: DistContext
) -> dict[str, Any]:
    """Rank 0's run (the whole run in a single process): files, training, evaluation."""
    if not resume:
        atomic_write_json(cfg.to_dict(), out_dir / "config.json")
    _record_run_info(out_dir, cfg, device, resume)
    log.info(
        "%s run directory %s, device %s, %d process(es)",
        "resuming" if resume else "new",
        out_dir,
        device,
        ctx.world_size,
    )
    start = time.perf_counter()
    splits = _load_splits(cfg, device)
    monitor = TrainingMonitor(
        out_dir,
        splits,
        cfg.train.eval_every,
        cfg.eval.progress_samples,
        cfg.eval.batch_size,
        device,
        cfg.seed,
        resume=resume,
    )
    try:
        model, histories = _train_stages(cfg, splits, device, out_dir, resume, monitor, ctx)
    finally:
        monitor.close()
    atomic_write_json(histories, out_dir / "history.json")
    metrics = evaluate_model(model, cfg, splits, device, out_dir, histories)
    metrics["environment"] = {**environment_record(device), "processes": ctx.world_size}
    metrics["seconds"] = time.perf_counter() - start
    save_metrics(metrics, out_dir)
    log.info("evaluation (also in metrics.md):\n%s", metrics_markdown(metrics))
    log.info("done in %.1f s; files in %s", metrics["seconds"], out_dir)
    return metrics


def resume(run_dir: str | Path) -> dict[str, Any]:
    """Continue the stopped run in ``run_dir`` with the config saved there: each stage
    restarts after its last saved epoch (a finished stage is not trained again), and the
    results are written into the same directory, as an uninterrupted run would have."""
    run_dir = Path(run_dir)
    config_file = run_dir / "config.json"
    if not config_file.is_file():
        raise CheckpointError(
            f"Cannot resume {run_dir}: it holds no config.json, so it is not a training run's "
            "directory. Pass the directory a run wrote to (outputs/<date>/<time>)."
        )
    try:
        data = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"Cannot resume {run_dir}: config.json is not valid JSON ({err})."
        ) from err
    remove_stale_temporaries(run_dir)  # left by writes that a kill interrupted
    return run(RunConfig.from_dict(data), run_dir, resume=True)
