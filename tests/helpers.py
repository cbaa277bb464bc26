"""Small synthetic tensors for unit tests (importable from every test module)."""

from __future__ import annotations

import copy
import io
import logging
import runpy
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

#: The smallest model that exercises every part: the model section of the unit tests' configs.
TINY_MODEL = {
    "c_dim": 4,
    "v_dim": 3,
    "backbone": {"base_width": 4, "channel_mults": [1, 2], "num_blocks": 1, "latent_channels": 2},
    "club_hidden": 16,
}


def as_overrides(prefix: str, values: dict) -> list[str]:
    """A config section as Hydra command-line overrides (``model.backbone.num_blocks=1``)."""
    overrides = []
    for key, value in values.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            overrides += as_overrides(name, value)
        elif isinstance(value, list):
            overrides.append(f"{name}=[{','.join(map(str, value))}]")
        else:
            overrides.append(f"{name}={value}")
    return overrides


#: :data:`TINY_MODEL` for the scripts' command lines.
TINY_MODEL_OVERRIDES = as_overrides("model", TINY_MODEL)


def tiny_script_overrides(npz_path) -> list[str]:
    """A one-epoch run of both stages on an ``npz`` file, as ``scripts/train.py`` overrides
    (two evaluation runs, no figures, the paper's KMeans only: a fresh process would spend
    ~15 s compiling UMAP's numba kernels for the umap clustering method)."""
    return [
        "dataset=npz",
        f"dataset.path={npz_path}",
        *TINY_MODEL_OVERRIDES,
        "stage1.epochs=1",
        "stage1.batch_size=8",
        "stage2.epochs=1",
        "stage2.batch_size=8",
        "eval.n_seeds=2",
        "eval.figures=false",
        "eval.clustering=[kmeans]",
        "run.device=cpu",
    ]


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of a run directory (its config still reads the original data file)."""
    shutil.copytree(run_dir, tmp_path / "run")
    return tmp_path / "run"


def make_views(
    n: int = 16, size: int = 8, seed: int = 0
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Two image views whose content depends on a 2-class label (so there is signal)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    base = torch.rand(n, 1, size, size, generator=g) * 0.3
    base[labels == 1, :, : size // 2] += 0.6
    edge = (base - base.roll(1, dims=-1)).abs()
    return [base.clamp(0, 1), edge.clamp(0, 1)], labels


def write_image_npz(path, n: int = 48, size: int = 8, **arrays) -> None:
    """An ``npz`` dataset of :func:`make_views`' two image views; ``arrays`` replace or add
    arrays (``None`` removes one), to write malformed files."""
    views, labels = make_views(n, size)
    content = {"view_0": views[0].numpy(), "view_1": views[1].numpy(), "labels": labels.numpy()}
    content.update(arrays)
    np.savez(path, **{k: v for k, v in content.items() if v is not None})


def tiny_run_dict(npz_path, **sections) -> dict:
    """A tiny two-stage run on an ``npz`` file, as the plain dict a config file gives;
    ``sections`` update its sections (``stage1={...}``) or set top-level keys."""
    config = {
        "dataset": {"name": "npz", "path": str(npz_path)},
        "model": copy.deepcopy(TINY_MODEL),
        "stage1": {"epochs": 2, "batch_size": 8},
        "stage2": {"epochs": 2, "batch_size": 8},
        "run": {"device": "cpu", "log_every": 2, "precision": "fp32"},  # as tiny_config
        # the paper's KMeans only: tests/test_evaluation.py runs the umap method end to end
        "eval": {"n_seeds": 2, "num_figure_samples": 4, "clustering": ["kmeans"]},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    return config


def run_train_script(monkeypatch, *args: str) -> None:
    """Run ``scripts/train.py`` with ``args`` in this process, as ``python`` would run it:
    its folder first on ``sys.path`` (``monkeypatch``: pytest's fixture, which restores
    ``sys.argv``, ``sys.path`` and the environment afterwards; the SIGTERM handler the
    script installs is restored here)."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    monkeypatch.syspath_prepend(str(script.parent))
    monkeypatch.delenv("MRDD_SWEEP_PID", raising=False)  # the script sets it: restored after
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        signal.signal(signal.SIGTERM, sigterm)


@dataclass
class ScriptResult:
    """What a script run in this process left: its exit status and its output."""

    returncode: int
    stdout: str
    stderr: str


def train_script_result(*args: str, cwd: Path) -> ScriptResult:
    """``python scripts/train.py *args`` run from ``cwd`` *in this process*, like
    ``subprocess.run(..., capture_output=True)`` but without a new interpreter: the tests
    that only read a run's files, exit status and messages save the ~7 s of importing
    torch, sklearn and Hydra and the ~15 s of compiling UMAP's kernels per run. Tests of
    what needs a real process (signals, locks held by another pid, concurrent starts,
    ``torch.distributed``) keep ``subprocess``."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.setattr(sys, "stdout", out)
        patch.setattr(sys, "stderr", err)
        try:
            run_train_script(patch, *args)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (exit_.code is not None)
        finally:
            _close_run_log_handlers()
    return ScriptResult(int(code), out.getvalue(), err.getvalue())


def _close_run_log_handlers() -> None:
    """Hydra's job logging adds a file handler (``train.log``) to the root logger per run; a
    later in-process run must not write into an earlier run's log."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
