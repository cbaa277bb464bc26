"""Atomic file writes: a reader, or a run killed mid-write, sees the old file or the new one.

Every file a run writes that another process may read (checkpoints, resume states,
``config.json``, ``metrics.json``, ``run_info.json``) goes through here. The module
sits below every layer (it needs only torch), so the evaluation can write its metrics
as safely as training writes its checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

#: The names of :func:`_atomic_write`'s temporary files: ``.<name>.<8 random>.tmp``
#: (:func:`tempfile.mkstemp` draws the 8 characters from ``[a-z0-9_]``).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write`` into a temporary file in the same folder, fsync, then rename over ``path``:
    a reader (or a run killed mid-write) sees the old file or the new one, never a part.
    A process killed mid-write leaves the temporary file behind; see
    :func:`remove_stale_temporaries`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the temporary files that writes killed mid-way (SIGKILL, power loss) left in
    ``run_dir``, and return them. Each can be as large as a checkpoint, and nothing else
    ever removes them. Call it only while no process writes into ``run_dir`` (a resumed
    run, before it writes anything): a write in progress has such a file too."""
    stale = [p for p in Path(run_dir).iterdir() if p.is_file() and _TEMPORARY.match(p.name)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` that never leaves a partial file behind."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj: Any, path: Path) -> None:
    """Write ``obj`` as indented JSON, never leaving a partial file behind."""
    _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))
