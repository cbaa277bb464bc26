"""Checkpoints: their layout, safe loading, and refusal of mismatched settings.

A checkpoint is a plain dict (loadable with ``weights_only=True``): the run's
resolved config, the view shapes, the identity of the data and split it was trained
on (:attr:`mrdd.data.DatasetSplits.identity`), the model checkpoints also what the
loader did to the views (``preprocessing``), and the model's state dict (plus, for
the resume states of :mod:`mrdd.train.state`, optimisers, schedulers and RNG).
A run refuses a checkpoint whose settings or data differ from its own, naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mrdd.atomic import atomic_torch_save
from mrdd.config import TRAINED_SECTIONS, RunConfig, flatten_keys, upgrade_record
from mrdd.data import DatasetSplits
from mrdd.errors import CheckpointError
from mrdd.version import __version__

FORMAT_VERSION = 1


def save_model_checkpoint(
    path: Path,
    kind: str,
    model: nn.Module,
    config: RunConfig,
    splits: DatasetSplits,
    contents: Mapping[str, Any] | None = None,
) -> None:
    """Save a trained model of ``kind`` (``consistency`` or ``mrdd``) with what rebuilds it:
    its config and the view shapes, the identity of its training data (``splits.identity``)
    and what the loader did to its views (``splits.preprocessing``, :mod:`mrdd.data.preprocess`;
    checkpoints without it load as "not recorded"), and ``contents``: the training
    ``history`` and how its ``C‖S_best`` view was settled (``best_view``,
    :func:`mrdd.eval.best_view.settle_best_view`)."""
    prep = splits.preprocessing.to_payload() if splits.preprocessing else None
    payload = checkpoint_payload(
        kind, model.state_dict(), config, splits.view_shapes, splits.identity, preprocessing=prep
    )
    atomic_torch_save({**payload, "history": [], "best_view": None, **(contents or {})}, path)


def checkpoint_payload(
    kind: str,
    state_dict: dict[str, Any],
    config: RunConfig,
    view_shapes: list[tuple[int, ...]],
    data_identity: dict[str, Any] | None,
    **contents: Any,
) -> dict[str, Any]:
    """The one layout of every checkpoint, model files and resume states alike: what
    :func:`load_checkpoint` and :func:`check_compatible` read (format, kind, version,
    config, view shapes, data identity, state dict), then what the kind adds
    (``contents``: a model's preprocessing and history, a state's optimisers, RNG, ...)."""
    return {
        "format": FORMAT_VERSION,
        "kind": kind,
        "mrdd_version": __version__,
        "config": config.to_dict(),
        "view_shapes": [list(s) for s in view_shapes],
        "data": data_identity,
        "state_dict": state_dict,
        **contents,
    }


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``), with a clear error if it cannot be;
    its ``config`` in today's layout (:func:`mrdd.config.upgrade_record`)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"Checkpoint {path} is a directory, not a checkpoint file. Point to a file in "
            f"it, e.g. {path / 'consistency.pt'} (or mrdd.pt)."
        )
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Point to the consistency.pt / mrdd.pt "
            "written in a training run's directory."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated/corrupt files
        raise CheckpointError(
            f"Checkpoint {path} could not be read ({type(err).__name__}: {err}). The file is "
            "truncated, corrupted or not a mrdd checkpoint; re-run the stage that wrote it."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a mrdd checkpoint (format {FORMAT_VERSION}).")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(
            f"{path} holds a {payload['kind']!r} checkpoint, but a {kind!r} one is needed."
        )
    # written before each stage had its own config section: read in today's layout
    payload["config"] = upgrade_record(payload["config"])
    return payload


#: The settings that fix a model checkpoint's architecture and meaning, by kind (keys and
#: key prefixes of the flattened config). Resume states compare every setting instead:
#: they may only continue the run that wrote them.
_MODEL_SETTINGS = {
    "consistency": (
        "dataset.name",
        "model.c_dim",
        "model.backbone.",
        "model.networks.consistency_",
    ),
    "mrdd": (
        "dataset.name",
        "model.c_dim",
        "model.v_dim",
        "model.club_hidden",
        "model.backbone.",
        "model.networks.",
    ),
}

_ADVICE = {
    "consistency": "Use the dataset and model settings of the stage-1 run, or retrain stage 1.",
    "mrdd": "Rebuild the model from the checkpoint's own config (mrdd.load(run_dir)).",
}
_STATE_ADVICE = (
    "A resume state only continues the run that wrote it: start a new run instead, or "
    "delete the state file to restart that stage."
)


#: Settings added after records were written, which a record without them is not refused
#: for: ``eval.umap_knn`` changes no trained weight (such runs used what is now ``auto``),
#: ``run.recompute_activations`` only how backward gets its tensors (such runs kept them,
#: today's default), and such runs' plateau stop had no minimum (today's default 0). The
#: resumed run records the value it used.
ADDED_KEYS = ("eval.umap_knn", "run.recompute_activations", "run.plateau_min_fraction")


def compared_settings(config: dict[str, Any], view_shapes: list, kind: str) -> dict[str, Any]:
    """The settings a checkpoint of ``kind`` and the run that loads it must agree on. A
    stage's null ``steps`` (its budget in epochs) is left out: a record written before
    step budgets existed has none, and its budget was its epochs."""
    flat = flatten_keys(config)
    for section in TRAINED_SECTIONS["all"]:
        if flat.get(f"{section}.steps", 0) is None:
            del flat[f"{section}.steps"]
    prefixes = _MODEL_SETTINGS.get(kind)
    if prefixes is not None:
        flat = {k: v for k, v in flat.items() if k.startswith(prefixes)}
    return {"view_shapes": [list(s) for s in view_shapes], **flat}


_DATA_ADVICE = (
    " The checkpoint was trained on other data or another split (its training samples "
    "may be this run's test samples): use the dataset file and split settings "
    "(dataset.seed, dataset.test_fraction, dataset.missing_rate) it was trained with."
)


def check_compatible(
    payload: dict[str, Any],
    config: RunConfig,
    view_shapes: list[tuple[int, ...]],
    where: str,
    data_identity: dict[str, Any] | None = None,
) -> None:
    """Refuse a checkpoint (read from ``where``) written with other settings than this run's,
    naming every setting that differs. With ``data_identity`` (this run's
    ``splits.identity``), also refuse one trained on other data or another split, naming
    the fields (``data.split.seed``, ``data.train.content``, ...) that differ."""
    kind = payload["kind"]
    saved = compared_settings(payload["config"], payload["view_shapes"], kind)
    wanted = compared_settings(config.to_dict(), view_shapes, kind)
    for key in set(ADDED_KEYS) - saved.keys():  # a record from before the key existed
        wanted.pop(key, None)
    if data_identity is not None:
        saved.update(flatten_keys({"data": payload.get("data") or {}}))
        wanted.update(flatten_keys({"data": data_identity}))
    absent = object()
    differ = [
        k
        for k in sorted(saved.keys() | wanted.keys())
        if saved.get(k, absent) != wanted.get(k, absent)
    ]
    if differ:
        diffs = [
            f"{k} (checkpoint {saved.get(k, '<unset>')!r}, this run {wanted.get(k, '<unset>')!r})"
            for k in differ
        ]
        data_advice = _DATA_ADVICE if any(k.startswith("data.") for k in differ) else ""
        raise CheckpointError(
            f"{where} was written with other settings than this run: {'; '.join(diffs)}."
            + data_advice
            + " "
            + _ADVICE.get(kind, _STATE_ADVICE)
        )


def load_state(module: nn.Module | Any, state: dict[str, Any], where: str) -> None:
    """``module.load_state_dict(state)`` (a model, optimiser or scheduler), turning a
    mismatch into a :class:`CheckpointError` that names the file."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as err:
        raise CheckpointError(
            f"{where} does not fit the {type(module).__name__} of this run ({err}). The file "
            "belongs to another model or version; re-run the stage that wrote it."
        ) from err
