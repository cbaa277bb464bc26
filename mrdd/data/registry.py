"""One place that maps a dataset name to its loader.

A loader is a function ``(**options) -> DatasetSplits``; its keyword arguments
are the dataset's options (the fields of ``configs/dataset/<name>.yaml`` other
than ``name`` and the options every dataset takes, :data:`mrdd.config.DATASET_OPTIONS`,
which are handled here). Register new ones with
:func:`register_dataset`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from mrdd.config import DATASET_OPTIONS
from mrdd.data.base import DataError, DatasetSplits, carve_validation
from mrdd.data.checks import check_splits
from mrdd.data.missing import drop_views_in_splits

Loader = Callable[..., DatasetSplits]
_REGISTRY: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator: make ``loader`` available as ``load_dataset({"name": name, ...})``."""

    def wrap(loader: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is registered twice")
        _REGISTRY[name] = loader
        return loader

    return wrap


def available_datasets() -> list[str]:
    return sorted(_REGISTRY)


def loader_options(name: str) -> set[str]:
    """The options the loader of dataset ``name`` takes (empty for an unknown name)."""
    loader = _REGISTRY.get(name)
    return set(inspect.signature(loader).parameters) if loader else set()


def load_dataset(options: Mapping[str, Any]) -> DatasetSplits:
    """Load the dataset described by ``options`` (a dataset config: ``name`` + options).

    ``missing_rate`` (default 0) drops views at random from both splits, seeded by
    ``missing_seed`` (see :mod:`mrdd.data.missing`), whatever the dataset; then
    ``val_fraction`` of the training samples, stratified and seeded by
    ``val_seed``, become the validation split (:func:`mrdd.data.base.carve_validation`). The splits
    pass :func:`mrdd.data.checks.check_splits` (classes, views) whatever the loader.
    """
    options = dict(options)
    name = options.pop("name", None)
    best_view = options.pop("best_view", None)
    best_view = None if best_view is None else int(best_view)
    common = {key: options.pop(key, default) for key, default in DATASET_OPTIONS.items()}
    missing_seed, val_seed = int(common["missing_seed"]), int(common["val_seed"])
    missing_rate, val_fraction = float(common["missing_rate"]), float(common["val_fraction"])
    if name not in _REGISTRY:
        raise DataError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(available_datasets())}."
        )
    loader = _REGISTRY[name]
    accepted = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DataError(
            f"Dataset {name!r} does not take the option(s) {unknown}; it takes {sorted(accepted)}."
        )
    splits = loader(**options)
    splits = drop_views_in_splits(splits, missing_rate, missing_seed)
    splits = carve_validation(splits, val_fraction, val_seed)
    check_splits(splits, str(options.get("path") or options.get("root") or splits.name))
    settings = {**_split_options(options, accepted), "missing_rate": missing_rate}
    settings.update(missing_seed=missing_seed, val_fraction=val_fraction, val_seed=val_seed)
    return dataclasses.replace(splits, best_view=best_view, split_settings=settings)


def _split_options(
    options: Mapping[str, Any], accepted: Mapping[str, inspect.Parameter]
) -> dict[str, Any]:
    """The loader's split seed and test fraction, as given or as its defaults."""
    settings = {}
    for key in ("seed", "test_fraction"):
        default = accepted[key].default if key in accepted else inspect.Parameter.empty
        value = options.get(key, default)
        if value is not inspect.Parameter.empty:
            settings[key] = value
    return settings
