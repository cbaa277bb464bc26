"""The notebook API: rebuild and load trained models without Hydra.

>>> import mrdd
>>> trained = mrdd.load("outputs/2026-11-24/10-00-00")
>>> codes = trained.encode(views)          # Codes(c, [s_0, s_1, ...])
>>> reps = trained.representations(views)  # {"C", "S_0", ..., "C+S_best", "C+S_all"}
>>> codes = trained.encode(views, available=mask)   # mask: N×V bool, True = view present
>>> filled = trained.impute(views, available=mask)  # absent views predicted (best decoder)
>>> metrics = mrdd.evaluate("outputs/2026-11-24/10-00-00", {"eval": {"n_seeds": 3}})

``views`` are *raw*: as stored in the training files (vector views unstandardised, uint8
or [0, 1] images, ``N×C×H×W``, ``N×H×W×C`` or ``N×H×W``); the run's recorded
preprocessing (:mod:`mrdd.data.preprocess`, docs/preprocessing.md) is applied to them.
Views that come from :func:`mrdd.data.load_dataset` are already prepared: pass
``prepared=True``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mrdd.config import RunConfig, flatten_keys, typed_dataset
from mrdd.data import DataError, DatasetSplits, load_dataset
from mrdd.data.base import zero_absent
from mrdd.data.common import prepare_splits
from mrdd.data.preprocess import Preprocessing, float32_values
from mrdd.data.registry import loader_options
from mrdd.errors import MRDDError
from mrdd.eval import evaluate_model, named_representations, save_metrics
from mrdd.models import MRDD, Codes, ConsistencyModel, impute_views
from mrdd.nn.networks import networks_section
from mrdd.train.checkpoint import CheckpointError, load_checkpoint, load_state
from mrdd.train.device import resolve_device
from mrdd.train.provenance import environment_record

log = logging.getLogger("mrdd")

#: What the notebook API takes as a view or mask: a torch tensor or a numpy array.
ArrayLike = Tensor | np.ndarray


class ViewsError(MRDDError, ValueError):
    """Views (or an availability mask) that do not fit the trained model."""


def _as_tensor(x: ArrayLike, what: str) -> Tensor:
    """``x`` as a tensor (numpy arrays shared, not copied), refusing non-numeric data."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{what} has dtype {x.dtype}; pass numbers (float, int or bool).")
        return torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} is a {type(x).__name__}; pass a torch tensor or numpy array.")
    if x.dtype.is_complex:
        raise TypeError(f"{what} has dtype {x.dtype}; pass real numbers.")
    return x


def build_model(
    config: RunConfig | dict[str, Any],
    view_shapes: list[tuple[int, ...]],
    kind: str = "mrdd",
    *,
    encoders: Any = None,
    decoders: Any = None,
) -> MRDD | ConsistencyModel:
    """An untrained model of ``kind`` (``mrdd`` or ``consistency``) from a config.

    ``encoders`` / ``decoders``: your own networks in place of the config's
    (:func:`with_networks`; docs/networks.md). Each is checked on a dummy batch here."""
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    if encoders is not None or decoders is not None:
        config = with_networks(config, encoders, decoders)
    shapes = [tuple(s) for s in view_shapes]
    if kind == "consistency":
        return ConsistencyModel(shapes, config.model)
    if kind == "mrdd":
        return MRDD(shapes, config.model)
    raise ValueError(f"kind must be 'mrdd' or 'consistency', got {kind!r}.")


def with_networks(config: RunConfig, encoders: Any = None, decoders: Any = None) -> RunConfig:
    """``config`` with ``model.networks`` set from ``encoders`` / ``decoders``: per role, the
    one given replaces the config's, one not given (``None``) keeps the config's.

    Each is one network for both stages or ``{"consistency": ..., "specific": ...}``; a
    network is a class, its import path or ``{"_target_": Class, **kwargs}``, or a list /
    ``{view: ...}`` of those for one per view (:func:`mrdd.nn.networks.networks_section`).
    Train the result with :func:`mrdd.train.run`; its checkpoints record the networks by
    import path, so :func:`load` rebuilds them wherever the classes are importable."""
    data = config.to_dict()
    data["model"]["networks"].update(networks_section(encoders, decoders))
    return RunConfig.from_dict(data)


@dataclass
class TrainedModel:
    """A trained run: its config, view shapes, the model in eval mode, and what the
    checkpoint recorded of its training data (``preprocessing``, ``data_identity``;
    unrecorded for models saved before they were recorded)."""

    config: RunConfig
    view_shapes: list[tuple[int, ...]]
    model: MRDD | ConsistencyModel
    best_view: int
    preprocessing: Preprocessing | None = None
    data_identity: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.preprocessing is None:
            self.preprocessing = Preprocessing.unrecorded(self.view_shapes)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _inputs(
        self, views: Sequence[ArrayLike], available: ArrayLike | None, prepared: bool
    ) -> tuple[list[Tensor], Tensor | None]:
        """The views as the model's float32 input on its device, and the checked mask.

        The views must fit the model: V views, each ``N×<view shape>`` once prepared, all
        with the same ``N``. Raw views (``prepared`` False) get the run's preprocessing;
        absent entries (``available`` False) are zeroed first, so they may hold anything.
        """
        tensors = self._tensors(views)
        mask = self._available(available, int(tensors[0].shape[0]))
        if mask is not None:
            tensors = [zero_absent(x, mask[:, v]) for v, x in enumerate(tensors)]
        rules = self.preprocessing.views
        try:
            tensors = [
                float32_values(x, f"view {v}") if prepared else rule.prepare(x, shape, f"view {v}")
                for v, (x, rule, shape) in enumerate(
                    zip(tensors, rules, self.view_shapes, strict=True)
                )
            ]
        except DataError as err:  # the loaders' own check, raised as the API's error
            raise ViewsError(str(err)) from None
        self._check_shapes([tuple(x.shape[1:]) for x in tensors])
        return tensors, mask

    def _tensors(self, views: Sequence[ArrayLike]) -> list[Tensor]:
        """One tensor per view on the model's device, all with the same number of rows."""
        if isinstance(views, (Tensor, np.ndarray)) or not isinstance(views, Sequence):
            raise TypeError(
                f"views must be a list of {len(self.view_shapes)} arrays (one per view), "
                f"got a {type(views).__name__}."
            )
        if len(views) != len(self.view_shapes):
            raise ViewsError(f"expected {len(self.view_shapes)} views, got {len(views)}.")
        tensors = [_as_tensor(x, f"view {v}").to(self.device) for v, x in enumerate(views)]
        counts = [int(x.shape[0]) if x.ndim else 0 for x in tensors]
        if len(set(counts)) > 1 or counts[0] == 0:
            raise ViewsError(
                f"the views must hold the same, non-zero number of samples, got {counts}; "
                "row i of every view is sample i."
            )
        return tensors

    def _check_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        for v, (got, shape) in enumerate(zip(shapes, self.view_shapes, strict=True)):
            if got != shape:
                order = (
                    " The views seem to be in another order: pass them in the training "
                    "data's order (view 0 first)."
                    if sorted(shapes) == sorted(self.view_shapes)
                    else ""
                )
                raise ViewsError(
                    f"view {v} has per-sample shape {got}, the model expects {shape} (a "
                    f"batch is a list of one N×{'×'.join(map(str, shape))} array per view; "
                    f"the model's views are {self.view_shapes}).{order}"
                )

    def _available(self, available: ArrayLike | None, n: int) -> Tensor | None:
        if available is None:
            return None
        available = _as_tensor(available, "available").to(self.device)
        if tuple(available.shape) != (n, len(self.view_shapes)):
            raise ViewsError(
                f"available must be N×V = {n}×{len(self.view_shapes)} (True where a sample "
                f"has the view), got {tuple(available.shape)}."
            )
        if available.dtype != torch.bool and not ((available == 0) | (available == 1)).all():
            raise ViewsError("available must hold booleans or 0/1 values.")
        available = available.bool()
        if not available.any(dim=1).all():
            raise ViewsError("every sample needs at least one present view in available.")
        return available

    @torch.no_grad()
    def encode(
        self,
        views: Sequence[ArrayLike],
        available: ArrayLike | None = None,
        *,
        prepared: bool = False,
    ) -> Codes:
        """Posterior means ``c`` and ``s_v`` of a batch (no ``s`` for a stage-1-only run).

        ``views``: one raw ``N×…`` tensor or numpy array per view, prepared as the
        training data were (docs/preprocessing.md): vector views standardised with the
        training statistics, uint8 images scaled by 1/255 (float images must lie in
        [0, 1]), channels-last or ``N×H×W`` images laid out ``N×C×H×W``, images resized
        if the loader resized them. ``prepared=True``: the views come from
        :func:`mrdd.data.load_dataset` and are used as they are. Anything that does not
        fit raises a :class:`ViewsError` (or ``TypeError``) naming the problem.

        ``available`` (``N×V`` bool, True = present): ``c`` from the present views only,
        ``s_v`` of an absent view set to its prior mean 0 (tensors of absent views unused).
        """
        views, available = self._inputs(views, available, prepared)
        if isinstance(self.model, MRDD):
            return self.model.encode(views, available)
        return Codes(self.model.encode(views, available)[0].float(), [])

    @property
    def best_imputer(self) -> str:
        """The decoder that imputed best on the val split in docs/missing_views.md (its
        numbers live there): the stage-1 decoder for a stage 1 trained with view dropout,
        else the stage-2 decoder with ``s_v = 0``. Measured on the embedded digits only:
        pass ``source`` explicitly after checking your data with
        ``scripts/missing_views.py --split val``."""
        return "consistency" if self.config.stage1.view_dropout > 0 else "specific"

    @torch.no_grad()
    def impute(
        self,
        views: Sequence[ArrayLike],
        available: ArrayLike,
        source: str = "auto",
        *,
        prepared: bool = False,
    ) -> list[Tensor]:
        """The views with the absent ones predicted from the present ones. ``source``:
        ``"specific"`` or ``"consistency"`` (see :meth:`mrdd.models.MRDD.impute`), or
        ``"auto"``, :attr:`best_imputer`. A stage-1-only run decodes them with its stage-1
        decoders from ``c``. ``views`` and ``prepared`` as in :meth:`encode`; the result
        is in the units of the input: raw vector views come back unstandardised, images
        as float ``N×C×H×W`` in [0, 1] of the model's size."""
        if available is None:
            raise ViewsError(
                "impute needs available, an N×V mask (True where a sample has the view): it "
                "says which views to predict. Use encode for complete samples."
            )
        if source not in ("auto", "specific", "consistency"):
            raise ViewsError(f"source must be 'auto', 'specific' or 'consistency', got {source!r}.")
        views, available = self._inputs(views, available, prepared)
        chosen = self.best_imputer if source == "auto" else source
        filled = impute_views(self.model, views, available, chosen)
        if prepared:
            return filled
        return [rule.restore(x) for x, rule in zip(filled, self.preprocessing.views, strict=True)]

    def representations(
        self,
        views: Sequence[ArrayLike],
        available: ArrayLike | None = None,
        *,
        prepared: bool = False,
    ) -> dict[str, Tensor]:
        """The named representations: C, every S_v, C+S_best, C+S_all (``views`` and
        ``prepared`` as in :meth:`encode`)."""
        codes = self.encode(views, available, prepared=prepared)
        return named_representations(codes.c, codes.s, self.best_view)

    def load_data(self, options: Mapping[str, Any]) -> DatasetSplits:
        """The dataset ``options`` describe (a dataset config), prepared as this model's
        training data were: its vector views standardised with the model's training
        statistics rather than their own, its images resized to the model's size unless
        ``image_size`` is given. What ``scripts/encode.py`` and :func:`evaluate` read."""
        options = dict(options)
        takes = loader_options(str(options.get("name")))
        sizes = {rule.resized_to for rule in self.preprocessing.views} - {None}
        if self.preprocessing.recorded and "image_size" in takes and len(sizes) == 1:
            options.setdefault("image_size", sizes.pop())
        options = typed_dataset(options)  # after the model's size: the schema fills defaults
        if not self.preprocessing.recorded or "standardize" not in takes:
            splits = load_dataset(options)
        else:
            splits = load_dataset({**options, "standardize": False})
            splits = prepare_splits(splits, self.preprocessing)
        if splits.best_view is None:  # the view this model's C‖S_best was settled on
            splits = dataclasses.replace(splits, best_view=self.best_view)
        return splits


def model_file(path: str | Path) -> Path:
    """The checkpoint ``mrdd.load`` reads for ``path``: the file itself, or in a run
    directory ``mrdd.pt``, else ``consistency.pt``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise CheckpointError(
            f"{path} does not exist; pass a training run's directory (or its mrdd.pt or "
            "consistency.pt)."
        )
    for name in ("mrdd.pt", "consistency.pt"):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(
        f"{path} holds neither mrdd.pt nor consistency.pt, so no stage of a run finished "
        "there; pass a training run's directory (or one of those files)."
    )


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load a trained model: ``run_dir`` is a run directory (its most complete model,
    ``mrdd.pt``, else ``consistency.pt``) or one of those checkpoint files."""
    path = model_file(run_dir)
    payload = load_checkpoint(path)
    kind = payload["kind"]
    if kind not in ("mrdd", "consistency"):
        raise CheckpointError(
            f"{path} is a {kind!r} resume state, not a trained model; pass the run "
            "directory, or its mrdd.pt / consistency.pt."
        )
    config = RunConfig.from_dict(payload["config"])
    shapes = [tuple(s) for s in payload["view_shapes"]]
    model = build_model(config, shapes, kind)
    load_state(model, payload["state_dict"], str(path))
    model.to(device).eval()
    preprocessing = Preprocessing.from_payload(payload.get("preprocessing"), shapes)
    if not preprocessing.recorded and any(len(s) == 1 for s in shapes):
        log.warning(
            "%s records no preprocessing (saved by an earlier mrdd): raw vector views are "
            "used as given, so standardise them as the training data were.",
            path,
        )
    best_view = _recorded_best_view(payload, config)
    return TrainedModel(config, shapes, model, best_view, preprocessing, payload.get("data"))


def _recorded_best_view(payload: Mapping[str, Any], config: RunConfig) -> int:
    """The model's ``C‖S_best`` view: as settled after its training (the model file's
    ``best_view`` record), else ``dataset.best_view``, else 0 (files written before either)."""
    record = payload.get("best_view")
    if record is not None:
        return int(record["view"])
    return int(config.dataset.get("best_view") or 0)


def data_differences(trained_on: dict[str, Any] | None, data: DatasetSplits) -> list[str]:
    """The identity fields (``split.seed``, ``test.content``, ...) in which ``data`` differ
    from the data a model was trained on (:mod:`mrdd.data.identity`)."""
    if trained_on is None:
        return []
    saved, now = flatten_keys(trained_on), flatten_keys(data.identity)
    absent = "<unset>"
    return [
        f"{key} (model {saved.get(key, absent)!r}, now {now.get(key, absent)!r})"
        for key in sorted(saved.keys() | now.keys())
        if saved.get(key, absent) != now.get(key, absent)
    ]


def evaluate(
    run_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    other_data: bool = False,
) -> dict[str, Any]:
    """Evaluate a training run again (what ``scripts/evaluate.py`` calls).

    Loads the run's model and config, applies ``overrides`` (nested, e.g.
    ``{"eval": {"split": "train"}, "run": {"device": "cpu"}}``), reloads its dataset (prepared
    with the model's preprocessing, :meth:`TrainedModel.load_data`) and runs
    :func:`mrdd.eval.evaluate_model` — the same evaluation as at the end of training —
    writing ``metrics.json``, ``metrics.md`` and the figures into ``out_dir`` (default:
    the run directory). Returns the metrics dict.

    Data or a split other than the model's training data (another seed, test or val
    fraction, missing-view rate, file) is refused, naming what differs, unless
    ``other_data`` is True: then ``metrics["data"]`` says how they differ.
    """
    path = model_file(run_dir)
    trained = load(path)
    cfg = trained.config.with_overrides(overrides or {})
    device = resolve_device(cfg.run.device)
    splits = trained.load_data(cfg.dataset)
    if [tuple(s) for s in splits.view_shapes] != trained.view_shapes:
        raise CheckpointError(
            f"The dataset {splits.name} has views {splits.view_shapes}, but the model in "
            f"{path} was trained on {trained.view_shapes}; evaluate it on its own dataset."
        )
    data = _data_record(trained, splits, other_data, path)
    history_file = path.parent / "history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else {}
    out = Path(out_dir) if out_dir is not None else path.parent
    out.mkdir(parents=True, exist_ok=True)
    metrics = evaluate_model(trained.model.to(device), cfg, splits, device, out, history)
    metrics["data"] = data
    metrics["environment"] = environment_record(device)
    save_metrics(metrics, out)
    return metrics


def _data_record(
    trained: TrainedModel, splits: DatasetSplits, other_data: bool, path: Path
) -> dict[str, Any]:
    """What ``metrics.json`` says of the evaluated data against the training data;
    refuses other data unless ``other_data``."""
    differences = data_differences(trained.data_identity, splits)
    if differences and not other_data:
        raise DataError(
            f"these are not the data {path} was trained on: {'; '.join(differences)}. Its "
            "training samples may be in the evaluated split; drop the dataset overrides, "
            "or pass other_data=true to score other data on purpose."
        )
    if trained.data_identity is None:
        return {"checked": False, "reason": f"{path} records no data identity"}
    return {"checked": True, "same_as_training": not differences, "differences": differences}
