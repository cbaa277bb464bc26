"""Small synthetic tensors for unit tests (importable from every test module)."""

from __future__ import annotations

import torch


def make_views(
    n: int = 16, size: int = 8, seed: int = 0
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Two image views whose content depends on a 2-class label (so there is signal)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    base = torch.rand(n, 1, size, size, generator=g) * 0.3
    base[labels == 1, :, : size // 2] += 0.6
    edge = (base - base.roll(1, dims=-1)).abs()
    return [base.clamp(0, 1), edge.clamp(0, 1)], labels
