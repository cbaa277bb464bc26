"""One training run: stage 1, stage 2, evaluation, files (what ``scripts/train.py`` calls).

The run directory receives ``config.json`` (the resolved config), ``run_info.json``
(config, seed, package and git versions, torch/CUDA, device, the CPU's native bf16
support; one entry per resumption),
``consistency.pt`` and ``mrdd.pt``, the resumable states ``consistency_state.pt`` and
``disentangle_state.pt``, ``history.json`` (per-epoch loss terms, throughput and
periodic evaluation; with ``run.plateau_patience``, when and why each stage stopped,
also in ``metrics.json``, see :mod:`mrdd.train.plateau`), ``progress.csv`` and ``tb/``
(the same, as training goes, see :mod:`mrdd.train.monitor`), ``train.log``, and the evaluation of
:func:`mrdd.eval.evaluate_model`: ``metrics.json``, ``metrics.md`` and the
figures. :func:`resume` continues a stopped run in its own directory with its saved config.

Under ``torchrun`` every rank trains its shard of each global batch
(:mod:`mrdd.train.distributed`); only rank 0 logs, monitors, evaluates and writes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mrdd.atomic import atomic_write_json, remove_stale_temporaries
from mrdd.config import ConfigError, RunConfig, adopt_stage1_settings, refuse_unused_settings
from mrdd.data import BatchLoader, DatasetSplits, MultiViewData, load_dataset
from mrdd.errors import MRDDError
from mrdd.eval import evaluate_model, metrics_markdown, save_metrics
from mrdd.eval.best_view import settle_best_view
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train.checkpoint import CheckpointError, load_checkpoint, save_model_checkpoint
from mrdd.train.device import (
    keep_freed_cpu_memory,
    precision_note,
    resolve_device,
    seed_everything,
)
from mrdd.train.distributed import DistContext, barrier, distributed_session
from mrdd.train.loop import fit
from mrdd.train.monitor import TrainingMonitor
from mrdd.train.plateau import PlateauStop, plateau_summary
from mrdd.train.provenance import environment_record
from mrdd.train.rundir import (
    end_record,
    read_record,
    require_new_run_dir,
    require_writable,
    restore_record,
    run_dir_lock,
    start_record,
)
from mrdd.train.stages import Stage, stages_of
from mrdd.train.state import StageCheckpoint
from mrdd.train.validate import validate_against_data

log = logging.getLogger("mrdd")
#: The line format of train.log (that of Hydra's job log, which may write the same file).
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
#: The training split goes to the GPU when it takes at most this share of the free memory.
GPU_DATA_SHARE = 0.5


@dataclass
class RunContext:
    """What every part of one run shares, built once by :func:`_open_run`.

    ``dist`` is this process's place under torchrun; only its main rank writes into
    ``out_dir`` and has a ``monitor``. ``resume``: continue the stages' saved states.
    """

    cfg: RunConfig
    out_dir: Path
    device: torch.device
    dist: DistContext
    splits: DatasetSplits
    resume: bool
    monitor: TrainingMonitor | None = None


def run(
    cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, named: Collection[str] = ()
) -> dict[str, Any]:
    """Train the configured stage(s) and evaluate; return the metrics dict.

    Every user error (config, data, checkpoint) is raised before training starts.
    ``named``: the settings the user named (the command line's keys), which
    :func:`settled_config` refuses where the chosen stage does not use them.
    With ``resume``, each stage continues from its saved state in ``out_dir``.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank trains its shard of each global
    batch; rank 0 alone logs, writes into ``out_dir`` and evaluates, while the other
    ranks, which only read ``out_dir`` to resume, wait for it and return ``{}``."""
    if not resume:
        cfg = settled_config(cfg, named)
    runtime = cfg.run
    with distributed_session(resolve_device(runtime.device)) as (dist, device):
        # per-rank seeds: masks and noise differ across shards; DDP syncs the initial weights
        seed_everything(runtime.seed + dist.rank, runtime.deterministic)
        if device.type == "cpu" and runtime.cpu_keep_freed_memory:
            keep_freed_cpu_memory()
        start = time.perf_counter()
        with _open_run(cfg, Path(out_dir), device, dist, resume) as ctx:
            model, histories = _train_stages(ctx)
            metrics = _evaluate(ctx, model, histories, start) if dist.is_main else {}
        barrier(dist, device)
        return metrics


def settled_config(cfg: RunConfig, named: Collection[str] = ()) -> RunConfig:
    """The config a new run records: a setting the chosen stage does not use is refused;
    a stage-2-only run takes its stage-1 settings from the checkpoint it loads
    (:func:`mrdd.config.adopt_stage1_settings`), logging each one taken."""
    refuse_unused_settings(cfg, named)
    if cfg.stage != "disentangle":
        return cfg
    where = str(cfg.consistency_ckpt)
    payload = load_checkpoint(where, kind="consistency")
    cfg, adopted = adopt_stage1_settings(cfg, payload["config"], named, where)
    for line in adopted:
        log.info("stage-1 setting of %s recorded: %s", where, line)
    return cfg


@contextmanager
def _open_run(
    cfg: RunConfig, out_dir: Path, device: torch.device, dist: DistContext, resume: bool
) -> Iterator[RunContext]:
    """The run's shared state; on the main rank also its files, log file, monitor and the
    record of how the run ended (see :mod:`mrdd.train.rundir`)."""
    if not dist.is_main:
        log.setLevel(logging.WARNING)
        yield RunContext(cfg, out_dir, device, dist, _load_splits(cfg, device), resume)
        return
    if not resume:
        require_writable(out_dir)
        require_new_run_dir(out_dir)
    with run_dir_lock(out_dir):
        if resume:
            remove_stale_temporaries(out_dir)  # left by writes that a kill interrupted
        else:
            require_new_run_dir(out_dir)  # again, locked: another process may have begun here
        previous = read_record(out_dir) if resume else None
        handler = _attach_log_file(out_dir)
        try:
            if not resume:
                atomic_write_json(cfg.to_dict(), out_dir / "config.json")
            start_record(out_dir, cfg, device, resume)
            with _recording_outcome(out_dir, previous):
                log.info(
                    "%s run directory %s, device %s, %d process(es)",
                    "resuming" if resume else "new",
                    out_dir,
                    device,
                    dist.world_size,
                )
                log.info(precision_note(device, cfg.run.precision))
                splits = _load_splits(cfg, device)
                monitor = TrainingMonitor(out_dir, splits, cfg, device, resume=resume)
                try:
                    yield RunContext(cfg, out_dir, device, dist, splits, resume, monitor)
                finally:
                    monitor.close()
        finally:
            if handler is not None:
                log.removeHandler(handler)
                handler.close()


@contextmanager
def _recording_outcome(out_dir: Path, previous: dict[str, Any] | None) -> Iterator[None]:
    """Log how the run ended and set its status in ``run_info.json``; the error itself
    propagates. Recording never hides it: a directory that can no longer be written
    (full disk, made read-only) costs the record, with a warning, not the cause.
    A resume refused for a user error (raised before training) puts back ``previous``,
    the record it found: the run is as it was."""
    try:
        yield
    except MRDDError as err:  # a user error, raised before training
        if previous is None:
            _record_failure(out_dir, err)
            raise
        log.error("resume refused, the run's record left as it was: %s", err)
        restore_record(out_dir, previous)
        raise
    except BaseException as err:
        _record_failure(out_dir, err)
        raise
    _try_end_record(out_dir, "finished")


def _record_failure(out_dir: Path, err: BaseException) -> None:
    interrupted = isinstance(err, KeyboardInterrupt | SystemExit)
    cause = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    log.error("run %s: %s", "interrupted" if interrupted else "failed", cause)
    _try_end_record(out_dir, "interrupted" if interrupted else "failed", cause)


def _try_end_record(out_dir: Path, status: str, cause: str | None = None) -> None:
    try:
        end_record(out_dir, status, cause)
    except OSError as err:
        log.warning("could not record the run's status %r in run_info.json: %s", status, err)


def _train_stages(ctx: RunContext) -> tuple[MRDD | ConsistencyModel, dict[str, list]]:
    """The configured stages in order, each built on the one before; the last stage's model
    and every stage's history."""
    if ctx.cfg.run.plateau_patience is not None and ctx.dist.world_size > 1:
        raise ConfigError(  # only rank 0 probes: the others could not stop with it
            "run.plateau_patience is not supported under torchrun yet; set it to null."
        )
    stage: Stage | None = None
    histories = {}
    for stage_type in stages_of(ctx.cfg):
        stage = stage_type.build(ctx.cfg, ctx.splits, ctx.device, ctx.dist, previous=stage)
        histories[stage.name] = train_stage(ctx, stage)
    return stage.model, histories


def train_stage(ctx: RunContext, stage: Stage) -> list[dict[str, float]]:
    """Train ``stage`` on this rank's shard of the training split, resumable from its
    state file and monitored; then finish it and save its model (main rank). Returns its
    epoch history."""
    settings, runtime = stage.settings, ctx.cfg.run
    loader = BatchLoader(
        ctx.splits.train,
        settings.batch_size,
        shuffle=True,
        drop_last=True,
        seed=runtime.seed,
        shard=(ctx.dist.rank, ctx.dist.world_size),
    )
    epochs = settings.epochs_for(len(loader))
    key = stage.section
    budget = f"{key}.epochs" if settings.steps is None else f"{key}.steps={settings.steps}"
    log.info(
        "%s (%s): %d epochs of %d steps (%s)", stage.label, stage.name, epochs, len(loader), budget
    )
    checkpoint = StageCheckpoint(
        ctx.out_dir / stage.state_file(),
        ctx.cfg,
        ctx.splits.view_shapes,
        ctx.resume,
        save=ctx.dist.is_main,
        data_identity=ctx.splits.identity,
    )
    plateau = PlateauStop.for_stage(runtime, stage.name, epochs)
    monitor = ctx.monitor.callback(stage.name, stage.model, plateau) if ctx.monitor else None
    history = fit(
        stage,
        loader,
        show_progress=ctx.dist.is_main,
        checkpoint=checkpoint,
        on_epoch_end=monitor,
        plateau=plateau,
    )
    stage.finish(ctx.splits.train)
    ctx.splits, best_view = settle_best_view(stage.model, ctx.splits, ctx.cfg, ctx.device)
    if ctx.dist.is_main:
        path = ctx.out_dir / stage.model_file()
        contents = {"history": history, "best_view": best_view}
        save_model_checkpoint(path, stage.model_kind, stage.model, ctx.cfg, ctx.splits, contents)
    return history


def _evaluate(
    ctx: RunContext, model: MRDD | ConsistencyModel, histories: dict[str, list], start: float
) -> dict[str, Any]:
    """Main rank: ``history.json``, the evaluation, ``metrics.json`` / ``metrics.md``."""
    atomic_write_json(histories, ctx.out_dir / "history.json")
    metrics = evaluate_model(model, ctx.cfg, ctx.splits, ctx.device, ctx.out_dir, histories)
    metrics["environment"] = {**environment_record(ctx.device), "processes": ctx.dist.world_size}
    metrics["seconds"] = time.perf_counter() - start
    if ctx.cfg.run.plateau_patience is not None:
        metrics["plateau"] = plateau_summary(histories, ctx.cfg.run)
    save_metrics(metrics, ctx.out_dir)
    log.info("evaluation (also in metrics.md):\n%s", metrics_markdown(metrics))
    log.info("done in %.1f s; files in %s", metrics["seconds"], ctx.out_dir)
    return metrics


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


def _load_splits(cfg: RunConfig, device: torch.device) -> DatasetSplits:
    splits = load_dataset(cfg.dataset)
    sizes = " / ".join(f"{len(splits.split(name))} {name}" for name in splits.names)
    log.info("dataset %s: %s samples, views %s", splits.name, sizes, splits.view_shapes)
    validate_against_data(cfg, splits)
    splits.train = place_data(splits.train, device)
    return splits


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
    return run(RunConfig.from_record(data), run_dir, resume=True)
