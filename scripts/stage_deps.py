"""Each DVC stage's code dependencies, from the import closure of its module.

A stage's ``deps`` in ``dvc.yaml`` must list every module its code runs, or ``dvc repro``
says "up to date" over stale outputs. This script computes them, so they are correct by
construction rather than by hand:

    python scripts/stage_deps.py            # print each stage's closure
    python scripts/stage_deps.py --check    # exit 1 (and say what differs) if dvc.yaml disagrees
    python scripts/stage_deps.py --write    # rewrite the src/ deps in dvc.yaml  (make deps)

The closure follows every ``import`` of a ``segclust`` module that the stage's module (run as
``python -m segclust.stages.<name>``) makes, at module level or inside functions (a lazy
import still runs), plus the packages Python imports on the way. One exception: a package's
PEP 562 ``__getattr__`` runs only when code asks ``segclust.<name>``, which no stage does, so
its imports are not followed. ``tests/test_stage_deps.py`` checks both that dvc.yaml agrees
and that the modules a stage really loads are inside its closure. Python's ``ast`` does the
parsing.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = "segclust"
STAGE_CMD = re.compile(r"python -m (segclust\.stages\.\w+)")


def module_path(module: str, src: Path = SRC) -> Path | None:
    """The file of a dotted module name under ``src`` (a module or a package), or None."""
    base = src.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imported(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """Dotted names of the package's modules that ``tree`` imports (lazy ones included)."""
    skip: set[int] = set()
    if is_package:  # PEP 562 lazy attributes run only on attribute access (see docstring)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def import_closure(module: str, src: Path = SRC) -> set[Path]:
    """Files of every package module that running ``module`` imports, itself included."""
    seen: set[str] = set()
    todo = [module, *_parents(module)]
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_path(name, src)
        if path is None:  # ``from segclust.x import function``: not a module
            continue
        files.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for found in _imported(tree, name, path.name == "__init__.py"):
            todo.extend([found, *_parents(found)])
    return files


def _definition(stage: dict) -> dict:
    """A stage's own fields: those of its ``do`` for a ``foreach`` stage."""
    return stage.get("do", stage)


def stage_modules(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, str]:
    """Stage name -> the module its ``cmd`` runs, for every ``python -m segclust...`` stage."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    found = {}
    for name, stage in stages.items():
        match = STAGE_CMD.search(str(_definition(stage).get("cmd", "")))
        if match:
            found[name] = match.group(1)
    return found


def expected_deps(root: Path = ROOT) -> dict[str, list[str]]:
    """Stage name -> sorted repo-relative paths of its code dependencies."""
    return {
        stage: sorted(p.relative_to(root).as_posix() for p in import_closure(module, root / "src"))
        for stage, module in stage_modules(root / "dvc.yaml").items()
    }


def declared_deps(root: Path = ROOT) -> dict[str, list[str]]:
    """Stage name -> the ``src/`` paths its ``deps`` in dvc.yaml list now."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {
        name: sorted(d for d in _definition(stage).get("deps", []) if str(d).startswith("src/"))
        for name, stage in stages.items()
        if name in stage_modules(root / "dvc.yaml")
    }


def differences(root: Path = ROOT) -> list[str]:
    """One line per stage whose declared deps differ from its import closure."""
    lines = []
    declared = declared_deps(root)
    for stage, expected in expected_deps(root).items():
        missing = sorted(set(expected) - set(declared[stage]))
        extra = sorted(set(declared[stage]) - set(expected))
        if missing:
            lines.append(f"{stage}: missing {', '.join(missing)}")
        if extra:
            lines.append(f"{stage}: not imported {', '.join(extra)}")
    return lines


def rewrite(root: Path = ROOT) -> str:
    """dvc.yaml with each stage's ``src/`` deps replaced by its closure (other lines kept)."""
    expected = expected_deps(root)
    out: list[str] = []
    stage: str | None = None
    item: str | None = None  # "<indent>- " of the deps list being read, None outside one
    for line in (root / "dvc.yaml").read_text(encoding="utf-8").splitlines():
        stage_match = re.match(r"^  (\w+):\s*$", line)
        if stage_match:
            stage, item = stage_match.group(1), None
        deps_match = re.match(r"^(    (?:  )?)deps:\s*$", line)  # a stage's, or its do:'s
        if deps_match:
            item = deps_match.group(1) + "  - "
            out.append(line)
            continue
        if item is not None and not line.startswith(item):
            if stage in expected:
                out.extend(f"{item}{path}" for path in expected[stage])
            item = None
        if item is not None and line.startswith(item + "src/"):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="fail if dvc.yaml disagrees")
    action.add_argument("--write", action="store_true", help="rewrite dvc.yaml's src/ deps")
    args = parser.parse_args(argv)
    if args.write:
        (ROOT / "dvc.yaml").write_text(rewrite(), encoding="utf-8")
        return 0
    if args.check:
        problems = differences()
        for line in problems:
            print(f"dvc.yaml: {line} (run `make deps`)", file=sys.stderr)
        return 1 if problems else 0
    for stage, paths in expected_deps().items():
        print(f"{stage}: {' '.join(paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
