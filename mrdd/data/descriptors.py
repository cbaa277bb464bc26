"""Classical handwriting descriptors of grey digit images, computed in bulk with NumPy.

They make the vector views of the development suite (:mod:`mrdd.data.suite`) in the
spirit of UCI Multiple Features: each describes the same digit by a different, classical
measurement (local ink density, gradient directions, spatial frequencies, projections),
so no view is a copy of another and each keeps something the others lose. The stroke
skeleton (:func:`skeleton`) is an image view: the digit with its pen width removed.

Every function takes ``N×H×W`` float images in [0, 1] and is deterministic; none is fitted
to data (the suite's PCA view is fitted separately, on training rows only).
"""

from __future__ import annotations

import numpy as np

#: Orientation bins of :func:`orientation_histograms` (unsigned directions, 0..π).
ORIENTATION_BINS = 8


def block_means(images: np.ndarray, block: int) -> np.ndarray:
    """Mean ink of every ``block×block`` tile (``N × (H/block)·(W/block)``): the digit at a
    coarse resolution, like the pixel-average view of Multiple Features."""
    n, h, w = images.shape
    if h % block or w % block:
        raise ValueError(f"block={block} does not divide the {h}×{w} images.")
    tiles = images.reshape(n, h // block, block, w // block, block)
    return tiles.mean(axis=(2, 4)).reshape(n, -1)


def orientation_histograms(images: np.ndarray, cell: int) -> np.ndarray:
    """Histograms of gradient orientation per ``cell×cell`` tile, weighted by gradient
    magnitude (a plain HOG without block normalisation), each sample's vector scaled to
    unit length so that stroke contrast does not dominate:
    ``N × (H/cell)·(W/cell)·ORIENTATION_BINS``."""
    n, h, w = images.shape
    if h % cell or w % cell:
        raise ValueError(f"cell={cell} does not divide the {h}×{w} images.")
    gy, gx = np.gradient(images, axis=(1, 2))
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # a stroke's two sides count as one direction
    bins = np.minimum((angle / np.pi * ORIENTATION_BINS).astype(int), ORIENTATION_BINS - 1)
    cells_y, cells_x = np.arange(h) // cell, np.arange(w) // cell
    cell_id = (cells_y[:, None] * (w // cell) + cells_x[None, :]) * ORIENTATION_BINS
    slot = (cell_id[None] + bins).reshape(n, -1)
    per_sample = (h // cell) * (w // cell) * ORIENTATION_BINS
    offset = (np.arange(n) * per_sample)[:, None]
    hist = np.bincount((slot + offset).ravel(), magnitude.reshape(n, -1).ravel(), n * per_sample)
    hist = hist.reshape(n, per_sample)
    return hist / np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-12)


def fourier_magnitudes(images: np.ndarray, frequencies: int) -> np.ndarray:
    """Magnitudes of the image's 2-D Fourier coefficients with ``|k_y|, k_x < frequencies``,
    divided by the total ink (the zero frequency, then left out): invariant to where the
    digit sits in the frame and to its overall intensity. A real image's spectrum is
    symmetric (``|F(-k)| = |F(k)|``), so only one of each symmetric pair is kept:
    ``N × (frequencies - 1 + (frequencies - 1)(2·frequencies - 1))``."""
    spectrum = np.abs(np.fft.rfft2(images))  # N × H × (W/2 + 1): k_x ≥ 0 only
    ink = np.maximum(spectrum[:, :1, :1], 1e-12)
    f = frequencies
    ky = np.r_[0:f, -(f - 1) : 0]  # k_y = 0..f-1, then -(f-1)..-1
    low = spectrum[:, ky][:, :, :f] / ink
    kx0 = low[:, 1:f, 0]  # k_x = 0: k_y and -k_y are a symmetric pair, keep k_y > 0
    return np.concatenate([kx0, low[:, :, 1:].reshape(len(images), -1)], axis=1)


def ink_profiles(images: np.ndarray) -> np.ndarray:
    """The ink in every row and every column (``N × (H + W)``): the projection profiles of
    optical character recognition, blind to where along a row the ink lies."""
    return np.concatenate([images.sum(axis=2), images.sum(axis=1)], axis=1)


def skeleton(ink: np.ndarray) -> np.ndarray:
    """Zhang–Suen thinning of binary ``N×H×W`` images: strokes reduced to one-pixel-wide
    centre lines that keep their shape and connectivity but lose their width (how thick
    the pen was), all images thinned together. Returns a bool array of the same shape."""
    out = np.asarray(ink, dtype=bool).copy()
    while True:
        changed = False
        for first_pass in (True, False):
            p = _neighbours(out)  # P2..P9: N, NE, E, SE, S, SW, W, NW
            count = p.sum(axis=0)
            rises = (~p & np.roll(p, -1, axis=0)).sum(axis=0)  # 0→1 steps around the pixel
            n_, e, s, w = p[0], p[2], p[4], p[6]
            if first_pass:
                keep_side = ~(n_ & e & s) & ~(e & s & w)
            else:
                keep_side = ~(n_ & e & w) & ~(n_ & s & w)
            remove = out & (count >= 2) & (count <= 6) & (rises == 1) & keep_side
            if remove.any():
                out &= ~remove
                changed = True
        if not changed:
            return out


def _neighbours(images: np.ndarray) -> np.ndarray:
    """The eight neighbours of every pixel, clockwise from north (``8×N×H×W``; pixels
    outside the frame count as background)."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    h, w = images.shape[1:]
    offsets = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
    return np.stack([padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in offsets])
