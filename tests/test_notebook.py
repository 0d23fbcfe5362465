"""notebooks/quickstart.ipynb: stored without outputs, and it runs top to bottom.

The run is the real thing, as a user gets there: a throw-away copy of this repository,
`dvc repro` on two of the bundled samples (with `tune=quick`), one `dvc exp run`, then every cell
through a Jupyter kernel (nbclient, ipykernel's `python3`) started in the copy's notebooks/.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_output

from tests.conftest import REPO_ROOT, commit_all, copy_project, repo_env, sh

NOTEBOOKS = REPO_ROOT / "notebooks"
QUICKSTART = NOTEBOOKS / "quickstart.ipynb"
spec = importlib.util.spec_from_file_location(
    "check_notebooks", REPO_ROOT / "scripts" / "check_notebooks.py"
)
check_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_notebooks)

INLINE = "module://matplotlib_inline.backend_inline"  # non-interactive: figures become PNGs


def test_notebooks_are_stored_without_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert QUICKSTART in paths
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert check_notebooks.problems(notebook) == [], (
            f"{path.name} holds outputs or run state; "
            "strip them with `python scripts/check_notebooks.py --fix`"
        )
        assert notebook.metadata.kernelspec.name == "python3"


def test_the_check_sees_outputs_and_strip_removes_them():
    notebook = nbformat.read(QUICKSTART, as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code")
    cell.outputs = [new_output("stream", name="stdout", text="left over\n")]
    cell.execution_count = 3
    cell.metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    notebook.metadata.language_info["version"] = "3.11.7"
    assert len(check_notebooks.problems(notebook)) == 5
    check_notebooks.strip(notebook)
    assert check_notebooks.problems(notebook) == []
    nbformat.validate(notebook)


@pytest.mark.slow
def test_the_quickstart_runs_top_to_bottom_on_the_pipeline_outputs(tmp_path):
    repo = copy_project(tmp_path / "repo")  # tune=quick
    for photo in (repo / "data" / "samples").iterdir():  # two of the bundled samples
        if photo.suffix != ".md" and photo.name not in ("chelsea.png", "coins.png"):
            photo.unlink()
    commit_all(repo, "copy")
    dvc = (sys.executable, "-m", "dvc")
    sh(repo, *dvc, "repro", "--allow-missing")  # as a clone without the training split
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "results")
    sh(repo, *dvc, "exp", "run", "--allow-missing", "-S", "regions=clusters", "-n", "by-clusters")

    notebook = nbformat.read(repo / "notebooks" / "quickstart.ipynb", as_version=4)
    # One more cell, in memory only: which Python ran, from where, and what exp_show gave.
    notebook.cells.append(
        new_code_cell(
            "import json, os, sys\n"
            "print(json.dumps({'python': sys.executable, 'cwd': os.getcwd(),"
            " 'rows': list(experiments.index)}))"
        )
    )
    client = NotebookClient(
        notebook,
        timeout=300,  # per cell: a guard against a hang, not a measurement
        kernel_name="python3",
        resources={"metadata": {"path": str(repo / "notebooks")}},
    )
    client.execute(env={**repo_env(), "MPLBACKEND": INLINE})  # raises on any cell's error

    probe = json.loads(notebook.cells[-1].outputs[0]["text"])
    assert probe["python"] == sys.executable  # ipykernel's python3 spec, this interpreter
    assert Path(probe["cwd"]).resolve() == repo.resolve()  # found from notebooks/
    assert probe["rows"][:2] == ["workspace", "main"] and "by-clusters" in probe["rows"]
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    # cluster maps, contours, the study's two plots, the experiments, a PNG read at a revision
    assert len(images) == 6
