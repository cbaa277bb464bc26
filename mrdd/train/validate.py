"""Checks of a run's settings against its loaded data, before any training starts.

A config is checked on its own when it is built (:meth:`RunConfig.validate`) and
every dataset loader checks its files and tensors; what is left are settings that
are wrong only for a particular dataset, or that would otherwise fail hours into a
run (a stage-2 batch size, a stage-1 checkpoint read only after stage 1).
"""

from __future__ import annotations

from mrdd.config import ConfigError, RunConfig
from mrdd.data import DatasetSplits
from mrdd.eval.protocol import clustered_splits
from mrdd.train.stages import stages_of


def validate_against_data(cfg: RunConfig, splits: DatasetSplits) -> None:
    """Raise one actionable error for the first setting that cannot work with ``splits``:
    each trained stage's own checks (:meth:`mrdd.train.stages.Stage.check_data`), then the
    evaluation's."""
    for stage in stages_of(cfg):
        stage.check_data(cfg, splits)
    for name in clustered_splits(cfg.eval, splits.names):
        _check_clusterable(name, name == cfg.eval.split, splits)


def _check_clusterable(name: str, evaluated: bool, splits: DatasetSplits) -> None:
    """KMeans must find ``num_classes`` clusters among the split's samples."""
    n = len(splits.split(name))
    if n >= splits.num_classes:
        return
    key = f"eval.split={name}" if evaluated else f"the {name} split (eval.also_cluster)"
    fix = "evaluate a larger split" if evaluated else f"remove {name} from eval.also_cluster"
    raise ConfigError(
        f"{key} holds {n} samples, fewer than the {splits.num_classes} classes KMeans must "
        f"find; {fix} (or raise dataset.val_fraction for the val split)."
    )
