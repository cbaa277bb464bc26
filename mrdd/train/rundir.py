"""A run directory's safety and record: never overwrite a run, say how each run ended.

``run_info.json`` is the run's record: what made it (config, seed, versions, device),
one entry per resumption, and its ``status``: ``running`` while it trains,
``finished``, ``failed`` (with the ``cause``) or ``interrupted`` (Ctrl-C, SIGTERM).
A run killed outright (SIGKILL, power loss) cannot write anything and stays
``running``; ``scripts/collect.py`` can tell it from a live one only by its age and
missing results. While a process works in a run directory it holds ``run.lock``
(:func:`run_dir_lock`): a second process is refused, naming the holder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from mrdd.atomic import atomic_write_json
from mrdd.config import ConfigError, RunConfig
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


#: Files that only a run that trained writes: without them, a failed run lost nothing.
TRAINED_FILES = (
    "consistency.pt",
    "mrdd.pt",
    "consistency_state.pt",
    "disentangle_state.pt",
    "metrics.json",
)

#: The lock a process holds while it works in a run directory (:func:`run_dir_lock`).
LOCK_FILE = "run.lock"


class RunDirectoryError(ConfigError):
    """The run directory already holds a run, is in use, or cannot be written."""


def never_trained(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds only the record of a run that failed or was interrupted
    before it saved anything (bad data, a refused checkpoint): reusing it loses nothing."""
    try:
        status = json.loads((out_dir / "run_info.json").read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return False
    trained = any((out_dir / name).exists() for name in TRAINED_FILES)
    return status in ("failed", "interrupted") and not trained


def require_new_run_dir(out_dir: Path) -> None:
    """Refuse a directory that already holds a run: a new run would overwrite its models,
    states and records. One whose run never trained (:func:`never_trained`) is reused:
    the fixed command runs again where it failed."""
    found = [name for name in RUN_FILES if (out_dir / name).exists()]
    if found and not never_trained(out_dir):
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


@contextmanager
def run_dir_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir`` for this process (an OS lock on ``run.lock``, which names it):
    a second process is refused, naming the holder, since two runs in one directory
    overwrite each other's files. The OS drops the lock when the process ends, however
    it ends, so the file a dead process left is no lock."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handle = (out_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunDirectoryError(
            f"{out_dir} is in use by {holder}: two processes in one run directory would "
            "overwrite each other's files. Wait until it ends (or stop it), then run again."
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()} (since {_now()})\n")
        handle.flush()
        yield
    finally:
        handle.truncate(0)  # kept, not deleted: a process that opened it may be locking it
        handle.close()


def os_error_behind(err: BaseException) -> OSError | None:
    """The :class:`OSError` that ``err`` is or was caused by: ``torch.save`` on a full
    disk raises ``RuntimeError: ... unexpected pos`` with ``Errno 28`` only in its chain."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def describe_write_failure(err: OSError, where: Path) -> str:
    """One line for a failed write under ``where``: a full disk is named with the free
    space left on it; any other failure with the file and the system's reason."""
    if err.errno == errno.ENOSPC:
        existing = Path(where).absolute()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        free = shutil.disk_usage(existing).free / 2**20
        return (
            f"the disk holding {where} is full (no space left on device, {free:.0f} MiB free "
            "now); free space on it or write elsewhere"
        )
    return f"cannot write {err.filename or where}: {err.strerror or err}"


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
            "seed": cfg.run.seed,
            "environment": environment,
            "config": cfg.to_dict(),
            "resumed": [],
        }
    info.update(status="running", ended=None, cause=None)
    atomic_write_json(info, path)


def read_record(out_dir: Path) -> dict[str, Any] | None:
    """``run_info.json`` as it is (``None`` if absent or unreadable), to restore it with
    :func:`restore_record` should a resume be refused."""
    try:
        return json.loads((out_dir / "run_info.json").read_text())
    except (OSError, ValueError):
        return None


def restore_record(out_dir: Path, previous: dict[str, Any]) -> None:
    """Put back ``run_info.json`` as it was before a refused resume: a resume refused before
    it trained changed nothing, so the run's record (``finished``, say) still holds."""
    atomic_write_json(previous, out_dir / "run_info.json")


def end_record(out_dir: Path, status: str, cause: str | None = None) -> None:
    """Set the run's ``status`` (``finished``, ``failed`` or ``interrupted``) and ``cause``."""
    path = out_dir / "run_info.json"
    info: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    info.update(status=status, ended=_now(), cause=cause)
    atomic_write_json(info, path)
