"""Stop a stage when its val probe has plateaued, and keep the stage's best weights by it.

With ``run.plateau_patience = P``, every probe of :class:`mrdd.train.monitor.TrainingMonitor`
(one KMeans run on a fixed subsample of the **validation** split, every
``run.eval_every`` epochs) is compared with the best probe so far on
``eval_<run.plateau_metric>``; a stage stops after P probes in a row without a strict
improvement, but not before ``ceil(run.plateau_min_fraction × epochs)`` epochs, and ends
with the weights of its best probed epoch (also when it runs all its epochs). Only val is
looked at: without a val split the stop is refused, since the probe would then read the
training split.

What happened is in the stage's last epoch record (so in ``progress.csv``,
``history.json`` and TensorBoard): ``plateau_stop`` (1: stopped early, 0: ran every
epoch), ``plateau_best_epoch`` and ``plateau_best_score`` (epoch 0 and no score: no
probe fell in the stage, which then keeps its last weights); :func:`plateau_summary` turns
that into the ``plateau`` entry of ``metrics.json``. The watch's state (best score, best
weights, probes since the best) is part of the stage's resumable state.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from mrdd.config import ConfigError, RuntimeConfig

log = logging.getLogger("mrdd")
#: The keys a watch adds to its stage's last epoch record.
RECORD_KEYS = ("plateau_stop", "plateau_best_epoch", "plateau_best_score")


class PlateauStop:
    """Watches one stage's val probe; :meth:`observe` after every epoch, :meth:`restore_best`
    at the end of the stage."""

    def __init__(
        self, stage_name: str, epochs: int, patience: int, metric: str, min_epochs: int = 0
    ) -> None:
        self.stage_name, self.epochs, self.patience = stage_name, epochs, patience
        self.min_epochs = min_epochs  # no stop before this epoch (1-based)
        self.key = f"eval_{metric}"
        self.best_score: float | None = None
        self.best_epoch = 0  # 1-based; 0: no probe yet
        self.waited = 0  # probes since the best one
        self.stopped = False
        self.best_state: dict[str, torch.Tensor] | None = None

    @classmethod
    def for_stage(cls, cfg: RuntimeConfig, stage_name: str, epochs: int) -> PlateauStop | None:
        """The watch ``cfg`` asks for (``None`` when ``run.plateau_patience`` is null)."""
        if cfg.plateau_patience is None:
            return None
        min_epochs = math.ceil(cfg.plateau_min_fraction * epochs)
        return cls(stage_name, epochs, cfg.plateau_patience, cfg.plateau_metric, min_epochs)

    def observe(self, record: dict[str, float], model: nn.Module) -> None:
        """Take in one epoch's ``record`` (its probe scores, if it was probed): snapshot
        ``model`` at a new best, count a probe without one, and on the stage's last epoch
        (the planned last or the one it stops after) add :data:`RECORD_KEYS` to the record."""
        epoch = int(record["epoch"])
        if self.key in record:
            score = float(record[self.key])
            if self.best_score is None or score > self.best_score:
                self.best_score, self.best_epoch, self.waited = score, epoch, 0
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                self.waited += 1
                self.stopped = self.waited >= self.patience and epoch >= self.min_epochs
        if self.stopped:
            log.info(
                "%s: stopping after epoch %d of %d: val %s has not improved for %d probes "
                "(best %.4f at epoch %d, whose weights the stage keeps)",
                self.stage_name,
                epoch,
                self.epochs,
                self.key,
                self.waited,
                self.best_score,
                self.best_epoch,
            )
        if self.stopped or epoch == self.epochs:
            record.update(
                plateau_stop=float(self.stopped), plateau_best_epoch=float(self.best_epoch)
            )
            if self.best_score is not None:  # None: no probe fell in this stage
                record["plateau_best_score"] = self.best_score

    def restore_best(self, model: nn.Module) -> None:
        """Load the best probed epoch's weights into ``model`` (no-op before any probe)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
            log.info(
                "%s: kept the weights of epoch %d (best val %s %.4f)",
                self.stage_name,
                self.best_epoch,
                self.key,
                self.best_score,
            )

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors (loadable with ``weights_only=True``)."""
        return {
            "key": self.key,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "waited": self.waited,
            "stopped": self.stopped,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.key = state["key"]
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.waited, self.stopped = state["waited"], state["stopped"]
        self.best_state = state["best_state"]


def require_val_probe(cfg: RuntimeConfig, has_val: bool, probe_on: bool) -> None:
    """Refuse the plateau stop where it could not choose on val: no val split (the probe
    would read the training split), or a probe turned off for having too few samples."""
    if cfg.plateau_patience is None:
        return
    if not has_val:
        raise ConfigError(
            "run.plateau_patience chooses epochs on the val probe, but the dataset has no "
            "val split; set dataset.val_fraction > 0 or run.plateau_patience=null."
        )
    if not probe_on:
        raise ConfigError(
            "run.plateau_patience needs the val probe, which is off (fewer probe samples "
            "than classes); raise eval.progress_samples or dataset.val_fraction."
        )


def plateau_summary(
    histories: dict[str, list[dict[str, Any]]], cfg: RuntimeConfig
) -> dict[str, Any]:
    """Per stage with a plateau watch: when and why it stopped, from its last record
    (the ``plateau`` entry of ``metrics.json``; empty when no stage had a watch)."""
    summary = {}
    for stage, records in histories.items():
        last = records[-1] if records else {}
        if "plateau_stop" not in last:
            continue
        stopped = bool(last["plateau_stop"])
        summary[stage] = {
            "stopped": stopped,
            "last_epoch": int(last["epoch"]),
            "best_epoch": int(last["plateau_best_epoch"]),
            "best_val_score": last.get("plateau_best_score"),
            "metric": f"val eval_{cfg.plateau_metric} (one KMeans run on the probe subsample)",
            "patience": cfg.plateau_patience,
            "min_fraction": cfg.plateau_min_fraction,
            "reason": "the val probe did not improve for run.plateau_patience probes"
            if stopped
            else "ran every epoch; kept the best val epoch's weights",
        }
    return summary
