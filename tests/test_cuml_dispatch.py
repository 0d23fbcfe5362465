"""The cuML path, without a GPU: a stand-in ``cuml`` package records every call and checks it
against cuML's documented signatures (cuML 26.08, ``python/cuml/cuml/cluster/*.pyx`` and
``metrics/cluster/silhouette_score.pyx``). It is not a reimplementation: its estimators label
rows by a fixed rule so that the dispatch around them can be checked.

What is checked: the estimators and arguments ``segclust.algorithms`` builds for cuML, that
``fit_predict`` gets the distinct rows' counts as ``sample_weight`` where cuML takes it, the
scikit-learn fallback (and its note) for algorithms cuML lacks, the ``backend`` field of the
metrics, and that scores never go to cuML: the same labels score the same on every machine.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import ClassVar

import numpy as np
import pytest

from segclust import backends, tuning
from segclust.algorithms import ALGORITHMS
from segclust.clustering import cluster_features
from segclust.config import ClusterConfig, FeatureConfig, ScalerConfig, TuneConfig
from segclust.features import feature_matrix, to_grey
from segclust.metrics import cluster_metrics
from segclust.segmentation import cluster_and_score
from tests.conftest import two_region_grey

# The documented signatures (cuML 26.08.00). Stand-ins bind every call against these.
_KMEANS_INIT = "(self, *, n_clusters=8, max_iter=300, tol=1e-4, verbose=False, random_state=None, init='scalable-k-means++', n_init='auto', oversampling_factor=2.0, max_samples_per_batch=32768, device_buffer_samples=0, init_size=0, output_type=None)"  # noqa: E501
_KMEANS_FIT_PREDICT = "(self, X, y=None, sample_weight=None)"
_DBSCAN_INIT = "(self, *, eps=0.5, min_samples=5, metric='euclidean', algorithm='brute', verbose=False, max_mbytes_per_batch=None, output_type=None, calc_core_sample_indices=True)"  # noqa: E501
_DBSCAN_FIT_PREDICT = "(self, X, y=None, sample_weight=None, *, out_dtype='int32')"
_HDBSCAN_INIT = "(self, *, min_cluster_size=5, min_samples=None, cluster_selection_epsilon=0.0, max_cluster_size=0, metric='euclidean', alpha=1.0, p=None, cluster_selection_method='eom', allow_single_cluster=False, gen_min_span_tree=False, verbose=False, output_type=None, prediction_data=False, build_algo='brute_force', build_kwds=None, device_ids=None)"  # noqa: E501
_HDBSCAN_FIT_PREDICT = "(self, X, y=None)"
_SILHOUETTE = "(X, labels, metric='euclidean', chunksize=None, convert_dtype='deprecated')"


def _signature(text: str) -> inspect.Signature:
    namespace: dict = {}
    exec(f"def f{text}: pass", namespace)
    return inspect.signature(namespace["f"])


class _Recorder:
    calls: ClassVar[list[tuple[str, str, dict]]] = []


def _stand_in(name: str, init: str, fit_predict: str) -> type:
    init_sig, fit_sig = _signature(init), _signature(fit_predict)

    class Estimator:
        def __init__(self, *args, **kwargs):
            bound = init_sig.bind(self, *args, **kwargs)  # TypeError on an undocumented call
            self.params = {k: v for k, v in bound.arguments.items() if k != "self"}
            _Recorder.calls.append((name, "__init__", dict(self.params)))

        def fit_predict(self, *args, **kwargs):
            bound = fit_sig.bind(self, *args, **kwargs)
            args_ = {k: v for k, v in bound.arguments.items() if k != "self"}
            _Recorder.calls.append((name, "fit_predict", args_))
            x = np.asarray(args_["X"])
            return (x[:, 0] > np.median(x[:, 0])).astype(np.int32)  # a fixed rule, two groups

    Estimator.__name__ = name
    return Estimator


@pytest.fixture
def fake_cuml(monkeypatch):
    """``cuml`` and ``cupy`` modules that import, see one GPU and record every call."""
    _Recorder.calls = []
    cuml = types.ModuleType("cuml")
    cluster = types.ModuleType("cuml.cluster")
    cluster.KMeans = _stand_in("KMeans", _KMEANS_INIT, _KMEANS_FIT_PREDICT)
    cluster.DBSCAN = _stand_in("DBSCAN", _DBSCAN_INIT, _DBSCAN_FIT_PREDICT)
    cluster.HDBSCAN = _stand_in("HDBSCAN", _HDBSCAN_INIT, _HDBSCAN_FIT_PREDICT)
    metrics = types.ModuleType("cuml.metrics")
    metrics_cluster = types.ModuleType("cuml.metrics.cluster")
    silhouette_sig = _signature(_SILHOUETTE)

    def silhouette_score(*args, **kwargs):
        silhouette_sig.bind(*args, **kwargs)
        _Recorder.calls.append(("silhouette_score", "__call__", {}))
        return 0.0

    metrics_cluster.silhouette_score = silhouette_score
    cuml.cluster, cuml.metrics, metrics.cluster = cluster, metrics, metrics_cluster
    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    for name, module in {
        "cuml": cuml,
        "cuml.cluster": cluster,
        "cuml.metrics": metrics,
        "cuml.metrics.cluster": metrics_cluster,
        "cupy": cupy,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    backends.cuml_status.cache_clear()
    yield _Recorder
    backends.cuml_status.cache_clear()


def grey_features(height: int = 24, width: int = 32) -> tuple[np.ndarray, tuple[int, int]]:
    grey = to_grey(two_region_grey(height, width))
    x, _ = feature_matrix(grey, FeatureConfig("intensity"), ScalerConfig("standard"))
    return x, grey.shape


def test_the_stand_in_is_seen_as_a_usable_cuml(fake_cuml):
    assert backends.cuml_status() == (True, "cuML with 1 CUDA device(s)")


def test_the_stand_in_refuses_an_undocumented_argument(fake_cuml):
    from cuml.cluster import KMeans

    with pytest.raises(TypeError):
        KMeans(n_clusters=2, handle=None)  # removed in cuML 26.04
    with pytest.raises(TypeError):
        KMeans(2)  # keyword-only


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_auto_picks_cuml_exactly_where_the_registry_has_a_cuml_estimator(fake_cuml, name):
    used, note = backends.resolve_backend("auto", name)
    if ALGORITHMS[name].cuml is not None:
        assert (used, note) == ("cuml", None)
    else:
        assert used == "sklearn" and note == f"cuML has no {name}; it ran on scikit-learn"


def test_kmeans_on_cuml_gets_the_configured_parameters_and_the_counts(fake_cuml):
    x, shape = grey_features()
    params = {"n_clusters": 2, "n_init": 3, "max_iter": 50}
    result = cluster_features(x, "kmeans", params, backend="auto", seed=7, shape=shape)
    assert result.backend == "cuml" and result.compressed
    (_, _, init), (_, _, fit) = [c for c in fake_cuml.calls if c[0] == "KMeans"]
    assert init == {
        "n_clusters": 2,
        "n_init": 3,
        "max_iter": 50,
        "random_state": 7,
        "output_type": "numpy",
    }
    assert fit["X"].shape[0] == result.distinct_rows < x.shape[0]
    assert fit["sample_weight"].sum() == x.shape[0]


def test_dbscan_on_cuml_gets_eps_min_samples_and_the_counts(fake_cuml):
    x, _ = grey_features()
    cluster_features(x, "dbscan", {"eps": 0.2, "min_samples": 9}, backend="cuml")
    (_, _, init), (_, _, fit) = [c for c in fake_cuml.calls if c[0] == "DBSCAN"]
    assert init == {"eps": 0.2, "min_samples": 9, "output_type": "numpy"}
    assert fit["sample_weight"].sum() == x.shape[0]


def test_hdbscan_on_cuml_gets_its_parameters_and_no_weights(fake_cuml):
    x, _ = grey_features()
    params = {"min_cluster_size": 30, "min_samples": None, "cluster_selection_epsilon": 0.1}
    result = cluster_features(x, "hdbscan", params, backend="cuml")
    (_, _, init), (_, _, fit) = [c for c in fake_cuml.calls if c[0] == "HDBSCAN"]
    assert init == {**params, "output_type": "numpy"}
    assert set(fit) == {"X"} and fit["X"].shape[0] == x.shape[0]  # cuML's takes no weights
    assert not result.compressed


@pytest.mark.parametrize("name", ["birch", "minibatch_kmeans", "ward"])
def test_algorithms_cuml_lacks_run_on_sklearn_and_the_metrics_say_so(fake_cuml, name):
    x, shape = grey_features()
    result = cluster_and_score(x, shape, ClusterConfig(name), backend="cuml")
    assert result.metrics["backend"] == "sklearn"
    assert f"cuML has no {name}" in "; ".join(result.metrics["notes"])
    assert not [c for c in fake_cuml.calls if c[0] in ("KMeans", "DBSCAN", "HDBSCAN")]


def test_metrics_record_cuml_but_are_scored_on_the_cpu(fake_cuml):
    x, shape = grey_features()
    on_gpu = cluster_and_score(x, shape, ClusterConfig("kmeans", {"n_clusters": 2}), backend="cuml")
    assert on_gpu.metrics["backend"] == "cuml"
    assert not [c for c in fake_cuml.calls if c[0] == "silhouette_score"]
    cpu = cluster_metrics(x, on_gpu.labels.ravel())
    for key in ("silhouette", "calinski_harabasz", "davies_bouldin", "silhouette_method"):
        assert on_gpu.metrics[key] == cpu[key], key
    assert on_gpu.metrics["silhouette_method"] == "exact"


def test_tuning_on_cuml_scores_trials_exactly_as_on_the_cpu(fake_cuml):
    x, shape = grey_features(40, 50)
    tune = TuneConfig(n_trials=3, max_points=300)
    result = tuning.tune_clustering(x, shape, ClusterConfig("kmeans"), tune, backend="cuml")
    assert result.search == "compressed"
    assert result.best.metrics["backend"] == "cuml"
    assert not [c for c in fake_cuml.calls if c[0] == "silhouette_score"]
    assert result.study.best_value == cluster_metrics(x, result.best.labels.ravel())["silhouette"]
