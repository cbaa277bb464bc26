"""COIL-20 and COIL-100 as multi-view data by pose dealing (docs/method.md, "Datasets").

Layouts (the Columbia CAVE archives, unzipped):

* COIL-20, "processed" archive ``coil-20-proc.zip``: ``coil-20-proc/obj{K}__{i}.png``,
  K = 1..20, i = 0..71 (pose index, 5° apart), grey 128×128.
* COIL-100, ``coil-100.zip``: ``coil-100/obj{K}__{a}.png``, K = 1..100,
  a = 0, 5, ..., 355 (the angle in degrees), RGB 128×128.

``root`` may be the folder holding the PNGs or its parent (holding ``coil-20-proc`` or
``coil-100``). Poses are ordered by the number parsed from the file name.

Protocol: per object, the 72 poses are shuffled (one seeded generator, objects in
order) and dealt into ``num_views`` consecutive groups of ``72 / num_views``; sample i
of the object is (i-th pose of group 1, ..., i-th pose of group V). With 3 views this
gives 24 samples per object (480 for COIL-20, 2,400 for COIL-100), then a seeded
stratified train/test split. Images are resized once (bilinear, antialiased).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

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

POSES = 72
_FILE = re.compile(r"^obj(\d+)__(\d+)\.png$", re.IGNORECASE)


@dataclass(frozen=True)
class CoilSpec:
    name: str
    folder: str
    num_objects: int
    pose_step: int  # file-name number between consecutive poses (1 for COIL-20, 5 for COIL-100)
    mode: str  # PIL mode: "L" (grey) or "RGB"
    url: str


COIL20 = CoilSpec(
    "coil20",
    "coil-20-proc",
    20,
    1,
    "L",
    "https://www.cs.columbia.edu/CAVE/software/softlib/coil-20.php",
)
COIL100 = CoilSpec(
    "coil100",
    "coil-100",
    100,
    5,
    "RGB",
    "https://www.cs.columbia.edu/CAVE/software/softlib/coil-100.php",
)


def _layout(spec: CoilSpec) -> str:
    last = (POSES - 1) * spec.pose_step
    return (
        f"{spec.folder}/obj{{K}}__{{n}}.png with K = 1..{spec.num_objects} and n = 0, "
        f"{spec.pose_step}, ..., {last} ({spec.num_objects} × {POSES} PNGs)"
    )


def _find_files(spec: CoilSpec, root: str) -> dict[tuple[int, int], Path]:
    """Map (object K, pose number) -> file, checking that the archive is complete."""
    base = Path(root).expanduser()
    candidates = [base / spec.folder, base]
    folder = next(
        (c for c in candidates if c.is_dir() and any(_FILE.match(p.name) for p in c.iterdir())),
        None,
    )
    if folder is None:
        raise DataError(
            f"{spec.name}: no COIL images found under {base}. Expected {_layout(spec)}, with "
            f"root pointing at the '{spec.folder}' folder or at its parent. Download the "
            f"archive from {spec.url} and unzip it there."
        )
    files: dict[tuple[int, int], Path] = {}
    for p in folder.iterdir():
        m = _FILE.match(p.name)
        if m:
            files[(int(m.group(1)), int(m.group(2)))] = p
    expected = [
        (k, i * spec.pose_step) for k in range(1, spec.num_objects + 1) for i in range(POSES)
    ]
    missing = [f"obj{k}__{n}.png" for k, n in expected if (k, n) not in files]
    extra = sorted(set(files) - set(expected))
    if missing or extra:
        what = f"{len(missing)} files are missing ({describe_missing(missing)})" if missing else ""
        if extra:
            names = [f"obj{k}__{n}.png" for k, n in extra]
            what += ("; " if what else "") + (
                f"{len(extra)} files do not belong to {spec.name} ({describe_missing(names)})"
            )
        raise DataError(
            f"{spec.name}: the images in {folder} are not the complete archive: {what}. "
            f"Expected {_layout(spec)}; get it from {spec.url}."
        )
    return files


def pose_dealing(
    num_objects: int, num_views: int, seed: int, poses: int = POSES
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose indices of every sample: ``(N×V, N)`` = (pose index per view, object id).

    Per object (in order, one generator seeded with ``seed``) the poses are shuffled and
    cut into ``num_views`` consecutive groups; sample i takes the i-th pose of each group.
    """
    if not isinstance(num_views, int) or not 2 <= num_views <= 6:
        raise DataError(f"num_views must be an integer from 2 to 6, got {num_views!r}.")
    if poses % num_views:
        raise DataError(
            f"num_views={num_views} does not divide the {poses} poses of each object; "
            "use 2, 3, 4 or 6."
        )
    g = torch.Generator().manual_seed(seed)
    per = poses // num_views
    index, objects = [], []
    for k in range(num_objects):
        perm = torch.randperm(poses, generator=g)
        index.append(perm.view(num_views, per).t())  # per × V
        objects.append(torch.full((per,), k, dtype=torch.long))
    return torch.cat(index), torch.cat(objects)


def _load_coil(
    spec: CoilSpec, root: str, image_size: int, num_views: int, seed: int, test_fraction: float
) -> DatasetSplits:
    check_split_options(seed, test_fraction)
    if not isinstance(image_size, int) or image_size <= 0:
        raise DataError(f"{spec.name}: image_size must be a positive integer, got {image_size!r}.")
    index, labels = pose_dealing(spec.num_objects, num_views, seed)
    files = _find_files(spec, root)
    ordered = [
        files[(k, i * spec.pose_step)] for k in range(1, spec.num_objects + 1) for i in range(POSES)
    ]
    images = resize_images([read_image(p, spec.mode) for p in ordered], image_size)
    images = images.view(spec.num_objects, POSES, *images.shape[1:])
    views = [images[labels, index[:, v]].contiguous() for v in range(num_views)]
    loaded = LoadedData(
        views,
        labels,
        spec.name,
        [f"obj{k}" for k in range(1, spec.num_objects + 1)],
        preprocessing=recorded_for(views, resized_to=image_size),
    )
    return make_splits(loaded, seed=seed, test_fraction=test_fraction)


@register_dataset("coil20")
def load_coil20(
    root: str = "data/coil20",
    image_size: int = 64,
    num_views: int = 3,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> DatasetSplits:
    """COIL-20: 20 grey objects, poses dealt into ``num_views`` views (480 samples at 3)."""
    return _load_coil(COIL20, root, image_size, num_views, seed, test_fraction)


@register_dataset("coil100")
def load_coil100(
    root: str = "data/coil100",
    image_size: int = 64,
    num_views: int = 3,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> DatasetSplits:
    """COIL-100: 100 RGB objects, poses dealt into ``num_views`` views (2,400 samples at 3)."""
    return _load_coil(COIL100, root, image_size, num_views, seed, test_fraction)
