"""Edge views for Edge-MNIST-style datasets, computed in bulk in torch."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def edge_map(images: Tensor) -> Tensor:
    """Grey dilation with a 3×3 square minus the image (a morphological gradient).

    ``images`` is ``N×C×H×W``; the result has the same shape and is non-negative.
    Equals ``scipy.ndimage.grey_dilation(x, size=3) - x`` per image (borders
    are handled as scipy's default 'reflect' mode does for a max filter:
    replicating the edge pixel gives the same maximum).
    """
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    return F.max_pool2d(padded, kernel_size=3, stride=1) - images


def edge_views(images: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The two Edge-MNIST views: (digit, edge map), both resized to ``size``.

    Edges are computed on the original resolution, then both views are resized
    bilinearly and clamped to [0, 1], as docs/method.md ("Datasets") specifies.
    ``images`` must already be scaled to [0, 1].
    """
    edges = edge_map(images)
    if images.shape[-1] != size or images.shape[-2] != size:
        resize = dict(size=(size, size), mode="bilinear", align_corners=False)
        images = F.interpolate(images, **resize)
        edges = F.interpolate(edges, **resize)
    return images.clamp_(0.0, 1.0).contiguous(), edges.clamp_(0.0, 1.0).contiguous()


__all__ = ["edge_map", "edge_views"]
