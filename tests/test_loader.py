"""BatchLoader: epochs, reproducible permutations, row indices and rank shards."""

import pytest
import torch
from helpers import make_views

from mrdd.data import BatchLoader, DataError, MultiViewData


def _data(n: int = 20) -> MultiViewData:
    views, labels = make_views(n)
    labels = torch.arange(n)  # a label per row: which row a batch holds is visible
    return MultiViewData(views, labels, "rows")


def _indices(loader: BatchLoader, epoch: int = 0) -> list[list[int]]:
    loader.set_epoch(epoch)
    return [batch.index.tolist() for batch in loader]


def test_a_batch_holds_the_rows_its_index_names():
    data = _data()
    for views, labels, available, index in BatchLoader(data, 6, seed=1):
        assert torch.equal(labels, index)
        for x, full in zip(views, data.views, strict=True):
            assert torch.equal(x, full[index])
        assert available.shape == (6, 2) and bool(available.all())


def test_an_epoch_visits_each_row_at_most_once_and_drop_last_drops_the_rest():
    kept = sum(_indices(BatchLoader(_data(), 6)), [])
    assert len(kept) == 18 and len(set(kept)) == 18  # 3 full batches, 2 rows dropped
    everything = _indices(BatchLoader(_data(), 6, drop_last=False))
    assert [len(b) for b in everything] == [6, 6, 6, 2]
    assert sorted(sum(everything, [])) == list(range(20))


def test_permutations_are_seeded_per_epoch_and_unshuffled_order_is_the_rows():
    loader = BatchLoader(_data(), 5, seed=3)
    assert _indices(loader, 0) == _indices(BatchLoader(_data(), 5, seed=3), 0)
    assert _indices(loader, 0) != _indices(loader, 1)
    assert _indices(loader, 0) != _indices(BatchLoader(_data(), 5, seed=4), 0)
    assert sum(_indices(BatchLoader(_data(), 5, shuffle=False)), []) == list(range(20))


def test_rank_shards_together_are_the_single_process_batch():
    whole = _indices(BatchLoader(_data(), 8, seed=2), epoch=1)
    shards = [_indices(BatchLoader(_data(), 8, seed=2, shard=(r, 2)), 1) for r in (0, 1)]
    for batch, first, second in zip(whole, *shards, strict=True):
        assert len(first) == len(second) == 4
        assert first + second == batch


def test_batch_sizes_that_cannot_work_are_refused():
    with pytest.raises(DataError, match="not divisible by the 3 processes"):
        BatchLoader(_data(), 8, shard=(0, 3))
    with pytest.raises(DataError, match="larger than the 20 samples"):
        BatchLoader(_data(), 21)
    with pytest.raises(DataError, match="must be positive"):
        BatchLoader(_data(), 0)
