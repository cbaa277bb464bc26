"""Office-31 as 3-view data: the domains amazon, dslr and webcam are the views
(docs/method.md, "Datasets").

Layout (the standard ``domain_adaptation_images.tar.gz``, unpacked)::

    <root>/amazon/images/<class>/*.jpg
    <root>/dslr/images/<class>/*.jpg
    <root>/webcam/images/<class>/*.jpg

with the same 31 class folders in every domain. Protocol: images are decoded, resized
to ``image_size`` (bilinear, antialiased) as RGB; per class, every domain is padded to
the largest domain's count with colour-jittered copies of its own images (cycling
through them in file-name order; brightness, contrast, saturation and hue factors drawn
from a generator seeded with ``seed``), and the i-th images of the three domains form
sample i. Then a seeded stratified train/test split.

The paired tensors are built once and cached (``.pt``, uint8) in ``cache_dir``
(default ``$XDG_CACHE_HOME/mrdd/office31`` or ``~/.cache/mrdd/office31``), keyed by
``image_size``, ``seed`` and the list of source files; later runs load the cache.
Nothing is ever written under ``root``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

from mrdd.data.base import DataError, DatasetSplits
from mrdd.data.common import (
    LoadedData,
    check_split_options,
    describe_missing,
    make_splits,
    read_image,
)
from mrdd.data.preprocess import recorded_for, resize_images
from mrdd.data.registry import register_dataset

DOMAINS = ("amazon", "dslr", "webcam")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: ColorJitter ranges of the padding copies: brightness, contrast, saturation factors in
#: [1 - x, 1 + x]; hue shift in [-h, h] (fractions of a full turn).
JITTER = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}
#: Bump when the protocol changes, so stale caches are not reused.
CACHE_VERSION = 1
SOURCE = "https://faculty.cc.gatech.edu/~judy/domainadapt/ (domain_adaptation_images.tar.gz)"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mrdd" / "office31"


def _list_files(root: Path) -> tuple[list[str], dict[str, list[list[Path]]]]:
    """Class names and, per class, the sorted image files of each domain."""
    layout = f"<root>/{{{','.join(DOMAINS)}}}/images/<class>/*.jpg"
    missing = [d for d in DOMAINS if not (root / d / "images").is_dir()]
    if missing:
        folders = ", ".join(str(root / d / "images") for d in missing)
        raise DataError(
            f"office31: missing domain folder(s) {folders}. "
            f"Expected the layout {layout} (31 class folders per domain). Get the images from "
            f"{SOURCE} and unpack them so that root points at the folder holding "
            f"{', '.join(DOMAINS)}."
        )
    classes_per_domain = {
        d: sorted(p.name for p in (root / d / "images").iterdir() if p.is_dir()) for d in DOMAINS
    }
    classes = classes_per_domain[DOMAINS[0]]
    for d in DOMAINS[1:]:
        if classes_per_domain[d] != classes:
            only_a = sorted(set(classes) - set(classes_per_domain[d]))
            only_d = sorted(set(classes_per_domain[d]) - set(classes))
            raise DataError(
                f"office31: the class folders of {DOMAINS[0]} and {d} differ "
                f"(only in {DOMAINS[0]}: {only_a or '-'}; only in {d}: {only_d or '-'}). "
                f"Every domain needs the same class folders ({layout})."
            )
    if len(classes) < 2:
        raise DataError(
            f"office31: found {len(classes)} class folder(s) under {root}; expected 31."
        )
    files: dict[str, list[list[Path]]] = {}
    empty = []
    for c in classes:
        files[c] = []
        for d in DOMAINS:
            fs = sorted(
                p
                for p in (root / d / "images" / c).iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not fs:
                empty.append(f"{d}/images/{c}")
            files[c].append(fs)
    if empty:
        raise DataError(
            f"office31: no images in {describe_missing(empty)} under {root}; every class "
            "needs at least one image in every domain."
        )
    return classes, files


def _cache_key(root: Path, files: dict[str, list[list[Path]]], image_size: int, seed: int) -> str:
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}|{image_size}|{seed}|{sorted(JITTER.items())}|{root}".encode())
    for c, domains in files.items():
        for fs in domains:
            for p in fs:
                h.update(f"|{c}/{p.relative_to(root)}:{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


def color_jitter(image: Tensor, g: torch.Generator) -> Tensor:
    """Colour-jitter one float RGB ``3×H×W`` image with factors drawn from ``g``."""
    import torchvision.transforms.v2.functional as TF

    def factor(x: float) -> float:
        return float(1.0 + (torch.rand((), generator=g) * 2.0 - 1.0) * x)

    b, c, s = factor(JITTER["brightness"]), factor(JITTER["contrast"]), factor(JITTER["saturation"])
    h = float((torch.rand((), generator=g) * 2.0 - 1.0) * JITTER["hue"])
    image = TF.adjust_brightness(image, b)
    image = TF.adjust_contrast(image, c)
    image = TF.adjust_saturation(image, s)
    image = TF.adjust_hue(image, h)
    return image.clamp(0.0, 1.0)


def _build(
    files: dict[str, list[list[Path]]], image_size: int, seed: int
) -> tuple[list[Tensor], Tensor, Tensor]:
    """Paired uint8 views, labels, and a per-view mask of jittered (padded) samples."""
    g = torch.Generator().manual_seed(seed)
    views: list[list[Tensor]] = [[] for _ in DOMAINS]
    padded: list[list[Tensor]] = [[] for _ in DOMAINS]
    labels = []
    for label, domains in enumerate(files.values()):
        target = max(len(fs) for fs in domains)
        for v, fs in enumerate(domains):
            images = resize_images([read_image(p, "RGB") for p in fs], image_size)
            copies = [color_jitter(images[k % len(fs)], g) for k in range(target - len(fs))]
            if copies:
                images = torch.cat([images, torch.stack(copies)])
            views[v].append(images.mul_(255.0).round_().to(torch.uint8))
            mask = torch.zeros(target, dtype=torch.bool)
            mask[len(fs) :] = True
            padded[v].append(mask)
        labels.append(torch.full((target,), label, dtype=torch.long))
    return (
        [torch.cat(v) for v in views],
        torch.cat(labels),
        torch.stack([torch.cat(m) for m in padded], 1),
    )


@register_dataset("office31")
def load_office31(
    root: str = "data/office31",
    image_size: int = 64,
    seed: int = 0,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
) -> DatasetSplits:
    """Office-31: amazon / dslr / webcam as 3 views, padded by colour jitter, cached."""
    check_split_options(seed, test_fraction)
    if not isinstance(image_size, int) or image_size <= 0:
        raise DataError(f"office31: image_size must be a positive integer, got {image_size!r}.")
    base = Path(root).expanduser().resolve()
    classes, files = _list_files(base)
    path = _cache_path(base, files, image_size, seed, cache_dir)
    cache = path.parent
    data = None
    if path.is_file():
        try:
            data = torch.load(path, weights_only=True)
        except Exception:  # a corrupt or foreign cache file is rebuilt
            data = None
    if data is None:
        views, labels, padded = _build(files, image_size, seed)
        data = {"views": views, "labels": labels, "padded": padded, "classes": classes}
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(data, tmp)
        os.replace(tmp, path)
    views = [v.float().div_(255.0) for v in data["views"]]
    loaded = LoadedData(
        views,
        data["labels"],
        "office31",
        list(data["classes"]),
        preprocessing=recorded_for(views, resized_to=image_size),
    )
    return make_splits(loaded, seed=seed, test_fraction=test_fraction)


def _cache_path(
    base: Path,
    files: dict[str, list[list[Path]]],
    image_size: int,
    seed: int,
    cache_dir: str | None,
) -> Path:
    cache = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()).resolve()
    if cache == base or base in cache.parents:
        raise DataError(
            f"office31: cache_dir {cache} lies inside the data root {base}; the loader never "
            "writes into raw data folders. Choose a cache_dir outside it."
        )
    key = _cache_key(base, files, image_size, seed)
    return cache / f"office31_{image_size}px_seed{seed}_{key}.pt"


def office31_cache_path(
    root: str, image_size: int = 64, seed: int = 0, cache_dir: str | None = None
) -> Path:
    """Where :func:`load_office31` caches (or would cache) these settings."""
    base = Path(root).expanduser().resolve()
    _, files = _list_files(base)
    return _cache_path(base, files, image_size, seed, cache_dir)
