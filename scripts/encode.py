"""Write the codes of every sample of a dataset into one .npz file.

python scripts/encode.py run_dir=outputs/2026-11-24/10-00-00 out=codes.npz   # the run's own data
python scripts/encode.py run_dir=<run> dataset=edge_mnist_5k out=codes.npz   # a registered dataset
python scripts/encode.py run_dir=<run> dataset.path=new.npz out=new_codes.npz  # your own npz file
python scripts/encode.py run_dir=<run> out=codes.npz batch_size=500 device=cuda
python scripts/encode.py run_dir=<run> out=codes.npz overwrite=true         # replace codes.npz

The file holds C, S_0 … S_{V-1}, C+S_best and C+S_all (float32, one row per sample;
C alone for a stage-1-only run), labels, and split ("train"/"val"/"test" per row).
Another dataset must have views of the shapes the run was trained on. ``dataset.<key>=``
sets that dataset's options; ``dataset.path=`` alone reads an npz file (mrdd/data/npz.py
describes the format). The data are prepared as the run's training data were: vector
views standardised with the run's training statistics (docs/preprocessing.md).
An existing out= is refused unless overwrite=true; an out= that cannot be written (a
directory, a path under a file, an unwritable folder) is refused before anything is
encoded, and the file is written atomically (a failed write leaves no part of it).
Bad arguments, a bad run directory or views that do not fit: one ``error: ...`` line, exit 2;
a write that fails (a full disk): one line, exit 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

import mrdd
from mrdd.cli import reporting_user_errors
from mrdd.errors import MRDDError
from mrdd.export import encode_dataset
from mrdd.train.device import resolve_device
from mrdd.train.rundir import describe_write_failure, os_error_behind

USAGE = (
    "usage: python scripts/encode.py run_dir=<training run> out=<codes.npz> "
    "[dataset=<name>] [dataset.<key>=<value> ...] [batch_size=1000] [device=auto] "
    "[overwrite=false]"
)
SETTINGS = {"run_dir", "out", "dataset", "batch_size", "device", "overwrite"}


class UsageError(MRDDError, ValueError):
    """The command line is malformed (a user error: one ``error:`` line, exit 2)."""


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
    if settings.setdefault("overwrite", "false") not in ("true", "false"):
        raise UsageError(f"overwrite= must be true or false, got {settings['overwrite']!r}.")
    return settings, OmegaConf.to_container(OmegaConf.from_dotlist(options))


def check_output(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an ``out=`` that would overwrite a file the user did not
    offer (``overwrite=true``) or that cannot be written, naming the path at fault."""
    if out.is_dir():
        raise UsageError(
            f"out={out} is a directory; name a .npz file, e.g. out={out / 'codes.npz'}."
        )
    if out.exists() and not overwrite:
        raise UsageError(
            f"out={out} exists; pass overwrite=true to replace it, or name a new file."
        )
    folder = out.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"Cannot create out={out}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"Cannot write out={out}: the folder {folder} is not writable.")


def write_codes(out: Path, codes: dict[str, np.ndarray]) -> None:
    """``np.savez`` into a temporary file next to ``out``, then renamed over it: a failed
    write (a full disk) leaves ``out`` as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **codes)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    with reporting_user_errors() as refusal:
        settings, options = parse_arguments(argv)
        out = Path(settings["out"])
        check_output(out, settings["overwrite"] == "true")
        trained = mrdd.load(settings["run_dir"], device_named(settings.get("device", "auto")))
        config = dataset_config(trained.config.dataset, settings.get("dataset"), options)
        data = trained.load_data(config)
        codes = encode_dataset(trained, data, int(settings["batch_size"]), progress=True)
    if refusal:
        return refusal.status
    try:
        write_codes(out, codes)
    except (OSError, RuntimeError) as err:
        cause = os_error_behind(err)
        if cause is None:
            raise
        print(
            f"error: {describe_write_failure(cause, out)}; out={out} was not written.",
            file=sys.stderr,
        )
        return 1
    shapes = ", ".join(f"{k} {'×'.join(map(str, v.shape))}" for k, v in codes.items())
    print(f"wrote {out}: {shapes}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
