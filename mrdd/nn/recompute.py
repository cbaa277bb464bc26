"""BatchNorm → SiLU → conv as one autograd node that keeps only its input for backward.

Every residual block of the conv networks (:class:`mrdd.nn.blocks.ResBlock`) runs
``conv(silu(bn(x)))`` twice. Run as three modules, autograd keeps three full-resolution
tensors per unit for backward: ``x`` (BatchNorm's input), ``bn(x)`` (SiLU's input) and
``silu(bn(x))`` (the conv's input); at the paper's Edge-MNIST setting those are most of a
stage's peak memory (docs/performance.md, "Memory at the paper setting"). The unit here
keeps ``x`` and the batch statistics and recomputes the two elementwise tensors in backward,

    y = (x − μ_B) · γ / √(σ²_B + ε) + β,   a = silu(y),   out = W ∗ a + b,

then runs the same backward kernels the three modules would (``convolution_backward``,
``silu_backward``, ``native_batch_norm_backward``). The conv is never recomputed, so the
extra work is two elementwise passes per unit.

It applies only where it is exact and worth it: a plain ``nn.BatchNorm2d`` in training mode
with batch statistics, a gradient being recorded, no autocast (bf16 already halves the saved
tensors, and its casts would have to be replayed) and no ``torch.compile`` tracing (the
compiler plans its own recomputation). Everywhere else :func:`norm_silu_conv` runs the
three modules unchanged, so the weights, their names and the results are the same either
way; the running statistics are updated exactly as ``nn.BatchNorm2d`` updates them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def norm_silu_conv(x: Tensor, norm: nn.Module, conv: nn.Conv2d) -> Tensor:
    """``conv(silu(norm(x)))`` (x: B×C×H×W), as one node keeping only ``x`` where
    :func:`recomputes` says so, else as the three modules."""
    if not recomputes(x, norm, conv):
        return conv(F.silu(norm(x)))
    momentum = norm.momentum
    if norm.track_running_stats:
        norm.num_batches_tracked.add_(1)
        if momentum is None:  # cumulative average, as nn.BatchNorm2d computes it
            momentum = 1.0 / float(norm.num_batches_tracked)
    return _NormSiluConv.apply(
        x, norm, conv, momentum or 0.0, norm.weight, norm.bias, conv.weight, conv.bias
    )


def recomputes(x: Tensor, norm: nn.Module, conv: nn.Conv2d) -> bool:
    """Whether :func:`norm_silu_conv` runs as the one recomputing node (see the module)."""
    return (
        type(norm) is nn.BatchNorm2d  # not SyncBatchNorm, GroupNorm or Identity
        and norm.training
        and norm.affine
        and torch.is_grad_enabled()
        and (x.requires_grad or norm.weight.requires_grad or conv.weight.requires_grad)
        and not torch.is_autocast_enabled(x.device.type)
        and not torch.compiler.is_compiling()
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and tuple(conv.dilation) == (1, 1)
    )


class _NormSiluConv(torch.autograd.Function):
    """The unit's forward and its backward from ``x`` (module docstring, the equation).
    ``params``: BatchNorm's γ and β, the conv's weight and bias (``None`` without one),
    passed as tensors so that autograd tracks them; the running statistics, ε, stride and
    padding are read from the modules."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, norm: nn.BatchNorm2d, conv: nn.Conv2d, momentum: float, *params
    ) -> Tensor:
        weight, bias, conv_weight, conv_bias = params
        y, mean, invstd = torch.native_batch_norm(
            x, weight, bias, norm.running_mean, norm.running_var, True, momentum, norm.eps
        )
        out = F.conv2d(F.silu(y), conv_weight, conv_bias, conv.stride, conv.padding)
        ctx.save_for_backward(x, weight, bias, mean, invstd, conv_weight)
        ctx.config = (norm.eps, conv.stride, conv.padding, conv_bias is not None)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias, mean, invstd, conv_weight = ctx.saved_tensors
        eps, stride, padding, has_bias = ctx.config
        need_x, _, _, _, need_weight, need_bias, need_conv_weight, need_conv_bias = (
            ctx.needs_input_grad
        )
        # y again in one pass: BatchNorm's inference kernel with the batch's statistics
        var = invstd.pow(-2) - eps
        y = torch.batch_norm(x, weight, bias, mean, var, False, 0.0, eps, False)
        grad_a, grad_conv_weight, grad_conv_bias = torch.ops.aten.convolution_backward(
            grad_out, F.silu(y), conv_weight, [conv_weight.shape[0]] if has_bias else None,
            list(stride), list(padding), [1, 1], False, [0, 0], 1,
            [need_x or need_weight or need_bias, need_conv_weight, has_bias and need_conv_bias],
        )  # fmt: skip
        grad_x = grad_weight = grad_bias = None
        if grad_a is not None:
            grad_x, grad_weight, grad_bias = torch.ops.aten.native_batch_norm_backward(
                torch.ops.aten.silu_backward(grad_a, y), x, weight, None, None, mean, invstd,
                True, eps, [need_x, need_weight, need_bias],
            )  # fmt: skip
        return grad_x, None, None, None, grad_weight, grad_bias, grad_conv_weight, grad_conv_bias
