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
import importlib
import math
import re
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from mrdd.errors import ConfigError

#: numpy and scikit-learn take seeds (``random_state``) in ``[0, 2**32 - 1]``.
MAX_SEED = 2**32 - 1


def check_missing_rate(rate: float) -> None:
    """The one range rule of a missing-view rate (``dataset.missing_rate``, and the rates
    :func:`mrdd.data.missing.random_availability` draws masks at): ``[0, 1)``. At 1 no
    sample keeps all its views, so with two views no sample shows how they relate."""
    if not 0.0 <= rate < 1.0:
        raise ConfigError(
            f"dataset.missing_rate must be in [0, 1) (the fraction of samples that lose a "
            f"random proper subset of their views; at 1 none keeps all its views), got {rate}."
        )


def check_mask_ratio(ratio: float) -> None:
    """The one range rule of ``stage1.mask_ratio`` (:func:`mrdd.models.masking.mask_view`
    checks it too): at 1 every patch would be zeroed and nothing seen."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(
            f"stage1.mask_ratio must be in [0, 1) (the fraction of patches zeroed), got {ratio}."
        )


def check_view_dropout(rate: float) -> None:
    """The one range rule of ``stage1.view_dropout``
    (:func:`mrdd.models.masking.drop_views_per_sample` checks it too)."""
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(
            f"stage1.view_dropout must be in [0, 1] (the fraction of samples that see a "
            f"subset of their views), got {rate}."
        )


@dataclass
class DatasetConfig:
    """The keys every dataset takes (handled by :func:`mrdd.data.load_dataset`, whatever
    the dataset). Each built-in dataset's schema below adds the keyword arguments of its
    loader; ``RunConfig.validate`` types a ``dataset`` mapping with the schema its ``name``
    picks (:func:`typed_dataset`), so a wrong type or an unknown key fails by name before
    anything is written, and ``config.json`` records every option the loader used."""

    name: str = MISSING  # a configs/dataset file, or a loader registered by register_dataset
    # the view v whose S_v makes the representation C‖S_best (null: chosen on val after
    # training, the view whose C‖S_v clusters best there; mrdd/eval/best_view.py)
    best_view: int | None = None
    missing_rate: float = (
        0.0  # fraction of samples (train, test) losing a random proper subset of views
    )
    missing_seed: int = 0  # seed of those missing-view masks
    val_fraction: float = (
        0.1  # stratified share of the training split held out as validation (0: none)
    )
    val_seed: int = 0  # seed of that validation split

    def validate(self) -> None:
        if self.best_view is not None:
            _non_negative(self, "best_view")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"dataset.val_fraction must be in [0, 1), got {self.val_fraction}.")
        check_missing_rate(self.missing_rate)
        _seeds(self, "missing_seed", "val_seed")


@dataclass
class SplitDatasetConfig(DatasetConfig):
    """A dataset without an official test split: a stratified one is drawn."""

    seed: int = 0  # seed of the stratified train/test split
    test_fraction: float = 0.2  # share of the samples in the test split

    def validate(self) -> None:
        super().validate()
        _seeds(self, "seed")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(
                f"dataset.test_fraction must be in (0, 1) (the share of samples tested on), "
                f"got {self.test_fraction}."
            )


@dataclass
class EdgeMnist5kDataset(DatasetConfig):
    """``edge_mnist_5k``: the embedded 5,000 MNIST digits and their edge maps."""

    name: str = "edge_mnist_5k"
    image_size: int = 32  # side of the digit and edge images

    def validate(self) -> None:
        super().validate()
        _positive(self, "image_size")


@dataclass
class EdgeMnistDataset(DatasetConfig):
    """``edge_mnist`` / ``edge_fmnist``: the full sets, official 60k/10k split."""

    name: str = "edge_mnist"
    root: str = "data"  # folder holding MNIST/raw (or FashionMNIST/raw)
    download: bool = False  # fetch the raw files into root when they are missing
    image_size: int = 32  # side of the images and edge maps

    def validate(self) -> None:
        super().validate()
        _positive(self, "image_size")


@dataclass
class CoilDataset(SplitDatasetConfig):
    """``coil20`` / ``coil100``: objects on a turntable, poses dealt into views."""

    name: str = "coil20"
    root: str = "data/coil20"  # folder holding coil-20-proc (coil-100)
    image_size: int = 64  # side of the resized images
    num_views: int = 3  # poses per sample, each a view

    def validate(self) -> None:
        super().validate()
        _positive(self, "image_size", "num_views")


@dataclass
class FolderDataset(SplitDatasetConfig):
    """``folder``: your own images, ``<path>/view_<v>/<class>/<sample_id>.<png|jpg>``."""

    name: str = "folder"
    path: str = MISSING  # the folder
    image_size: int = 64  # side of the resized images

    def validate(self) -> None:
        super().validate()
        _positive(self, "image_size")


@dataclass
class NpzDataset(SplitDatasetConfig):
    """``npz``: your own arrays in one .npz file (format: mrdd/data/npz.py)."""

    name: str = "npz"
    path: str = MISSING  # the .npz file
    standardize: bool = True  # vector views: zero mean, unit variance on the training split


@dataclass
class MultipleFeaturesDataset(SplitDatasetConfig):
    """``multiple_features``: UCI Multiple Features, six vector views."""

    name: str = "multiple_features"
    root: str = "data/multiple_features"  # folder holding the mfeat-* files
    standardize: bool = True  # each view: zero mean, unit variance on the training split


@dataclass
class Office31Dataset(SplitDatasetConfig):
    """``office31``: amazon, dslr and webcam images of 31 classes, padded into pairs."""

    name: str = "office31"
    root: str = "data/office31"  # folder holding amazon/, dslr/, webcam/
    image_size: int = 64  # side of the resized images
    cache_dir: str | None = None  # where the paired tensors are cached (null: ~/.cache/mrdd)

    def validate(self) -> None:
        super().validate()
        _positive(self, "image_size")


#: The schema of each built-in dataset's section, by ``dataset.name``.
DATASET_SCHEMAS: dict[str, type[DatasetConfig]] = {
    "edge_mnist_5k": EdgeMnist5kDataset,
    "edge_mnist": EdgeMnistDataset,
    "edge_fmnist": EdgeMnistDataset,
    "coil20": CoilDataset,
    "coil100": CoilDataset,
    "folder": FolderDataset,
    "npz": NpzDataset,
    "multiple_features": MultipleFeaturesDataset,
    "office31": Office31Dataset,
}

#: The options every dataset takes, with their defaults, merged under every ``dataset``
#: mapping (what the scripts' Hydra schema holds before a dataset file adds its keys).
DATASET_OPTIONS: dict[str, Any] = {
    f.name: f.default
    for f in dataclasses.fields(DatasetConfig)
    if f.name not in ("name", "best_view")
}


def default_dataset() -> dict[str, Any]:
    """``configs/dataset/edge_mnist_5k.yaml``: the embedded 5,000 MNIST digits, no data root."""
    return dataclasses.asdict(EdgeMnist5kDataset())


def typed_dataset(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` (a ``dataset`` section) typed and range-checked by the schema its name
    picks, with the defaults of the keys it leaves out: ``standardize: off`` becomes
    ``False`` as every boolean of the config does, ``test_fraction: abc`` and unknown keys
    fail naming the key. A dataset registered outside mrdd has no schema here: only the
    shared keys are typed, its loader checks its own."""
    if not isinstance(options, Mapping) or "name" not in options:
        raise ConfigError("dataset.name is missing; pick one of the configs/dataset files.")
    schema = DATASET_SCHEMAS.get(options["name"])
    if schema is None:
        shared = {f.name for f in dataclasses.fields(DatasetConfig)}
        typed = _merged(DatasetConfig(), {k: options[k] for k in shared & set(options)}, "dataset.")
        typed.validate()
        return {**options, **dataclasses.asdict(typed)}
    typed = _merged(schema(name=options["name"]), options, "dataset.")
    typed.validate()
    return dataclasses.asdict(typed)


#: Groups of ``model.backbone.norm=group``: a level of ``w`` channels is normalised in
#: ``min(GROUP_NORM_GROUPS, w)`` groups (:func:`group_norm_groups`), so ``w`` must be a
#: multiple of it or at most it.
GROUP_NORM_GROUPS = 8


def group_norm_groups(channels: int) -> int:
    """The number of GroupNorm groups of a level of ``channels`` channels: the one rule the
    networks build with (:mod:`mrdd.nn.blocks`) and :meth:`BackboneConfig.validate` checks."""
    return min(GROUP_NORM_GROUPS, channels)


@dataclass
class BackboneConfig:
    """Per-view encoder/decoder networks: a conv ResNet for image views (one level per
    channel multiplier, a stride-2 downsampling between levels), an MLP for vector views.

    Two shapes are sized from each view unless set (null, the default; issue 21, measured
    on the development suite, docs/results.md "Sizing from the data"):

    * ``channel_mults``: :meth:`mults_for`, the paper's three levels up to 32×32 and one
      more for every doubling of the side above it: ``[1, 2, 4]`` for 32×32 and 16×16,
      ``[1, 2, 4, 8]`` for 64×64 (the paper's COIL and Office setting); fewer where the
      sides do not halve evenly;
    * ``mlp_hidden``: :meth:`hidden_for`, ``[h, h/2]`` with h = 4·D rounded up to a
      multiple of 64, within [64, 512]: ``[512, 256]`` from D = 113 up, ``[64, 32]`` for
      a 10-feature view.
    """

    base_width: int = 8  # channels of the first level (the paper: 16)
    # width × m per level (null: from each image view's side, mults_for)
    channel_mults: list[int] | None = None
    num_blocks: int = 1  # residual blocks per level (the paper: 3)
    latent_channels: int = 8  # channels of the encoder's output grid
    norm: str = "batch"  # batch | group | none
    # vector views' encoder widths, the decoder mirrors them (null: from D, hidden_for)
    mlp_hidden: list[int] | None = None

    def validate(self) -> None:
        _positive(self, "base_width", "num_blocks", "latent_channels")
        for name in ("channel_mults", "mlp_hidden"):
            values = getattr(self, name)
            if values is not None and (not values or any(v <= 0 for v in values)):
                raise ConfigError(
                    f"model.backbone.{name} must be a non-empty list of positive ints or null "
                    f"(sized from the data), got {values}."
                )
        _choice(self, "norm", ("batch", "group", "none"))
        mults = self.channel_mults or [2**level for level in range(MAX_AUTO_LEVELS)]
        widths = [self.base_width * m for m in mults]
        if self.norm == "group" and any(w % group_norm_groups(w) for w in widths):
            raise ConfigError(
                f"model.backbone.norm=group splits channels into {GROUP_NORM_GROUPS} groups, "
                f"but the level widths base_width × channel_mults = {widths} are not all "
                f"multiples of {GROUP_NORM_GROUPS} (or ≤ {GROUP_NORM_GROUPS}). "
                "Change model.backbone.base_width or use norm=batch."
            )

    def mults_for(self, shape: tuple[int, ...]) -> list[int]:
        """The channel multipliers of an image view of per-sample ``shape`` (C, H, W):
        ``channel_mults`` if set, else :data:`PAPER_LEVELS` levels up to a
        :data:`PAPER_SIDE`-pixel side, one more per doubling above it (at most
        :data:`MAX_AUTO_LEVELS`), and fewer while 2^(levels−1) does not divide both sides."""
        if self.channel_mults is not None:
            return list(self.channel_mults)
        _, h, w = shape
        levels, side = PAPER_LEVELS, PAPER_SIDE
        while levels < MAX_AUTO_LEVELS and min(h, w) >= 2 * side:
            levels, side = levels + 1, 2 * side
        while levels > 1 and (h % 2 ** (levels - 1) or w % 2 ** (levels - 1)):
            levels -= 1
        return [2**level for level in range(levels)]

    def hidden_for(self, dim: int) -> list[int]:
        """The MLP encoder's hidden sizes for a vector view of ``dim`` features:
        ``mlp_hidden`` if set, else ``[h, h // 2]``, h = 4·dim rounded up to a multiple of
        64 and clipped to [64, 512] (wide enough to carry D, no wider than the paper's)."""
        if self.mlp_hidden is not None:
            return list(self.mlp_hidden)
        h = min(512, max(64, -(-4 * dim // 64) * 64))
        return [h, h // 2]


#: The paper's network for 32×32 views has three levels (an 8×8 grid); with
#: ``channel_mults`` null, views up to this side keep them (16×16 with two levels, a 1-pixel
#: patch was no better on val, docs/results.md) and larger ones get a level per doubling.
PAPER_LEVELS, PAPER_SIDE = 3, 32

#: At most this many automatic levels (widths up to base_width × 16), whatever the size.
MAX_AUTO_LEVELS = 5


@dataclass
class NetworksConfig:
    """Your own networks in place of the backbone's, per role (docs/networks.md). Each key
    is ``{}`` (the backbone's network for every view), one spec for every view
    (``{_target_: pkg.module.Class, <its keyword arguments>}``) or specs per view
    (``{view_0: {_target_: ...}, view_2: {...}}``; the views not named keep the backbone's).
    One spec serves views of different shapes: each view's network is built for its own
    shape. The package resolves ``_target_`` with importlib, so the class must be
    importable wherever the config is read (training, ``mrdd.load``). What each role
    receives and returns (N samples, ``shape`` a view's per-sample shape):"""

    # stage 1: a view N×shape → features N×F; all views' features give q(c | views)
    consistency_encoder: dict[str, Any] = field(default_factory=dict)
    consistency_decoder: dict[str, Any] = field(default_factory=dict)  # stage 1: c → the view
    # stage 2: a view N×shape → features N×F, which give q(s_v | x_v)
    specific_encoder: dict[str, Any] = field(default_factory=dict)
    specific_decoder: dict[str, Any] = field(default_factory=dict)  # stage 2: s_v‖c → the view

    def validate(self) -> None:
        for role in NETWORK_ROLES:
            for key, spec in network_specs(getattr(self, role), f"model.networks.{role}").items():
                resolve_target(spec.get("_target_"), f"{key}._target_")


#: The four networks of a view, by role (docs/networks.md).
NETWORK_ROLES = tuple(f.name for f in dataclasses.fields(NetworksConfig))


def network_specs(value: Mapping[str, Any], key: str) -> dict[str, dict[str, Any]]:
    """The specs of one role (``value``, found at config ``key``) by the key that names
    each: ``{key: spec}`` for one spec of every view, ``{key.view_<v>: spec}`` per view."""
    if not value:
        return {}
    if "_target_" in value:
        return {key: dict(value)}
    specs = {}
    for name, spec in value.items():
        if re.fullmatch(r"view_\d+", str(name)) is None or not isinstance(spec, Mapping):
            raise ConfigError(
                f"{key} must be {{}}, one spec {{_target_: pkg.module.Class, ...}} for every "
                f"view, or specs per view {{view_0: {{_target_: ...}}, ...}}; got {name!r}: "
                f"{spec!r}."
            )
        specs[f"{key}.{name}"] = dict(spec)
    return specs


def resolve_target(target: Any, key: str) -> Any:
    """The object that the import path ``target`` (``pkg.module.Class``, or
    ``pkg.module.Outer.Inner``) names; one :class:`ConfigError` naming ``key`` otherwise."""
    if not isinstance(target, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", target):
        raise ConfigError(
            f"{key} must be the import path of a network class, e.g. mypkg.nets.PatchEncoder; "
            f"got {target!r}."
        )
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module = _import_module(".".join(parts[:split]), target, key)
        if module is None:
            continue  # no such module: a shorter prefix may be one (the rest attributes)
        found = module
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                raise ConfigError(
                    f"{key}={target!r} cannot be imported: {module.__name__} has no "
                    f"{'.'.join(parts[split:])}. Check the spelling."
                )
            found = getattr(found, attribute)
        return found
    raise ConfigError(
        f"{key}={target!r} cannot be imported: no module {parts[0]} on the Python path. Put "
        "the module that defines the class on the Python path wherever the config is read "
        "(pip install it, or add its folder to PYTHONPATH)."
    )


def _import_module(name: str, target: str, key: str) -> types.ModuleType | None:
    """Module ``name``, ``None`` when there is none; a module that fails to import (its own
    error, a dependency it lacks) is one :class:`ConfigError`."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and (name == err.name or name.startswith(err.name + ".")):
            return None
        raise ConfigError(f"{key}={target!r}: importing {name} failed: {err}.") from None
    except Exception as err:  # the user's module raised while it was imported
        raise ConfigError(f"{key}={target!r}: importing {name} failed: {err!r}.") from None


@dataclass
class ModelConfig:
    """The shapes of the networks both stages train (docs/method.md); what each stage
    optimises, and with which weights, is its own section (``stage1``, ``stage2``)."""

    c_dim: int = 10  # size of the consistency code c
    v_dim: int = 10  # size of each view-specific code s_v
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    # your own encoders / decoders in place of the backbone's, per role and view (docs/networks.md)
    networks: NetworksConfig = field(default_factory=NetworksConfig)
    club_hidden: int = 128  # hidden units of each CLUB estimator (stage 2's q_θ(c | s_v))

    def validate(self) -> None:
        _positive(self, "c_dim", "v_dim", "club_hidden")
        self.backbone.validate()
        self.networks.validate()


@dataclass
class StageConfig:
    """What every stage's optimisation takes (AdamW, one learning-rate schedule per stage);
    :class:`Stage1Config` and :class:`Stage2Config` add that stage's loss weights and
    mechanics. Losses are per sample: squared error summed over a sample's pixels or
    features, KL summed over dimensions, both averaged over the batch; the weights are in
    those units. The defaults size a ~10-minute CPU run of the default dataset
    (docs/results.md, "Choosing the default"); configs/stages/paper.yaml: the paper's."""

    epochs: int = 30  # the stage's budget, unless steps is set
    # set: the budget in optimisation steps instead, turned into whole epochs of the training
    # split (epochs_for); null: epochs. Not the default: on the development suite's small
    # sets the same steps as the default's (1680 = 30 epochs of 56) scored lower on val
    # (docs/results.md, "Sizing from the data")
    steps: int | None = None
    batch_size: int = 64
    lr: float = 2e-3  # AdamW learning rate of the networks the stage trains
    weight_decay: float = 0.05  # AdamW weight decay
    # cosine: one cycle to 0 over the stage after the warm-up (no restarts); constant: fixed
    scheduler: str = "cosine"
    warmup_epochs: int = 0  # linear learning-rate warm-up at the start of the stage
    grad_clip: float | None = None  # max global gradient norm (null: no clipping)
    # batch size of the stage's no-gradient passes over the training split
    inference_batch_size: int = 1000

    def validate(self) -> None:
        _positive(self, "epochs", "batch_size", "lr", "inference_batch_size")
        if self.steps is None:
            self._check_warmup(self.epochs)
        else:
            _positive(self, "steps")
        _non_negative(self, "weight_decay", "warmup_epochs")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(
                f"{_section(self)}grad_clip must be positive or null, got {self.grad_clip}."
            )
        _choice(self, "scheduler", ("cosine", "constant"))

    def epochs_for(self, steps_per_epoch: int) -> int:
        """The stage's number of epochs when an epoch is ``steps_per_epoch`` steps:
        ``epochs``, or with ``steps`` set, ``steps / steps_per_epoch`` rounded, at least 1."""
        if self.steps is None:
            return self.epochs
        epochs = max(1, round(self.steps / steps_per_epoch))
        self._check_warmup(epochs)
        return epochs

    def _check_warmup(self, epochs: int) -> None:
        if self.warmup_epochs >= epochs:
            key = _section(self)
            budget = (
                f"{key}epochs={epochs}"
                if self.steps is None
                else f"the {epochs} epochs that {key}steps={self.steps} gives on this data"
            )
            raise ConfigError(
                f"{key}warmup_epochs={self.warmup_epochs} is not shorter than {budget}: the "
                f"learning rate would never leave its warm-up. Set {key}warmup_epochs below "
                f"{epochs}."
            )


@dataclass
class Stage1Config(StageConfig):
    """Stage 1 (MCP, docs/method.md): the consistency model learns q(c | views) from masked
    views. Its no-gradient pass re-estimates the BatchNorm statistics (``calibrate_bn``)."""

    alpha: float = 1.0  # reconstruction weight α
    beta_c: float = 0.1  # KL weight β_c of c
    mask_ratio: float = 0.7  # fraction of patches zeroed per sample and view
    # side of the masked square patches in pixels (null: patch_for, from the image sides)
    mask_patch_size: int | None = None
    # fraction of samples whose c is inferred from a random non-empty subset of their views
    # (whole-view dropout on top of the patches; every present view is still reconstructed),
    # so that c from some views matches c from all (docs/missing_views.md)
    view_dropout: float = 0.0
    # after the last epoch, re-estimate the BatchNorm statistics on unmasked training views
    # (mrdd/train/calibrate.py). Off, as in the paper: on the development suite's val it
    # cost 14 points of C on digits_edge16 for +3 on the embedded digits' C, whose val
    # C‖S_best it lowered (docs/results.md, "Sizing from the data")
    calibrate_bn: bool = False

    def validate(self) -> None:
        super().validate()
        _positive(self, "alpha")
        if self.mask_patch_size is not None:
            _positive(self, "mask_patch_size")
        _non_negative(self, "beta_c")
        check_view_dropout(self.view_dropout)
        check_mask_ratio(self.mask_ratio)

    def patch_for(self, view_shapes: Sequence[tuple[int, ...]]) -> int:
        """The masked patches' side for views of ``view_shapes``: ``mask_patch_size`` if set,
        else the largest side ≤ max(2, smallest image side / :data:`MASK_GRID`) that divides
        every image side: 2 up to 32×32 (the value chosen on val), 4 for 64×64 (the paper's),
        1 for odd sides and without images."""
        if self.mask_patch_size is not None:
            return self.mask_patch_size
        sides = [side for shape in view_shapes if len(shape) == 3 for side in shape[1:]]
        if not sides:
            return 1
        largest = max(2, min(sides) // MASK_GRID)
        return max(p for p in range(1, largest + 1) if all(side % p == 0 for side in sides))


#: Automatic masking (``stage1.mask_patch_size`` null) cuts a side larger than 32 pixels into
#: about this many patches (4-pixel patches on 64×64, the paper's); up to 32, 2-pixel ones.
MASK_GRID = 16


@dataclass
class Stage2Config(StageConfig):
    """Stage 2 (DD, docs/method.md): the view models learn q(s_v | x_v) with the consistency
    model frozen, and the CLUB estimators bound I(s_v; c). Its no-gradient pass computes
    the frozen c of every training sample once (``cache_consistent_code``)."""

    epochs: int = 15
    batch_size: int = 128
    beta_s: float = 0.1  # KL weight β_s of each s_v
    club_weight: float = 1.0  # λ, weight of the CLUB bound on I(s_v; c)
    club_lr: float = 5e-4  # AdamW learning rate of the CLUB estimators
    club_sampled: bool = False  # CLUB's negative term: one random pair per sample, not all N²
    cache_consistent_code: bool = True  # the frozen c computed once per sample (exact)

    def validate(self) -> None:
        super().validate()
        _positive(self, "club_lr")
        _non_negative(self, "beta_s", "club_weight")


@dataclass
class RuntimeConfig:
    """Run-wide settings: where and how both stages compute, what they log and save."""

    seed: int = 0  # seeds torch, numpy and the evaluation (which uses seed ... seed + R - 1)
    device: str = "auto"  # auto (CUDA when available) | cpu | cuda | cuda:N
    deterministic: bool = False  # torch.use_deterministic_algorithms
    # auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16
    precision: str = "auto"
    channels_last: bool = True  # NHWC conv weights and activations (faster on CPU and GPU)
    compile: bool = False  # torch.compile the trained networks (eager, with a warning, on failure)
    # CPU, glibc: keep freed memory for reuse instead of faulting it in anew every step
    cpu_keep_freed_memory: bool = True
    # residual blocks keep only their inputs for backward and recompute BatchNorm -> SiLU
    # there (fp32 training): less peak memory for fewer samples/s, docs/performance.md
    recompute_activations: bool = False
    log_every: int = 10  # steps between logged losses
    ckpt_every: int = 1  # epochs between resumable states (resume=<run_dir>)
    skip_nonfinite: bool = False  # skip (and count) NaN/inf steps instead of stopping the run
    eval_every: int = 1  # epochs between clusterings of a fixed validation subsample (0: off)
    # stop a stage once that val probe has not improved for this many probes, and keep the
    # stage's best weights by it (null: off; 5 cost 4-5 points of val ACC over 3 seeds, one
    # seed stopping on the probe's noise at epoch 9, docs/performance.md); needs a val split
    # and run.eval_every > 0
    plateau_patience: int | None = None
    plateau_metric: str = "acc"  # the probe score the plateau stop watches: acc | nmi | ari
    # no plateau stop before this fraction of a stage's epochs (0: from the first probe),
    # so that early probes' noise cannot end a stage that is still improving (0.5 with
    # patience 5, 3 seeds: val C within noise, val C||S_best -2.9, docs/performance.md)
    plateau_min_fraction: float = 0.0

    def validate(self) -> None:
        _positive(self, "log_every", "ckpt_every")
        _non_negative(self, "eval_every")
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"run.device must be auto, cpu or cuda[:N], got {self.device!r}.")
        _choice(self, "precision", ("auto", "fp32", "bf16"))
        _choice(self, "plateau_metric", ("acc", "nmi", "ari"))
        if self.plateau_patience is not None and self.plateau_patience <= 0:
            raise ConfigError(
                f"run.plateau_patience must be a positive number of probes or null (off), "
                f"got {self.plateau_patience}."
            )
        if not 0.0 <= self.plateau_min_fraction < 1.0:
            raise ConfigError(
                "run.plateau_min_fraction is the fraction of a stage's epochs before which it "
                f"never stops, in [0, 1); got {self.plateau_min_fraction}."
            )
        if self.plateau_patience is not None and self.eval_every == 0:
            raise ConfigError(
                "run.plateau_patience needs the val probe, but run.eval_every=0 turns it "
                "off; set run.eval_every to a positive number of epochs."
            )


#: The splits a dataset can have (``val`` only with ``dataset.val_fraction`` > 0).
SPLITS = ("train", "val", "test")

#: The probe classifiers of the evaluation (``eval.classifiers``), implemented by
#: :func:`mrdd.eval.metrics.evaluate_classification`. The names live here, not in the
#: evaluation, so that the config checks them without importing it (a lower layer).
CLASSIFIERS = ("svm", "linear")

#: The redundancy regressors (``eval.regressors``), :func:`mrdd.eval.metrics.redundancy_r2`.
REGRESSORS = ("ridge", "mlp")

#: Clustering protocols of the evaluation (``eval.clustering``): KMeans on the codes (the
#: paper's), and KMeans on their UMAP embedding fitted on train (:mod:`mrdd.eval.manifold`).
CLUSTERING_METHODS = ("kmeans", "umap")

#: How the umap method's UMAP finds neighbours (``eval.umap_knn``): umap-learn's own rule
#: (exact below 4,096 train codes, NN-descent above), or NN-descent at every size
#: (:mod:`mrdd.eval.manifold`).
UMAP_KNN = ("auto", "nndescent")


@dataclass
class EvalConfig:
    """Evaluation of the learned codes (docs/method.md, "Evaluation protocol"), and figures.
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
    # clustering protocols, each reported as its own rows (docs/evaluation.md): kmeans, the
    # paper's KMeans on the codes (the headline and every verdict's metric); umap, UMAP
    # fitted on the train split's standardised codes, then the same KMeans on the evaluated
    # split's embedded codes; [] clusters nothing
    clustering: list[str] = field(default_factory=lambda: ["kmeans", "umap"])
    # the umap method's settings: issue 24's starting values, kept after a one-change-at-a-
    # time grid on val of six datasets (docs/evaluation.md, "Choosing the settings")
    umap_components: int = 10  # dimension of the embedding KMeans clusters (>= 2: the figure)
    umap_neighbors: int = 15  # neighbours of UMAP's graph (capped below the train size)
    umap_min_dist: float = 0.0  # UMAP's min_dist: 0 packs each cluster tightly, in [0, 1]
    # how UMAP finds each code's neighbours: auto (umap-learn's own rule: exact distances,
    # computed by scikit-learn, below 4,096 train codes; NN-descent above) | nndescent
    # (approximate, at every size); docs/evaluation.md, "How neighbours are found"
    umap_knn: str = "auto"
    figures: bool = True  # write the PNG figures into the run directory
    num_figure_samples: int = 8  # samples per figure row; side of the swap grids
    embedding_samples: int = 1000  # most points in a t-SNE / UMAP plot
    progress_samples: int = 1000  # fixed val subsample clustered every run.eval_every epochs

    def validate(self) -> None:
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
        _subset(self, "clustering", CLUSTERING_METHODS)
        _choice(self, "umap_knn", UMAP_KNN)
        if self.umap_components < 2 or self.umap_neighbors < 2:
            raise ConfigError(
                "eval.umap_components and eval.umap_neighbors must be at least 2 (a 2-D view "
                "of the embedding is drawn; a UMAP graph needs 2 neighbours), got "
                f"{self.umap_components} and {self.umap_neighbors}."
            )
        if not 0.0 <= self.umap_min_dist <= 1.0:
            raise ConfigError(
                f"eval.umap_min_dist must be in [0, 1] (UMAP's spread is 1), got "
                f"{self.umap_min_dist}."
            )


@dataclass
class RunConfig:
    """Everything one ``scripts/train.py`` run needs."""

    dataset: dict[str, Any] = field(default_factory=default_dataset)  # configs/dataset/*.yaml
    model: ModelConfig = field(default_factory=ModelConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    run: RuntimeConfig = field(default_factory=RuntimeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # all: stage 1, stage 2, evaluation | consistency: stage 1 and evaluation of C |
    # disentangle: stage 2 (and evaluation) from consistency_ckpt
    stage: str = "all"
    consistency_ckpt: str | None = None  # stage-1 checkpoint that stage=disentangle starts from
    data_root: str = "data"  # root of the on-disk datasets (${data_root} in dataset configs)
    # the score scripts/train.py returns to a Hydra sweeper (Optuna): <split>/<representation>/
    # <metric> of metrics.json, e.g. val/C+S_best/acc; never a test score
    optimize_metric: str | None = None

    def validate(self) -> None:
        """Range and consistency checks (types and keys are checked by :meth:`from_dict`,
        but for the ``dataset`` section, which this types in place: its keys depend on
        the dataset, :func:`typed_dataset`)."""
        self.dataset = typed_dataset(self.dataset)
        _check_finite(dataclasses.asdict(self), "")
        _choice(self, "stage", tuple(TRAINED_SECTIONS))
        self._check_checkpoint()
        for section in (self.model, self.stage1, self.stage2, self.run, self.eval):
            section.validate()
        self._check_seeds()
        self._check_validation_split()
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

    def _check_validation_split(self) -> None:
        if self.eval.split == "val" and self.dataset["val_fraction"] == 0:
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
        if parts[0] == "val" and self.dataset["val_fraction"] == 0:
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
        seed = self.run.seed
        last = seed + self.eval.n_seeds - 1
        if seed < 0 or last > MAX_SEED:
            raise ConfigError(
                f"run.seed={seed} with eval.n_seeds={self.eval.n_seeds} uses the seeds "
                f"{seed} ... {last}, but numpy and scikit-learn take seeds in "
                f"[0, {MAX_SEED}]. Pick a seed in [0, {MAX_SEED - self.eval.n_seeds + 1}]."
            )

    @property
    def trained_sections(self) -> tuple[str, ...]:
        """The sections of the stages this run trains, in order (``stage1``, ``stage2``)."""
        return TRAINED_SECTIONS[self.stage]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """Build and validate a config from a plain (resolved) dict; sections and keys not
        given keep their defaults, unknown keys and wrong types fail. A ``dataset`` given
        replaces the default dataset (each dataset has its own keys); the keys it leaves
        out take the defaults of its schema (:data:`DATASET_SCHEMAS`). A key of the layout
        before each stage had its own section (:data:`RENAMED_KEYS`) is refused naming its
        new key; a config recorded in that layout is read with :meth:`from_record`."""
        refuse_renamed_keys(data)
        given_dataset = isinstance(data, Mapping) and "dataset" in data
        schema = cls(dataset=dict(DATASET_OPTIONS)) if given_dataset else cls()
        config = _merged(schema, data, "")
        config.validate()
        return config

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> RunConfig:
        """The config a run directory or checkpoint recorded, in today's layout or in the
        one before each stage had its own section (:func:`upgrade_record`)."""
        return cls.from_dict(upgrade_record(data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A validated copy with nested ``overrides`` merged in, e.g. ``{"eval": {"n_seeds": 3}}``.

        Unknown keys fail as in :meth:`from_dict`; keys not named keep their values.
        """
        config = _merged(self, overrides, "")
        config.validate()
        return config


#: The sections of the stages each choice of ``stage`` trains, in order.
TRAINED_SECTIONS = {
    "all": ("stage1", "stage2"),
    "consistency": ("stage1",),
    "disentangle": ("stage2",),
}

_BOTH_STAGES = ("stage1", "stage2")
#: The keys of the layout before each stage had its own section (mrdd 0.1, up to commit
#: 696fd71), each with its key(s) now. A key set for both stages names both.
RENAMED_KEYS: dict[str, tuple[str, ...]] = {
    "train.epochs": ("stage1.epochs",),
    "train.batch_size": ("stage1.batch_size",),
    "train.disentangle_epochs": ("stage2.epochs",),
    "train.disentangle_batch_size": ("stage2.batch_size",),
    **{
        f"train.{key}": tuple(f"{stage}.{key}" for stage in _BOTH_STAGES)
        for key in ("lr", "weight_decay", "scheduler", "warmup_epochs", "grad_clip")
    },
    **{
        f"train.{key}": (f"stage1.{key}",)
        for key in ("mask_ratio", "mask_patch_size", "view_dropout", "calibrate_bn")
    },
    "train.club_lr": ("stage2.club_lr",),
    "train.cache_consistent_code": ("stage2.cache_consistent_code",),
    **{
        f"train.{key}": (f"run.{key}",)
        for key in (
            "precision",
            "channels_last",
            "compile",
            "cpu_keep_freed_memory",
            "log_every",
            "ckpt_every",
            "skip_nonfinite",
            "eval_every",
            "plateau_patience",
            "plateau_metric",
        )
    },
    "model.alpha": ("stage1.alpha",),
    "model.beta_c": ("stage1.beta_c",),
    "model.beta_s": ("stage2.beta_s",),
    "model.club_weight": ("stage2.club_weight",),
    "model.club_sampled": ("stage2.club_sampled",),
    "seed": ("run.seed",),
    "device": ("run.device",),
    "deterministic": ("run.deterministic",),
}


def renamed_key_message(key: str) -> str | None:
    """The one line that refuses ``key`` (dotted) when it is a key of the old layout
    (:data:`RENAMED_KEYS`, or the old ``train`` section itself); ``None`` otherwise."""
    if key in RENAMED_KEYS:
        new = " and ".join(RENAMED_KEYS[key])
        each = " (each stage has its own)" if len(RENAMED_KEYS[key]) > 1 else ""
        return (
            f"{key} was renamed: set {new}{each}. Each stage's settings are in its own "
            'section now (docs/configuration.md, "Renamed keys").'
        )
    if key == "train" or key.startswith("train."):
        return (
            f"{key}: the train section is gone; its keys moved to stage1, stage2 and run, and "
            'its preset train=paper is stages=paper (docs/configuration.md, "Renamed keys").'
        )
    return None


def refuse_renamed_keys(data: Any) -> None:
    """One :class:`ConfigError` for the first key of the old layout in ``data`` (a config
    mapping, or the dotted keys of command-line overrides)."""
    if isinstance(data, Mapping):
        keys = [*flatten_keys(data), *(k for k, v in data.items() if isinstance(v, Mapping))]
    else:
        keys = list(data)
    for key in keys:
        message = renamed_key_message(str(key))
        if message is not None:
            raise ConfigError(message)


def upgrade_record(data: Mapping[str, Any]) -> dict[str, Any]:
    """A config recorded in the old layout (``config.json``, a checkpoint's) in today's:
    each key of :data:`RENAMED_KEYS` moved to its new key(s), stage 2's null budget
    (``train.disentangle_*: null``, "as stage 1") spelled out, and ``eval.batch_size``,
    which also sized the stages' no-gradient passes then, copied to both stages'
    ``inference_batch_size``. A config in today's layout is returned as it is."""
    tree = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    flat = flatten_keys({k: v for k, v in tree.items() if k != "dataset"})
    if "train" not in tree and not any(key in flat for key in RENAMED_KEYS):
        return tree
    train = tree.pop("train", {})
    for stage, key in (("disentangle_epochs", "epochs"), ("disentangle_batch_size", "batch_size")):
        if flat.get(f"train.{stage}", 0) is None:
            flat[f"train.{stage}"] = train.get(key, getattr(Stage1Config, key))
    for old, new_keys in RENAMED_KEYS.items():
        if old not in flat:
            continue
        section, _, name = old.rpartition(".")
        if section == "model":
            tree["model"].pop(name)
        elif not section:
            tree.pop(name)
        for new in new_keys:
            new_section, new_name = new.split(".")
            tree.setdefault(new_section, {})[new_name] = flat[old]
    if "batch_size" in tree.get("eval", {}) and "train" in data:
        for stage in _BOTH_STAGES:
            tree.setdefault(stage, {})["inference_batch_size"] = tree["eval"]["batch_size"]
    return tree


def refuse_unused_settings(config: RunConfig, named: Collection[str]) -> None:
    """A setting named on the command line (``named``) of a stage this run does not train
    would be recorded in ``config.json`` without shaping the model: ``stage=consistency``
    refuses a ``stage2.*`` key, and ``model.club_hidden`` (the size of stage 2's
    estimators). (A preset's stage-2 values, not named, stay: they are what a later stage 2
    of that preset uses.) ``stage=disentangle`` takes ``stage1`` from the checkpoint it
    loads instead (:func:`adopt_stage1_settings`)."""
    if config.stage != "consistency":
        return
    unused = [key for key in named if key.startswith("stage2.") or key == "model.club_hidden"]
    if unused:
        raise ConfigError(
            f"{unused[0]} is read only by stage 2, but stage=consistency trains stage 1 only. "
            "Drop it, or train both stages with stage=all."
        )


def adopt_stage1_settings(
    config: RunConfig, recorded: Mapping[str, Any], named: Collection[str], where: str
) -> tuple[RunConfig, list[str]]:
    """A ``stage=disentangle`` config whose ``stage1`` section is that of the checkpoint it
    loads (``recorded``: that checkpoint's config, read from ``where``), and one line per
    setting taken from it, so that ``config.json`` always describes the model it holds.

    A ``stage1`` setting named in ``named`` (the command line) that differs from the
    checkpoint's is refused, naming the key and the recorded value; every other one (a
    default, a preset's such as ``stages=paper``) is replaced by the recorded value, and
    the returned lines say so (the run logs them)."""
    mine = flatten_keys({"stage1": dataclasses.asdict(config.stage1)})
    theirs = flatten_keys({"stage1": upgrade_record(recorded).get("stage1", {})})
    changes: dict[str, Any] = {}
    for key, value in theirs.items():
        if key not in mine or mine[key] == value:
            continue
        if key in named:
            raise ConfigError(
                f"{key}={mine[key]!r} is a stage-1 setting, but stage=disentangle loads the "
                f"stage-1 model {where}, trained with {key}={value!r}. Drop {key} (the "
                "checkpoint's value is then recorded), or retrain stage 1 with stage=all."
            )
        changes[key] = value
    overrides = {"stage1": {key.split(".")[1]: value for key, value in changes.items()}}
    adopted = [f"{k}={v!r} (was {mine[k]!r})" for k, v in changes.items()]
    return config.with_overrides(overrides), adopted


def flatten_keys(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys to values (``{"stage1": {"epochs": 3}}`` → ``{"stage1.epochs": 3}``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten_keys(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


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
    ref = err.ref_type
    if typing.get_origin(ref) in (typing.Union, types.UnionType):  # an optional list: its list
        ref = next(a for a in typing.get_args(ref) if a is not type(None))
    item_types = typing.get_args(ref)
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


def _seeds(obj: Any, *names: str) -> None:
    for name in names:
        if not 0 <= getattr(obj, name) <= MAX_SEED:
            raise ConfigError(
                f"{_section(obj)}{name} must be in [0, {MAX_SEED}], got {getattr(obj, name)}."
            )


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
    "NetworksConfig": "model.networks.",
    "Stage1Config": "stage1.",
    "Stage2Config": "stage2.",
    "RuntimeConfig": "run.",
    "EvalConfig": "eval.",
    "BenchmarkConfig": "benchmark.",
}


def _section(obj: Any) -> str:
    if isinstance(obj, DatasetConfig):
        return "dataset."
    return _SECTIONS.get(type(obj).__name__, "")


@dataclass
class BenchmarkRunConfig(RunConfig):
    """``scripts/benchmark.py``'s config: a training run plus what to measure. Defined here,
    not in the script, so that every process that unpickles a composed config (a Slurm or
    submitit job) can import its type."""

    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
