"""A module of this repository as it was at an earlier commit, for before/after benchmarks
that time both implementations in the same run (``evaluate_speed.py``, ``cache_hits.py``)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_at(commit: str, path: str, file: str | None = None) -> types.ModuleType:
    """The module at ``path`` (e.g. ``src/segclust/boundaries.py``) as it was at ``commit``,
    read from Git and executed as ``<stem>_before``; ``file``: its ``__file__``, for code
    that finds files beside itself."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"segclust_{Path(path).stem}_before")
    if file is not None:
        module.__file__ = file
    sys.modules[module.__name__] = module  # a dataclass in it looks itself up there
    exec(compile(source, f"{commit}:{path}", "exec"), module.__dict__)
    return module
