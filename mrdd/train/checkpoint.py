"""Checkpoints: atomic writes, safe loading, and refusal of mismatched settings.

A checkpoint is a plain dict (loadable with ``weights_only=True``): the run's
resolved config, the view shapes, and the model's state dict. A stage-2 run
refuses a stage-1 checkpoint whose settings differ from its own, naming them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

import mrdd
from mrdd.config import ConfigError, RunConfig

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, or does not match the run."""


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model_checkpoint(
    path: Path,
    kind: str,
    model: nn.Module,
    config: RunConfig,
    view_shapes: list[tuple[int, ...]],
    history: list[dict[str, float]] | None = None,
) -> None:
    """Save a trained model of ``kind`` (``consistency`` or ``mrdd``) with what rebuilds it."""
    atomic_torch_save(
        {
            "format": FORMAT_VERSION,
            "kind": kind,
            "mrdd_version": mrdd.__version__,
            "config": config.to_dict(),
            "view_shapes": [list(s) for s in view_shapes],
            "state_dict": model.state_dict(),
            "history": history or [],
        },
        path,
    )


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``), with a clear error if it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Point to the consistency.pt / mrdd.pt "
            "written in a training run's directory."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated/corrupt files
        raise CheckpointError(
            f"Checkpoint {path} could not be read ({type(err).__name__}: {err}). The file is "
            "truncated, corrupted or not a mrdd checkpoint; re-run the stage that wrote it."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a mrdd checkpoint (format {FORMAT_VERSION}).")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(
            f"{path} holds a {payload['kind']!r} checkpoint, but a {kind!r} one is needed."
        )
    return payload


def _consistency_settings(config: dict[str, Any], view_shapes: list) -> dict[str, Any]:
    """The settings that determine the consistency model's architecture and meaning."""
    model = config["model"]
    return {
        "dataset.name": config["dataset"]["name"],
        "view_shapes": [list(s) for s in view_shapes],
        "model.c_dim": model["c_dim"],
        **{f"model.backbone.{k}": v for k, v in model["backbone"].items()},
    }


def check_consistency_compatible(
    payload: dict[str, Any], config: RunConfig, view_shapes: list[tuple[int, ...]]
) -> None:
    """Refuse a stage-1 checkpoint trained with other settings than this run's."""
    saved = _consistency_settings(payload["config"], payload["view_shapes"])
    wanted = _consistency_settings(config.to_dict(), view_shapes)
    diffs = [
        f"{k}: checkpoint {saved[k]!r} vs this run {wanted[k]!r}"
        for k in wanted
        if saved.get(k) != wanted[k]
    ]
    if diffs:
        raise ConfigError(
            "The stage-1 checkpoint does not match this run's settings:\n  "
            + "\n  ".join(diffs)
            + "\nUse the same dataset and model settings as the stage-1 run, or retrain stage 1."
        )
