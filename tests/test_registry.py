"""The registries are the one place a pluggable kind is defined: every entry validates, has its
YAML, clusters, tunes, and the YAML and the registry cannot drift apart."""

from __future__ import annotations

import dataclasses

import numpy as np
import optuna
import pytest
import yaml
from skimage.measure import label as connected_pieces

from segclust import ConfigError, InputTooLargeError, segment
from segclust import algorithms as algorithms_module
from segclust.algorithms import ALGORITHMS
from segclust.api import compose_config, segment_with
from segclust.blocks import BLOCKS
from segclust.clustering import cluster_features
from segclust.config import ClusterConfig, FeatureConfig, SmoothingConfig, TuneConfig
from segclust.presets import compose_params, preset_names
from segclust.smoothing import SMOOTHERS
from segclust.tuning import tune_clustering
from tests.conftest import REPO_ROOT, three_region_bgr, two_region_grey

optuna.logging.set_verbosity(optuna.logging.WARNING)


def group_file(group: str, name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "conf" / group / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_has_its_yaml_with_the_registry_defaults(name):
    loaded = group_file("cluster", name)
    assert loaded.pop("algorithm") == name
    assert loaded == ALGORITHMS[name].default_params()
    assert ClusterConfig.from_dict({"algorithm": name}).params == loaded


@pytest.mark.parametrize("name", sorted(SMOOTHERS))
def test_every_smoothing_method_has_its_yaml_with_the_registry_defaults(name):
    loaded = group_file("smoothing", name)
    assert SmoothingConfig.from_dict(loaded) == SmoothingConfig.from_dict({"method": name})


def test_every_feature_block_is_in_some_preset():
    used = {block.kind for name in preset_names("features") for block in FeatureConfig(name).blocks}
    assert used == set(BLOCKS)


@pytest.mark.parametrize("name", preset_names("features"))
def test_segment_reads_every_features_preset_of_the_hydra_group(name):
    result = segment(three_region_bgr(24, 30), features=name, n_clusters=3)
    expected = FeatureConfig.from_dict(group_file("features", name))
    assert FeatureConfig(name) == expected
    assert result.labels.shape == (24, 30)


def test_an_unknown_preset_lists_the_files_of_the_group():
    with pytest.raises(ConfigError, match=r"'hog' is not a preset.*lab_texture"):
        segment(two_region_grey(), features="hog")


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_clusters_a_small_photo(name):
    image = three_region_bgr(30, 36)
    config = compose_config([f"cluster={name}", "smoothing=none", "regions=clusters"])
    params = dict(config.cluster.params)
    if name in ("dbscan", "hdbscan"):  # defaults are set for ~25k-pixel photos
        params.update({"eps": 0.3, "min_samples": 10} if name == "dbscan" else {})
        params.update({"min_cluster_size": 30} if name == "hdbscan" else {})
    config = dataclasses.replace(config, cluster=ClusterConfig(name, params))
    result = segment_with(image, config)
    assert result.labels.shape == (30, 36)
    assert result.metrics["algorithm"] == name and result.metrics["n_clusters"] >= 2


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_is_tunable_from_its_default_space(name):
    image = three_region_bgr(30, 36)
    config = compose_config(["smoothing=none", "features=rgb"])
    from segclust.features import feature_matrix

    x, _ = feature_matrix(image, config.features, config.scaler)
    result = tune_clustering(
        x, (30, 36), ClusterConfig(name), TuneConfig(n_trials=4, max_points=500), seed=1
    )
    assert len(result.study.trials) == 4
    drawn = set().union(*(t.params for t in result.study.trials))
    assert drawn == set(TuneConfig().space_for(name))


def test_ward_clusters_are_connected_regions():
    image = three_region_bgr(30, 36)
    result = segment(image, features="rgb", algorithm="ward", n_clusters=5)
    for cluster in range(result.metrics["n_clusters"]):
        pieces = connected_pieces(result.labels == cluster, connectivity=1)
        assert pieces.max() == 1, f"cluster {cluster} has {pieces.max()} pieces"


def test_ward_above_its_measured_limit_is_one_line_naming_it(monkeypatch):
    small = dataclasses.replace(ALGORITHMS["ward"], max_rows=500)
    monkeypatch.setitem(algorithms_module.ALGORITHMS, "ward", small)
    x = np.zeros((30 * 36, 3), np.float32)
    with pytest.raises(InputTooLargeError) as info:
        cluster_features(x, "ward", {"n_clusters": 2}, shape=(30, 36))
    message = str(info.value)
    assert "ward is refused above 500 pixels" in message and "1,080" in message
    assert "limits.md" in message and "\n" not in message


def test_large_hdbscan_fits_a_subsample_and_labels_every_row_by_its_nearest(monkeypatch):
    monkeypatch.setattr(algorithms_module, "HDBSCAN_MAX_FIT_ROWS", 400)
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0], [6, 0], [0, 6]], dtype=np.float32)
    truth = rng.integers(0, 3, 3000)
    x = (centres[truth] + rng.normal(0, 0.4, (3000, 2))).astype(np.float32)
    params = {"min_cluster_size": 30, "min_samples": None, "cluster_selection_epsilon": 0.0}
    ours = cluster_features(x, "hdbscan", params, seed=2)
    again = cluster_features(x, "hdbscan", params, seed=2)
    assert ours.labels.tobytes() == again.labels.tobytes()
    assert any("subsample of 400 rows" in note for note in ours.notes)
    from sklearn.metrics import adjusted_rand_score

    kept = ours.labels >= 0
    assert kept.mean() > 0.9 and adjusted_rand_score(truth[kept], ours.labels[kept]) > 0.95


def test_minibatch_kmeans_fits_distinct_rows_with_their_counts():
    result = segment(two_region_grey(40, 50), algorithm="minibatch_kmeans", n_clusters=2)
    assert result.metrics["compressed"] is True
    left, right = result.labels[:, :25], result.labels[:, 25:]
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1


def test_experiments_compose_the_seed_way_and_the_default_best():
    seed = compose_params(["+experiment=seed"])
    assert seed["features"]["name"] == "intensity"
    assert seed["smoothing"]["method"] == "none" and seed["regions"]["method"] == "clusters"
    best, default = compose_params(["+experiment=best"]), compose_params([])
    # best is the default pipeline on the CNN-cue boundary model and its own hierarchy preset
    assert best["boundaries"]["model"] == "cnn" and default["boundaries"]["model"] == "base"
    assert best["hierarchy"] == compose_params(["hierarchy=cnn"])["hierarchy"]
    assert best["hierarchy"] != default["hierarchy"]
    for key in set(default) - {"boundaries", "hierarchy"}:
        assert best[key] == default[key], key


def test_committed_params_yaml_is_the_default_composition():
    committed = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert committed == compose_params([])


def test_tuning_ward_builds_its_tree_once_and_cuts_it_per_trial(monkeypatch):
    from segclust.features import feature_matrix

    monkeypatch.setattr(algorithms_module, "WARD_TREES", algorithms_module._LastTree())
    image = three_region_bgr(30, 36)
    config = compose_config(["smoothing=none", "features=rgb"])
    x, _ = feature_matrix(image, config.features, config.scaler)
    result = tune_clustering(
        x, (30, 36), ClusterConfig("ward"), TuneConfig(n_trials=6, max_points=500), seed=3
    )
    tried = {t.params["n_clusters"] for t in result.study.trials}
    assert len(tried) >= 3
    assert algorithms_module.WARD_TREES.builds == 1
    fresh = cluster_features(x, "ward", result.best_params, shape=(30, 36))
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph

    plain = AgglomerativeClustering(
        n_clusters=result.best_params["n_clusters"], connectivity=grid_to_graph(30, 36)
    ).fit_predict(x)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(plain, fresh.labels) == 1.0


def test_hdbscan_epsilon_on_tied_pixels_is_one_line_not_a_traceback():
    """scikit-learn 1.9.1 raises TypeError here (its issue #33219); we say why, in one line.
    When a scikit-learn release fixes it this test fails: then drop the workaround."""
    x = np.repeat(np.arange(40, dtype=np.float32), 50).reshape(-1, 1) / 40
    params = {"min_cluster_size": 30, "min_samples": None, "cluster_selection_epsilon": 0.1}
    with pytest.raises(ConfigError, match=r"issue #33219\); use 0$"):
        cluster_features(x, "hdbscan", params)


def test_tuning_ward_above_its_limit_is_refused_before_any_trial(monkeypatch):
    small = dataclasses.replace(ALGORITHMS["ward"], max_rows=500)
    monkeypatch.setitem(algorithms_module.ALGORITHMS, "ward", small)
    x = np.zeros((30 * 36, 3), np.float32)
    with pytest.raises(InputTooLargeError, match="ward is refused above 500 pixels"):
        tune_clustering(x, (30, 36), ClusterConfig("ward"), TuneConfig(n_trials=3))
