"""The manifold-aware clustering protocol's embedding: UMAP fitted on the train split's codes.

KMeans looks for round clusters; the codes' class structure is there but not round (issue
24's measurements, docs/evaluation.md). The ``umap`` clustering method therefore embeds
each representation with UMAP first and clusters the embedded codes with the same KMeans
as the paper's protocol. The embedding is *fitted on the train split only* (codes
standardised with the train split's mean and std), then every other split is mapped into
it with ``UMAP.transform``, so the evaluated split's labels and samples never shape it.

One fit per representation serves every split, every KMeans seed and the UMAP figure
(:mod:`mrdd.eval.gallery`); refitting per KMeans seed would multiply the cost for a spread
docs/evaluation.md measures as far below the KMeans seeds' one.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Mapping

import numpy as np
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from mrdd.config import EvalConfig

log = logging.getLogger("mrdd")

#: The split every embedding is fitted on.
FIT_SPLIT = "train"


def manifold_codes(
    features: Mapping[str, Mapping[str, Tensor]],
    splits: Iterable[str],
    names: Iterable[str],
    ev: EvalConfig,
    seed: int,
) -> dict[str, dict[str, np.ndarray]]:
    """``embedded[split][name]``: representation ``name`` of ``split`` in the UMAP embedding
    fitted on ``features["train"][name]`` (``features[split][name]``: N×d codes).

    Each representation is fitted once (``random_state=seed``) and each split mapped once;
    the train split gets the fitted embedding itself. A representation that some split
    lacks (e.g. a raw floor of an incomplete split) is embedded only where it is present.
    """
    splits = list(dict.fromkeys(splits))
    embedded: dict[str, dict[str, np.ndarray]] = {split: {} for split in splits}
    for name in names:
        train = features[FIT_SPLIT][name].double().cpu().numpy()
        scaler = StandardScaler().fit(train)
        reducer = _umap(ev, seed, len(train))
        with warnings.catch_warnings():  # n_jobs=1 under random_state: wanted, not news
            warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
            fitted = reducer.fit_transform(scaler.transform(train))
        for split in splits:
            if name not in features[split]:
                continue
            if split == FIT_SPLIT:
                embedded[split][name] = fitted
            else:
                x = scaler.transform(features[split][name].double().cpu().numpy())
                embedded[split][name] = reducer.transform(x)
        log.info("umap: %s embedded in %d-d (fitted on %d train codes)", name, ev.umap_components,
                 len(train))  # fmt: skip
    return embedded


def _umap(ev: EvalConfig, seed: int, n_train: int):  # noqa: ANN202 (umap has no type hints)
    """The UMAP of ``ev``'s settings; ``n_neighbors`` capped below the train split's size,
    which UMAP would otherwise do itself with a warning per fit.

    ``eval.umap_knn=nndescent`` (the default) makes UMAP find neighbours by NN-descent at
    every size. umap-learn's own rule (``auto``) switches to exact distances below 4,096
    samples and computes them through scikit-learn's ``pairwise_distances`` with a metric
    called from Python once per pair, about 4x slower at 3,600 codes (docs/evaluation.md,
    "How neighbours are found", has the timings). One algorithm at every size also keeps a
    dataset's umap rows from changing method when its train split crosses 4,096 samples.
    """
    _numba_off_torchs_openmp()
    import umap  # on first use: importing umap-learn loads numba (seconds)

    neighbors = min(ev.umap_neighbors, n_train - 1)
    if neighbors < ev.umap_neighbors:
        log.info("umap: %d train samples, n_neighbors lowered to %d", n_train, neighbors)
    return umap.UMAP(
        n_components=ev.umap_components,
        n_neighbors=neighbors,
        min_dist=ev.umap_min_dist,
        random_state=seed,
        force_approximation_algorithm=ev.umap_knn == "nndescent",
    )


#: numba's threading layer for UMAP's parallel kernels, unless ``NUMBA_THREADING_LAYER``
#: names one: its own thread pool, not OpenMP.
NUMBA_LAYER = "workqueue"


def _numba_off_torchs_openmp() -> None:
    """Keep UMAP's numba kernels off the OpenMP runtime torch computes with.

    With numba's default ``omp`` layer, the first parallel UMAP kernel sets the shared
    OpenMP runtime's thread count (``torch.get_num_threads()`` went from 1 to 2 with
    ``OMP_NUM_THREADS=1``) and leaves its pool beside torch's: every training step after a
    UMAP fit in the same process ran 17× slower (508 → 8,496 ms per default stage-1 step
    of 64 samples, 2 CPU cores), which made each job of a sweep after its first, and every
    test after the first UMAP, crawl. numba's own ``workqueue`` pool leaves torch alone
    (461 → 555 ms on the loaded machine). Must run before numba first launches threads;
    a user's ``NUMBA_THREADING_LAYER`` is respected.
    """
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    import numba

    numba.config.THREADING_LAYER = NUMBA_LAYER
