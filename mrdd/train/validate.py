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
from mrdd.models.masking import check_patch_size
from mrdd.train.checkpoint import check_compatible, load_checkpoint


def validate_against_data(cfg: RunConfig, splits: DatasetSplits) -> None:
    """Raise one actionable error for the first setting that cannot work with ``splits``."""
    trains_stage1 = cfg.stage in ("all", "consistency")
    trains_stage2 = cfg.stage in ("all", "disentangle")
    if trains_stage1 and cfg.train.mask_ratio > 0:
        check_patch_size(cfg.train.mask_patch_size, splits.view_shapes, splits.name)
    n = len(splits.train)
    batch_sizes = []
    if trains_stage1:
        batch_sizes.append(("train.batch_size", cfg.train.batch_size))
    if trains_stage2:
        own = cfg.train.disentangle_batch_size is not None
        key = "train.disentangle_batch_size" if own else "train.batch_size"
        batch_sizes.append((key, cfg.train.stage2_batch_size))
    for key, size in batch_sizes:
        if size > n:
            raise ConfigError(
                f"{key}={size} is larger than the {n} training samples of {splits.name}; "
                "batches drop the incomplete last one, so an epoch would have no batch. "
                f"Set {key} to at most {n}."
            )
    for name in clustered_splits(cfg.eval, splits.names):
        _check_clusterable(name, name == cfg.eval.split, splits)
    if cfg.stage == "disentangle":
        payload = load_checkpoint(cfg.consistency_ckpt, kind="consistency")
        where = str(cfg.consistency_ckpt)
        check_compatible(payload, cfg, splits.view_shapes, where, splits.identity)


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
