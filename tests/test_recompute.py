"""BatchNorm → SiLU → conv as one node that keeps only its input: the same numbers as the
three modules, a third of the saved tensors, and the modules wherever it does not apply."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mrdd.nn.blocks import ResBlock
from mrdd.nn.recompute import _NormSiluConv, norm_silu_conv, recomputes


def _unit(channels: int = 3, out: int = 4, stride: int = 1, momentum: float | None = 0.1):
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(channels, momentum=momentum)
    nn.init.normal_(norm.weight, 1.0, 0.3)
    nn.init.normal_(norm.bias, 0.0, 0.3)
    return norm, nn.Conv2d(channels, out, 3, stride=stride, padding=1)


def _grads(x, norm, conv, fn):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, norm, conv)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    params = [norm.weight, norm.bias, conv.weight, conv.bias]
    return out, [x.grad, *(p.grad for p in params)]


def _modules(x, norm, conv):
    return conv(F.silu(norm(x)))


@pytest.mark.parametrize("stride, momentum", [(1, 0.1), (2, 0.1), (1, None)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_it_gives_the_modules_output_gradients_and_running_statistics(
    stride, momentum, channels_last
):
    x = torch.randn(5, 3, 6, 6) * 2 + 0.5
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    norm, conv = _unit(stride=stride, momentum=momentum)
    ref_norm, ref_conv = copy.deepcopy(norm), copy.deepcopy(conv)
    for _ in range(2):  # twice: the running statistics of the second step build on the first
        assert recomputes(x.requires_grad_(True), norm, conv)
        out, grads = _grads(x, norm, conv, norm_silu_conv)
        ref_out, ref_grads = _grads(x, ref_norm, ref_conv, _modules)
        torch.testing.assert_close(out, ref_out)
        for grad, ref in zip(grads, ref_grads, strict=True):  # y recomputed: fp32 rounding
            torch.testing.assert_close(grad, ref, rtol=1e-4, atol=1e-5)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(getattr(norm, name), getattr(ref_norm, name))


def test_its_backward_is_the_derivative_of_its_forward():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    weight, bias = torch.rand(2, dtype=torch.float64) + 0.5, torch.randn(2, dtype=torch.float64)
    conv_weight, conv_bias = torch.randn(3, 2, 3, 3, dtype=torch.float64), torch.randn(3)
    inputs = [t.double().requires_grad_(True) for t in (x, weight, bias, conv_weight, conv_bias)]

    norm = nn.BatchNorm2d(2, track_running_stats=False)  # batch statistics, no running ones
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)

    def unit(x, weight, bias, conv_weight, conv_bias):
        return _NormSiluConv.apply(x, norm, conv, 0.0, weight, bias, conv_weight, conv_bias)

    assert torch.autograd.gradcheck(unit, inputs)


def _saved_bytes(fn, x, norm, conv) -> int:
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fn(x, norm, conv)
    unique = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved}
    return sum(unique.values())


def test_it_keeps_a_third_of_the_tensors_the_modules_keep():
    norm, conv = _unit(channels=8, out=8)
    x = torch.randn(16, 8, 16, 16, requires_grad=True)
    one = x.numel() * x.element_size()  # a full-resolution tensor: 128 KiB
    parameters = 8 * 8 * 9 * 4 + 4 * 8 * 4  # the conv weight, BN's γ, β and batch statistics
    assert _saved_bytes(norm_silu_conv, x, norm, conv) == one + parameters
    assert _saved_bytes(_modules, x, norm, conv) >= 3 * one


@pytest.mark.parametrize(
    "case",
    ["eval", "no_grad", "autocast", "group_norm", "sync_batch_norm", "no_grad_needed"],
)
def test_elsewhere_it_runs_the_three_modules(case):
    norm, conv = _unit()
    x = torch.randn(4, 3, 5, 5, requires_grad=case != "no_grad_needed")
    if case == "eval":
        norm.eval()
    if case == "group_norm":
        norm = nn.GroupNorm(1, 3)
    if case == "sync_batch_norm":
        norm = nn.SyncBatchNorm(3)
    if case == "no_grad_needed":
        for p in (*norm.parameters(), *conv.parameters()):
            p.requires_grad_(False)
    context = {
        "no_grad": torch.no_grad(),
        "autocast": torch.autocast("cpu", dtype=torch.bfloat16),
    }.get(case, torch.enable_grad())
    with context:
        assert not recomputes(x, norm, conv)
        if case != "sync_batch_norm":  # SyncBatchNorm's forward needs a process group
            ref_norm, ref_conv = copy.deepcopy(norm), copy.deepcopy(conv)
            torch.testing.assert_close(
                norm_silu_conv(x, norm, conv), _modules(x, ref_norm, ref_conv)
            )


def test_a_residual_block_keeps_its_parameter_names_and_its_gradients():
    torch.manual_seed(0)
    block = ResBlock(4, "batch")
    block.recompute = True
    names = [n for n, _ in block.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                     "body.3.weight", "body.3.bias", "body.5.weight", "body.5.bias"]  # fmt: skip
    reference = copy.deepcopy(block)
    x = torch.randn(6, 4, 8, 8)
    out, ref_out = block(x.requires_grad_(True)), reference.body(x) + x
    torch.testing.assert_close(out, ref_out)
    out.square().sum().backward()
    ref_out.square().sum().backward()
    # conv1's bias feeds a BatchNorm, so its true gradient is 0: both give rounding noise
    # of the size of the other gradients' last digits, hence a tolerance at their scale
    scale = max(ref.grad.abs().max() for ref in reference.parameters())
    for p, ref in zip(block.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, ref.grad, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("on", [False, True])
def test_the_run_setting_reaches_every_residual_block_of_a_stage(tiny_config, on):
    from mrdd.models import ConsistencyModel
    from mrdd.train.stages import place_model

    tiny_config.run.recompute_activations = on
    model = ConsistencyModel([(1, 8, 8), (1, 8, 8)], tiny_config.model)
    blocks = [m for m in place_model(model, tiny_config, torch.device("cpu")).modules()
              if isinstance(m, ResBlock)]  # fmt: skip
    assert blocks and all(block.recompute is on for block in blocks)


def test_stage_one_steps_give_the_same_losses_and_gradients_with_and_without_it(
    tiny_config, tiny_splits
):
    from mrdd.data.loader import BatchLoader
    from mrdd.train.stages import ConsistencyStage

    results = []
    for on in (False, True):
        torch.manual_seed(0)  # the same initial weights and the same masks
        tiny_config.run.recompute_activations = on
        stage = ConsistencyStage.build(tiny_config, tiny_splits, torch.device("cpu"))
        batch = next(iter(BatchLoader(tiny_splits.train, 8, shuffle=False)))
        first = stage.step(batch)
        grads = {n: p.grad.clone() for n, p in stage.model.named_parameters()}
        results.append(([first, stage.step(batch)], grads))  # the second on updated weights
    (terms_off, grads_off), (terms_on, grads_on) = results
    for off, on in zip(terms_off, terms_on, strict=True):
        for key in off:
            torch.testing.assert_close(on[key], off[key], rtol=1e-4, atol=1e-5)
    # the conv biases that feed only BatchNorms have a true gradient of 0: rounding noise in
    # both runs, so the tolerance is at the scale of the other gradients
    scale = max(g.abs().max() for g in grads_off.values())
    assert grads_on.keys() == grads_off.keys()
    for name, off in grads_off.items():
        torch.testing.assert_close(grads_on[name], off, rtol=1e-4, atol=1e-5 * scale, msg=name)
