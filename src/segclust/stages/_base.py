"""What every stage shares, config aside: one-line errors, atomic writes, JSON, timings.

:mod:`segclust.stages._common` adds what needs the whole validated config; a stage that
needs less (``train_boundaries``) imports this alone, so that its DVC code dependencies stay
its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from segclust.errors import SegclustError

log = logging.getLogger("segclust")

PARAMS_FILE = Path("params.yaml")
METRICS_DIR = Path("metrics")
TIMINGS_DIR = METRICS_DIR / "timings"

Settings = TypeVar("Settings")


def log_level() -> int:
    """The stages' log level: ``SEGCLUST_LOG`` (``debug``: one line per image as well;
    ``info``, the default: one progress bar and a summary per stage, whatever the number of
    images; ``warning``: problems only).

    >>> import os; os.environ["SEGCLUST_LOG"] = "debug"; log_level() == logging.DEBUG
    True
    >>> del os.environ["SEGCLUST_LOG"]; log_level() == logging.INFO
    True
    """
    name = os.environ.get("SEGCLUST_LOG", "info").strip().upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def run_stage(
    name: str, body: Callable[[Settings], None], load: Callable[[Path], Settings]
) -> None:
    """Run ``body`` with the settings ``load`` reads from ``params.yaml``; user errors become
    one line, exit code 2."""
    logging.basicConfig(level=log_level(), format=f"{name}: %(message)s", stream=sys.stderr)
    logging.captureWarnings(True)
    try:
        settings = load(PARAMS_FILE)
        started = time.perf_counter()
        body(settings)
        log.info("done in %.1f s", time.perf_counter() - started)
    except SegclustError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except MemoryError:
        print(
            f"{name}: error: out of memory; use smaller images or other parameters", file=sys.stderr
        )
        sys.exit(2)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(final)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(final), suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        elif final.exists() or final.is_symlink():
            final.unlink()
        os.replace(tmp, final)
        os.chmod(final, 0o755)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _temp_prefix(path: Path) -> str:
    """Temporary siblings are named after the output, the host and the process writing them."""
    return f".{path.name}.{_HOST}.{os.getpid()}."


_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's, or not a pid we can ask about: leave its files
    return True


def sweep_stale(path: Path) -> None:
    """Remove the temporary siblings of ``path`` left by a process of this host that no
    longer runs (a stage killed mid-run: its half-written output never replaced ``path``,
    and its temporary files would otherwise stay beside it). Another host's files are never
    touched: its processes cannot be asked about from here."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.{re.escape(_HOST)}\.(\d{{1,10}})\.\w+\.tmp$")
    try:
        siblings = [p for p in path.parent.iterdir() if pattern.match(p.name)]
    except OSError:
        return
    for sibling in siblings:
        if not _alive(int(pattern.match(sibling.name).group(1))):
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` via a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_timings(stage: str, seconds: dict[str, float]) -> None:
    """Wall seconds per image to ``metrics/timings/<stage>.json`` (and the log).

    Deliberately not a DVC output: times change on every run, and a hashed output would make
    ``dvc.lock`` change with them, so a fresh clone's ``make run`` would leave Git dirty. The
    file is git-ignored; ``benchmarks/scale.py`` reads it.
    """
    write_json(TIMINGS_DIR / f"{stage}.json", {"seconds": seconds})
    if seconds:
        log.info(
            "%.1f s over %d image(s), slowest %.1f s",
            sum(seconds.values()),
            len(seconds),
            max(seconds.values()),
        )


def json_bytes(obj: Any) -> bytes:
    """Stable JSON: sorted keys, fixed indentation, trailing newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json_bytes(obj))


def save_npy(path: Path, array: np.ndarray) -> None:
    """``np.save`` into ``path`` (inside a folder that is itself written atomically)."""
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
