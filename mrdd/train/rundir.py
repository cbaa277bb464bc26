"""A run directory's safety and record: never overwrite a run, say how each run ended.

``run_info.json`` is the run's record: what made it (config, seed, versions, device),
one entry per resumption, and its ``status``: ``running`` while it trains,
``finished``, ``failed`` (with the ``cause``) or ``interrupted`` (Ctrl-C, SIGTERM).
A run killed outright (SIGKILL, power loss) cannot write anything and stays
``running``; ``scripts/collect.py`` and a resume can tell it from a live one only by
its age and missing results.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from mrdd.config import ConfigError, RunConfig
from mrdd.train.checkpoint import atomic_write_json
from mrdd.train.provenance import environment_record

#: Files that only a training run writes: a directory holding one of them holds a run.
RUN_FILES = (
    "config.json",
    "run_info.json",
    "consistency.pt",
    "mrdd.pt",
    "consistency_state.pt",
    "disentangle_state.pt",
    "metrics.json",
)


class RunDirectoryError(ConfigError):
    """The run directory already holds a run, or cannot be written."""


def require_new_run_dir(out_dir: Path) -> None:
    """Refuse a directory that already holds a run: a new run would overwrite its models,
    states and records."""
    found = [name for name in RUN_FILES if (out_dir / name).exists()]
    if found:
        raise RunDirectoryError(
            f"{out_dir} already holds a run ({', '.join(found)}); a new run would overwrite "
            f"it. To continue that run: python scripts/train.py resume={out_dir}; to start a "
            "new one, leave hydra.run.dir unset (each run gets a new directory) or name an "
            "empty directory."
        )


def require_writable(out_dir: Path) -> None:
    """Refuse a run directory that cannot be created or written, naming the folder at fault."""
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunDirectoryError(
            f"Cannot create the run directory {out_dir}: {existing} is a file, not a folder. "
            "Pass hydra.run.dir=<a writable folder>."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(
            f"Cannot write the run directory {out_dir}: {existing} is not writable by this "
            "user. Pass hydra.run.dir=<a writable folder>, or run from a writable folder."
        )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def start_record(out_dir: Path, cfg: RunConfig, device: torch.device, resume: bool) -> None:
    """Write ``run_info.json`` (what made this run, status ``running``), or add a
    resumption entry to it."""
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
    info.update(status="running", ended=None, cause=None)
    atomic_write_json(info, path)


def end_record(out_dir: Path, status: str, cause: str | None = None) -> None:
    """Set the run's ``status`` (``finished``, ``failed`` or ``interrupted``) and ``cause``."""
    path = out_dir / "run_info.json"
    info: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    info.update(status=status, ended=_now(), cause=cause)
    atomic_write_json(info, path)
