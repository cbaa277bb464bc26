"""What made a run's numbers: package and git versions, torch/CUDA, the device.

Written into every run directory (``run_info.json`` at the start, ``metrics.json`` at the
end), so any number can be traced to the code and machine that produced it.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from mrdd.train.device import cpu_bf16_support
from mrdd.version import __version__


def _git(*args: str) -> str | None:
    """Output of a git command run in the package's source tree (``None`` without git or
    outside a checkout, e.g. for an installed wheel)."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parents[1],  # the mrdd package folder
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def git_record() -> dict[str, Any]:
    """The commit of the mrdd source tree and whether tracked files differ from it."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo`` on Linux, else what the platform reports): CPU
    timings mean little without it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def environment_record(device: torch.device) -> dict[str, Any]:
    """Package and git versions, torch, CUDA, device, Python, and the CPU's native bf16
    support (what ``run.precision=bf16`` can use on the CPU)."""
    return {
        "mrdd_version": __version__,
        **git_record(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_bf16": cpu_bf16_support().record(),
        "python": platform.python_version(),
    }
