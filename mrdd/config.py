"""Typed run configuration, independent of Hydra.

The Hydra files under ``configs/`` are the only place numbers live; the scripts
compose them and hand a plain dict to :meth:`RunConfig.from_dict`, which checks
every key and value here, before any data is loaded. Checkpoints store the
same plain dict, so a model can be rebuilt in a notebook without Hydra.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration value is unknown, missing, or out of range."""


@dataclass
class BackboneConfig:
    """Per-view encoder/decoder networks.

    Image views use a conv ResNet (``base_width``, ``channel_mults``,
    ``num_blocks``, ``latent_channels``, ``norm``): one level per multiplier,
    a stride-2 downsampling between levels, so a 32×32 input with three levels
    gives a 8×8×``latent_channels`` feature grid. Vector views use an MLP with
    hidden sizes ``mlp_hidden`` (encoder; mirrored in the decoder).
    """

    base_width: int = 16
    channel_mults: list[int] = field(default_factory=lambda: [1, 2, 4])
    num_blocks: int = 3
    latent_channels: int = 8
    norm: str = "batch"
    mlp_hidden: list[int] = field(default_factory=lambda: [512, 256])

    def validate(self) -> None:
        _positive(self, "base_width", "num_blocks", "latent_channels")
        if not self.channel_mults or any(m <= 0 for m in self.channel_mults):
            raise ConfigError(
                f"model.backbone.channel_mults must be a non-empty list of positive ints, "
                f"got {self.channel_mults}."
            )
        if not self.mlp_hidden or any(h <= 0 for h in self.mlp_hidden):
            raise ConfigError(
                f"model.backbone.mlp_hidden must be a non-empty list of positive ints, "
                f"got {self.mlp_hidden}."
            )
        _choice(self, "norm", ("batch", "group", "none"))

    @property
    def downsampling(self) -> int:
        """Total spatial downsampling factor of the conv encoder."""
        return 2 ** (len(self.channel_mults) - 1)


@dataclass
class ModelConfig:
    """The MRDD objective and networks (DESIGN.md sections 1-2).

    ``alpha`` weighs the stage-1 reconstruction, ``beta_c`` the stage-1 KL,
    ``beta_s`` the stage-2 KL of each view-specific code, ``club_weight`` (λ)
    the CLUB mutual-information upper bound between ``s_v`` and ``c``.
    All losses are per sample: squared error summed over a sample's pixels or
    features, KL summed over dimensions, both averaged over the batch.
    """

    c_dim: int = 10
    v_dim: int = 10
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    alpha: float = 1.0
    beta_c: float = 0.1
    beta_s: float = 0.1
    club_weight: float = 1.0
    club_hidden: int = 128
    club_sampled: bool = False

    def validate(self) -> None:
        _positive(self, "c_dim", "v_dim", "club_hidden", "alpha")
        _non_negative(self, "beta_c", "beta_s", "club_weight")
        self.backbone.validate()


@dataclass
class TrainConfig:
    """Optimisation of both stages.

    ``epochs``/``batch_size`` apply to stage 1 and, unless the ``disentangle_*``
    overrides are set, to stage 2 too. Masking (``mask_ratio``, ``mask_patch_size``)
    only happens in stage 1, in training. ``precision``: ``auto`` is bf16 autocast on
    CUDA and fp32 on CPU. ``scheduler``: ``cosine`` anneals every optimiser's
    learning rate to 0 over the stage's steps after ``warmup_epochs`` of linear
    warm-up (a single cycle, no restarts); ``constant`` keeps it fixed.

    ``ckpt_every``: every that many epochs (and after the last one) each stage saves a
    resumable state to the run directory, so ``scripts/train.py resume=<run_dir>`` loses at
    most that many epochs. ``skip_nonfinite``: a step whose loss or gradient is NaN/inf is
    skipped (its update not applied) and counted, instead of stopping the run; skipping
    costs one host-device sync per update.
    ``eval_every``: every that many epochs, cluster a fixed test subsample once
    (``C`` in stage 1, ``C‖S_best`` in stage 2) and log it with the epoch's losses
    to TensorBoard and ``progress.csv``; 0 turns it off (losses are still logged).
    ``channels_last`` stores conv weights and activations NHWC (faster on CPU and
    GPU); ``compile`` runs the trained networks through ``torch.compile`` (eager,
    with a warning, if compiling fails); ``cpu_keep_freed_memory`` lets a CPU run
    reuse freed memory instead of returning it to the OS every step (glibc only;
    see :func:`mrdd.train.device.keep_freed_cpu_memory`); ``cache_consistent_code``
    computes stage 2's frozen ``c`` once per training sample instead of once per batch
    (exact; see :meth:`mrdd.train.stages.DisentangleStage.cache_codes`).
    """

    epochs: int = 20
    batch_size: int = 256
    disentangle_epochs: int | None = None
    disentangle_batch_size: int | None = None
    lr: float = 5e-4
    club_lr: float = 5e-4
    weight_decay: float = 0.05
    scheduler: str = "cosine"
    warmup_epochs: int = 0
    mask_ratio: float = 0.7
    mask_patch_size: int = 2
    grad_clip: float | None = None
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    cpu_keep_freed_memory: bool = True
    cache_consistent_code: bool = True
    log_every: int = 10
    ckpt_every: int = 1
    skip_nonfinite: bool = False
    eval_every: int = 1

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
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(
                f"train.mask_ratio must be in [0, 1) (the fraction of patches zeroed), "
                f"got {self.mask_ratio}."
            )
        _choice(self, "scheduler", ("cosine", "constant"))
        _choice(self, "precision", ("auto", "fp32", "bf16"))

    @property
    def stage2_epochs(self) -> int:
        return self.disentangle_epochs or self.epochs

    @property
    def stage2_batch_size(self) -> int:
        return self.disentangle_batch_size or self.batch_size


@dataclass
class EvalConfig:
    """Evaluation of the learned codes (DESIGN.md section 3) and the run's figures.

    ``split`` is the split whose representations are clustered and whose redundancy
    is measured (``test`` or ``train``); classifiers are always fitted on train and
    scored on test. ``n_seeds`` (R) is the number of repetitions behind every
    mean ± std: KMeans seeds (each with n_init=10), classifier training subsamples,
    and held-out splits of the redundancy regressors. ``classifiers`` and
    ``regressors`` pick the probes (``[]`` skips them). ``figures`` turns the
    PNG figures on or off; ``num_figure_samples`` is the number of samples per
    figure row (and the side of the swap grids), ``embedding_samples`` the most
    points a t-SNE/UMAP plot shows. ``progress_samples`` is the size of the fixed
    test subsample clustered during training (see ``train.eval_every``).
    """

    split: str = "test"
    n_seeds: int = 10
    batch_size: int = 1000
    classifiers: list[str] = field(default_factory=lambda: ["svm", "linear"])
    regressors: list[str] = field(default_factory=lambda: ["ridge", "mlp"])
    figures: bool = True
    num_figure_samples: int = 8
    embedding_samples: int = 1000
    progress_samples: int = 1000

    def validate(self) -> None:
        # Imported here: mrdd.eval imports the models, which import this module.
        from mrdd.eval.metrics import CLASSIFIERS, REGRESSORS

        _choice(self, "split", ("train", "test"))
        _positive(
            self,
            "n_seeds",
            "batch_size",
            "num_figure_samples",
            "embedding_samples",
            "progress_samples",
        )
        _subset(self, "classifiers", CLASSIFIERS)
        _subset(self, "regressors", REGRESSORS)


@dataclass
class RunConfig:
    """Everything one ``scripts/train.py`` run needs.

    ``stage``: ``all`` (stage 1, stage 2, evaluation), ``consistency`` (stage 1 and
    evaluation of ``C``) or ``disentangle`` (stage 2 from ``consistency_ckpt``).
    ``device``: ``auto`` picks CUDA when available.
    """

    dataset: dict[str, Any] = field(default_factory=lambda: {"name": "edge_mnist_5k"})
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    stage: str = "all"
    consistency_ckpt: str | None = None
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    #: Root folder of the on-disk datasets; dataset configs refer to it as ``${data_root}``.
    data_root: str = "data"

    def validate(self) -> None:
        if "name" not in self.dataset:
            raise ConfigError("dataset.name is missing; pick one of the configs/dataset files.")
        _choice(self, "stage", ("all", "consistency", "disentangle"))
        if self.stage == "disentangle" and not self.consistency_ckpt:
            raise ConfigError(
                "stage=disentangle needs the stage-1 checkpoint: pass "
                "consistency_ckpt=<run_dir>/consistency.pt."
            )
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"device must be auto, cpu or cuda[:N], got {self.device!r}.")
        self.model.validate()
        self.train.validate()
        self.eval.validate()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build and validate a config from a plain (resolved) dict; unknown keys fail."""
        config = _from_dict(cls, data, "")
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A validated copy with nested ``overrides`` merged in, e.g. ``{"eval": {"n_seeds": 3}}``.

        Unknown keys fail as in :meth:`from_dict`; sections not named keep their values.
        """
        return RunConfig.from_dict(_merge(self.to_dict(), overrides))


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass
class BenchmarkConfig:
    """What ``scripts/benchmark.py`` measures (the ``benchmark:`` section of its config).

    ``steps`` timed training steps per stage after ``warmup`` untimed ones;
    ``evaluate`` times one evaluation; the ceiling is the GFLOP/s of an
    ``n×n`` matmul, ``n = matmul_size[device type]`` (large enough to saturate
    the device), and of the model's widest-resolution conv, each the fastest of
    ``ceiling_repeats`` runs before and after training. ``json``: where to write
    the results (``None``: ``benchmark.json`` in the run directory).
    """

    steps: int = 20
    warmup: int = 3
    evaluate: bool = True
    matmul_size: dict[str, int] = field(default_factory=lambda: {"cpu": 2048, "cuda": 8192})
    ceiling_repeats: int = 5
    json: str | None = None

    def validate(self) -> None:
        _positive(self, "steps", "ceiling_repeats")
        _non_negative(self, "warmup")
        if not self.matmul_size or any(
            not isinstance(n, int) or isinstance(n, bool) or n <= 0
            for n in self.matmul_size.values()
        ):
            raise ConfigError(
                "benchmark.matmul_size must map device types to positive ints, "
                f"e.g. {{cpu: 2048, cuda: 8192}}; got {self.matmul_size!r}."
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkConfig:
        config = _from_dict(cls, data, "benchmark.")
        config.validate()
        return config


def _from_dict(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {data!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(
            f"Unknown config key(s) {[prefix + k for k in unknown]} at {where}; "
            f"valid keys are {sorted(fields)}."
        )
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _from_dict(hint, value, f"{prefix}{name}.")
        else:
            values[name] = _coerce(value, hint, prefix + name)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a simple type hint (int, float, str, bool, lists, Optional)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}.")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}.")
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{key} must be a {hint.__name__}, got {value!r}.")
    return value


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
