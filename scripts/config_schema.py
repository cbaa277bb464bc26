"""The dataclasses of :mod:`mrdd.config` as the schema of the Hydra configs.

``configs/config.yaml`` starts its defaults list with ``schema: run`` (``configs/benchmark.yaml``
swaps in ``schema: benchmark``), so every composed config starts from the dataclass defaults:
Hydra refuses unknown keys and wrong types at composition, and the YAML files hold only what
differs from ``RunConfig()``. Every script composing these configs calls :func:`register`
first (the package itself does not import Hydra).
"""

from __future__ import annotations

import os
import sys

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from mrdd.cli import reporting_user_errors
from mrdd.config import DATASET_OPTIONS, BenchmarkRunConfig, RunConfig, refuse_renamed_keys


def register() -> None:
    """Register the ``schema`` group (``run``, ``benchmark``) in Hydra's ConfigStore, and
    the ``${pid:}`` resolver of the run directories' names.

    The schema's ``dataset`` holds only the options every dataset takes; the dataset group
    (``edge_mnist_5k`` by default) adds its name and its own keys.
    """
    # run directories are named by time *and* process id, so two runs started in the same
    # second never share one (configs/config.yaml: hydra.run.dir, hydra.sweep.dir)
    OmegaConf.register_new_resolver("pid", os.getpid, replace=True)
    store = ConfigStore.instance()
    common = {"dataset": dict(DATASET_OPTIONS)}
    store.store(group="schema", name="run", node=RunConfig(**common), package="_global_")
    store.store(
        group="schema", name="benchmark", node=BenchmarkRunConfig(**common), package="_global_"
    )


def refuse_renamed_overrides(args: list[str]) -> None:
    """Exit with one ``error:`` line when a command-line override names a key of the layout
    before each stage had its own section (``train.epochs=3``, ``seed=1``, ``train=paper``;
    :data:`mrdd.config.RENAMED_KEYS`), naming its new key, where Hydra would only call it
    unknown."""
    keys = [arg.split("=", 1)[0].lstrip("+~") for arg in args if "=" in arg]
    with reporting_user_errors() as refusal:
        refuse_renamed_keys(keys)
    if refusal:
        sys.exit(refusal.status)
