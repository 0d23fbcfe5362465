"""Back-end choice: auto, explicit sklearn, cuML asked for but missing, BIRCH on cuML."""

from __future__ import annotations

import numpy as np
import pytest

from segclust import backends
from segclust.api import segment
from segclust.errors import BackendUnavailableError


@pytest.fixture
def no_cuml(monkeypatch):
    monkeypatch.setattr(backends, "cuml_status", lambda: (False, "cuML does not import"))


@pytest.fixture
def fake_gpu(monkeypatch):
    monkeypatch.setattr(backends, "cuml_status", lambda: (True, "cuML with 1 CUDA device(s)"))


def test_cuml_status_on_this_machine_is_a_boolean_and_a_reason():
    backends.cuml_status.cache_clear()
    ok, reason = backends.cuml_status()
    assert isinstance(ok, bool) and reason


def test_sklearn_is_always_sklearn(fake_gpu):
    assert backends.resolve_backend("sklearn", "kmeans") == ("sklearn", None)


def test_auto_without_cuml_is_sklearn(no_cuml):
    assert backends.resolve_backend("auto", "dbscan") == ("sklearn", None)


def test_cuml_requested_but_missing_is_one_clear_line(no_cuml):
    with pytest.raises(BackendUnavailableError) as info:
        backends.resolve_backend("cuml", "kmeans")
    message = str(info.value)
    assert "backend=cuml was asked for but cuML does not import" in message
    assert "backend=auto" in message and "\n" not in message


def test_cuml_requested_fails_before_clustering(no_cuml):
    image = np.zeros((8, 8), np.uint8)
    image[:, 4:] = 255
    with pytest.raises(BackendUnavailableError):
        segment(image, backend="cuml", n_clusters=2)


@pytest.mark.parametrize("requested", ["auto", "cuml"])
def test_birch_on_cuml_runs_on_sklearn_and_says_so(fake_gpu, requested):
    used, note = backends.resolve_backend(requested, "birch")
    assert used == "sklearn" and note == "cuML has no birch; it ran on scikit-learn"


def test_auto_with_a_gpu_picks_cuml_for_kmeans_and_dbscan(fake_gpu):
    assert backends.resolve_backend("auto", "kmeans") == ("cuml", None)
    assert backends.resolve_backend("auto", "dbscan") == ("cuml", None)


def test_birch_note_reaches_the_metrics(fake_gpu):
    image = np.zeros((10, 10), np.uint8)
    image[:, 5:] = 200
    result = segment(image, algorithm="birch", backend="cuml", n_clusters=2, threshold=0.1)
    assert result.metrics["backend"] == "sklearn"
    assert "cuML has no birch" in "; ".join(result.metrics["notes"])


def test_sklearn_estimators_get_the_configured_parameters():
    km = backends.make_estimator(
        "kmeans", {"n_clusters": 5, "n_init": 2, "max_iter": 9}, "sklearn", seed=4
    )
    assert (km.n_clusters, km.n_init, km.max_iter, km.random_state) == (5, 2, 9, 4)
    db = backends.make_estimator("dbscan", {"eps": 0.3, "min_samples": 7}, "sklearn", 0)
    assert (db.eps, db.min_samples) == (0.3, 7)
