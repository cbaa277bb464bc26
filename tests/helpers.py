"""Small synthetic tensors for unit tests (importable from every test module)."""

from __future__ import annotations

import copy
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
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
        "train.epochs=1",
        "train.batch_size=8",
        "train.disentangle_epochs=1",
        "train.disentangle_batch_size=8",
        "eval.n_seeds=2",
        "eval.figures=false",
        "eval.clustering=[kmeans]",
        "device=cpu",
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
    ``sections`` update its sections (``train={...}``) or set top-level keys."""
    config = {
        "dataset": {"name": "npz", "path": str(npz_path)},
        "model": copy.deepcopy(TINY_MODEL),
        # stage 2 follows stage 1's budget (the defaults give it its own)
        "train": {
            "epochs": 2,
            "batch_size": 8,
            "disentangle_epochs": None,
            "disentangle_batch_size": None,
            "log_every": 2,
        },
        "eval": {"n_seeds": 2, "num_figure_samples": 4},
        "device": "cpu",
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
    ``sys.argv`` and ``sys.path`` afterwards)."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    monkeypatch.syspath_prepend(str(script.parent))
    runpy.run_path(str(script), run_name="__main__")
