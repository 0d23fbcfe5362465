"""Config composition (Hydra, as DVC runs it) and validation at the edge."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from segclust.algorithms import ALGORITHMS
from segclust.config import Config, ConfigError, load_config
from tests.conftest import REPO_ROOT

CONF = REPO_ROOT / "conf"


def compose(tmp_path: Path, overrides: list[str]) -> dict:
    """Compose conf/ with DVC's own Hydra helper, exactly as `dvc exp run -S` does."""
    from dvc.utils.hydra import compose_and_dump

    out = tmp_path / "params.yaml"
    compose_and_dump(out, str(CONF), None, "config", "", overrides)
    return yaml.safe_load(out.read_text())


def test_committed_params_equal_composition_of_conf(tmp_path):
    composed = compose(tmp_path, [])
    committed = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert committed == composed, "params.yaml is stale: run `make params`"


@pytest.mark.parametrize(
    ("features", "cluster"),
    list(
        itertools.product(
            ["intensity", "intensity_xy", "sobel", "rgb", "hsv", "lab", "lab_xy", "lab_texture"],
            ["kmeans", "birch", "dbscan"],
        )
    ),
)
def test_every_group_combination_composes_and_validates(tmp_path, features, cluster):
    params = compose(tmp_path, [f"features={features}", f"cluster={cluster}"])
    config = Config.from_dict(params)
    assert config.features.name == features
    assert config.cluster.algorithm == cluster
    assert cluster in config.tune.space


@pytest.mark.parametrize(
    ("smoothing", "regions"),
    list(
        itertools.product(["none", "gaussian", "bilateral", "meanshift"], ["clusters", "connected"])
    ),
)
def test_smoothing_and_regions_groups_compose_and_validate(tmp_path, smoothing, regions):
    params = compose(tmp_path, [f"smoothing={smoothing}", f"regions={regions}"])
    config = Config.from_dict(params)
    assert config.smoothing.method == smoothing
    assert config.regions.method == regions
    assert 0 < config.regions.min_area_fraction < 1


@pytest.mark.parametrize(
    "override",
    [
        "cluster.n_clusters=5",
        "features.blocks.xy.weight=2.5",
        "features.blocks.sobel.ksize=5",
        "scaler.scope=block",
        "tune.n_trials=3",
        "data.root=elsewhere",
        "backend=sklearn",
        "seed=7",
        "regions.min_area_fraction=0.02",
        "regions.connectivity=2",
        "smoothing.sigma=2.5",
        "smoothing.colour_radius=20.0",
    ],
)
def test_sweepable_keys_exist_in_their_group(tmp_path, override):
    group_choice = {
        "features.blocks.xy.weight": "features=intensity_xy",
        "features.blocks.sobel.ksize": "features=sobel",
        "regions.min_area_fraction": "regions=connected",
        "regions.connectivity": "regions=connected",
        "smoothing.sigma": "smoothing=gaussian",
        "smoothing.colour_radius": "smoothing=meanshift",
    }
    key = override.split("=")[0]
    overrides = [group_choice[key]] if key in group_choice else []
    params = compose(tmp_path, [*overrides, override])
    value = params
    for part in key.split("."):
        value = value[part]
    assert str(value) == override.split("=", 1)[1]


def test_bsds_data_group_points_both_folders_beside_the_project(tmp_path):
    config = Config.from_dict(compose(tmp_path, ["data=bsds"]))
    assert config.data.root == "../shared/data/bsds500/images"
    assert config.data.ground_truth == "../shared/data/bsds500/groundTruth"


def test_sweep_key_missing_from_group_is_a_hydra_error(tmp_path):
    # dbscan has no n_clusters: sweeping it there must fail loudly, not be ignored.
    with pytest.raises(Exception, match="n_clusters"):
        compose(tmp_path, ["cluster=dbscan", "cluster.n_clusters=3"])


def base_params(tmp_path: Path) -> dict:
    return compose(tmp_path, [])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("cluster", "algorithm"), "spectral", f"allowed: {', '.join(ALGORITHMS)}"),
        (("features", "blocks"), {"hog": {}}, "features.blocks: unknown value 'hog'"),
        (("features", "blocks"), {"xy": {"weight": -1}}, "features.blocks.xy.weight must be"),
        (("features", "blocks"), {"lab": {"size": 3}}, "unknown key.s. size"),
        (("features", "blocks"), {"glcm": {"levels": 1}}, "glcm.levels must be an integer >= 2"),
        (("features", "blocks"), {"xy": {"weight": 0}}, "at least one block needs a weight"),
        (("features", "blocks"), [], "features.blocks must map block names"),
        (("backend",), "tpu", "allowed: auto, sklearn, cuml"),
        (("cluster", "n_clusters"), 1, "cluster.n_clusters must be an integer >= 2"),
        (("cluster", "n_clusters"), 2.5, "cluster.n_clusters must be an integer"),
        (("cluster", "n_clusters"), True, "cluster.n_clusters must be an integer"),
        (("tune", "n_trials"), 0, "tune.n_trials must be an integer >= 1"),
        (("scaler", "name"), "quantile", "allowed: standard, minmax, robust"),
        (("scaler", "scope"), "image", "allowed: column, block"),
        (
            ("tune", "objective"),
            "inertia",
            "allowed: silhouette, calinski_harabasz, davies_bouldin",
        ),
        (("tune", "algorithms"), ["kmeans", "spectral"], "tune.algorithms: unknown value"),
        (("tune", "algorithms"), "kmeans", "tune.algorithms must be a list"),
        (("tune", "algorithms"), ["kmeans", "kmeans"], "lists an algorithm twice"),
        (("render", "cmap"), "no_such_map", "render.cmap"),
    ],
)
def test_bad_values_name_the_key(tmp_path, path, value, message):
    params = base_params(tmp_path)
    target = params
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(params)


@pytest.mark.parametrize(
    ("group", "key", "value", "message"),
    [
        ("dbscan", "eps", 0, "cluster.eps must be a finite number > 0"),
        ("dbscan", "eps", -0.5, "cluster.eps must be a finite number > 0"),
        ("dbscan", "eps", float("nan"), "cluster.eps"),
        ("dbscan", "min_samples", 0, "cluster.min_samples must be an integer >= 1"),
        ("birch", "threshold", 0.0, "cluster.threshold must be a finite number > 0"),
        ("birch", "n_clusters", 1, "cluster.n_clusters must be an integer >= 2"),
        (
            "dbscan",
            "n_clusters",
            3,
            r"unknown parameter.*n_clusters for dbscan; allowed: eps, min_samples",
        ),
    ],
)
def test_out_of_range_cluster_params(tmp_path, group, key, value, message):
    params = compose(tmp_path, [f"cluster={group}"])
    params["cluster"][key] = value
    with pytest.raises(ConfigError, match=message):
        Config.from_dict(params)


def test_tune_range_with_high_below_low(tmp_path):
    params = base_params(tmp_path)
    params["tune"]["space"] = {"kmeans": {"n_clusters": {"low": 6, "high": 3}}}
    with pytest.raises(ConfigError, match=r"tune.space.kmeans.n_clusters: high \(3\)"):
        Config.from_dict(params)


def test_unknown_top_level_key(tmp_path):
    params = base_params(tmp_path)
    params["clustr"] = {}
    with pytest.raises(ConfigError, match=r"unknown key.*clustr"):
        Config.from_dict(params)


def test_load_config_reports_missing_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_the_trials_plot_is_titled_with_the_tuning_objective(tmp_path):
    """dvc.yaml interpolates ${tune.objective}; DVC itself resolves it from params.yaml."""
    from dvc.repo import Repo

    (tmp_path / "dvc.yaml").write_text((REPO_ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["tune"]["objective"] = "davies_bouldin"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / ".dvc").mkdir()
    repo = Repo(str(tmp_path), uninitialized=True)
    tune = next(stage for stage in repo.index.stages if stage.name == "tune")
    titles = [out.plot["title"] for out in tune.outs if out.plot]
    assert titles == ["Optuna trials (davies_bouldin per trial)", "Clusters per image (tuned)"]
