"""The run.precision and run.compile options run a step on the CPU."""

import copy
import logging

import pytest
import torch
import torch._dynamo
from helpers import make_views

from mrdd.data import Batch
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train import ConsistencyStage, DisentangleStage
from mrdd.train.device import CompiledOrEager, autocast, cpu_bf16_support, maybe_compile

CPU = torch.device("cpu")


def _stage1(cfg, seed: int = 0):
    torch.manual_seed(seed)
    views, _ = make_views(8)
    model = ConsistencyModel([tuple(v.shape[1:]) for v in views], cfg.model).train()
    return ConsistencyStage.around(model, cfg, CPU), views


#: What ``auto`` picks on this CPU: bf16 where it is native (mrdd.train.device.uses_bf16).
AUTO_DTYPE = torch.bfloat16 if cpu_bf16_support().native else None


@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16", torch.bfloat16), ("fp32", None), ("auto", AUTO_DTYPE)]
)
def test_precision_sets_cpu_autocast(precision, dtype):
    with autocast(CPU, precision):
        assert (
            torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        ) == dtype


def test_bf16_autocast_trains_both_stages_on_cpu(tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg.run.precision = "bf16"
    stage, views = _stage1(cfg)
    before = [p.detach().clone() for p in stage.model.parameters()]
    terms = stage.step(Batch.of(views))
    assert all(torch.isfinite(v) and v.dtype == torch.float32 for v in terms.values())
    assert all(p.dtype == torch.float32 for p in stage.model.parameters())  # fp32 master weights
    assert any(not torch.equal(a, p) for a, p in zip(before, stage.model.parameters(), strict=True))
    model = MRDD([tuple(v.shape[1:]) for v in views], cfg.model).train()
    terms = DisentangleStage.around(model, cfg, CPU).step(Batch.of(views))
    assert all(torch.isfinite(v) for v in terms.values())


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch, caplog):
    def broken_compile(module):
        def run(*args, **kwargs):
            raise torch._dynamo.exc.TorchDynamoException("no C++ compiler found")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    module = torch.nn.Linear(3, 2)
    net = maybe_compile(module, enabled=True)
    x = torch.randn(4, 3)
    with caplog.at_level(logging.WARNING, logger="mrdd"):
        out = net(x)
        net(x)
    torch.testing.assert_close(out, module(x))
    warnings = [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(warnings) == 1  # said once, then eager without retrying
    assert "no C++ compiler found" in warnings[0].getMessage()


def test_compile_errors_that_are_not_compile_failures_propagate(monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda module: module)
    net = maybe_compile(torch.nn.Linear(3, 2), enabled=True)
    assert isinstance(net, CompiledOrEager)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        net(torch.randn(4, 5))


def test_compile_is_off_unless_asked_for(tiny_config):
    stage, _ = _stage1(tiny_config)
    assert stage.net is stage.model


@pytest.mark.slow
def test_compiled_stage1_step_matches_eager(tiny_config, monkeypatch):
    """Real torch.compile on the CPU (inductor needs a C++ compiler; ~1 min)."""
    import torch._inductor.config

    # inductor draws its own random numbers unless told to use eager's generator
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    cfg = copy.deepcopy(tiny_config)
    cfg.run.compile = True
    compiled, views = _stage1(cfg)
    eager, _ = _stage1(tiny_config)
    torch.manual_seed(1)
    got = compiled.step(Batch.of(views))
    torch.manual_seed(1)
    want = eager.step(Batch.of(views))
    if compiled.net.compiled is None:
        pytest.skip("torch.compile is unsupported here; the eager fallback ran instead")
    torch.testing.assert_close(got["loss"], want["loss"], rtol=1e-4, atol=1e-4)
