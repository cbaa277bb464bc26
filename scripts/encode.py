"""Write the codes of every sample of a dataset into one .npz file.

python scripts/encode.py run_dir=outputs/2026-11-24/10-00-00 out=codes.npz   # the run's own data
python scripts/encode.py run_dir=<run> dataset=edge_mnist_5k out=codes.npz   # a registered dataset
python scripts/encode.py run_dir=<run> dataset.path=new.npz out=new_codes.npz  # your own npz file
python scripts/encode.py run_dir=<run> out=codes.npz batch_size=500 device=cuda

The file holds C, S_0 … S_{V-1}, C+S_best and C+S_all (float32, one row per sample;
C alone for a stage-1-only run), labels, and split ("train"/"val"/"test" per row).
Another dataset must have views of the shapes the run was trained on. ``dataset.<key>=``
sets that dataset's options; ``dataset.path=`` alone reads an npz file (mrdd/data/npz.py
describes the format). The data are prepared as the run's training data were: vector
views standardised with the run's training statistics (docs/preprocessing.md).
Bad arguments, a bad run directory or views that do not fit: one ``error: ...`` line, exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

import mrdd
from mrdd.config import ConfigError
from mrdd.data import DataError
from mrdd.export import encode_dataset
from mrdd.train import CheckpointError
from mrdd.train.device import resolve_device

USAGE = (
    "usage: python scripts/encode.py run_dir=<training run> out=<codes.npz> "
    "[dataset=<name>] [dataset.<key>=<value> ...] [batch_size=1000] [device=auto]"
)
SETTINGS = {"run_dir", "out", "dataset", "batch_size", "device"}


class UsageError(ValueError):
    """The command line is malformed."""


def parse_arguments(argv: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """``key=value`` settings, and the ``dataset.<key>=<value>`` options (typed as YAML)."""
    settings: dict[str, str] = {}
    options: list[str] = []
    for item in argv:
        key, sep, value = item.partition("=")
        if key.startswith("dataset.") and sep:
            options.append(item.removeprefix("dataset."))
        elif key in SETTINGS and sep:
            settings[key] = value
        else:
            raise UsageError(f"unexpected argument {item!r}. {USAGE}")
    for required in ("run_dir", "out"):
        if not settings.get(required):
            raise UsageError(f"{required}= is missing. {USAGE}")
    if not settings["out"].endswith(".npz"):
        raise UsageError(f"out= must name a .npz file, got {settings['out']!r}.")
    batch_size = settings.setdefault("batch_size", "1000")
    if not batch_size.isdigit() or int(batch_size) == 0:
        raise UsageError(f"batch_size= must be a positive integer, got {batch_size!r}.")
    return settings, OmegaConf.to_container(OmegaConf.from_dotlist(options))


def device_named(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` as a device (a CUDA one must exist)."""
    try:
        return resolve_device(name)
    except RuntimeError as err:  # torch.device's message for a malformed name
        raise UsageError(
            f"device={name} is not a device name ({err}); use auto, cpu or cuda."
        ) from None


def dataset_config(trained_on: dict[str, Any], name: str | None, options: dict) -> dict:
    """The dataset to encode: the run's own, with ``options`` changed; another registered
    one (``name``); or, with only ``path`` given, an npz file."""
    if name is None and "path" in options and trained_on.get("name") != "npz":
        name = "npz"
    if name is None or name == trained_on.get("name"):
        return {**trained_on, **options}
    return {"name": name, **options}


def main(argv: list[str]) -> int:
    try:
        settings, options = parse_arguments(argv)
        trained = mrdd.load(settings["run_dir"], device_named(settings.get("device", "auto")))
        config = dataset_config(trained.config.dataset, settings.get("dataset"), options)
        data = trained.load_data(config)
        codes = encode_dataset(trained, data, int(settings["batch_size"]), progress=True)
    except (UsageError, ConfigError, DataError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(settings["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **codes)
    shapes = ", ".join(f"{k} {'×'.join(map(str, v.shape))}" for k, v in codes.items())
    print(f"wrote {out}: {shapes}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
