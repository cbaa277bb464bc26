"""What the loaders do to a view before training, recorded so new raw data get the same.

A model only understands inputs prepared the way its training data were: vector views
standardised with the *training* statistics, images scaled to [0, 1], laid out
``N×C×H×W`` and resized to the training size. The loaders record that per view in a
:class:`Preprocessing`, checkpoints save it, and the notebook API
(:class:`mrdd.TrainedModel`), ``scripts/encode.py`` and ``scripts/evaluate.py`` apply it
to raw inputs with the same functions the loaders use, so that a raw sample encodes to
the code its loaded copy gets. docs/preprocessing.md describes the rules for users.

Image layout: a 4-D array whose last axis looks like channels (1, 3 or 4) while its
second axis does not is taken as channels-last ``N×H×W×C`` (as PIL and most image tools
give them) and transposed to ``N×C×H×W``; the loaders log a line when they do so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mrdd.errors import DataError

log = logging.getLogger("mrdd")

#: Channel counts an image axis may have (grey, RGB, RGBA).
IMAGE_CHANNELS = (1, 3, 4)


def float32_values(x: Tensor, what: str) -> Tensor:
    """``x`` (numeric) as float32: the one conversion the loaders and the notebook API
    share. Refuses NaN/inf, and values that are finite in ``x`` but beyond the range of
    float32 (about ±3.4e38), which the conversion would turn into inf."""
    if x.dtype.is_floating_point and not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).reshape(len(x), -1).any(1).sum())
        raise DataError(
            f"{what} contains NaN or inf values in {bad} samples; clean or impute them first."
        )
    converted = x.to(torch.float32)
    if not torch.isfinite(converted).all():
        bad = int((~torch.isfinite(converted)).reshape(len(x), -1).any(1).sum())
        top = float(x.double().abs().max())
        raise DataError(
            f"{what} holds values as large as {top:.3g} (in {bad} samples), beyond the "
            f"float32 range (±{float(np.finfo(np.float32).max):.3g}) that training uses; "
            "they would overflow to inf. Rescale the view before saving it (divide by a "
            "constant, or take a log)."
        )
    return converted


def resize_images(images: Sequence[Tensor] | Tensor, size: int, chunk: int = 256) -> Tensor:
    """Stack uint8 ``C×H×W`` images (or take a uint8/float ``N×C×H×W`` tensor) and resize
    them to ``size×size`` float32 in [0, 1] with bilinear, antialiased interpolation.

    Float images (16-bit ones, see :func:`read_image`) are taken as already in [0, 1].
    Images of different sizes are allowed in a sequence; each chunk of images of equal
    size and type is resized in one call, so memory stays bounded for large datasets.
    """
    if size <= 0:
        raise DataError(f"image_size must be positive, got {size}.")
    n = len(images)
    if n == 0:
        raise DataError("No images to resize.")
    channels = int(images[0].shape[0]) if not isinstance(images, Tensor) else images.shape[1]
    out = torch.empty(n, channels, size, size, dtype=torch.float32)
    start = 0
    while start < n:
        stop = start + 1
        shape, dtype = images[start].shape, images[start].dtype
        while (
            stop < n
            and stop - start < chunk
            and (images[stop].shape, images[stop].dtype) == (shape, dtype)
        ):
            stop += 1
        batch = images[start:stop]
        batch = batch if isinstance(batch, Tensor) else torch.stack(list(batch))
        batch = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
        if tuple(batch.shape[-2:]) != (size, size):
            batch = F.interpolate(
                batch, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
        out[start:stop] = batch.clamp_(0.0, 1.0)
        start = stop
    return out


def looks_channels_last(shape: Sequence[int]) -> bool:
    """True for a 4-D ``N×H×W×C`` shape: the last axis has 1, 3 or 4 entries and the
    second does not (``(N, 3, 8, 3)`` stays channels-first: the second axis wins)."""
    return len(shape) == 4 and shape[-1] in IMAGE_CHANNELS and shape[1] not in IMAGE_CHANNELS


def image_values(x: Tensor, what: str) -> Tensor:
    """Images as float32 in [0, 1]: uint8 divided by 255, anything else taken as it is
    and refused unless it already lies in [0, 1] (float images in 0..255 or 16-bit
    ranges would otherwise reach the model 255 or 65535 times too bright)."""
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    kind = "float" if x.dtype.is_floating_point else str(x.dtype).removeprefix("torch.")
    x = float32_values(x, what)
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise DataError(
            f"{what} holds {kind} images with values in [{float(x.min()):.3g}, "
            f"{float(x.max()):.3g}]; image views must be uint8 (0..255) or float in [0, 1]. "
            "Scale them (e.g. divide 16-bit images by 65535, 0..255 floats by 255), or "
            "flatten them to N×D to use them as feature vectors."
        )
    return x


def channels_first(x: Tensor, what: str) -> tuple[Tensor, bool]:
    """``x`` as ``N×C×H×W``, and whether it was channels-last (then the loaders log it)."""
    if not looks_channels_last(tuple(x.shape)):
        return x, False
    log.warning(
        "%s has shape %s, read as channels-last N×H×W×C images and transposed to N×C×H×W "
        "%s (store N×C×H×W to skip this; see docs/preprocessing.md).",
        what,
        tuple(x.shape),
        (x.shape[0], x.shape[3], x.shape[1], x.shape[2]),
    )
    return x.permute(0, 3, 1, 2).contiguous(), True


@dataclass(frozen=True, eq=False)
class ViewPreprocessing:
    """What was done to one view. ``kind``: ``"vector"`` (``N×D``) or ``"image"``.

    ``mean`` / ``std`` (float64, ``D``): the training statistics a standardised vector
    view was centred and scaled with (``None``: used as stored). ``resized_to``: the
    side a loader resized this view's images to (``None``: taken at their stored size).
    ``channels_last``: the source stored the images ``N×H×W×C``.
    """

    kind: str
    mean: Tensor | None = None
    std: Tensor | None = None
    resized_to: int | None = None
    channels_last: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mean": self.mean,
            "std": self.std,
            "resized_to": self.resized_to,
            "channels_last": self.channels_last,
        }

    def prepare(self, x: Tensor, shape: tuple[int, ...], what: str) -> Tensor:
        """A raw batch of this view (``N×…``, any numeric type) as the model's float32
        input of per-sample ``shape``; the caller checks the resulting shape."""
        if self.kind == "vector":
            x = float32_values(x, what)
            fits = tuple(x.shape[1:]) == shape  # else the caller names the shape
            return standardized(x, self.mean, self.std) if fits and self.mean is not None else x
        if x.ndim == 3:  # N×H×W grey images, as the npz loader reads them
            x = x.unsqueeze(1)
        if x.ndim == 4 and tuple(x.shape[1:]) != shape and looks_channels_last(tuple(x.shape)):
            x = x.permute(0, 3, 1, 2)
        x = image_values(x, what)
        if self.resized_to and x.ndim == 4 and tuple(x.shape[2:]) != tuple(shape[1:]):
            x = resize_images(x, self.resized_to).to(x.device)
        return x

    def restore(self, x: Tensor) -> Tensor:
        """A model-space batch of this view in the units of the raw input (vector views
        de-standardised; images stay float in [0, 1])."""
        if self.mean is None:
            return x
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        return (x.double() * std + mean).to(x.dtype)


def standardized(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``(x - mean) / std`` in float64, returned as float32 (what training saw)."""
    return ((x.double() - mean.to(x.device)) / std.to(x.device)).float()


@dataclass(frozen=True, eq=False)
class Preprocessing:
    """The per-view :class:`ViewPreprocessing` of a dataset. ``recorded`` is False for a
    model saved before preprocessing was recorded (or data of a loader that records
    none): then vector views are used as given, and only the generic image rules apply."""

    views: tuple[ViewPreprocessing, ...]
    recorded: bool = True

    @classmethod
    def unrecorded(cls, view_shapes: Sequence[Sequence[int]]) -> Preprocessing:
        kinds = ("vector" if len(s) == 1 else "image" for s in view_shapes)
        return cls(tuple(ViewPreprocessing(k) for k in kinds), recorded=False)

    @classmethod
    def from_payload(
        cls, payload: list[dict[str, Any]] | None, view_shapes: Sequence[Sequence[int]]
    ) -> Preprocessing:
        """What a checkpoint saved (``None`` in older checkpoints: :meth:`unrecorded`)."""
        if payload is None:
            return cls.unrecorded(view_shapes)
        return cls(tuple(ViewPreprocessing(**view) for view in payload))

    def to_payload(self) -> list[dict[str, Any]] | None:
        return [v.to_payload() for v in self.views] if self.recorded else None

    @property
    def standardizes(self) -> bool:
        """Whether any vector view was standardised (raw vectors then need the stats)."""
        return any(v.mean is not None for v in self.views)

    def with_statistics(self, view: int, mean: Tensor, std: Tensor) -> Preprocessing:
        views = list(self.views)
        views[view] = replace(views[view], mean=mean, std=std)
        return replace(self, views=tuple(views))


def recorded_for(
    views: Sequence[Tensor],
    resized_to: int | None = None,
    channels_last: Sequence[bool] = (),
) -> Preprocessing:
    """The record of views a loader produced (vector statistics are added by
    :func:`mrdd.data.common.make_splits` when it standardises)."""
    flags = list(channels_last) + [False] * (len(views) - len(channels_last))
    return Preprocessing(
        tuple(
            ViewPreprocessing("vector")
            if x.ndim == 2
            else ViewPreprocessing("image", resized_to=resized_to, channels_last=flag)
            for x, flag in zip(views, flags, strict=True)
        )
    )
