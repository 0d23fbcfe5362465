"""dvc.yaml's code deps are each stage's import closure (scripts/stage_deps.py, `make deps`):
this fails when a stage imports a module its deps do not list, or lists one it does not use."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("stage_deps", REPO_ROOT / "scripts" / "stage_deps.py")
stage_deps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stage_deps)


def test_dvc_yaml_lists_exactly_each_stages_import_closure():
    assert stage_deps.differences() == []


def test_every_stage_module_is_covered():
    assert set(stage_deps.stage_modules()) == {
        "train_boundaries", "boundaries", "features", "cluster", "tune", "regions", "hierarchy",
        "render", "evaluate", "evaluate_boundaries",
    }  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    shutil.copy(REPO_ROOT / "dvc.yaml", root / "dvc.yaml")
    return root


def _drop(root: Path, stage: str, line: str) -> None:
    """dvc.yaml without ``line`` in the definition of ``stage``."""
    text = (root / "dvc.yaml").read_text()
    start = text.index(f"\n  {stage}:\n")
    (root / "dvc.yaml").write_text(text[:start] + text[start:].replace(line, "", 1))


def test_a_missing_dep_is_reported(tmp_path):
    root = _copy(tmp_path)
    _drop(root, "features", "      - src/segclust/texture.py\n")
    assert stage_deps.differences(root) == ["features: missing src/segclust/texture.py"]


def test_a_foreach_stage_is_checked_and_rewritten_too(tmp_path):
    root = _copy(tmp_path)
    _drop(root, "train_boundaries", "        - src/segclust/boundary_cues.py\n")
    assert stage_deps.differences(root) == [
        "train_boundaries: missing src/segclust/boundary_cues.py"
    ]
    (root / "dvc.yaml").write_text(stage_deps.rewrite(root))
    assert stage_deps.differences(root) == []
    assert "        - src/segclust/boundary_cues.py\n" in (root / "dvc.yaml").read_text()


def test_a_new_lazy_import_is_reported_and_make_deps_fixes_it(tmp_path):
    root = _copy(tmp_path)
    regions = root / "src" / "segclust" / "stages" / "regions.py"
    regions.write_text(
        regions.read_text() + "\n\ndef _later():\n    from segclust import evaluation  # noqa\n"
    )
    assert "regions: missing src/segclust/evaluation.py" in stage_deps.differences(root)
    (root / "dvc.yaml").write_text(stage_deps.rewrite(root))
    assert stage_deps.differences(root) == []


@pytest.mark.parametrize("stage", sorted(stage_deps.stage_modules()))
def test_the_modules_a_stage_really_loads_are_in_its_closure(stage):
    module = stage_deps.stage_modules()[stage]
    code = (
        f"import json, sys; import {module}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'segclust')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    loaded = {stage_deps.module_path(m) for m in json.loads(out.stdout)}
    closure = stage_deps.import_closure(module)
    assert loaded <= closure, sorted(str(p) for p in loaded - closure)
