"""COIL-20 / COIL-100 from PNGs in the archives' layouts (every object, every pose)."""

from __future__ import annotations

import shutil

import pytest
import torch
from fixtures.data_formats import write_coil

from mrdd.data import DataError, load_dataset, pose_dealing


@pytest.fixture(scope="module")
def coil20_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coil20")
    write_coil(root, "coil-20-proc", num_objects=20, pose_step=1, rgb=False, size=8)
    return root


@pytest.fixture(scope="module")
def coil100_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("coil100")
    write_coil(root, "coil-100", num_objects=100, pose_step=5, rgb=True, size=8)
    return root


def coil20(root, **kw):
    return load_dataset(
        {"val_fraction": 0, "name": "coil20", "root": str(root), "image_size": 8, **kw}
    )


def _decode_grey(data):
    """(object id, pose index) of every sample and view of the grey fixture."""
    objs = torch.stack([(x[:, 0, 0, 0] * 255).round().long() // 10 for x in data.views], 1)
    poses = torch.stack([(x[:, 0, -1, 0] * 255).round().long() // 3 for x in data.views], 1)
    return objs, poses


def test_coil20_protocol(coil20_root):
    data = coil20(coil20_root)
    # round(0.2 · 480) = 96 test samples: 4.8 per object, 4 each and 5 for the 16 objects of
    # largest remainder (ties: the lower ids) by the one stratified rule
    assert (len(data.train), len(data.test)) == (384, 96)
    assert data.num_classes == 20 and data.view_shapes == [(1, 8, 8)] * 3
    assert torch.bincount(data.test.labels).tolist() == [5] * 16 + [4] * 4
    # every view of a sample shows the labelled object; each pose is used exactly once
    index, objects = pose_dealing(20, 3, seed=0)
    all_poses = []
    for split in (data.train, data.test):
        objs, poses = _decode_grey(split)
        assert torch.equal(objs, (split.labels + 1)[:, None].expand(-1, 3))
        all_poses.append(torch.stack([split.labels, *poses.t()], 1))
    table = torch.cat(all_poses)
    for k in range(20):
        used = table[table[:, 0] == k, 1:].flatten()
        assert sorted(used.tolist()) == list(range(72))
    # the file of pose n is the image of pose n (numeric order of the parsed file names)
    expected = {tuple(r) for r in torch.cat([objects[:, None], index], 1).tolist()}
    assert {tuple(r) for r in table.tolist()} == expected


def test_coil20_root_may_be_the_png_folder(coil20_root):
    a, b = coil20(coil20_root), coil20(coil20_root / "coil-20-proc")
    assert all(torch.equal(x, y) for x, y in zip(a.train.views, b.train.views, strict=True))


def test_coil20_seeding_and_views(coil20_root):
    a, b, c = coil20(coil20_root), coil20(coil20_root), coil20(coil20_root, seed=1)
    assert torch.equal(a.train.views[0], b.train.views[0])
    assert not torch.equal(a.train.views[0], c.train.views[0])
    assert not torch.equal(_decode_grey(a.test)[1], _decode_grey(c.test)[1])
    six = coil20(coil20_root, num_views=6, test_fraction=0.25)
    assert six.train.num_views == 6 and len(six.train) + len(six.test) == 240
    resized = coil20(coil20_root, image_size=16, num_views=2)
    assert resized.view_shapes == [(1, 16, 16)] * 2
    assert len(resized.train) == 720 - round(0.2 * 720)  # 36 per object, 144 test in all
    for v in (1, 5, 7):
        with pytest.raises(DataError, match="num_views"):
            coil20(coil20_root, num_views=v)


def test_coil100_five_degree_names(coil100_root):
    data = load_dataset(
        {"val_fraction": 0, "name": "coil100", "root": str(coil100_root), "image_size": 8}
    )
    assert (len(data.train), len(data.test)) == (1920, 480)  # 24 per object: 4.8 test on average
    assert data.view_shapes == [(3, 8, 8)] * 3 and data.num_classes == 100
    index, objects = pose_dealing(100, 3, seed=0)
    got = set()
    for split in (data.train, data.test):
        px = torch.stack([(x[:, :, 0, 0] * 255).round().long() for x in split.views], 1)
        assert torch.equal(px[..., 0], (split.labels + 1)[:, None].expand(-1, 3))
        got |= {(int(y), *p) for y, p in zip(split.labels, px[..., 1].tolist(), strict=True)}
    assert got == {tuple(r) for r in torch.cat([objects[:, None], index], 1).tolist()}


def test_coil_missing_and_incomplete(tmp_path, coil20_root):
    with pytest.raises(DataError) as err:
        coil20(tmp_path)
    msg = str(err.value)
    assert "coil-20-proc/obj{K}__{n}.png" in msg and "columbia.edu" in msg
    part = tmp_path / "part"
    shutil.copytree(coil20_root / "coil-20-proc", part / "coil-20-proc")
    (part / "coil-20-proc" / "obj7__33.png").unlink()
    with pytest.raises(DataError, match=r"1 files are missing \(obj7__33\.png\)"):
        coil20(part)
    # COIL-20 names in a COIL-100 folder: the 5-degree names are missing
    with pytest.raises(DataError, match="6900 files are missing"):
        load_dataset({"val_fraction": 0, "name": "coil100", "root": str(part / "coil-20-proc")})
