"""The clustering algorithms: one registry entry each, read by everything else.

An :class:`Algorithm` entry holds the parameter specs (validation and the default Optuna
search range, :mod:`segclust.params`), the estimator on each back-end (scikit-learn always,
RAPIDS cuML where it has one), whether ``fit`` takes ``sample_weight`` (then pixels that share
a feature row are fitted once with their count), and how it copes with photo-sized inputs.
Config validation (:mod:`segclust.config`), back-ends (:mod:`segclust.backends`), clustering
(:mod:`segclust.clustering`), tuning (:mod:`segclust.tuning`), the tests and the benchmarks
all iterate this table: adding an algorithm is one entry here plus ``conf/cluster/<name>.yaml``.

scikit-learn does the clustering (``KMeans``, ``MiniBatchKMeans``, ``Birch``, ``DBSCAN``,
``HDBSCAN``, ``AgglomerativeClustering``); the grid-based ``dbscan`` package runs exact
DBSCAN on photo-sized continuous features; cuML (``cuml.cluster.KMeans``, ``DBSCAN``,
``HDBSCAN``, 26.x API) on a GPU. Estimator libraries are imported inside the factories, so
importing this table is cheap.

Size limits were measured on 2 cores / 24 GiB (``benchmarks/limits.py``,
``benchmarks/results/limits.md``); above them an algorithm either fits a seeded subsample and
assigns every pixel (noted in the metrics) or is refused with one line naming the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segclust.errors import ConfigError, InputTooLargeError
from segclust.params import Param, SearchRange, choice


@dataclass(frozen=True)
class FitContext:
    """What a factory or a large-input strategy may need besides the parameters."""

    seed: int = 0
    shape: tuple[int, int] | None = None  # H×W of the image the rows come from
    notes: list[str] = field(default_factory=list)
    # the weights fit() gets (counts of distinct rows), for an init that needs them
    sample_weight: np.ndarray | None = None


Factory = Callable[[Mapping[str, Any], FitContext], Any]
# (rows, params, context) -> labels, or None to use the plain estimator instead.
LargeFit = Callable[[np.ndarray, Mapping[str, Any], FitContext], "np.ndarray | None"]
# (params found on n_search rows, n_search, n_rows, dims) -> params for the refit on n_rows.
RefitRule = Callable[[dict[str, Any], int, int, int], dict[str, Any]]


@dataclass(frozen=True)
class Algorithm:
    """One clustering algorithm as the pipeline knows it (see the module docstring)."""

    name: str
    params: Mapping[str, Param]
    sklearn: Factory
    cuml: Factory | None = None
    sample_weight: bool = False  # fit(X, sample_weight=...) on both back-ends
    needs_grid: bool = False  # needs the image's H×W (connectivity): no subsampling
    max_rows: int | None = None  # refused above this many pixels (measured)
    large_fit: LargeFit | None = None  # scikit-learn on unweighted rows, when plain won't do
    refit_rule: RefitRule | None = None  # tuning: from a subsample to every pixel
    summary: str = ""

    def make(self, params: Mapping[str, Any], backend: str, context: FitContext) -> Any:
        """A fresh, unfitted estimator with scikit-learn's ``fit_predict`` API."""
        if backend == "cuml":
            if self.cuml is None:
                raise ValueError(f"cuML has no {self.name}")
            return self.cuml(params, context)
        return self.sklearn(params, context)

    def check_size(self, n_rows: int) -> None:
        """Refuse inputs above the measured limit, in one line that names it."""
        if self.max_rows is not None and n_rows > self.max_rows:
            raise InputTooLargeError(
                f"{self.name} is refused above {self.max_rows:,} pixels (the limit measured in "
                f"benchmarks/results/limits.md); this image has {n_rows:,}: use a smaller "
                "image or another algorithm"
            )

    def default_params(self) -> dict[str, Any]:
        return {name: spec.default for name, spec in self.params.items()}


# --------------------------------------------------------------------------------------------
# Large-input strategies (scikit-learn, rows without weights)
# --------------------------------------------------------------------------------------------

KMEANS_INIT_ROWS = 100_000
BIRCH_MAX_FIT_ROWS = 50_000
HDBSCAN_MAX_FIT_ROWS = 50_000  # 9 s, 0.5 GB on 2 cores; 100k: 40 s, 1.7 GB (limits.md)
WARD_MAX_ROWS = 500_000  # 62 s, 1.0 GB on 2 cores; 1M: over 150 s (limits.md)


def seeded_subsample(n_rows: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` of ``n_rows`` rows, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


def _kmeans_from_subsample(
    x: np.ndarray, params: Mapping[str, Any], context: FitContext
) -> np.ndarray | None:
    """KMeans on every row, started from the centres of a KMeans on a seeded subsample:
    the ``n_init`` k-means++ starts are where the time goes at 12 MP."""
    if x.shape[0] <= KMEANS_INIT_ROWS:
        return None
    from sklearn.cluster import KMeans

    pick = seeded_subsample(x.shape[0], KMEANS_INIT_ROWS, context.seed)
    start = ALGORITHMS["kmeans"].sklearn(params, context).fit(x[pick])
    refine = KMeans(
        n_clusters=params["n_clusters"],
        init=start.cluster_centers_.astype(x.dtype),
        n_init=1,
        max_iter=params["max_iter"],
        random_state=context.seed,
    )
    context.notes.append(
        f"KMeans started from the best of {params['n_init']} k-means++ runs on a seeded "
        f"subsample of {KMEANS_INIT_ROWS} rows, then refined on every row"
    )
    return refine.fit_predict(x)


def _birch_from_subsample(
    x: np.ndarray, params: Mapping[str, Any], context: FitContext
) -> np.ndarray | None:
    """BIRCH has no ``sample_weight``: its CF tree is built on a seeded subsample and every
    row is assigned with ``predict`` (nearest subcluster, then its global label)."""
    if x.shape[0] <= BIRCH_MAX_FIT_ROWS:
        return None
    pick = seeded_subsample(x.shape[0], BIRCH_MAX_FIT_ROWS, context.seed)
    estimator = ALGORITHMS["birch"].sklearn(params, context).fit(x[pick])
    context.notes.append(
        f"BIRCH tree built on a seeded subsample of {BIRCH_MAX_FIT_ROWS} rows; "
        "every row assigned with predict"
    )
    return estimator.predict(x)


def grid_dbscan(features: np.ndarray, eps: float, min_samples: int) -> np.ndarray | None:
    """Exact DBSCAN with the grid-based ``dbscan`` package (Wang, Gu, Shun), or None.

    Same core points and noise as scikit-learn's DBSCAN (border points may join another
    adjacent cluster), without scikit-learn's per-point neighbourhood lists, which take
    tens of GB on a photo's continuous features. It has no ``sample_weight`` and takes 2 to
    20 dimensions: None tells the caller to use scikit-learn.
    """
    try:
        import dbscan
    except ImportError:
        return None
    if not dbscan.DBSCAN_MIN_DIMS <= features.shape[1] <= dbscan.DBSCAN_MAX_DIMS:
        return None
    labels, _core = dbscan.DBSCAN(
        np.ascontiguousarray(features, dtype=np.float64),
        eps=float(eps),
        min_samples=int(min_samples),
    )
    return labels


def _dbscan_on_grid(
    x: np.ndarray, params: Mapping[str, Any], context: FitContext
) -> np.ndarray | None:
    labels = grid_dbscan(x, params["eps"], params["min_samples"])
    if labels is not None:
        context.notes.append("DBSCAN ran on the exact grid-based dbscan package")
    return labels


def _hdbscan_fit(x: np.ndarray, params: Mapping[str, Any], context: FitContext) -> np.ndarray:
    """scikit-learn's HDBSCAN on every row, or above the measured limit on a seeded subsample
    with every row labelled as its nearest fitted row (``NearestNeighbors``, a KD-tree; noise
    stays noise): HDBSCAN has no ``sample_weight`` and no ``predict``.

    scikit-learn 1.9.1 fails with ``cluster_selection_epsilon`` > 0 on rows with tied
    distances, which pixels always have (scikit-learn issue #33219, NumPy 2): that becomes a
    one-line error instead of a traceback.
    """
    fit_rows = x
    if x.shape[0] > HDBSCAN_MAX_FIT_ROWS:
        fit_rows = x[seeded_subsample(x.shape[0], HDBSCAN_MAX_FIT_ROWS, context.seed)]
    try:
        fitted = np.asarray(ALGORITHMS["hdbscan"].sklearn(params, context).fit_predict(fit_rows))
    except TypeError as exc:
        if params["cluster_selection_epsilon"] > 0:
            raise ConfigError(
                "hdbscan: scikit-learn's HDBSCAN fails with cluster_selection_epsilon > 0 on "
                "pixels with tied distances (scikit-learn issue #33219); use 0"
            ) from exc
        raise
    if fit_rows is x:
        return fitted
    from sklearn.neighbors import NearestNeighbors

    nearest = NearestNeighbors(n_neighbors=1).fit(fit_rows).kneighbors(x, return_distance=False)
    context.notes.append(
        f"HDBSCAN fitted on a seeded subsample of {HDBSCAN_MAX_FIT_ROWS} rows "
        "(min_cluster_size counts those rows); every row labelled as its nearest fitted row"
    )
    return fitted[nearest[:, 0]]


def density_matched_eps(eps: float, from_points: int, to_points: int, dims: int) -> float:
    """The DBSCAN ``eps`` on ``to_points`` pixels with the density threshold that ``eps``
    and the same ``min_samples`` have on ``from_points`` of them (a uniform sample).

    Neighbour counts grow with the number of points and with eps^dims, so
    eps' = eps · (from_points / to_points)^(1/dims).

    >>> round(density_matched_eps(0.1, 1000, 8000, 3), 6)
    0.05
    """
    return float(eps * (from_points / to_points) ** (1.0 / max(dims, 1)))


def _dbscan_refit(params: dict[str, Any], n_search: int, n_rows: int, dims: int) -> dict:
    """Keep ``min_samples``, shrink ``eps``: the density threshold the search chose.
    (Scaling ``min_samples`` instead makes the grid DBSCAN count up to hundreds of
    thousands of neighbours per pixel: minutes at 12 MP.)"""
    return {**params, "eps": density_matched_eps(params["eps"], n_search, n_rows, dims)}


def _hdbscan_refit(params: dict[str, Any], n_search: int, n_rows: int, dims: int) -> dict:
    """``min_cluster_size`` counts fitted rows: scale it from the search rows to the rows
    the refit is fitted on (every pixel, or the subsample above the limit)."""
    fitted = min(n_rows, HDBSCAN_MAX_FIT_ROWS)
    size = max(2, round(params["min_cluster_size"] * fitted / n_search))
    return {**params, "min_cluster_size": size}


# --------------------------------------------------------------------------------------------
# Estimators
# --------------------------------------------------------------------------------------------


def _kmeans(p: Mapping[str, Any], c: FitContext) -> Any:
    """scikit-learn's KMeans, seeded by its own k-means++ without the float32 batches
    (:mod:`segclust.seeding`: the same centres, a faster start)."""
    from sklearn.cluster import KMeans

    from segclust.seeding import KMeansPlusPlus

    return KMeans(
        n_clusters=p["n_clusters"],
        init=KMeansPlusPlus(c.sample_weight),
        n_init=p["n_init"],
        max_iter=p["max_iter"],
        random_state=c.seed,
    )


def _kmeans_cuml(p: Mapping[str, Any], c: FitContext) -> Any:
    from cuml.cluster import KMeans

    return KMeans(
        n_clusters=p["n_clusters"],
        n_init=p["n_init"],
        max_iter=p["max_iter"],
        random_state=c.seed,
        output_type="numpy",
    )


def _minibatch_kmeans(p: Mapping[str, Any], c: FitContext) -> Any:
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(
        n_clusters=p["n_clusters"],
        batch_size=p["batch_size"],
        n_init=p["n_init"],
        max_iter=p["max_iter"],
        random_state=c.seed,
    )


def _birch(p: Mapping[str, Any], c: FitContext) -> Any:
    from sklearn.cluster import Birch

    return Birch(
        n_clusters=p["n_clusters"],
        threshold=p["threshold"],
        branching_factor=p["branching_factor"],
    )


def _dbscan(p: Mapping[str, Any], c: FitContext) -> Any:
    from sklearn.cluster import DBSCAN

    return DBSCAN(eps=p["eps"], min_samples=p["min_samples"])


def _dbscan_cuml(p: Mapping[str, Any], c: FitContext) -> Any:
    from cuml.cluster import DBSCAN

    return DBSCAN(eps=p["eps"], min_samples=p["min_samples"], output_type="numpy")


def _hdbscan(p: Mapping[str, Any], c: FitContext) -> Any:
    from sklearn.cluster import HDBSCAN

    return HDBSCAN(
        min_cluster_size=p["min_cluster_size"],
        min_samples=p["min_samples"],
        cluster_selection_epsilon=p["cluster_selection_epsilon"],
        copy=True,
    )


def _hdbscan_cuml(p: Mapping[str, Any], c: FitContext) -> Any:
    from cuml.cluster import HDBSCAN

    return HDBSCAN(
        min_cluster_size=p["min_cluster_size"],
        min_samples=p["min_samples"],
        cluster_selection_epsilon=p["cluster_selection_epsilon"],
        output_type="numpy",
    )


class _LastTree:
    """scikit-learn's ``memory`` interface (an object with ``cache(func)``) that keeps the
    last Ward tree in this process: tuning ``n_clusters`` cuts one tree at every trial instead
    of rebuilding it (the tree is the whole cost; scikit-learn builds the full tree when
    ``n_clusters`` is small, so the cached call does not depend on it)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.value: Any = None
        self.builds = 0

    def cache(self, func: Callable[..., Any]) -> Callable[..., Any]:
        import hashlib

        def cached(x: np.ndarray, **kwargs: Any) -> Any:
            digest = hashlib.sha1(np.ascontiguousarray(x).view(np.uint8)).hexdigest()
            graph = kwargs.get("connectivity")
            graph_key = None if graph is None else (graph.shape, graph.nnz)
            others = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "connectivity"))
            key = (func.__module__, func.__name__, x.shape, digest, graph_key, others)
            if key != self.key:
                self.value = func(x, **kwargs)
                self.key = key
                self.builds += 1
            return self.value

        return cached


WARD_TREES = _LastTree()


def _ward(p: Mapping[str, Any], c: FitContext) -> Any:
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph

    if c.shape is None:
        raise ValueError("ward needs the image's height and width (pixel-grid connectivity)")
    height, width = c.shape
    return AgglomerativeClustering(
        n_clusters=p["n_clusters"],
        linkage="ward",
        connectivity=grid_to_graph(height, width),
        memory=WARD_TREES,
    )


def _n_clusters() -> Param:
    return Param(int, 4, low=2, search=SearchRange(2, 8), doc="clusters to find")


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

_ENTRIES = (
    Algorithm(
        "kmeans",
        {
            "n_clusters": _n_clusters(),
            "n_init": Param(int, 4, low=1, doc="k-means++ starts; the best is kept"),
            "max_iter": Param(int, 300, low=1, doc="Lloyd iterations per start"),
        },
        sklearn=_kmeans,
        cuml=_kmeans_cuml,
        sample_weight=True,
        large_fit=_kmeans_from_subsample,
        summary="Lloyd's k-means, k-means++ starts",
    ),
    Algorithm(
        "minibatch_kmeans",
        {
            "n_clusters": _n_clusters(),
            "batch_size": Param(int, 65536, low=1, doc="rows per mini-batch"),
            "n_init": Param(int, 3, low=1, doc="starts; the best is kept"),
            "max_iter": Param(int, 100, low=1, doc="passes over the data"),
        },
        sklearn=_minibatch_kmeans,
        sample_weight=True,
        summary="k-means on mini-batches: linear, any size",
    ),
    Algorithm(
        "birch",
        {
            "n_clusters": _n_clusters(),
            "threshold": Param(
                float, 0.5, low=0, low_open=True, search=SearchRange(0.05, 1.0, log=True)
            ),
            "branching_factor": Param(int, 50, low=2),
        },
        sklearn=_birch,
        large_fit=_birch_from_subsample,
        summary="CF tree, then global clustering of its leaves",
    ),
    Algorithm(
        "dbscan",
        {
            "eps": Param(
                float,
                0.05,
                low=0,
                low_open=True,
                search=SearchRange(0.01, 0.5, log=True),
                doc="neighbourhood radius, scaled feature units",
            ),
            "min_samples": Param(
                int,
                200,
                low=1,
                search=SearchRange(5, 1000, log=True),
                doc="pixels in the eps ball of a core pixel (scale with image size)",
            ),
        },
        sklearn=_dbscan,
        cuml=_dbscan_cuml,
        sample_weight=True,
        large_fit=_dbscan_on_grid,
        refit_rule=_dbscan_refit,
        summary="density clusters at one eps; noise",
    ),
    Algorithm(
        "hdbscan",
        {
            "min_cluster_size": Param(
                int,
                200,
                low=2,
                search=SearchRange(20, 2000, log=True),
                doc="smallest cluster, in fitted rows",
            ),
            "min_samples": Param(
                int, None, low=1, none_ok=True, doc="density smoothing; null: min_cluster_size"
            ),
            "cluster_selection_epsilon": Param(
                float, 0.0, low=0, doc="merge clusters closer (see _hdbscan_fit: keep 0)"
            ),
        },
        sklearn=_hdbscan,
        cuml=_hdbscan_cuml,
        large_fit=_hdbscan_fit,
        refit_rule=_hdbscan_refit,
        summary="density clusters over all eps (no eps to pick); noise",
    ),
    Algorithm(
        "ward",
        {"n_clusters": _n_clusters()},
        sklearn=_ward,
        needs_grid=True,
        max_rows=WARD_MAX_ROWS,
        summary="agglomerative Ward merging of neighbouring pixels only (connected clusters)",
    ),
)

ALGORITHMS: Mapping[str, Algorithm] = {entry.name: entry for entry in _ENTRIES}
ALGORITHM_NAMES: tuple[str, ...] = tuple(ALGORITHMS)


def get_algorithm(name: Any, key: str = "cluster.algorithm") -> Algorithm:
    """The registry entry for ``name``, or a ConfigError listing the known ones."""
    return ALGORITHMS[choice(name, key, tuple(ALGORITHMS))]
