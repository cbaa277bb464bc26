"""Per-view encoder and decoder networks: a conv ResNet for images, an MLP for vectors.

Both encoders map one view to a flat feature vector (``out_features``); both
decoders map a code vector back to the view's shape. :func:`make_encoder` and
:func:`make_decoder` pick the network from the view's shape, so a dataset may
mix image and vector views.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from mrdd.config import BackboneConfig, ConfigError, group_norm_groups
from mrdd.nn.recompute import norm_silu_conv


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(group_norm_groups(channels), channels)
    return nn.Identity()


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(act(norm(conv(act(norm(x)))))).

    With ``recompute`` (``run.recompute_activations``, set by the stage that trains it),
    each ``conv(act(norm(·)))`` runs through :func:`~mrdd.nn.recompute.norm_silu_conv`,
    which in fp32 training keeps only its input for backward: the same result from a third
    of the saved tensors, for two more elementwise passes in backward."""

    recompute = False

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(norm, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            _norm(norm, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if not self.recompute:
            return x + self.body(x)
        norm1, _, conv1, norm2, _, conv2 = self.body
        return x + norm_silu_conv(norm_silu_conv(x, norm1, conv1), norm2, conv2)


def _image_levels(shape: tuple[int, ...], cfg: BackboneConfig) -> tuple[list[int], int]:
    """The level widths of an image view's conv networks and their downsampling factor."""
    _, h, w = shape
    mults = cfg.mults_for(shape)
    f = 2 ** (len(mults) - 1)
    if h % f or w % f:
        raise ConfigError(
            f"An image view of size {h}×{w} cannot be downsampled {len(mults) - 1} "
            f"times (factor {f}) by model.backbone.channel_mults={mults}; "
            f"use an image size divisible by {f}, fewer levels, or channel_mults=null "
            "(levels from the image size)."
        )
    return [cfg.base_width * m for m in mults], f


class ConvEncoder(nn.Module):
    """Conv ResNet: C×H×W → flattened ``latent_channels × H/f × W/f`` features."""

    def __init__(self, shape: tuple[int, ...], cfg: BackboneConfig) -> None:
        super().__init__()
        widths, f = _image_levels(shape, cfg)
        channels, h, w = shape
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1)]
        for level, width in enumerate(widths):
            if level > 0:
                layers.append(nn.Conv2d(widths[level - 1], width, 3, stride=2, padding=1))
            layers.extend(ResBlock(width, cfg.norm) for _ in range(cfg.num_blocks))
        layers += [
            _norm(cfg.norm, widths[-1]),
            nn.SiLU(),
            nn.Conv2d(widths[-1], cfg.latent_channels, 3, padding=1),
            nn.Flatten(),
        ]
        self.net = nn.Sequential(*layers)
        self.out_features = cfg.latent_channels * (h // f) * (w // f)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: a code vector → C×H×W in [0, 1] (sigmoid)."""

    def __init__(self, in_features: int, shape: tuple[int, ...], cfg: BackboneConfig) -> None:
        super().__init__()
        widths, f = _image_levels(shape, cfg)
        widths = widths[::-1]
        channels, h, w = shape
        self.grid = (cfg.latent_channels, h // f, w // f)
        layers: list[nn.Module] = [
            nn.Linear(in_features, math.prod(self.grid)),
            nn.Unflatten(1, self.grid),
            nn.Conv2d(cfg.latent_channels, widths[0], 3, padding=1),
        ]
        for level, width in enumerate(widths):
            if level > 0:
                layers += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(widths[level - 1], width, 3, padding=1),
                ]
            layers.extend(ResBlock(width, cfg.norm) for _ in range(cfg.num_blocks))
        layers += [
            _norm(cfg.norm, widths[-1]),
            nn.SiLU(),
            nn.Conv2d(widths[-1], channels, 3, padding=1),
            nn.Sigmoid(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """MLP for a vector view: D → hidden sizes; the last hidden size is ``out_features``."""

    def __init__(self, shape: tuple[int, ...], cfg: BackboneConfig) -> None:
        super().__init__()
        hidden = cfg.hidden_for(shape[0])
        self.net = nn.Sequential(_mlp([shape[0], *hidden]), nn.SiLU())
        self.out_features = hidden[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """MLP for a vector view: code → reversed hidden sizes → D (linear output,
    because vector views are standardised, not bounded)."""

    def __init__(self, in_features: int, shape: tuple[int, ...], cfg: BackboneConfig) -> None:
        super().__init__()
        self.net = _mlp([in_features, *reversed(cfg.hidden_for(shape[0])), shape[0]])

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


def _is_image(shape: tuple[int, ...]) -> bool:
    if len(shape) not in (1, 3):
        raise ConfigError(f"A view must be a vector (D,) or an image (C, H, W); got {shape}.")
    return len(shape) == 3


def make_encoder(shape: tuple[int, ...], cfg: BackboneConfig) -> ConvEncoder | MLPEncoder:
    """The encoder for one view of per-sample ``shape``."""
    return ConvEncoder(shape, cfg) if _is_image(shape) else MLPEncoder(shape, cfg)


def make_decoder(
    in_features: int, shape: tuple[int, ...], cfg: BackboneConfig
) -> ConvDecoder | MLPDecoder:
    """The decoder from an ``in_features`` code to one view of per-sample ``shape``."""
    if _is_image(shape):
        return ConvDecoder(in_features, shape, cfg)
    return MLPDecoder(in_features, shape, cfg)


class GaussianHead(nn.Module):
    """Linear map from features to the mean and log-variance of a diagonal Gaussian."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * dim)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.linear(features).chunk(2, dim=-1)
        return mu, logvar
