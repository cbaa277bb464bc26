"""CUDA-only checks of the hot path (skipped on machines without a GPU)."""

import pytest
import torch
from helpers import make_views

from mrdd.data import Batch, BatchLoader, MultiViewData
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train import ConsistencyStage, DisentangleStage
from mrdd.train.device import uses_bf16

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_training_steps_never_wait_for_the_gpu(tiny_config):
    """Any host-device synchronisation inside a step (``.item()``, a tensor used as a
    bool, a blocking copy) raises under the sync debug mode."""
    device = torch.device("cuda")
    tiny_config.run.precision = "auto"
    assert uses_bf16(device, tiny_config.run.precision)
    data = MultiViewData(*make_views(16)).to(device)
    views, shapes = data.views, data.view_shapes
    stage1 = ConsistencyStage.around(
        ConsistencyModel(shapes, tiny_config.model), tiny_config, device
    )
    model = MRDD(shapes, tiny_config.model)
    stage2 = DisentangleStage.around(model, tiny_config, device)
    cached = DisentangleStage.around(model, tiny_config, device)
    cached.cache_codes(data, tiny_config.stage2.inference_batch_size)  # c looked up
    batch = next(iter(BatchLoader(data, 8))).to(device)
    whole = Batch.of(views)
    stage1.model.train()
    model.train()
    stage1.step(whole)  # warm-up: lazy optimiser state, kernel choice
    stage2.step(whole)
    cached.step(batch)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        terms = [stage1.step(whole), stage2.step(whole), cached.step(batch)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(torch.isfinite(v).item() for t in terms for v in t.values())


def test_the_recomputing_unit_gives_the_modules_gradients_on_the_gpu():
    """``run.recompute_activations`` on CUDA in fp32 (cuDNN's kernels, channels-last;
    TF32 convolutions, hence the tolerance)."""
    import copy

    import torch.nn.functional as F
    from torch import nn

    from mrdd.nn.recompute import norm_silu_conv, recomputes

    device = torch.device("cuda")
    torch.manual_seed(0)
    norm, conv = nn.BatchNorm2d(8).to(device), nn.Conv2d(8, 8, 3, padding=1).to(device)
    conv = conv.to(memory_format=torch.channels_last)
    ref_norm, ref_conv = copy.deepcopy(norm), copy.deepcopy(conv)
    x = torch.randn(16, 8, 12, 12, device=device).to(memory_format=torch.channels_last)
    x = x.requires_grad_(True)
    assert recomputes(x, norm, conv)
    norm_silu_conv(x, norm, conv).square().sum().backward()
    grad_x, x.grad = x.grad, None
    ref_conv(F.silu(ref_norm(x))).square().sum().backward()
    torch.testing.assert_close(grad_x, x.grad, rtol=1e-3, atol=1e-4)
    for p, ref in zip(conv.parameters(), ref_conv.parameters(), strict=True):
        torch.testing.assert_close(p.grad, ref.grad, rtol=1e-3, atol=1e-4)
