"""Office-31 from JPGs in the standard layout: jitter padding, pairing, caching."""

from __future__ import annotations

import shutil

import pytest
import torch
from fixtures.data_formats import write_office

from mrdd.data import DataError, load_dataset
from mrdd.data import office as office_mod

COUNTS = {
    "amazon": {"back_pack": 5, "bike": 3},
    "dslr": {"back_pack": 2, "bike": 4},
    "webcam": {"back_pack": 3, "bike": 1},
}


@pytest.fixture
def office_root(tmp_path):
    root = tmp_path / "office31"
    write_office(root, COUNTS, size=12)
    return root


def office(root, cache, **kw):
    return load_dataset(
        {
            "val_fraction": 0,
            "name": "office31",
            "root": str(root),
            "image_size": 8,
            "cache_dir": str(cache),
            **kw,
        }
    )


def _files(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_office_padding_pairing_and_cache(office_root, tmp_path, monkeypatch):
    before = _files(office_root)
    cache = tmp_path / "cache"
    data = office(office_root, cache)
    # per class the largest domain's count: back_pack 5, bike 4
    assert len(data.train) + len(data.test) == 9
    assert (len(data.train), len(data.test)) == (7, 2)
    assert data.class_names == ["back_pack", "bike"] and data.view_shapes == [(3, 8, 8)] * 3
    assert _files(office_root) == before  # nothing written into the raw data folder
    [cached] = list(cache.glob("office31_8px_seed0_*.pt"))
    assert cached == office_mod.office31_cache_path(str(office_root), 8, 0, str(cache))
    blob = torch.load(cached, weights_only=True)
    # padded (jittered) copies per domain: amazon 0+1, dslr 3+0, webcam 2+3
    assert blob["padded"].sum(0).tolist() == [1, 3, 5]
    assert torch.bincount(blob["labels"]).tolist() == [5, 4]
    views = [v.float() / 255 for v in blob["views"]]
    # originals: every domain's image shows its class (red) and domain (green) colour
    for d, x in enumerate(views):
        orig = ~blob["padded"][:, d]
        red = x[orig, 0].mean((1, 2)) * 255
        green = x[orig, 1].mean((1, 2)) * 255
        assert torch.allclose(red, 40 + 60 * blob["labels"][orig].float(), atol=4)
        assert torch.allclose(green, torch.full_like(green, 40 + 60 * d), atol=4)
    # each padded copy differs from the original it was made from (cycled in file order)
    start = 0
    for c, n_max in enumerate([5, 4]):
        for d, domain in enumerate(office_mod.DOMAINS):
            n = COUNTS[domain][["back_pack", "bike"][c]]
            for k in range(n_max - n):
                copy, source = views[d][start + n + k], views[d][start + k % n]
                assert (copy - source).abs().max() > 0.02
        start += n_max

    # the cache is reused: no rebuild on the second load
    def boom(*a, **k):
        raise AssertionError("rebuilt instead of loading the cache")

    monkeypatch.setattr(office_mod, "_build", boom)
    again = office(office_root, cache)
    assert all(torch.equal(a, b) for a, b in zip(again.train.views, data.train.views, strict=True))


def test_office_default_cache_and_seeds(office_root, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    a = load_dataset(
        {"val_fraction": 0, "name": "office31", "root": str(office_root), "image_size": 8}
    )
    assert list((tmp_path / "xdg" / "mrdd" / "office31").glob("office31_8px_seed0_*.pt"))
    b = load_dataset(
        {"val_fraction": 0, "name": "office31", "root": str(office_root), "image_size": 8}
    )
    c = load_dataset(
        {
            "val_fraction": 0,
            "name": "office31",
            "root": str(office_root),
            "image_size": 8,
            "seed": 1,
        }
    )
    assert torch.equal(a.test.views[0], b.test.views[0])
    assert len(list((tmp_path / "xdg" / "mrdd" / "office31").iterdir())) == 2
    # a different seed changes the jitter of the padded copies and the split
    assert not all(torch.equal(x, y) for x, y in zip(a.train.views, c.train.views, strict=True))


def test_office_errors(office_root, tmp_path):
    with pytest.raises(DataError, match="inside the data root"):
        office(office_root, office_root / "amazon" / ".cache")
    with pytest.raises(DataError) as err:
        office(tmp_path / "nowhere", tmp_path / "cache")
    assert "{amazon,dslr,webcam}/images/<class>/*.jpg" in str(err.value)
    assert "domain_adaptation_images" in str(err.value)
    shutil.rmtree(office_root / "webcam" / "images" / "bike")
    with pytest.raises(DataError, match="class folders of amazon and webcam differ"):
        office(office_root, tmp_path / "cache")
