"""Typed run configuration: the one place every setting, its default and its meaning live.

``RunConfig()`` is the default run of ``python scripts/train.py``; the Hydra files under
``configs/`` hold only what differs from it (a dataset, an experiment, a sweep). The
scripts register these dataclasses as the schema of the composed config, so Hydra itself
refuses unknown keys and wrong types on the command line. :meth:`RunConfig.from_dict`
does the same for a plain dict (a checkpoint's, a notebook's) with OmegaConf, then
:meth:`RunConfig.validate` checks ranges and consistency, all before any data is loaded.
The package does not import Hydra.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

#: numpy and scikit-learn take seeds (``random_state``) in ``[0, 2**32 - 1]``.
MAX_SEED = 2**32 - 1


class ConfigError(ValueError):
    """A configuration value is unknown, missing, or out of range."""


#: The options every dataset takes (handled by :func:`mrdd.data.load_dataset`, whatever
#: the dataset), merged under every ``dataset`` mapping.
DATASET_OPTIONS: dict[str, Any] = {
    "missing_rate": 0.0,  # fraction of samples (train, test) losing a random proper subset of views
    "missing_seed": 0,  # seed of those missing-view masks
    "val_fraction": 0.1,  # stratified share of the training split held out as validation (0: none)
    "val_seed": 0,  # seed of that validation split
}


def default_dataset() -> dict[str, Any]:
    """``configs/dataset/edge_mnist_5k.yaml``: the embedded 5,000 MNIST digits, no data root."""
    return {
        "name": "edge_mnist_5k",
        "best_view": 0,  # the view v whose S_v makes the representation C‖S_best (the digit)
        "image_size": 32,  # side of the digit and edge images
        **DATASET_OPTIONS,
    }


@dataclass
class BackboneConfig:
    """Per-view encoder/decoder networks: a conv ResNet for image views (one level per
    channel multiplier, a stride-2 downsampling between levels, so 32×32 inputs with
    three levels give an 8×8×``latent_channels`` grid), an MLP for vector views."""

    base_width: int = 8  # channels of the first level (the paper: 16)
    channel_mults: list[int] = field(default_factory=lambda: [1, 2, 4])  # width × m per level
    num_blocks: int = 1  # residual blocks per level (the paper: 3)
    latent_channels: int = 8  # channels of the encoder's output grid
    norm: str = "batch"  # batch | group | none
    mlp_hidden: list[int] = field(default_factory=lambda: [512, 256])  # vector views' encoder

    def validate(self) -> None:
        _positive(self, "base_width", "num_blocks", "latent_channels")
        for name in ("channel_mults", "mlp_hidden"):
            values = getattr(self, name)
            if not values or any(v <= 0 for v in values):
                raise ConfigError(
                    f"model.backbone.{name} must be a non-empty list of positive ints, "
                    f"got {values}."
                )
        _choice(self, "norm", ("batch", "group", "none"))
        widths = [self.base_width * m for m in self.channel_mults]
        if self.norm == "group" and any(w > 8 and w % 8 for w in widths):
            raise ConfigError(
                f"model.backbone.norm=group splits channels into 8 groups, but the level widths "
                f"base_width × channel_mults = {widths} are not all multiples of 8 (or ≤ 8). "
                "Change model.backbone.base_width or use norm=batch."
            )

    @property
    def downsampling(self) -> int:
        """Total spatial downsampling factor of the conv encoder."""
        return 2 ** (len(self.channel_mults) - 1)


@dataclass
class ModelConfig:
    """The MRDD objective and networks (DESIGN.md sections 1-2). Losses are per sample:
    squared error summed over a sample's pixels or features, KL summed over dimensions,
    both averaged over the batch; the weights below are in those units."""

    c_dim: int = 10  # size of the consistency code c
    v_dim: int = 10  # size of each view-specific code s_v
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    alpha: float = 1.0  # stage 1: reconstruction weight
    beta_c: float = 0.1  # stage 1: KL weight of c
    beta_s: float = 0.1  # stage 2: KL weight of each s_v
    club_weight: float = 1.0  # stage 2: λ, weight of the CLUB bound on I(s_v; c)
    club_hidden: int = 128  # hidden units of each CLUB estimator
    club_sampled: bool = False  # CLUB negative term: one random pair per sample, not all N²

    def validate(self) -> None:
        _positive(self, "c_dim", "v_dim", "club_hidden", "alpha")
        _non_negative(self, "beta_c", "beta_s", "club_weight")
        self.backbone.validate()


@dataclass
class TrainConfig:
    """Optimisation of both stages (AdamW), sized for a ~10-minute CPU run of the default
    (README, "Choosing the default"); ``configs/train/paper.yaml`` has the paper's budget."""

    epochs: int = 30  # stage 1; stage 2 too unless disentangle_epochs is set
    batch_size: int = 64  # stage 1; stage 2 too unless disentangle_batch_size is set
    disentangle_epochs: int | None = 15  # stage 2 (null: train.epochs)
    disentangle_batch_size: int | None = 128  # stage 2 (null: train.batch_size)
    lr: float = 2e-3  # learning rate of the view models
    club_lr: float = 5e-4  # learning rate of the CLUB estimators
    weight_decay: float = 0.05  # AdamW weight decay
    # cosine: one cycle to 0 over the stage after the warm-up (no restarts); constant: fixed
    scheduler: str = "cosine"
    warmup_epochs: int = 0  # linear learning-rate warm-up at the start of each stage
    mask_ratio: float = 0.7  # stage 1: fraction of patches zeroed per sample and view
    # stage 1: side of the masked square patches in pixels (4 and 8: no better on val, README)
    mask_patch_size: int = 2
    # stage 1: fraction of samples whose c is inferred from a random non-empty subset of
    # their views (whole-view dropout on top of the patches; every present view is still
    # reconstructed), so that c from some views matches c from all (missing views, #15)
    view_dropout: float = 0.0
    # after stage 1, re-estimate its BatchNorm statistics on unmasked training views
    # (mrdd/train/calibrate.py; chosen on val, README "Stage-1 statistics")
    calibrate_bn: bool = True
    grad_clip: float | None = None  # max global gradient norm (null: no clipping)
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    channels_last: bool = True  # NHWC conv weights and activations (faster on CPU and GPU)
    compile: bool = False  # torch.compile the trained networks (eager, with a warning, on failure)
    # CPU, glibc: keep freed memory for reuse instead of faulting it in anew every step
    cpu_keep_freed_memory: bool = True
    cache_consistent_code: bool = True  # stage 2: frozen c computed once per sample (exact)
    log_every: int = 10  # steps between logged losses
    ckpt_every: int = 1  # epochs between resumable states (resume=<run_dir>)
    skip_nonfinite: bool = False  # skip (and count) NaN/inf steps instead of stopping the run
    eval_every: int = 1  # epochs between clusterings of a fixed validation subsample (0: off)
    # stop a stage once that val probe has not improved for this many probes, and keep the
    # stage's best weights by it (null: off; its effect on quality is not measured yet,
    # docs/performance.md); needs a val split and train.eval_every > 0
    plateau_patience: int | None = None
    plateau_metric: str = "acc"  # the probe score the plateau stop watches: acc | nmi | ari

    def validate(self) -> None:
        _positive(
            self,
            "epochs",
            "batch_size",
            "lr",
            "club_lr",
            "mask_patch_size",
            "log_every",
            "ckpt_every",
        )
        _non_negative(self, "weight_decay", "warmup_epochs", "eval_every")
        for name in ("disentangle_epochs", "disentangle_batch_size", "grad_clip"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"train.{name} must be positive or null, got {value}.")
        if not 0.0 <= self.view_dropout <= 1.0:
            raise ConfigError(
                f"train.view_dropout must be in [0, 1] (the fraction of samples that see a "
                f"subset of their views), got {self.view_dropout}."
            )
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(
                f"train.mask_ratio must be in [0, 1) (the fraction of patches zeroed), "
                f"got {self.mask_ratio}."
            )
        _choice(self, "scheduler", ("cosine", "constant"))
        _choice(self, "precision", ("auto", "fp32", "bf16"))
        _choice(self, "plateau_metric", ("acc", "nmi", "ari"))
        if self.plateau_patience is not None and self.plateau_patience <= 0:
            raise ConfigError(
                f"train.plateau_patience must be a positive number of probes or null (off), "
                f"got {self.plateau_patience}."
            )
        if self.plateau_patience is not None and self.eval_every == 0:
            raise ConfigError(
                "train.plateau_patience needs the val probe, but train.eval_every=0 turns it "
                "off; set train.eval_every to a positive number of epochs."
            )

    @property
    def stage2_epochs(self) -> int:
        return self.disentangle_epochs or self.epochs

    @property
    def stage2_batch_size(self) -> int:
        return self.disentangle_batch_size or self.batch_size


#: The splits a dataset can have (``val`` only with ``dataset.val_fraction`` > 0).
SPLITS = ("train", "val", "test")


@dataclass
class EvalConfig:
    """Evaluation of the learned codes (DESIGN.md section 3) and the run's figures.
    Classifiers are always fitted on the train split and scored on the test split."""

    split: str = "test"  # split clustered and whose redundancy is measured: test | val | train
    # further splits clustered (clustering only), so that a run reports the val scores
    # that choices read next to the test scores it reports; one the dataset lacks is skipped
    also_cluster: list[str] = field(default_factory=lambda: ["val"])
    # R: repetitions behind every mean ± std (KMeans seeds, each n_init=10; classifier
    # training subsamples; held-out splits of the redundancy regressors)
    n_seeds: int = 10
    batch_size: int = 1000  # batch size of code extraction
    classifiers: list[str] = field(default_factory=lambda: ["svm", "linear"])  # [] skips
    regressors: list[str] = field(default_factory=lambda: ["ridge", "mlp"])  # C from S_v; []
    figures: bool = True  # write the PNG figures into the run directory
    num_figure_samples: int = 8  # samples per figure row; side of the swap grids
    embedding_samples: int = 1000  # most points in a t-SNE / UMAP plot
    progress_samples: int = 1000  # fixed val subsample clustered every train.eval_every epochs

    def validate(self) -> None:
        # Imported here: mrdd.eval imports the models, which import this module.
        from mrdd.eval.metrics import CLASSIFIERS, REGRESSORS

        _choice(self, "split", SPLITS)
        _subset(self, "also_cluster", SPLITS)
        _positive(self, "n_seeds", "batch_size", "num_figure_samples", "progress_samples")
        if self.embedding_samples < 2:
            raise ConfigError(
                f"eval.embedding_samples must be at least 2 (a t-SNE of fewer points is "
                f"undefined), got {self.embedding_samples}."
            )
        _subset(self, "classifiers", CLASSIFIERS)
        _subset(self, "regressors", REGRESSORS)


@dataclass
class RunConfig:
    """Everything one ``scripts/train.py`` run needs."""

    dataset: dict[str, Any] = field(default_factory=default_dataset)  # configs/dataset/*.yaml
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # all: stage 1, stage 2, evaluation | consistency: stage 1 and evaluation of C |
    # disentangle: stage 2 (and evaluation) from consistency_ckpt
    stage: str = "all"
    consistency_ckpt: str | None = None  # stage-1 checkpoint that stage=disentangle starts from
    seed: int = 0  # seeds torch, numpy and the evaluation (which uses seed ... seed + R - 1)
    device: str = "auto"  # auto (CUDA when available) | cpu | cuda | cuda:N
    deterministic: bool = False  # torch.use_deterministic_algorithms
    data_root: str = "data"  # root of the on-disk datasets (${data_root} in dataset configs)
    # the score scripts/train.py returns to a Hydra sweeper (Optuna): <split>/<representation>/
    # <metric> of metrics.json, e.g. val/C+S_best/acc; never a test score
    optimize_metric: str | None = None

    def validate(self) -> None:
        """Range and consistency checks (types and keys are checked by :meth:`from_dict`)."""
        _check_finite(dataclasses.asdict(self), "")
        if "name" not in self.dataset:
            raise ConfigError("dataset.name is missing; pick one of the configs/dataset files.")
        _choice(self, "stage", ("all", "consistency", "disentangle"))
        self._check_checkpoint()
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"device must be auto, cpu or cuda[:N], got {self.device!r}.")
        self.model.validate()
        self.train.validate()
        self.eval.validate()
        self._check_seeds()
        self._check_warmup()
        self._check_dataset_options()
        self._check_optimize_metric()

    def _check_checkpoint(self) -> None:
        if self.stage == "disentangle" and not self.consistency_ckpt:
            raise ConfigError(
                "stage=disentangle needs the stage-1 checkpoint: pass "
                "consistency_ckpt=<run_dir>/consistency.pt."
            )
        if self.stage != "disentangle" and self.consistency_ckpt:
            raise ConfigError(
                f"consistency_ckpt={self.consistency_ckpt} is read only by stage=disentangle, "
                f"but stage={self.stage} trains stage 1 itself. Add stage=disentangle to start "
                "stage 2 from it, or drop consistency_ckpt."
            )

    def _check_dataset_options(self) -> None:
        """The options every dataset takes (:data:`DATASET_OPTIONS`)."""
        options = {**DATASET_OPTIONS, **self.dataset}
        for key in ("val_fraction", "missing_rate"):
            if not 0.0 <= float(options[key]) < 1.0:
                raise ConfigError(f"dataset.{key} must be in [0, 1), got {options[key]}.")
        for key in ("missing_seed", "val_seed"):
            if not 0 <= int(options[key]) <= MAX_SEED:
                raise ConfigError(f"dataset.{key} must be in [0, {MAX_SEED}], got {options[key]}.")
        if self.eval.split == "val" and float(options["val_fraction"]) == 0:
            raise ConfigError(
                "eval.split=val needs a validation split: set dataset.val_fraction > 0 "
                "(e.g. 0.1), or evaluate another split."
            )

    def _check_optimize_metric(self) -> None:
        """A searched setting is chosen on validation data, so the score must be one of a
        split the evaluation clusters (``eval.split`` or ``eval.also_cluster``), not test."""
        if self.optimize_metric is None:
            return
        parts = self.optimize_metric.split("/")
        if len(parts) != 3 or not all(parts):
            raise ConfigError(
                f"optimize_metric names a score as <split>/<representation>/<metric>, e.g. "
                f"val/C+S_best/acc; got {self.optimize_metric!r}."
            )
        if parts[0] == "test":
            raise ConfigError(
                f"optimize_metric={self.optimize_metric} would choose settings on the test split; "
                "choose on validation: val/<representation>/<metric> (the val split is clustered "
                "by default, eval.also_cluster)."
            )
        if parts[0] == "val" and float({**DATASET_OPTIONS, **self.dataset}["val_fraction"]) == 0:
            raise ConfigError(
                f"optimize_metric={self.optimize_metric} reads the val split, but "
                "dataset.val_fraction=0 gives none; set dataset.val_fraction > 0 (e.g. 0.1)."
            )
        if parts[0] not in (self.eval.split, *self.eval.also_cluster):
            raise ConfigError(
                f"optimize_metric={self.optimize_metric} reads the {parts[0]} split, but the "
                f"evaluation scores eval.split={self.eval.split} and eval.also_cluster="
                f"{self.eval.also_cluster}; add {parts[0]} to eval.also_cluster."
            )

    def _check_seeds(self) -> None:
        last = self.seed + self.eval.n_seeds - 1
        if self.seed < 0 or last > MAX_SEED:
            raise ConfigError(
                f"seed={self.seed} with eval.n_seeds={self.eval.n_seeds} uses the seeds "
                f"{self.seed} ... {last}, but numpy and scikit-learn take seeds in "
                f"[0, {MAX_SEED}]. Pick a seed in [0, {MAX_SEED - self.eval.n_seeds + 1}]."
            )

    def _check_warmup(self) -> None:
        stages = {
            "all": [("train.epochs", self.train.epochs), self._stage2_epochs_key()],
            "consistency": [("train.epochs", self.train.epochs)],
            "disentangle": [self._stage2_epochs_key()],
        }[self.stage]
        for key, epochs in stages:
            if self.train.warmup_epochs >= epochs:
                raise ConfigError(
                    f"train.warmup_epochs={self.train.warmup_epochs} is not shorter than "
                    f"{key}={epochs}: the learning rate would never leave its warm-up. "
                    f"Set train.warmup_epochs below {epochs}."
                )

    def _stage2_epochs_key(self) -> tuple[str, int]:
        own = self.train.disentangle_epochs is not None
        return ("train.disentangle_epochs" if own else "train.epochs", self.train.stage2_epochs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Build and validate a config from a plain (resolved) dict; sections and keys not
        given keep their defaults, unknown keys and wrong types fail. A ``dataset`` given
        replaces the default dataset (each dataset has its own keys), except for the
        :data:`DATASET_OPTIONS` it leaves out."""
        given_dataset = isinstance(data, Mapping) and "dataset" in data
        schema = cls(dataset=dict(DATASET_OPTIONS)) if given_dataset else cls()
        config = _merged(schema, data, "")
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A validated copy with nested ``overrides`` merged in, e.g. ``{"eval": {"n_seeds": 3}}``.

        Unknown keys fail as in :meth:`from_dict`; keys not named keep their values.
        """
        config = _merged(self, overrides, "")
        config.validate()
        return config


@dataclass
class BenchmarkConfig:
    """What ``scripts/benchmark.py`` measures (the ``benchmark:`` section of its config).
    The ceiling is the GFLOP/s of an n×n matmul and of the model's widest-resolution conv,
    each the fastest of ``ceiling_repeats`` runs before and after training."""

    steps: int = 20  # timed training steps per stage, after the warm-up
    warmup: int = 3  # untimed steps first (allocator growth, kernel choice, compilation)
    evaluate: bool = True  # also time one evaluation (code extraction + KMeans)
    # n of the n×n matmul ceiling, per device type (large enough to saturate the device)
    matmul_size: dict[str, int] = field(default_factory=lambda: {"cpu": 2048, "cuda": 8192})
    ceiling_repeats: int = 5  # runs of each ceiling op, before and after training
    json: str | None = None  # where to write the results (null: benchmark.json in the run dir)

    def validate(self) -> None:
        _positive(self, "steps", "ceiling_repeats")
        _non_negative(self, "warmup")
        if not self.matmul_size or any(n <= 0 for n in self.matmul_size.values()):
            raise ConfigError(
                "benchmark.matmul_size must map device types to positive ints, "
                f"e.g. {{cpu: 2048, cuda: 8192}}; got {self.matmul_size!r}."
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchmarkConfig:
        config = _merged(cls(), data, "benchmark.")
        config.validate()
        return config


_Config = typing.TypeVar("_Config")


def _merged(base: _Config, data: Any, prefix: str) -> _Config:
    """``base`` (a config dataclass) with ``data`` merged in, keys and types checked by
    OmegaConf; its errors become one-line :class:`ConfigError`\\ s naming the key."""
    _check_sections(type(base), data, prefix)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(base), data))
    except OmegaConfBaseException as err:
        raise ConfigError(_explain(err, prefix)) from None


def _check_sections(cls: type, data: Any, prefix: str) -> None:
    """``data`` and each section in it is a mapping (OmegaConf's error would not name it)."""
    if not isinstance(data, Mapping):
        where = prefix.rstrip(".") or "the config"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {data!r}.")
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        if dataclasses.is_dataclass(hints.get(name)):
            _check_sections(hints[name], value, f"{prefix}{name}.")


def _explain(err: OmegaConfBaseException, prefix: str) -> str:
    """One actionable line for an OmegaConf merge error."""
    key = prefix + (err.full_key or "")
    owner = err.object_type
    if isinstance(err, ConfigKeyError) and dataclasses.is_dataclass(owner):
        valid = sorted(f.name for f in dataclasses.fields(owner))
        section = key.rpartition(".")[0]
        close = difflib.get_close_matches(str(err.key), valid, n=1)
        hint = f" Did you mean {(f'{section}.' if section else '') + close[0]!r}?" if close else ""
        where = f"of {section}" if section else "at the top level"
        return f"Unknown config key {key!r}.{hint} Valid keys {where}: {valid}."
    if isinstance(err, MissingMandatoryValue):
        return f"{key} has no value (???); set it, e.g. {key}=<value> on the command line."
    expected = _expected_type(owner, err)
    if expected is not None:
        return f"{key} must be {_describe(expected)}, got {err.value!r}."
    return f"{key or prefix.rstrip('.') or 'config'}: {str(err.msg).splitlines()[0]}"


def _expected_type(owner: Any, err: OmegaConfBaseException) -> Any:
    """The declared type of the value that failed: a dataclass field or a list/dict item."""
    if dataclasses.is_dataclass(owner) and isinstance(err.key, str):
        return typing.get_type_hints(owner).get(err.key)
    item_types = typing.get_args(err.ref_type)
    if owner in (list, dict) and item_types:
        return item_types[-1]
    return None


_TYPE_WORDS = {int: "an int", float: "a number", bool: "true or false", str: "a string"}


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"{_describe(inner)} or null"
    if typing.get_origin(hint) is list:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    if typing.get_origin(hint) is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    return _TYPE_WORDS.get(hint, getattr(hint, "__name__", str(hint)))


def _check_finite(tree: Mapping[str, Any], prefix: str) -> None:
    """Refuse NaN and ±inf anywhere: they pass every range check and fail only in training."""
    for name, value in tree.items():
        if isinstance(value, Mapping):
            _check_finite(value, f"{prefix}{name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{prefix}{name} must be a finite number, got {value}.")


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{_section(obj)}{name} must be positive, got {getattr(obj, name)}.")


def _non_negative(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < 0:
            raise ConfigError(
                f"{_section(obj)}{name} must be non-negative, got {getattr(obj, name)}."
            )


def _choice(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    if getattr(obj, name) not in choices:
        raise ConfigError(
            f"{_section(obj)}{name} must be one of {list(choices)}, got {getattr(obj, name)!r}."
        )


def _subset(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    values = getattr(obj, name)
    unknown = [v for v in values if v not in choices]
    if unknown or len(set(values)) != len(values):
        raise ConfigError(
            f"{_section(obj)}{name} must list distinct entries of {list(choices)} "
            f"([] for none), got {values!r}."
        )


_SECTIONS = {
    "BackboneConfig": "model.backbone.",
    "ModelConfig": "model.",
    "TrainConfig": "train.",
    "EvalConfig": "eval.",
    "BenchmarkConfig": "benchmark.",
}


def _section(obj: Any) -> str:
    return _SECTIONS.get(type(obj).__name__, "")


@dataclass
class BenchmarkRunConfig(RunConfig):
    """``scripts/benchmark.py``'s config: a training run plus what to measure. Defined here,
    not in the script, so that every process that unpickles a composed config (a Slurm or
    submitit job) can import its type."""

    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
