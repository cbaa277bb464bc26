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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np
from sklearn.metrics import pairwise_distances
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
        train = scaler.transform(train)
        embedding = _Embedding(ev, seed, train)
        for split in splits:
            if name not in features[split]:
                continue
            if split == FIT_SPLIT:
                embedded[split][name] = embedding.fitted
            else:
                x = scaler.transform(features[split][name].double().cpu().numpy())
                embedded[split][name] = embedding.transform(x)
        log.info("umap: %s embedded in %d-d (fitted on %d train codes, %s neighbours)",
                 name, ev.umap_components, len(train), embedding.neighbours)  # fmt: skip
    return embedded


#: Below this many train codes, ``eval.umap_knn=auto`` finds neighbours exactly (umap-learn's
#: own threshold for its exact path); the N×N distances then take at most 128 MiB.
EXACT_BELOW = 4096


def exact_neighbours(ev: EvalConfig, n_train: int) -> bool:
    """Whether UMAP finds the neighbours of ``n_train`` codes exactly (else by NN-descent)."""
    return ev.umap_knn == "auto" and n_train < EXACT_BELOW


class _Embedding:
    """One UMAP fitted on ``train`` (N×d standardised codes): ``fitted`` is its embedding,
    ``transform`` maps other codes into it; ``neighbours`` names how they were found.

    Exact neighbours (``eval.umap_knn=auto`` below :data:`EXACT_BELOW` codes, umap-learn's
    own rule) come from the Euclidean distances scikit-learn computes in one BLAS call,
    handed to UMAP as ``metric="precomputed"``: the train codes' N×N matrix to fit, each
    other code's distances to the N train codes to transform. umap-learn's own exact path
    finds the same neighbours but calls its metric from Python once per pair, and
    NN-descent, the approximate search used otherwise, costs pynndescent's numba
    compilation in every new process (docs/evaluation.md, "How neighbours are found", has
    the timings). With precomputed distances a disconnected neighbour graph's pieces are
    placed by their average distance, not by their centroids.
    """

    def __init__(self, ev: EvalConfig, seed: int, train: np.ndarray) -> None:
        self.train = train
        self.exact = exact_neighbours(ev, len(train))
        self.reducer = _umap(ev, seed, len(train), precomputed=self.exact)
        with _quiet_umap():
            self.fitted = self.reducer.fit_transform(self._input(train, None))

    @property
    def neighbours(self) -> str:
        """How the neighbours were found, as the log says it."""
        return "exact" if self.exact else "NN-descent"

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``x`` (M×d, standardised like ``train``) in the fitted embedding (M×k)."""
        with _quiet_umap():
            return self.reducer.transform(self._input(x, self.train))

    def _input(self, x: np.ndarray, train: np.ndarray | None) -> np.ndarray:
        """What UMAP reads: the codes, or with exact neighbours their distances to the train
        codes (``train=None``: among themselves, with an exactly zero diagonal)."""
        return pairwise_distances(x, train) if self.exact else x


@contextmanager
def _quiet_umap() -> Iterator[None]:
    """Silence umap-learn's warnings that say what was asked for: ``n_jobs=1`` under
    ``random_state``, and no ``inverse_transform`` with precomputed distances."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*precomputed metric.*", category=UserWarning)
        yield


def _umap(ev: EvalConfig, seed: int, n_train: int, precomputed: bool):  # noqa: ANN202 (umap has no type hints)
    """The UMAP of ``ev``'s settings: ``n_neighbors`` capped below the train split's size,
    which UMAP would otherwise do itself with a warning per fit; it reads precomputed
    distances if ``precomputed``, else the codes, and then finds neighbours by NN-descent
    (``eval.umap_knn=nndescent`` at every size, ``auto`` from :data:`EXACT_BELOW` codes)."""
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
        metric="precomputed" if precomputed else "euclidean",
        force_approximation_algorithm=not precomputed,
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
