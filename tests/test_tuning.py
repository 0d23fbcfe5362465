"""Optuna tuning: seeded, degenerate trials pruned, errors fail a trial not the study."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from segclust import tuning
from segclust.algorithms import density_matched_eps
from segclust.config import ClusterConfig, FeatureConfig, MetricsConfig, ScalerConfig, TuneConfig
from segclust.features import feature_matrix, to_grey
from segclust.params import SearchRange as ParamRange
from tests.conftest import two_region_grey

optuna.logging.set_verbosity(optuna.logging.WARNING)


def halves_features(height=24, width=32):
    grey = to_grey(two_region_grey(height, width))
    matrix, _ = feature_matrix(grey, FeatureConfig("intensity"), ScalerConfig("standard"))
    return matrix, grey.shape


KMEANS = ClusterConfig("kmeans", {"n_clusters": 4, "n_init": 2, "max_iter": 100})
KMEANS_SPACE = {"n_clusters": ParamRange(2, 4, is_int=True)}


def tune(cluster, space, alternatives=None, **settings):
    """A TuneConfig searching ``space`` for ``cluster.algorithm`` (or ``alternatives``)."""
    spaces = dict(TuneConfig().space)
    spaces[cluster.algorithm] = space
    spaces.update(alternatives or {})
    algorithms = tuple(alternatives or ())
    return TuneConfig(space=spaces, algorithms=algorithms, **settings)


def test_tuning_finds_the_two_halves():
    x, shape = halves_features()
    result = tuning.tune_clustering(
        x, shape, KMEANS, tune(KMEANS, KMEANS_SPACE, n_trials=12, max_points=10_000)
    )
    tried = {t.params["n_clusters"] for t in result.study.trials}
    assert tried == {2, 3, 4}
    assert result.best_params["n_clusters"] == 2
    assert result.best.labels.shape == shape
    assert result.search == "full"
    left, right = result.best.labels[:, :16], result.best.labels[:, 16:]
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1
    assert left[0, 0] != right[0, 0]


def test_same_seed_same_trials():
    x, shape = halves_features()
    rows = [
        tuning.trials_table(
            tuning.tune_clustering(
                x, shape, KMEANS, tune(KMEANS, KMEANS_SPACE, n_trials=6, max_points=10_000), seed=5
            ).study
        )
        for _ in range(2)
    ]
    assert rows[0] == rows[1]


def test_degenerate_trials_are_pruned_and_the_study_goes_on():
    x, shape = halves_features()
    dbscan = ClusterConfig("dbscan", {"eps": 0.1, "min_samples": 5})
    space = {"eps": ParamRange(1e-6, 5.0, log=True), "min_samples": ParamRange(1, 5, is_int=True)}
    result = tuning.tune_clustering(
        x, shape, dbscan, tune(dbscan, space, n_trials=12, max_points=10_000)
    )
    states = [t.state for t in result.study.trials]
    assert len(states) == 12
    pruned = [t for t in result.study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "a range this wide must hit one-cluster or all-noise results"
    assert all(t.user_attrs["reason"] for t in pruned)
    table = tuning.trials_table(result.study)
    assert {row["state"] for row in table} >= {"PRUNED"}


def test_an_exception_fails_one_trial_not_the_study(monkeypatch):
    x, shape = halves_features()
    real = tuning.cluster_features
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError("simulated: this parameter set does not fit")
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "cluster_features", flaky)
    space = {"n_clusters": ParamRange(2, 30, is_int=True)}
    result = tuning.tune_clustering(
        x, shape, KMEANS, tune(KMEANS, space, n_trials=5, max_points=10_000)
    )
    states = [t.state.name for t in result.study.trials]
    assert states.count("FAIL") == 1 and len(states) == 5
    assert result.best is not None


def test_no_valid_trial_returns_no_best():
    # continuous features: no duplicate rows, so a tiny eps leaves every point as noise
    x = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
    shape = (15, 20)
    dbscan = ClusterConfig("dbscan", {"eps": 0.1, "min_samples": 5})
    space = {"eps": ParamRange(1e-7, 1e-6, log=True)}  # every pixel is noise
    result = tuning.tune_clustering(
        x, shape, dbscan, tune(dbscan, space, n_trials=3, max_points=10_000)
    )
    assert result.best is None and result.best_params is None


def test_few_distinct_rows_are_searched_exactly_on_all_pixels():
    x, shape = halves_features(40, 50)
    assert np.unique(x).size < 300 < x.shape[0]
    result = tuning.tune_clustering(
        x, shape, KMEANS, tune(KMEANS, KMEANS_SPACE, n_trials=4, max_points=300)
    )
    assert result.search == "compressed" and result.search_points == x.shape[0]
    assert result.study.best_value == result.best.metrics["silhouette"]


def test_continuous_features_are_searched_on_a_subsample_and_refitted_in_full():
    grey = to_grey(two_region_grey(40, 50))
    x, _ = feature_matrix(grey, FeatureConfig("intensity_xy"), ScalerConfig("standard"))
    result = tuning.tune_clustering(
        x, grey.shape, KMEANS, tune(KMEANS, KMEANS_SPACE, n_trials=4, max_points=300)
    )
    assert result.search == "subsample" and result.search_points == 300
    assert result.best.labels.shape == grey.shape


def test_too_many_clusters_are_pruned_as_degenerate():
    x, shape = halves_features()
    space = {"n_clusters": ParamRange(5, 6, is_int=True)}
    result = tuning.tune_clustering(
        x, shape, KMEANS, tune(KMEANS, space, n_trials=3, max_points=10_000, max_clusters=4)
    )
    assert result.best is None
    reasons = {t.user_attrs["reason"] for t in result.study.trials}
    assert reasons <= {"5 clusters > tune.max_clusters", "6 clusters > tune.max_clusters"}


def test_mostly_noise_is_pruned_as_degenerate():
    x = np.random.default_rng(0).normal(size=(400, 2)).astype(np.float32)
    x[:200] *= 0.05  # two dense cores in a sparse halo that DBSCAN calls noise
    x[:100] += 3
    dbscan = ClusterConfig("dbscan", {"eps": 0.1, "min_samples": 5})
    space = {"eps": ParamRange(0.02, 0.03)}
    result = tuning.tune_clustering(
        x,
        (20, 20),
        dbscan,
        tune(dbscan, space, n_trials=2, max_points=10_000, max_noise_fraction=0.2),
    )
    for trial in result.study.trials:
        assert trial.state == optuna.trial.TrialState.PRUNED
        assert trial.user_attrs["n_clusters"] == 2 and trial.user_attrs["noise_fraction"] > 0.2
        assert "tune.max_noise_fraction" in trial.user_attrs["reason"]


def test_search_subset_is_seeded_sorted_and_none_when_small():
    assert tuning.search_subset(100, 200, 0) is None
    a, b = tuning.search_subset(1000, 50, 3), tuning.search_subset(1000, 50, 3)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.diff(a) > 0) and len(a) == 50


@pytest.mark.parametrize("bad", [{"n_clusters": ParamRange(1, 2, is_int=True)}])
def test_out_of_range_suggestions_fail_the_trial_with_the_key(bad):
    x, shape = halves_features()
    result = tuning.tune_clustering(
        x, shape, KMEANS, tune(KMEANS, bad, n_trials=6, max_points=10_000)
    )
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert failed and all(t.params["n_clusters"] == 1 for t in failed)


def test_compressed_trial_scores_equal_the_full_pixel_metrics():
    """A trial scored from the distinct rows gets the exact silhouette of every pixel."""
    from segclust.clustering import cluster_features
    from segclust.metrics import cluster_metrics

    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, (3000, 2)).astype(np.float32) + rng.integers(0, 2, (3000, 1))
    rows = tuning._SearchRows(x, "kmeans", max_exact=5000)
    assert rows.representative is not None
    labels = cluster_features(x, "kmeans", {"n_clusters": 3, "n_init": 2, "max_iter": 100}).labels
    fast = rows.scores(labels)
    full = cluster_metrics(x, labels, max_exact=10_000)
    assert full["silhouette_method"] == "exact"
    assert fast["silhouette"] == full["silhouette"]
    assert fast["n_clusters"] == full["n_clusters"] == 3
    assert fast["noise_fraction"] == full["noise_fraction"] == 0


def test_subsampled_dbscan_refit_keeps_the_density_of_the_search():
    grey = to_grey(two_region_grey(40, 50))
    x, _ = feature_matrix(grey, FeatureConfig("intensity_xy"), ScalerConfig("standard"))
    dbscan = ClusterConfig("dbscan", {"eps": 0.3, "min_samples": 10})
    space = {"eps": ParamRange(0.2, 0.6)}
    result = tuning.tune_clustering(
        x, grey.shape, dbscan, tune(dbscan, space, n_trials=3, max_points=500)
    )
    assert result.search == "subsample"
    searched = result.study.best_trial.params["eps"]
    assert result.best_params["min_samples"] == 10
    expected = searched * (500 / x.shape[0]) ** (1 / 3)
    assert result.best_params["eps"] == pytest.approx(expected)


def test_density_matched_eps_keeps_the_neighbour_count_of_uniform_points():
    rng = np.random.default_rng(12)
    full = rng.uniform(0, 1, (40_000, 2))
    sample = full[:4000]
    eps = density_matched_eps(0.05, 4000, 40_000, 2)
    assert eps == pytest.approx(0.05 / np.sqrt(10))
    centre = np.array([0.5, 0.5])
    in_sample = (np.linalg.norm(sample - centre, axis=1) < 0.05).sum()
    in_full = (np.linalg.norm(full - centre, axis=1) < eps).sum()
    assert abs(int(in_sample) - int(in_full)) < 0.35 * in_sample


@pytest.mark.parametrize(
    ("objective", "direction"),
    [
        ("silhouette", "MAXIMIZE"),
        ("calinski_harabasz", "MAXIMIZE"),
        ("davies_bouldin", "MINIMIZE"),
    ],
)
def test_each_objective_is_optimised_in_its_direction(objective, direction):
    from segclust.metrics import cluster_metrics

    x, shape = halves_features()
    result = tuning.tune_clustering(
        x,
        shape,
        KMEANS,
        tune(KMEANS, KMEANS_SPACE, n_trials=6, max_points=10_000, objective=objective),
    )
    assert result.study.direction.name == direction
    values = [t.value for t in result.study.trials if t.value is not None]
    best = max(values) if direction == "MAXIMIZE" else min(values)
    assert result.study.best_value == best
    assert best == cluster_metrics(x, result.best.labels.ravel())[objective]
    table = tuning.trials_table(result.study)
    assert table[-1]["best_value"] == f"{best:.6g}"


def test_compressed_trials_score_every_objective_like_the_full_metrics():
    from segclust.clustering import cluster_features
    from segclust.metrics import cluster_metrics

    x, _ = halves_features(40, 50)
    rows = tuning._SearchRows(x, "kmeans", max_exact=5000)
    labels = cluster_features(x, "kmeans", {"n_clusters": 3, "n_init": 2, "max_iter": 100}).labels
    fast, full = rows.scores(labels), cluster_metrics(x, labels)
    for key in ("silhouette", "calinski_harabasz", "davies_bouldin"):
        assert fast[key] == pytest.approx(full[key], rel=1e-5), key


def test_the_algorithm_can_be_searched_with_conditional_parameters():
    x, shape = halves_features()
    alternatives = {
        "kmeans": {"n_clusters": ParamRange(2, 4, is_int=True)},
        "birch": {"n_clusters": ParamRange(2, 4, is_int=True)},
        "dbscan": {"eps": ParamRange(0.05, 1.0, log=True)},
    }
    result = tuning.tune_clustering(
        x, shape, KMEANS, tune(KMEANS, KMEANS_SPACE, alternatives, n_trials=12, max_points=10_000)
    )
    tried = {t.params["algorithm"] for t in result.study.trials}
    assert len(tried) >= 2
    for trial in result.study.trials:
        algorithm = trial.params["algorithm"]
        names = set(trial.params) - {"algorithm"}
        assert names == {f"{algorithm}.{p}" for p in alternatives[algorithm]}
    best = result.study.best_trial
    assert result.algorithm == best.params["algorithm"]
    assert result.best.metrics["algorithm"] == result.algorithm
    for name, value in best.params.items():
        if name != "algorithm":
            assert result.best_params[name.split(".", 1)[1]] == value


# --- what the trials of one image share (reuse) ---------------------------------------------


def search_case(search: str) -> tuple[np.ndarray, tuple[int, int], TuneConfig]:
    """Two-column features of 50×60 pixels searched ``full``, ``compressed`` or on a
    ``subsample``, with trials and the winner scored by the sampled silhouette."""
    rng = np.random.default_rng(8)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [3.0, 3.0]])
    x = centres[rng.integers(0, 4, 3000)] + rng.normal(scale=0.7, size=(3000, 2))
    if search == "compressed":
        x = np.round(x * 3) / 3  # a few hundred distinct rows
    max_points = {"full": 5000, "compressed": 1000, "subsample": 1000}[search]
    settings = tune(KMEANS, KMEANS_SPACE, n_trials=10, max_points=max_points)
    settings = tuning.TuneConfig(
        **{**settings.__dict__, "silhouette_sample_size": 200, "silhouette_reference_size": 400}
    )
    return x.astype(np.float32), (50, 60), settings


SAMPLED = MetricsConfig(silhouette_max_exact=50, silhouette_sample_size=500)


@pytest.mark.parametrize("search", ["full", "compressed", "subsample"])
def test_shared_data_gives_the_same_study_and_winner_as_recomputing(search):
    x, shape, settings = search_case(search)
    runs = [
        tuning.tune_clustering(x, shape, KMEANS, settings, metrics=SAMPLED, reuse=reuse)
        for reuse in (True, False)
    ]
    assert runs[0].search == runs[1].search == search
    assert runs[0].best.metrics["silhouette_method"] == "sampled"
    assert len({t.params["n_clusters"] for t in runs[0].study.trials}) >= 2
    journals = [tuning.study_journal_bytes(r.study) for r in runs]
    assert journals[0] == journals[1]
    assert runs[0].best_params == runs[1].best_params
    assert np.array_equal(runs[0].best.labels, runs[1].best.labels)
    assert runs[0].best.metrics == runs[1].best.metrics


@pytest.mark.parametrize(("search", "refits"), [("full", 0), ("compressed", 0), ("subsample", 1)])
def test_the_best_trial_is_the_refit_when_every_pixel_was_searched(monkeypatch, search, refits):
    """Each parameter set is clustered once, however often TPE proposes it; a search on
    every pixel (full, compressed) keeps its best trial's clustering instead of a refit."""
    x, shape, settings = search_case(search)
    calls = {"trial": [], "refit": 0}
    cluster_features, cluster_and_score = tuning.cluster_features, tuning.cluster_and_score

    def counted_trial(features, algorithm, params, **kwargs):
        calls["trial"].append(params["n_clusters"])
        return cluster_features(features, algorithm, params, **kwargs)

    def counted_refit(*args, **kwargs):
        calls["refit"] += 1
        return cluster_and_score(*args, **kwargs)

    monkeypatch.setattr(tuning, "cluster_features", counted_trial)
    monkeypatch.setattr(tuning, "cluster_and_score", counted_refit)
    result = tuning.tune_clustering(x, shape, KMEANS, settings, metrics=SAMPLED)
    proposed = [t.params["n_clusters"] for t in result.study.trials]
    assert len(proposed) == 10 and len(set(proposed)) < 10  # TPE proposed some again
    assert sorted(calls["trial"]) == sorted(set(proposed))
    assert calls["refit"] == refits


def test_the_plans_distinct_rows_are_handed_to_the_trials_as_compress_rows_would():
    from segclust.compression import compress_rows

    rng = np.random.default_rng(0)
    few = rng.integers(0, 4, (1000, 2)).astype(np.float32)  # 16 distinct rows
    found = compress_rows(few, max_distinct_fraction=None)
    assert tuning._trial_compression(found, 1000) is found
    assert tuning._trial_compression(found, 30) is None  # over half the rows distinct
    assert compress_rows(few[:30]) is None
    assert tuning._trial_compression(None, 1000) == "auto"
