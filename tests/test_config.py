"""One set of defaults (``RunConfig()`` is what ``scripts/train.py`` composes), YAML files
that hold only what differs from it, and every bad value refused up front by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_schema import register
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from mrdd.config import (
    DATASET_OPTIONS,
    MAX_SEED,
    BenchmarkConfig,
    ConfigError,
    RunConfig,
    default_dataset,
    flatten_keys,
)

ROOT = Path(__file__).resolve().parents[1]

#: What configs/experiment/paper_edge_mnist.yaml changes: the paper's networks
#: (configs/model/resnet16.yaml) and budget (configs/stages/paper.yaml).
PAPER = {
    "model.backbone.base_width": 16,
    "model.backbone.num_blocks": 3,
    "stage1.epochs": 200,
    "stage1.batch_size": 512,
    "stage1.lr": 5e-4,
    "stage2.epochs": 200,
    "stage2.batch_size": 1024,
    "stage2.lr": 5e-4,
}


def _compose(*overrides: str, name: str = "config") -> dict:
    register()
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        return OmegaConf.to_container(compose(name, list(overrides)), resolve=True)


def test_dataclass_defaults_are_the_default_run_of_the_train_script():
    composed = _compose()
    assert composed == RunConfig().to_dict()
    assert RunConfig.from_dict(composed) == RunConfig()
    assert RunConfig().dataset == {
        "name": "edge_mnist_5k",
        "best_view": None,
        "image_size": 32,
        "missing_rate": 0.0,
        "missing_seed": 0,
        "val_fraction": 0.1,
        "val_seed": 0,
    }
    assert _compose("model=default", "stages=default") == composed


def test_paper_experiment_differs_from_the_default_in_exactly_the_paper_keys():
    default, paper = flatten_keys(_compose()), flatten_keys(_compose("experiment=paper_edge_mnist"))
    assert default.keys() == paper.keys()
    differing = {key: paper[key] for key in paper if paper[key] != default[key]}
    assert differing == PAPER
    RunConfig.from_dict(_compose("experiment=paper_edge_mnist")).validate()


@pytest.mark.parametrize(
    "experiment", sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml"))
)
def test_every_experiment_composes_to_a_valid_config(experiment):
    config = RunConfig.from_dict(_compose(f"experiment={experiment}", "data_root=/d"))
    # the paper's datasets start from the paper's budget; multiple_features (not a paper
    # dataset) from the defaults'
    paper = experiment != "multiple_features"
    assert (config.stage1.epochs, config.stage2.epochs) == ((200, 200) if paper else (30, 15))
    assert config.dataset["name"] in experiment or experiment.startswith("paper")


@pytest.mark.parametrize(
    ("dataset", "keys"),
    [
        ("multiple_features", {"best_view", "root", "standardize", "seed", "test_fraction"}),
        ("edge_mnist", {"best_view", "root", "download", "image_size"}),
        ("office31", {"best_view", "root", "image_size", "seed", "test_fraction", "cache_dir"}),
    ],
)
def test_a_dataset_config_brings_its_own_keys_and_the_common_options_only(dataset, keys):
    composed = _compose(f"dataset={dataset}")["dataset"]
    assert composed == {"name": dataset, **DATASET_OPTIONS, **{k: composed[k] for k in keys}}
    assert set(composed) == {"name", *DATASET_OPTIONS, *keys}


def test_a_dataset_path_left_unset_is_named():
    with pytest.raises(ConfigError, match=r"dataset.path has no value \(\?\?\?\); set it"):
        RunConfig.from_dict(_compose("dataset=npz"))


def test_benchmark_config_composes_to_the_dataclass_defaults():
    composed = _compose("benchmark.steps=2", name="benchmark")
    assert BenchmarkConfig.from_dict(composed.pop("benchmark")) == BenchmarkConfig(steps=2)
    assert composed == RunConfig().to_dict()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stage1.epoch=3", "Could not override 'stage1.epoch'"),
        ("stage1.epochs=x", "Value 'x' of type 'str' could not be converted to Integer"),
    ],
)
def test_composition_refuses_unknown_keys_and_wrong_types(override, message):
    with pytest.raises(ConfigCompositionException) as raised:
        _compose(override)
    assert message in str(raised.value) + str(raised.value.__cause__)


def test_round_trip_through_a_plain_dict():
    cfg = RunConfig.from_dict({"model": {"c_dim": 5}, "stage1": {"epochs": 3}})
    assert cfg.model.c_dim == 5 and cfg.stage1.epochs == 3 and cfg.stage1.lr == 2e-3
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_a_given_dataset_replaces_the_default_one_and_records_its_schema_defaults():
    cfg = RunConfig.from_dict({"dataset": {"name": "npz", "path": "x.npz", "best_view": 1}})
    npz_defaults = {"standardize": True, "seed": 0, "test_fraction": 0.2}
    given = {"name": "npz", "path": "x.npz", "best_view": 1}
    assert cfg.dataset == {**DATASET_OPTIONS, **npz_defaults, **given}


def test_overrides_merge_into_a_copy():
    cfg = RunConfig()
    changed = cfg.with_overrides({"dataset": {"missing_rate": 0.5}, "eval": {"n_seeds": 3}})
    assert changed.dataset == {**default_dataset(), "missing_rate": 0.5}
    assert changed.eval.n_seeds == 3 and changed.eval.split == "test"
    assert cfg == RunConfig()
    with pytest.raises(ConfigError, match=r"Unknown config key 'eval.n_seed'"):
        cfg.with_overrides({"eval": {"n_seed": 3}})


def test_values_are_converted_to_the_declared_types():
    cfg = RunConfig.from_dict(
        {"stage1": {"lr": 1, "epochs": "3", "grad_clip": 2}, "stage2": {"club_lr": 1}}
    )
    assert cfg.stage1.lr == 1.0 and isinstance(cfg.stage1.lr, float)
    assert cfg.stage1.epochs == 3 and cfg.stage1.grad_clip == 2.0
    assert cfg.stage2.club_lr == 1.0 and isinstance(cfg.stage2.club_lr, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # unknown keys, with the valid ones and the closest one
        (
            {"modle": {}},
            r"^Unknown config key 'modle'. Did you mean 'model'\? Valid keys at the top level: "
            r"\['consistency_ckpt', ",
        ),
        (
            {"stage1": {"epoch": 3}},
            r"^Unknown config key 'stage1.epoch'. Did you mean 'stage1.epochs'\? "
            r"Valid keys of stage1: \['alpha', 'batch_size', .*'epochs'",
        ),
        (
            {"run": {"sede": 3}},
            r"^Unknown config key 'run.sede'. Did you mean 'run.seed'\? Valid keys of run: ",
        ),
        ({"model": {"backbone": {"widht": 3}}}, r"'model.backbone.widht'.*\['base_width'"),
        # wrong types
        ({"model": {"c_dim": "ten"}}, r"^model.c_dim must be an int, got 'ten'.$"),
        ({"stage1": {"epochs": 1.5}}, r"^stage1.epochs must be an int, got 1.5.$"),
        ({"stage1": {"lr": True}}, r"^stage1.lr must be a number, got True.$"),
        ({"stage2": {"grad_clip": "x"}}, r"^stage2.grad_clip must be a number or null, got 'x'.$"),
        ({"run": {"compile": "maybe"}}, r"^run.compile must be true or false, got 'maybe'."),
        ({"model": {"backbone": {"channel_mults": [1, "a"]}}}, r"mults\[1\] must be an int"),
        ({"eval": {"classifiers": "svm"}}, r"^eval.classifiers must be a list of str, got 'svm'."),
        ({"stage1": 5}, r"^stage1 must be a mapping of keys to values, got 5.$"),
        ({"dataset": 3}, r"^dataset must be a mapping, got 3.$"),
        # non-finite numbers, wherever they are
        ({"stage1": {"lr": float("nan")}}, r"^stage1.lr must be a finite number, got nan.$"),
        ({"stage2": {"lr": "inf"}}, r"^stage2.lr must be a finite number, got inf.$"),
        ({"stage1": {"grad_clip": float("inf")}}, r"^stage1.grad_clip must be a finite number"),
        ({"stage1": {"mask_ratio": float("nan")}}, r"^stage1.mask_ratio must be a finite number"),
        ({"stage2": {"beta_s": float("-inf")}}, r"^stage2.beta_s must be a finite number"),
        ({"stage2": {"club_weight": float("nan")}}, r"^stage2.club_weight must be a finite"),
        ({"dataset": {"name": "x", "missing_rate": float("nan")}}, r"^dataset.missing_rate must"),
        # ranges and choices
        ({"stage1": {"mask_ratio": 1.0}}, r"stage1.mask_ratio must be in \[0, 1\)"),
        ({"stage1": {"mask_ratio": -0.1}}, r"stage1.mask_ratio must be in \[0, 1\)"),
        ({"model": {"c_dim": 0}}, "model.c_dim must be positive"),
        ({"model": {"backbone": {"channel_mults": []}}}, "channel_mults"),
        ({"stage": "both"}, "stage must be one of"),
        ({"run": {"device": "tpu"}}, "^run.device must be auto, cpu or cuda"),
        ({"eval": {"split": "validation"}}, "eval.split must be one of"),
        ({"eval": {"embedding_samples": 1}}, r"eval.embedding_samples must be at least 2"),
        ({"dataset": {"root": "x"}}, "dataset.name is missing"),
        (
            {"model": {"backbone": {"norm": "group", "base_width": 12}}},
            r"norm=group splits channels into 8 groups, but the level widths .* \[12, 24, 48,",
        ),
        # seeds numpy and scikit-learn take
        ({"run": {"seed": -1}}, r"^run.seed=-1 with eval.n_seeds=10 uses the seeds -1 ... 8, but"),
        (
            {"run": {"seed": MAX_SEED - 8}},
            rf"uses the seeds {MAX_SEED - 8} ... {MAX_SEED + 1}, .* \[0, {MAX_SEED - 9}\]",
        ),
        # stage consistency
        ({"stage": "disentangle"}, "stage=disentangle needs the stage-1 checkpoint"),
        (
            {"consistency_ckpt": "old/consistency.pt"},
            r"^consistency_ckpt=old/consistency.pt is read only by stage=disentangle, but "
            r"stage=all trains stage 1 itself",
        ),
        (
            {"stage": "consistency", "consistency_ckpt": "c.pt"},
            r"stage=consistency trains stage 1 itself",
        ),
        # a warm-up as long as its stage (a budget in steps: tests/test_sizing.py)
        (
            {"stage1": {"epochs": 30, "warmup_epochs": 30}},
            r"^stage1.warmup_epochs=30 is not shorter than stage1.epochs=30: .* below 30.$",
        ),
        (
            {"stage2": {"epochs": 15, "warmup_epochs": 15}},
            r"^stage2.warmup_epochs=15 is not shorter than stage2.epochs=15: .* below 15.$",
        ),
        # each stage has its own budget: stage 1's longer one does not lengthen stage 2's
        (
            {"stage1": {"epochs": 100}, "stage2": {"epochs": 15, "warmup_epochs": 20}},
            r"^stage2.warmup_epochs=20 is not shorter than stage2.epochs=15",
        ),
        ({"stage2": {"steps": 0}}, r"^stage2.steps must be positive, got 0.$"),
        ({"stage2": {"epochs": None}}, r"^stage2.epochs must be an int, got None.$"),
        (
            {
                "stage": "disentangle",
                "consistency_ckpt": "c.pt",
                "stage2": {"epochs": 15, "warmup_epochs": 20},
            },
            r"not shorter than stage2.epochs=15",
        ),
    ],
)
def test_bad_values_are_refused_with_the_key_named(data, message):
    with pytest.raises(ConfigError, match=message) as raised:
        RunConfig.from_dict(data)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "data",
    [
        {"run": {"seed": MAX_SEED - 9}},  # the last seed of the evaluation is MAX_SEED
        {"stage1": {"epochs": 30, "warmup_epochs": 29}},  # shorter than stage 1's 30 epochs
        {"stage2": {"epochs": 15, "warmup_epochs": 14}},  # shorter than stage 2's 15 epochs
        {"stage2": {"steps": 100, "warmup_epochs": 20}},  # checked once the data are known
        # a stage-1 warm-up longer than stage 2's budget: each stage has its own
        {"stage1": {"epochs": 40, "warmup_epochs": 20}},
        {"stage": "disentangle", "consistency_ckpt": "c.pt", "stage1": {"epochs": 1}},
        {"model": {"backbone": {"norm": "group", "base_width": 4, "channel_mults": [1, 2, 4]}}},
    ],
)
def test_values_at_the_edge_of_the_ranges_are_accepted(data):
    RunConfig.from_dict(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"step": 3}, r"^Unknown config key 'benchmark.step'. Did you mean 'benchmark.steps'\?"),
        ({"matmul_size": {"cpu": "x"}}, r"^benchmark.matmul_size.cpu must be an int, got 'x'"),
        ({"matmul_size": {"cpu": 0}}, r"benchmark.matmul_size must map device types to positive"),
        ({"warmup": -1}, r"benchmark.warmup must be non-negative"),
    ],
)
def test_bad_benchmark_values_are_refused_with_the_key_named(data, message):
    with pytest.raises(ConfigError, match=message):
        BenchmarkConfig.from_dict(data)


def test_the_multiple_features_experiment_is_the_plain_dataset():
    """Issue 21: its unmeasured overrides scored below the plain dataset on the real files;
    it is not a paper dataset, so it holds nothing but the dataset."""
    assert _compose("experiment=multiple_features") == _compose("dataset=multiple_features")


@pytest.mark.parametrize("name", ["coil20", "coil100", "office31"])
def test_the_64px_experiments_keep_only_the_paper_settings_and_the_batch(name):
    """The paper's networks, budget, mask ratio and patch, and the batch that fits the data;
    the conv levels are the defaults' rule for 64×64 views, not an override."""
    default, experiment = (
        flatten_keys(_compose(f"dataset={name}")),
        flatten_keys(_compose(f"experiment={name}")),
    )
    differing = {key for key in experiment if experiment[key] != default[key]}
    paper = {"model.backbone.base_width", "model.backbone.num_blocks", "stage1.mask_ratio"}
    paper |= {f"{stage}.{key}" for stage in ("stage1", "stage2") for key in ("epochs", "lr")}
    assert paper | {"stage1.mask_patch_size"} <= differing
    assert differing - paper <= {"stage1.mask_patch_size", "stage1.batch_size", "stage2.batch_size"}
    assert experiment["stage1.mask_patch_size"] == 4  # the paper's, and the rule's for 64×64
