"""Data-parallel training in 2 CPU processes (gloo, torchrun's environment) equals one process.

Each rank takes half of every global batch and DDP averages the gradients, so a
step must move the weights exactly as one process does on the whole batch (up
to float summation order). Two things would break that equality without being
bugs, and the test removes them:

* BatchNorm would normalise with each rank's shard statistics (PyTorch has no
  SyncBatchNorm on CPU; on CUDA mrdd uses it), so the networks have no
  normalisation (``norm=none``). GroupNorm is per sample and would be
  equivalent too, but the conv bias just before it gets a gradient that is zero
  up to rounding (~1e-8), which AdamW's first step (g/√v) turns into ±lr, so the
  weights would differ by rounding noise alone;
* the sampling noise of two shards cannot equal that of one batch drawn from
  one generator, so masking is off and the reparameterisation returns the mean.

The CLUB term stays on: its negative pairs are averaged over the global batch
(the stage all-reduces the moments of ``c``), so it is equivalent too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from helpers import TINY_MODEL, TINY_MODEL_OVERRIDES, make_views, write_image_npz

import mrdd.models.consistency
import mrdd.models.specific
from mrdd.config import RunConfig
from mrdd.data import Batch, BatchLoader, MultiViewData
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train import ConsistencyStage, DisentangleStage, run
from mrdd.train.distributed import DistContext, distributed_session

WORLD_SIZE = 2
GLOBAL_BATCH = 8
CPU = torch.device("cpu")


def _config(dataset: dict) -> RunConfig:
    backbone = {**TINY_MODEL["backbone"], "norm": "none"}
    return RunConfig.from_dict(
        {
            "dataset": dataset,
            "model": {**TINY_MODEL, "backbone": backbone},
            "stage1": {"epochs": 1, "batch_size": GLOBAL_BATCH, "lr": 1e-2, "mask_ratio": 0.0},
            "stage2": {"epochs": 1, "batch_size": GLOBAL_BATCH, "lr": 1e-2},
            "run": {"device": "cpu", "log_every": 1, "eval_every": 0, "precision": "fp32"},
            # KMeans only: a spawned rank's first UMAP would compile numba kernels for ~15 s
            "eval": {
                "n_seeds": 1,
                "classifiers": [],
                "regressors": [],
                "figures": False,
                "clustering": ["kmeans"],
            },
        }
    )


def _mean(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu


def _without_noise() -> None:
    mrdd.models.consistency.reparameterize = _mean
    mrdd.models.specific.reparameterize = _mean


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights and gradients: equal weights after one AdamW step do not prove equal
    gradients (Adam's first step is insensitive to their scale); equal gradients do."""
    out = {}
    for name, p in module.named_parameters():
        out[name] = p.detach().clone()
        if p.grad is not None:
            out[name + ".grad"] = p.grad.clone()
    return out


def _one_step_of_each_stage(cfg: RunConfig, views: list[torch.Tensor], ctx: DistContext) -> dict:
    shapes = [tuple(x.shape[1:]) for x in views]
    torch.manual_seed(0)
    consistency = ConsistencyModel(shapes, cfg.model).train()
    ConsistencyStage.around(consistency, cfg, CPU, ctx).step(Batch.of(views))
    model = MRDD(shapes, cfg.model)
    model.consistency.load_state_dict(consistency.state_dict())
    model.train()
    DisentangleStage.around(model, cfg, CPU, ctx).step(Batch.of(views))
    return {"stage1": _snapshot(consistency), "stage2": _snapshot(model)}


def _global_batch() -> MultiViewData:
    views, labels = make_views(GLOBAL_BATCH)
    return MultiViewData(views, labels)


def _worker(rank: int, ports: list[int], tmp: Path, dataset: dict) -> None:
    """One rank, started with the environment torchrun would give it."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE)
    )
    torch.set_num_threads(1)
    _without_noise()
    cfg = _config(dataset)
    os.environ["MASTER_PORT"] = str(ports[0])
    with distributed_session(CPU) as (ctx, _):
        loader = BatchLoader(
            _global_batch(), GLOBAL_BATCH, shuffle=False, shard=(ctx.rank, ctx.world_size)
        )
        views = next(iter(loader)).views
        torch.save(_one_step_of_each_stage(cfg, views, ctx), tmp / f"step_rank{rank}.pt")
    os.environ["MASTER_PORT"] = str(ports[1])
    run(cfg, tmp / f"run_rank{rank}")  # joins the process group from the environment itself


def _write_dataset(path: Path) -> dict:
    """16 training and 8 test samples: two global batches per epoch."""
    write_image_npz(path, n=24, split=np.array([0] * 16 + [1] * 8))
    return {"name": "npz", "path": str(path)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("ddp")
    dataset = _write_dataset(tmp / "tiny.npz")
    ports = [_free_port(), _free_port()]
    mp.spawn(_worker, args=(ports, tmp, dataset), nprocs=WORLD_SIZE, join=True)
    return tmp, dataset


@pytest.fixture
def no_noise(monkeypatch):
    monkeypatch.setattr(mrdd.models.consistency, "reparameterize", _mean)
    monkeypatch.setattr(mrdd.models.specific, "reparameterize", _mean)


def _assert_same(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-6)


def test_a_ddp_step_equals_one_process_on_the_global_batch(two_ranks, no_noise):
    tmp, dataset = two_ranks
    data = _global_batch()
    expected = _one_step_of_each_stage(_config(dataset), data.views, DistContext())
    assert any(k.endswith(".grad") for k in expected["stage2"])
    for rank in range(WORLD_SIZE):
        got = torch.load(tmp / f"step_rank{rank}.pt", weights_only=True)
        for stage in ("stage1", "stage2"):
            _assert_same(got[stage], expected[stage])


def test_a_ddp_run_trains_like_one_process_and_only_rank_0_writes(two_ranks, no_noise):
    tmp, dataset = two_ranks
    assert not (tmp / "run_rank1").exists()
    ranked = tmp / "run_rank0"
    assert {"config.json", "consistency.pt", "mrdd.pt", "metrics.json"} <= {
        p.name for p in ranked.iterdir()
    }
    single = tmp / "single"
    run(_config(dataset), single)
    for name in ("consistency.pt", "mrdd.pt"):
        got = torch.load(ranked / name, weights_only=True)
        want = torch.load(single / name, weights_only=True)
        _assert_same(got["state_dict"], want["state_dict"])
        # logged loss terms: the mean over ranks of their shard means = the global-batch mean
        for a, b in zip(got["history"], want["history"], strict=True):
            for k in b:
                if k not in ("seconds", "samples_per_s", "elapsed_s"):
                    assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k
    environment = json.loads((ranked / "metrics.json").read_text())["environment"]
    assert environment["processes"] == WORLD_SIZE


@pytest.mark.slow
def test_torchrun_trains_with_the_train_script_and_one_run_directory(tmp_path):
    """The documented command, end to end: ``torchrun --nproc_per_node=2 scripts/train.py``."""
    dataset = _write_dataset(tmp_path / "tiny.npz")
    overrides = [
        "dataset=npz",
        f"dataset.path={dataset['path']}",
        "stage1.epochs=1",
        f"stage1.batch_size={GLOBAL_BATCH}",
        "stage2.epochs=1",  # the defaults give stage 2 its own budget
        f"stage2.batch_size={GLOBAL_BATCH}",
        *TINY_MODEL_OVERRIDES,
        "eval.n_seeds=1",
        "eval.classifiers=[]",
        "eval.regressors=[]",
        "run.eval_every=0",
        "run.device=cpu",
    ]
    script = Path(__file__).resolve().parents[1] / "scripts" / "train.py"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    result = subprocess.run(
        [*cmd, str(script), *overrides], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs").glob("*/*")  # rank 1 made no directory of its own
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["environment"]["processes"] == 2
    assert (run_dir / "mrdd.pt").is_file() and (run_dir / ".hydra" / "config.yaml").is_file()
