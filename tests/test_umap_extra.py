"""The `umap` extra: a run with figures also draws UMAP embeddings (umap.png)."""

import pytest
from helpers import tiny_run_dict, write_image_npz

import mrdd
from mrdd.train import run

pytest.importorskip("umap", reason="needs the umap extra (pip install -e '.[umap]')")


@pytest.mark.slow  # importing umap-learn compiles its numba kernels (~20 s on 2 CPU cores)
def test_a_run_with_figures_writes_umap_next_to_tsne(tmp_path):
    write_image_npz(tmp_path / "data.npz", n=60)
    config = tiny_run_dict(
        tmp_path / "data.npz",
        train={"epochs": 1},
        eval={"classifiers": [], "regressors": [], "figures": True},
    )
    run(mrdd.RunConfig.from_dict(config), tmp_path / "run")
    for name in ("tsne.png", "umap.png"):
        assert (tmp_path / "run" / name).stat().st_size > 1000, name
