"""The hierarchy's committed defaults are the ones the train split chose, and no other."""

from __future__ import annotations

import json

import yaml

from segclust.config import HierarchyConfig
from tests.conftest import REPO_ROOT

RESULTS = REPO_ROOT / "benchmarks" / "results"


def test_conf_hierarchy_holds_what_the_train_split_chose():
    chosen = json.loads((RESULTS / "cascade_train.json").read_text())["chosen"]
    conf = yaml.safe_load((REPO_ROOT / "conf" / "hierarchy" / "default.yaml").read_text())
    for key, value in chosen.items():
        if key != "candidate":
            assert conf[key] == value, key
    # and the config they make is valid, and what the registry and the dataclass default to
    assert HierarchyConfig.from_dict(conf).cut_params == {"threshold": chosen["threshold"]}
    assert HierarchyConfig.from_dict(conf) == HierarchyConfig.from_dict({}) == HierarchyConfig()


def test_the_test_report_used_the_train_settings():
    chosen = json.loads((RESULTS / "cascade_train.json").read_text())["chosen"]
    report = (RESULTS / "cascade_test.md").read_text()
    assert "**test** split, 200 images" in report
    for key, value in chosen.items():
        shown = value if key == "candidate" else f"`{key}: {value}`"
        assert str(shown) in report, key
