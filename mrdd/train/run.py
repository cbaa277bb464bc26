"""One training run: stage 1, stage 2, evaluation, files (what ``scripts/train.py`` calls).

The run directory receives ``config.json`` (the resolved config), ``run_info.json``
(config, seed, package and git versions, torch/CUDA, device; one entry per resumption),
``consistency.pt`` and ``mrdd.pt``, the resumable states ``consistency_state.pt`` and
``disentangle_state.pt``, ``metrics.json``, ``reconstructions.png``, ``history.json``
(per-epoch loss terms and throughput) and ``train.log``. :func:`resume` continues a
stopped run in its own directory with its saved config.
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
from mrdd.data import BatchLoader, DatasetSplits, load_dataset
from mrdd.eval import clustering_report, extract_codes, reconstruction_figure
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train.checkpoint import (
    CheckpointError,
    atomic_write_json,
    check_compatible,
    load_checkpoint,
    load_state,
    save_model_checkpoint,
)
from mrdd.train.device import resolve_device, seed_everything
from mrdd.train.loop import fit
from mrdd.train.provenance import environment_record
from mrdd.train.stages import ConsistencyStage, DisentangleStage
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


def _prepare(model: torch.nn.Module, cfg: RunConfig, device: torch.device) -> torch.nn.Module:
    model = model.to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def _loader(data, batch_size: int, cfg: RunConfig) -> BatchLoader:
    return BatchLoader(data, batch_size, shuffle=True, drop_last=True, seed=cfg.seed)


def _checkpoint(
    out_dir: Path, stage: str, cfg: RunConfig, splits: DatasetSplits, resume: bool
) -> StageCheckpoint:
    path = out_dir / f"{stage}_state.pt"
    return StageCheckpoint(path, cfg, splits.view_shapes, cfg.train.ckpt_every, resume)


def train_consistency(
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    out_dir: Path,
    *,
    resume: bool = False,
) -> tuple[ConsistencyModel, list[dict[str, float]]]:
    """Stage 1 (MCP); saves ``consistency.pt``; returns the model and its epoch history.

    With ``resume``, continues from ``consistency_state.pt`` if the stage saved one (a
    finished stage then trains no further epochs)."""
    model = _prepare(ConsistencyModel(splits.view_shapes, cfg.model), cfg, device)
    stage = ConsistencyStage(model, cfg.model, cfg.train, device)
    loader = _loader(splits.train, cfg.train.batch_size, cfg)
    log.info("stage 1 (consistency): %d epochs of %d steps", cfg.train.epochs, len(loader))
    checkpoint = _checkpoint(out_dir, stage.name, cfg, splits, resume)
    history = fit(stage, loader, cfg.train.epochs, cfg.train, device, checkpoint=checkpoint)
    save_model_checkpoint(
        out_dir / "consistency.pt", "consistency", model, cfg, splits.view_shapes, history
    )
    return model, history


def load_consistency_into(
    model: MRDD, path: str | Path, cfg: RunConfig, view_shapes: list[tuple[int, ...]]
) -> list[dict[str, float]]:
    """Load a stage-1 checkpoint into ``model.consistency`` after checking its settings."""
    payload = load_checkpoint(path, kind="consistency")
    check_compatible(payload, cfg, view_shapes, str(path))
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
) -> tuple[MRDD, list[dict[str, float]]]:
    """Stage 2 (DD) on top of a frozen stage-1 model; saves ``mrdd.pt``.

    With ``resume``, continues from ``disentangle_state.pt`` if the stage saved one."""
    model = MRDD(splits.view_shapes, cfg.model)
    if consistency is not None:
        model.consistency.load_state_dict(consistency.state_dict())
    else:
        load_consistency_into(model, cfg.consistency_ckpt, cfg, splits.view_shapes)
    model = _prepare(model, cfg, device)
    stage = DisentangleStage(model, cfg.train, device)
    loader = _loader(splits.train, cfg.train.stage2_batch_size, cfg)
    epochs = cfg.train.stage2_epochs
    log.info("stage 2 (disentangle): %d epochs of %d steps", epochs, len(loader))
    checkpoint = _checkpoint(out_dir, stage.name, cfg, splits, resume)
    history = fit(stage, loader, epochs, cfg.train, device, checkpoint=checkpoint)
    save_model_checkpoint(out_dir / "mrdd.pt", "mrdd", model, cfg, splits.view_shapes, history)
    return model, history


def evaluate_run(
    model: MRDD | ConsistencyModel,
    cfg: RunConfig,
    splits: DatasetSplits,
    device: torch.device,
    out_dir: Path,
) -> dict[str, Any]:
    """Cluster every representation of the configured split; write ``metrics.json``
    and the reconstruction figure."""
    data = splits.split(cfg.eval.split)
    codes = extract_codes(model, data, cfg.eval.batch_size, device)
    reps = codes.as_dict(splits.best_view) if codes.s else {"C": codes.c}
    clustering = clustering_report(
        reps, data.labels, splits.num_classes, cfg.eval.split, cfg.eval.n_seeds, cfg.seed
    )
    metrics = {
        "dataset": splits.name,
        "stage": cfg.stage,
        "best_view": splits.best_view,
        "seed": cfg.seed,
        "clustering": clustering,
    }
    atomic_write_json(metrics, out_dir / "metrics.json")
    _write_reconstructions(model, data, cfg, device, out_dir)
    return metrics


@torch.no_grad()
def _write_reconstructions(model, data, cfg: RunConfig, device, out_dir: Path) -> None:
    n = min(cfg.eval.num_figure_samples, len(data))
    views = [x[:n].to(device) for x in data.views]
    model.eval()
    consistency = model.consistency if isinstance(model, MRDD) else model
    rows = {"original": views, "stage 1 (from c)": consistency(views).reconstructions}
    if isinstance(model, MRDD):
        rows["stage 2 ([s_v, c])"] = model.reconstruct(views)
    reconstruction_figure(rows, out_dir / "reconstructions.png")


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
    With ``resume``, each stage continues from its saved state in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = _attach_log_file(out_dir)
    try:
        seed_everything(cfg.seed, cfg.deterministic)
        device = resolve_device(cfg.device)
        if not resume:
            atomic_write_json(cfg.to_dict(), out_dir / "config.json")
        _record_run_info(out_dir, cfg, device, resume)
        log.info("%s run directory %s, device %s", "resuming" if resume else "new", out_dir, device)
        start = time.perf_counter()
        splits = load_dataset(cfg.dataset)
        log.info(
            "dataset %s: %d train / %d test samples, views %s",
            splits.name,
            len(splits.train),
            len(splits.test),
            splits.view_shapes,
        )
        validate_against_data(cfg, splits)
        splits.train = splits.train.to(device)
        model: MRDD | ConsistencyModel | None = None
        histories = {}
        if cfg.stage in ("all", "consistency"):
            model, histories["consistency"] = train_consistency(
                cfg, splits, device, out_dir, resume=resume
            )
        if cfg.stage in ("all", "disentangle"):
            model, histories["disentangle"] = train_disentangle(
                cfg, splits, device, out_dir, model, resume=resume
            )
        atomic_write_json(histories, out_dir / "history.json")
        metrics = evaluate_run(model, cfg, splits, device, out_dir)
        metrics["environment"] = environment_record(device)
        metrics["seconds"] = time.perf_counter() - start
        atomic_write_json(metrics, out_dir / "metrics.json")
        log.info("done in %.1f s; files in %s", metrics["seconds"], out_dir)
        return metrics
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()


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
    return run(RunConfig.from_dict(data), run_dir, resume=True)
