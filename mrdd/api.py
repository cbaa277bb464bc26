"""The notebook API: rebuild and load trained models without Hydra.

>>> import mrdd
>>> trained = mrdd.load("outputs/2026-11-24/10-00-00")
>>> codes = trained.encode(views)          # Codes(c, [s_0, s_1, ...])
>>> reps = trained.representations(views)  # {"C", "S_0", ..., "C+S_best", "C+S_all"}
>>> codes = trained.encode(views, available=mask)   # mask: N×V bool, True = view present
>>> filled = trained.impute(views, available=mask)  # absent views predicted (best decoder)
>>> metrics = mrdd.evaluate("outputs/2026-11-24/10-00-00", {"eval": {"n_seeds": 3}})
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mrdd.config import RunConfig
from mrdd.data import load_dataset
from mrdd.eval import evaluate_model, named_representations
from mrdd.models import MRDD, Codes, ConsistencyModel
from mrdd.train.checkpoint import CheckpointError, load_checkpoint, load_state
from mrdd.train.device import resolve_device
from mrdd.train.provenance import environment_record
from mrdd.train.run import save_metrics

#: What the notebook API takes as a view or mask: a torch tensor or a numpy array.
ArrayLike = Tensor | np.ndarray


class ViewsError(ValueError):
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


def _as_float_tensor(x: ArrayLike, v: int) -> Tensor:
    """View ``v`` as float32, as the model was trained: uint8 images (``N×C×H×W``) are
    scaled by 1/255 like the data loaders do, other values are taken as they are."""
    t = _as_tensor(x, f"view {v}")
    if t.dtype == torch.uint8 and t.ndim == 4:
        return t.float() / 255.0
    converted = t.to(torch.float32)
    if t.dtype == torch.float64 and bool((torch.isinf(converted) & torch.isfinite(t)).any()):
        raise ViewsError(
            f"view {v} holds values beyond the float32 range (±3.4e38) the model computes "
            "in; rescale it as the training data were."
        )
    return converted


def build_model(
    config: RunConfig | dict[str, Any], view_shapes: list[tuple[int, ...]], kind: str = "mrdd"
) -> MRDD | ConsistencyModel:
    """An untrained model of ``kind`` (``mrdd`` or ``consistency``) from a config."""
    if isinstance(config, dict):
        config = RunConfig.from_dict(config)
    shapes = [tuple(s) for s in view_shapes]
    if kind == "consistency":
        return ConsistencyModel(shapes, config.model)
    if kind == "mrdd":
        return MRDD(shapes, config.model)
    raise ValueError(f"kind must be 'mrdd' or 'consistency', got {kind!r}.")


@dataclass
class TrainedModel:
    """A trained run: its config, view shapes, and the model in eval mode."""

    config: RunConfig
    view_shapes: list[tuple[int, ...]]
    model: MRDD | ConsistencyModel
    best_view: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _views(self, views: Sequence[ArrayLike]) -> list[Tensor]:
        """The views as float32 tensors on the model's device, after checking that they
        fit the model: V views, each ``N×<view shape>``, all with the same ``N``."""
        if isinstance(views, (Tensor, np.ndarray)) or not isinstance(views, Sequence):
            raise TypeError(
                f"views must be a list of {len(self.view_shapes)} arrays (one per view), "
                f"got a {type(views).__name__}."
            )
        if len(views) != len(self.view_shapes):
            raise ViewsError(f"expected {len(self.view_shapes)} views, got {len(views)}.")
        tensors = [_as_float_tensor(x, v) for v, x in enumerate(views)]
        for v, (x, shape) in enumerate(zip(tensors, self.view_shapes, strict=True)):
            if tuple(x.shape[1:]) != shape:
                raise ViewsError(
                    f"view {v} has per-sample shape {tuple(x.shape[1:])}, the model expects "
                    f"{shape} (a batch is a list of one N×{'×'.join(map(str, shape))} array "
                    f"per view; the model's views are {self.view_shapes})."
                )
        counts = [int(x.shape[0]) for x in tensors]
        if len(set(counts)) > 1 or counts[0] == 0:
            raise ViewsError(
                f"the views must hold the same, non-zero number of samples, got {counts}; "
                "row i of every view is sample i."
            )
        return [x.to(self.device) for x in tensors]

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
    def encode(self, views: Sequence[ArrayLike], available: ArrayLike | None = None) -> Codes:
        """Posterior means ``c`` and ``s_v`` of a batch (no ``s`` for a stage-1-only run).

        ``views``: one ``N×<view shape>`` tensor or numpy array per view (uint8 images
        are scaled by 1/255, as the loaders do); anything else raises a
        :class:`ViewsError` (or ``TypeError``) naming the problem.

        ``available`` (``N×V`` bool, True = present): ``c`` from the present views only,
        ``s_v`` of an absent view set to its prior mean 0 (tensors of absent views unused).
        """
        views = self._views(views)
        available = self._available(available, views[0].shape[0])
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
        return "consistency" if self.config.train.view_dropout > 0 else "specific"

    @torch.no_grad()
    def impute(
        self, views: Sequence[ArrayLike], available: ArrayLike, source: str = "auto"
    ) -> list[Tensor]:
        """The views with the absent ones predicted from the present ones. ``source``:
        ``"specific"`` or ``"consistency"`` (see :meth:`mrdd.models.MRDD.impute`), or
        ``"auto"``, :attr:`best_imputer`. A stage-1-only run decodes them with its stage-1
        decoders from ``c``."""
        views = self._views(views)
        available = self._available(available, views[0].shape[0])
        if isinstance(self.model, MRDD):
            chosen = self.best_imputer if source == "auto" else source
            return self.model.impute(views, available, chosen)
        mu, _ = self.model.encode(views, available)
        predicted = self.model.decode(mu)
        return [
            torch.where(available[:, v].view(-1, *([1] * (x.ndim - 1))), x, p.to(x.dtype))
            for v, (x, p) in enumerate(zip(views, predicted, strict=True))
        ]

    def representations(
        self, views: Sequence[ArrayLike], available: ArrayLike | None = None
    ) -> dict[str, Tensor]:
        """The named representations: C, every S_v, C+S_best, C+S_all."""
        codes = self.encode(views, available)
        return named_representations(codes.c, codes.s, self.best_view)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Load the most complete model of a run directory (``mrdd.pt``, else ``consistency.pt``)."""
    run_dir = Path(run_dir)
    for name, kind in (("mrdd.pt", "mrdd"), ("consistency.pt", "consistency")):
        path = run_dir / name
        if path.is_file():
            payload = load_checkpoint(path, kind=kind)
            break
    else:
        raise CheckpointError(
            f"{run_dir} holds neither mrdd.pt nor consistency.pt; pass a training run's directory."
        )
    config = RunConfig.from_dict(payload["config"])
    shapes = [tuple(s) for s in payload["view_shapes"]]
    model = build_model(config, shapes, kind)
    load_state(model, payload["state_dict"], str(path))
    model.to(device).eval()
    return TrainedModel(config, shapes, model, int(config.dataset.get("best_view", 0)))


def evaluate(
    run_dir: str | Path,
    overrides: Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate a training run again (what ``scripts/evaluate.py`` calls).

    Loads the run's model and config, applies ``overrides`` (nested, e.g.
    ``{"eval": {"split": "train"}, "device": "cpu"}``), reloads its dataset and
    runs :func:`mrdd.eval.evaluate_model` — the same evaluation as at the
    end of training — writing ``metrics.json``, ``metrics.md`` and the figures
    into ``out_dir`` (default: the run directory). Returns the metrics dict.
    """
    run_dir = Path(run_dir)
    trained = load(run_dir)
    cfg = trained.config.with_overrides(overrides or {})
    device = resolve_device(cfg.device)
    splits = load_dataset(cfg.dataset)
    if [tuple(s) for s in splits.view_shapes] != trained.view_shapes:
        raise CheckpointError(
            f"The dataset {splits.name} has views {splits.view_shapes}, but the model in "
            f"{run_dir} was trained on {trained.view_shapes}; evaluate it on its own dataset."
        )
    history_file = run_dir / "history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else {}
    out = Path(out_dir) if out_dir is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    metrics = evaluate_model(trained.model.to(device), cfg, splits, device, out, history)
    metrics["environment"] = environment_record(device)
    save_metrics(metrics, out)
    return metrics
