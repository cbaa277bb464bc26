"""User networks (docs/networks.md): the page's worked example trains both stages and its
run loads; a network of the wrong shape and a target that cannot be imported are refused
with one line; the Hydra command line reaches ``model.networks``."""

from __future__ import annotations

import importlib
import json
import math
import shlex
import sys
from pathlib import Path

import pytest
import torch
from helpers import TINY_MODEL, run_train_script, tiny_run_dict, tiny_script_overrides
from helpers import write_image_npz as write_npz
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn

import mrdd
from mrdd.config import ConfigError, RunConfig
from mrdd.eval.tables import find_score
from mrdd.models import MRDD
from mrdd.train import CheckpointError, run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "patch_mlp"
SHAPES = [(1, 8, 8), (1, 8, 8)]
#: The evaluation of the tiny runs: the paper's KMeans only, no figures, no classifiers.
TINY_EVAL = {"figures": False, "clustering": ["kmeans"], "classifiers": [], "regressors": []}


def page_block(section: str, language: str) -> str:
    """The first ``language`` code block under the heading ``section`` of docs/networks.md."""
    page = (ROOT / "docs" / "networks.md").read_text()
    return page.split(f"## {section}")[1].split(f"```{language}\n")[1].split("```")[0]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The worked example of docs/networks.md, saved as the page says (``patch_mlp.py``)
    in a folder on the Python path, imported as a user's module would be."""
    code = page_block("A worked example", "python")
    folder = tmp_path_factory.mktemp("user_code")
    (folder / f"{EXAMPLE}.py").write_text(code)
    sys.path.insert(0, str(folder))
    yield importlib.import_module(EXAMPLE)
    sys.path.remove(str(folder))
    sys.modules.pop(EXAMPLE, None)


def every_role(patch: int) -> dict:
    """The example for all four roles of every view (``model.networks``)."""
    encoder = {"_target_": f"{EXAMPLE}.PatchMLPEncoder", "patch": patch, "width": 8}
    decoder = {"_target_": f"{EXAMPLE}.PatchMLPDecoder", "patch": patch, "width": 8}
    return {
        "consistency_encoder": encoder,
        "consistency_decoder": decoder,
        "specific_encoder": encoder,
        "specific_decoder": decoder,
    }


def test_the_worked_example_trains_both_stages_and_its_run_loads(example, tmp_path):
    write_npz(tmp_path / "data.npz", n=32)
    cfg = tiny_run_dict(
        tmp_path / "data.npz",
        model={"networks": every_role(patch=4)},
        stage1={"epochs": 2},
        eval=TINY_EVAL,
    )
    metrics = run(RunConfig.from_dict(cfg), tmp_path / "run")
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    for stage in ("consistency", "disentangle"):  # both stages trained the user's networks
        first, last = history[stage][0]["loss"], history[stage][-1]["loss"]
        assert math.isfinite(last) and last < first, (stage, first, last)
    assert 0.0 <= find_score(metrics["scores"], "test/C/acc") <= 1.0

    trained = mrdd.load(tmp_path / "run")
    model = trained.model
    assert [type(e).__name__ for e in model.consistency.encoders] == ["PatchMLPEncoder"]
    assert {type(d).__name__ for d in model.consistency.decoders} == {"PatchMLPDecoder"}
    assert {type(v.encoder).__name__ for v in model.specific} == {"PatchMLPEncoder"}
    # 8×8 views in 4×4 patches: 4 tokens × width 8 = 32 features per view, 2 views in c's head
    assert model.consistency.posterior.linear.in_features == 2 * 32
    saved = torch.load(tmp_path / "run" / "mrdd.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    views = [torch.rand(5, *s) for s in SHAPES]
    codes = trained.encode(views, prepared=True)
    assert codes.c.shape == (5, TINY_MODEL["c_dim"]) and codes.s[1].shape == (5, 3)


@pytest.fixture(scope="module")
def user_stage1(example, tmp_path_factory) -> Path:
    """A finished stage-1 run (``run/``, beside its ``data.npz``) with the example networks."""
    tmp = tmp_path_factory.mktemp("user_stage1")
    write_npz(tmp / "data.npz", n=32)
    cfg = tiny_run_dict(
        tmp / "data.npz",
        stage="consistency",
        model={"networks": every_role(patch=4)},
        stage1={"epochs": 1},
        eval=TINY_EVAL,
    )
    run(RunConfig.from_dict(cfg), tmp / "run")
    return tmp / "run"


def test_stage2_starts_from_a_user_stage1_only_with_the_same_networks(user_stage1, tmp_path):
    networks = every_role(patch=4)
    cfg = tiny_run_dict(
        user_stage1.parent / "data.npz",
        stage="disentangle",
        consistency_ckpt=str(user_stage1 / "consistency.pt"),
        model={"networks": {**networks, "specific_encoder": {}}},  # stage 2's own: any
        stage1={"epochs": 1},  # the checkpoint's
        stage2={"epochs": 1},
        eval=TINY_EVAL,
    )
    run(RunConfig.from_dict(cfg), tmp_path / "same")
    assert type(mrdd.load(tmp_path / "same").model.specific[0].encoder).__name__ == "ConvEncoder"
    cfg["model"]["networks"] = {}  # the backbone's stage-1 networks: not the checkpoint's
    with pytest.raises(CheckpointError, match="model.networks.consistency_decoder._target_"):
        run(RunConfig.from_dict(cfg), tmp_path / "other")


def test_a_run_whose_networks_cannot_be_imported_is_refused_naming_them(user_stage1, monkeypatch):
    monkeypatch.delitem(sys.modules, EXAMPLE)  # another process, without the user's module
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not Path(p, f"{EXAMPLE}.py").exists()])
    with pytest.raises(ConfigError) as err:
        mrdd.load(user_stage1)
    assert str(err.value).startswith(
        f"model.networks.consistency_encoder._target_='{EXAMPLE}.PatchMLPEncoder' cannot be "
        f"imported: no module {EXAMPLE} on the Python path."
    )


def test_python_api_takes_classes_per_stage_and_view(example):
    model = mrdd.build_model(
        {"model": TINY_MODEL},
        SHAPES,
        encoders={
            "consistency": example.PatchMLPEncoder,
            "specific": [None, example.PatchMLPEncoder],
        },
        decoders={"_target_": example.PatchMLPDecoder, "patch": 2},
    )
    assert isinstance(model, MRDD)
    assert type(model.consistency.encoders[0]).__name__ == "PatchMLPEncoder"
    assert [type(v.encoder).__name__ for v in model.specific] == ["ConvEncoder", "PatchMLPEncoder"]
    assert model.specific[0].decoder.patch == 2
    cfg = mrdd.with_networks(RunConfig(), encoders={"specific": {1: example.PatchMLPEncoder}})
    assert cfg.model.networks.specific_encoder == {
        "view_1": {"_target_": f"{EXAMPLE}.PatchMLPEncoder"}
    }
    assert cfg.model.networks.consistency_encoder == {}


def test_the_pages_python_example_builds_what_it_says(example):
    namespace: dict = {}
    exec(page_block("From Python", "python"), namespace)
    assert [type(v.encoder).__name__ for v in namespace["model"].specific] == [
        "PatchMLPEncoder"
    ] * 2
    networks = namespace["cfg"].model.networks
    assert networks.specific_encoder == {"view_0": {"_target_": f"{EXAMPLE}.PatchMLPEncoder"}}
    assert networks.consistency_decoder == {"_target_": f"{EXAMPLE}.PatchMLPDecoder", "patch": 4}


def test_the_default_networks_are_the_backbone_built_as_before():
    """No ``model.networks``: the same modules, in the same order, as the backbone gives."""
    model = MRDD([(1, 8, 8), (6,), (1, 8, 8)], RunConfig.from_dict({"model": TINY_MODEL}).model)
    assert model.consistency.groups == [[0, 2], [1]]
    assert [type(e).__name__ for e in model.consistency.encoders] == ["ConvEncoder", "MLPEncoder"]


class FlatDecoder(nn.Module):
    """A decoder that forgets the view's shape: it returns N×H·W, not N×1×H×W."""

    def __init__(self, in_features: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, shape[1] * shape[2])

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.linear(code)


class GridEncoder(nn.Module):
    """An encoder that returns a feature grid N×C×H×W instead of flat features."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(shape[0], 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_a_network_of_the_wrong_shape_is_refused_at_build_naming_view_role_and_shapes():
    with pytest.raises(ConfigError) as err:
        mrdd.build_model({"model": TINY_MODEL}, SHAPES, decoders={"specific": [None, FlatDecoder]})
    assert str(err.value) == (
        f"model.networks.specific_decoder ({__name__}.FlatDecoder) of view 1 must return the "
        "view, N×1×8×8; given a dummy code 2×7 it returned 2×64 (expected 2×1×8×8)."
    )
    with pytest.raises(ConfigError, match=r"consistency_encoder .*GridEncoder\) of view 0 must"):
        mrdd.build_model({"model": TINY_MODEL}, SHAPES, "consistency", encoders=GridEncoder)
    with pytest.raises(ConfigError, match="it returned 2×2×8×8 \\(expected 2×F, F > 0\\)"):
        mrdd.build_model({"model": TINY_MODEL}, SHAPES, "consistency", encoders=GridEncoder)


class NormedEncoder(nn.Module):
    """A user encoder with BatchNorm, whose statistics a forward in training mode moves."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + 1.0).flatten(1)


def test_the_build_check_leaves_a_network_in_its_mode_and_its_statistics_alone():
    model = mrdd.build_model({"model": TINY_MODEL}, SHAPES, "consistency", encoders=NormedEncoder)
    norm = model.encoders[0].norm
    assert model.training and norm.training
    assert int(norm.num_batches_tracked) == 0 and torch.equal(norm.running_mean, torch.zeros(1))
    assert model.posterior.linear.in_features == 2 * 64  # F read from the dummy batch


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("no_such_pkg.Net", "no module no_such_pkg on the Python path"),
        ("torch.nn.NoSuchNet", "torch.nn has no NoSuchNet"),
        ("not a path", "must be the import path of a network class"),
    ],
)
def test_a_target_that_cannot_be_imported_is_one_config_error(target, says):
    with pytest.raises(ConfigError, match="^model.networks.specific_encoder.view_1._target_") as e:
        RunConfig.from_dict(
            {"model": {"networks": {"specific_encoder": {"view_1": {"_target_": target}}}}}
        )
    assert says in str(e.value) and "\n" not in str(e.value)


def test_a_per_view_spec_for_a_view_the_data_lack_is_refused():
    with pytest.raises(ConfigError, match="view_2 names a view the data do not have: they have 2"):
        mrdd.build_model({"model": TINY_MODEL}, SHAPES, encoders=[None, None, "torch.nn.Flatten"])


def compose_run(*overrides: str) -> RunConfig:
    from config_schema import register

    register()
    with initialize_config_dir(str(ROOT / "configs"), version_base="1.3"):
        composed = compose("config", list(overrides))
    return RunConfig.from_dict(OmegaConf.to_container(composed, resolve=True))


def test_hydra_command_line_sets_a_role_and_a_view(example):
    cfg = compose_run(
        f"++model.networks.consistency_encoder={{_target_: {EXAMPLE}.PatchMLPEncoder, patch: 2}}",
        f"+model.networks.specific_decoder.view_1._target_={EXAMPLE}.PatchMLPDecoder",
    )
    assert cfg.model.networks.consistency_encoder == {
        "_target_": f"{EXAMPLE}.PatchMLPEncoder",
        "patch": 2,
    }
    assert cfg.model.networks.specific_decoder == {
        "view_1": {"_target_": f"{EXAMPLE}.PatchMLPDecoder"}
    }


def test_the_pages_train_command_composes_the_example_for_every_role(example):
    command = shlex.split(page_block("A worked example", "bash").replace("\\\n", " "))
    cfg = compose_run(*(arg for arg in command if arg.startswith("++")))
    for role in ("consistency_encoder", "specific_encoder"):
        assert getattr(cfg.model.networks, role) == {
            "_target_": f"{EXAMPLE}.PatchMLPEncoder",
            "patch": 4,
        }
    model = mrdd.build_model(cfg, [(1, 32, 32), (1, 32, 32)])
    assert {type(d).__name__ for d in model.consistency.decoders} == {"PatchMLPDecoder"}


def test_the_train_script_refuses_a_bad_target_in_one_line(tmp_path, monkeypatch, capsys):
    write_npz(tmp_path / "data.npz")
    with pytest.raises(SystemExit) as exit_:
        run_train_script(
            monkeypatch,
            *tiny_script_overrides(tmp_path / "data.npz"),
            "++model.networks.consistency_encoder={_target_: no_such_pkg.Net}",
            f"hydra.run.dir={tmp_path / 'run'}",
        )
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith(
        "error: model.networks.consistency_encoder._target_='no_such_pkg.Net' cannot be imported"
    )
    assert not (tmp_path / "run" / "consistency.pt").exists()
