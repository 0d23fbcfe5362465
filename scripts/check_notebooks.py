"""Notebooks are stored in Git without outputs: check that they are, or strip them.

    python scripts/check_notebooks.py          # what is left in notebooks/*.ipynb; exit 1 if any
    python scripts/check_notebooks.py --fix    # strip it, in place

Left out of Git: outputs, execution counts, per-cell execution timings (JupyterLab's "record
timing"), collapsed/scrolled state, and any notebook metadata but the kernel and the
language's name (e.g. saved widget state, the Python version). ``tests/test_notebook.py``
runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
KEPT_METADATA = ("kernelspec", "language_info")
KEPT_LANGUAGE_INFO = ("name",)
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled", "widgets")


def problems(notebook: nbformat.NotebookNode) -> list[str]:
    """What would be stored besides the code and the text; empty when the notebook is clean."""
    found = [f"notebook metadata {key!r}" for key in notebook.metadata if key not in KEPT_METADATA]
    language = notebook.metadata.get("language_info", {})
    found += [f"language_info {key!r}" for key in language if key not in KEPT_LANGUAGE_INFO]
    for index, cell in enumerate(notebook.cells):
        where = f"cell {index} ({cell.get('id', 'no id')})"
        if cell.cell_type == "code":
            if cell.outputs:
                found.append(f"{where}: {len(cell.outputs)} output(s)")
            if cell.execution_count is not None:
                found.append(f"{where}: execution_count {cell.execution_count}")
        found += [f"{where}: metadata {k!r}" for k in cell.metadata if k in VOLATILE_CELL_METADATA]
    return found


def strip(notebook: nbformat.NotebookNode) -> None:
    """Remove everything :func:`problems` reports, in place."""
    for key in [k for k in notebook.metadata if k not in KEPT_METADATA]:
        del notebook.metadata[key]
    language = notebook.metadata.get("language_info", {})
    for key in [k for k in language if k not in KEPT_LANGUAGE_INFO]:
        del language[key]
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--fix", action="store_true", help="strip the notebooks in place")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = 0
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        found = problems(notebook)
        if found and args.fix:
            strip(notebook)
            nbformat.validate(notebook)
            nbformat.write(notebook, path)
            print(f"{path}: stripped {len(found)} thing(s)")
        elif found:
            dirty += 1
            print(f"{path}: " + "; ".join(found))
    if dirty:
        print("strip them with: python scripts/check_notebooks.py --fix", file=sys.stderr)
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main())
