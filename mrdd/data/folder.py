"""Your own multi-view images as a folder tree (``dataset=folder dataset.path=...``).

Layout::

    <path>/view_0/<class>/<sample_id>.png
    <path>/view_1/<class>/<sample_id>.jpg
    ...
    <path>/view_{V-1}/<class>/<sample_id>.<png|jpg|jpeg>

The files that share a ``sample_id`` (the file name without its extension) across the
view folders are the views of one multi-view sample. Every sample must appear in every
view folder, under the same class folder, and a ``sample_id`` may appear only once per
view. View folders are numbered from 0 without gaps. Class folder names are the class
names (labels 0..K-1 in sorted order).

Each view is decoded as grey (1 channel) when all of its images are grey, otherwise RGB
(alpha dropped; grey images repeated over the 3 channels), and resized to
``image_size × image_size`` (bilinear, antialiased) once; then a seeded stratified
train/test split. 16-bit grey PNGs keep their range (divided by 65535, not clipped to 8
bits). Files without an image suffix are ignored; a file with one that is not an image
is refused by name.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from mrdd.data.base import DataError, DatasetSplits
from mrdd.data.common import (
    GREY_MODES,
    LoadedData,
    check_split_options,
    describe_missing,
    image_mode,
    make_splits,
    read_image,
)
from mrdd.data.preprocess import recorded_for, resize_images
from mrdd.data.registry import register_dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_VIEW = re.compile(r"^view_(\d+)$")
LAYOUT = "<path>/view_<v>/<class>/<sample_id>.<png|jpg>"


def _scan_view(folder: Path) -> dict[str, tuple[str, Path]]:
    """sample_id -> (class, file) for one view folder."""
    samples: dict[str, tuple[str, Path]] = {}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(class_dir.iterdir()):
            if not (f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES):
                continue
            if f.stem in samples:
                raise DataError(
                    f"folder dataset: sample id {f.stem!r} appears twice in {folder.name} "
                    f"({samples[f.stem][1]} and {f}); sample ids must be unique per view."
                )
            samples[f.stem] = (class_dir.name, f)
    return samples


@register_dataset("folder")
def load_folder(
    path: str, image_size: int = 64, seed: int = 0, test_fraction: float = 0.2
) -> DatasetSplits:
    """Multi-view images from ``<path>/view_<v>/<class>/<sample_id>.<png|jpg>``."""
    check_split_options(seed, test_fraction)
    if not isinstance(image_size, int) or image_size <= 0:
        raise DataError(
            f"folder dataset: image_size must be a positive integer, got {image_size!r}."
        )
    base = Path(str(path)).expanduser()
    if not base.is_dir():
        raise DataError(
            f"folder dataset: {base} is not a folder. Pass dataset.path=/path/to/data laid out "
            f"as {LAYOUT}."
        )
    numbered = sorted(
        (int(m.group(1)), p) for p in base.iterdir() if p.is_dir() and (m := _VIEW.match(p.name))
    )
    if not numbered:
        raise DataError(f"folder dataset: no view_<v> folders in {base}; expected {LAYOUT}.")
    if [i for i, _ in numbered] != list(range(len(numbered))):
        raise DataError(
            f"folder dataset: view folders must be view_0 … view_{{V-1}} without gaps; found "
            f"{[p.name for _, p in numbered]} in {base}."
        )
    scans = [_scan_view(p) for _, p in numbered]
    for (_, p), scan in zip(numbered, scans, strict=True):
        if not scan:
            raise DataError(f"folder dataset: no images in {p} (expected {LAYOUT}).")
    ids = sorted(set().union(*scans))
    for (_, p), scan in zip(numbered, scans, strict=True):
        missing = [i for i in ids if i not in scan]
        if missing:
            raise DataError(
                f"folder dataset: {len(missing)} sample(s) are missing in {p.name}: "
                f"{describe_missing(missing)}. Every sample id needs one image in every "
                "view folder."
            )
    for i in ids:
        classes = {scan[i][0] for scan in scans}
        if len(classes) > 1:
            raise DataError(
                f"folder dataset: sample {i!r} is filed under different classes in different "
                f"views ({sorted(classes)})."
            )
    class_names = sorted({scans[0][i][0] for i in ids})
    label_of = {c: k for k, c in enumerate(class_names)}
    labels = torch.tensor([label_of[scans[0][i][0]] for i in ids], dtype=torch.long)
    views = []
    for scan in scans:
        files = [scan[i][1] for i in ids]
        mode = "L" if all(image_mode(f) in GREY_MODES for f in files) else "RGB"
        views.append(resize_images([read_image(f, mode) for f in files], image_size))
    loaded = LoadedData(
        views,
        labels,
        base.name or "folder",
        class_names,
        where=str(base),
        preprocessing=recorded_for(views, resized_to=image_size),
    )
    return make_splits(loaded, seed=seed, test_fraction=test_fraction)
