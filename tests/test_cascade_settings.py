"""The hierarchy's and the boundary model's committed settings are the ones the train split
chose, and no other."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from segclust.boundary_model import BoundariesConfig, load_model
from segclust.config import HierarchyConfig
from tests.conftest import REPO_ROOT

RESULTS = REPO_ROOT / "benchmarks" / "results"
CONF = REPO_ROOT / "conf"


def conf(group: str, name: str) -> dict:
    return yaml.safe_load((CONF / group / f"{name}.yaml").read_text())


def test_conf_hierarchy_gradient_holds_what_the_train_split_chose():
    chosen = json.loads((RESULTS / "cascade_train.json").read_text())["chosen"]
    gradient = conf("hierarchy", "gradient")
    assert gradient["edges"] == "gradient"
    for key, value in chosen.items():
        if key != "candidate":
            assert gradient[key] == value, key
    assert HierarchyConfig.from_dict(gradient).cut_params == {"threshold": chosen["threshold"]}


def test_the_learned_hierarchies_hold_what_the_train_split_chose():
    chosen = json.loads((RESULTS / "boundaries_train.json").read_text())["hierarchy"]
    for name, preset in (("base", "default"), ("cnn", "cnn")):
        settings = conf("hierarchy", preset)
        assert settings["edges"] == "learned"
        for key, value in chosen[name].items():
            assert settings[key] == value, (preset, key)
    # the default preset is also what the registry and the dataclass default to
    default = conf("hierarchy", "default")
    assert HierarchyConfig.from_dict(default) == HierarchyConfig.from_dict({}) == HierarchyConfig()


def test_the_boundary_models_and_their_maps_hold_what_the_train_split_chose():
    chosen = json.loads((RESULTS / "boundaries_train.json").read_text())["boundaries"]
    boundaries = BoundariesConfig.from_dict(conf("boundaries", "default"))
    best = conf("experiment", "best")
    for name, maps in (("base", conf("boundaries", "default")), ("cnn", best["boundaries"])):
        classifier = boundaries.models[name].as_dict()["classifier"]
        for key, value in chosen[name]["classifier"].items():
            assert classifier[key] == value, (name, key)
        assert maps["smooth"] == chosen[name]["smooth"], name
        assert maps["thin_radius"] == chosen[name]["thin_radius"], name
    assert best["boundaries"]["model"] == "cnn"


def test_the_committed_model_has_the_textons_the_selection_learned():
    """The benchmark learned its texton dictionary on the train split as the training stage
    does; the committed model holds the same one (same photos, seeds and code)."""
    textons = np.array(json.loads((RESULTS / "boundaries_train.json").read_text())["textons"])
    model = load_model(REPO_ROOT / "models" / "boundaries_base.npz")
    np.testing.assert_allclose(model.textons, textons, rtol=1e-6)


def test_the_test_reports_used_the_train_settings():
    chosen = json.loads((RESULTS / "cascade_train.json").read_text())["chosen"]
    report = (RESULTS / "cascade_test.md").read_text()
    assert "**test** split, 200 images" in report
    for key, value in chosen.items():
        shown = value if key == "candidate" else f"`{key}: {value}`"
        assert str(shown) in report, key
    learned = (RESULTS / "boundaries_test.md").read_text()
    assert "**test** split, 200 images" in learned and "`boundaries_train.json`" in learned
    for name in ("base", "cnn"):
        digest = load_model_digest(name)
        assert digest[:12] in learned, name


def load_model_digest(name: str) -> str:
    import hashlib

    model = REPO_ROOT / "models" / f"boundaries_{name}.npz"
    return hashlib.sha256(model.read_bytes()).hexdigest()


def test_the_committed_models_are_in_sync_with_their_code():
    """``dvc status train_boundaries`` is clean: any change to the training code's import
    closure (even ``stages/_base.py``) needs ``dvc repro train_boundaries`` with the train
    split present and the lock committed, or a clone without that split cannot run
    ``dvc repro --allow-missing`` (it would try to retrain)."""
    train = (
        REPO_ROOT
        / yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["boundaries"]["train"]["images"]
    )
    if not train.is_dir():
        pytest.skip(f"the BSDS500 train split is not at {train} (a clone without ../shared)")
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json", "train_boundaries"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    stale = json.loads(result.stdout or "{}")
    assert stale == {}, f"run `dvc repro train_boundaries` and commit dvc.lock: {stale}"
