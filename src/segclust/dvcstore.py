"""Where DVC keeps an output file's bytes, so a stage can hand DVC back the very file it has.

DVC deletes a stage's outputs before running it, hashes every file of the new outputs
afterwards, and links them into its cache. Its hash is skipped only for a file whose inode,
mtime and size it recorded before (its state database), so a stage that writes a folder of
10,000 per-photo files anew has all of them hashed (and, with the default ``copy`` cache
type, copied) again, even when one photo changed: measured on 1,000 photos, 4-28 s per stage
to add one photo. With ``cache.type: hardlink`` (this project's ``.dvc/config``) every output
file is a hard link to its object in DVC's cache, named by its MD5. The per-image cache
(:mod:`segclust.imagecache`) keeps each file's MD5, so an unchanged photo's files are linked
from those same objects: same inode, same mtime, so DVC's state answers and nothing is read.

DVC's own configuration (every level: system, global, repository, local) says where the
cache is and how it links it; the object folder and the two-level object name are DVC 3's
(:func:`object_path`; a test checks both against DVC's ``Repo`` API, whose import costs a
stage half a second more), and a file is linked only when the object is there at the right size,
else the stage writes its file as before. Used only when DVC runs the stage (``DVC_ROOT`` is
set) with a ``hardlink`` cache: with ``copy`` a link would share the inode of the read-only
object that a workspace file is meant to copy, so the store is not used.

Never for an output DVC does not cache (``cache: false``, e.g. the rendered PNGs kept in Git,
named by :func:`uncached_outputs`): DVC's run-cache stores such files as copies and, after a
run, checks the workspace out again with ``copy``, replacing every hard-linked file among them
by a fresh copy. Those outputs are ``persist: true`` in ``dvc.yaml``, which keeps the run-cache
off them, and they get the per-image cache's own file: a workspace file DVC does not manage
never shares an inode with one of its read-only objects.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

LINKED_CACHE_TYPE = "hardlink"


def dvc_object_store(root: str | None = None) -> Path | None:
    """The folder of DVC's file objects (``<cache>/files/md5``) for the repository at
    ``root`` (``$DVC_ROOT``, which DVC sets for the stage commands it runs), when DVC links
    outputs to it with hard links; None otherwise (not under DVC, another cache type, or a
    repository DVC cannot open)."""
    root = os.environ.get("DVC_ROOT") if root is None else root
    if not root or not os.path.isdir(os.path.join(root, ".dvc")):
        return None
    try:
        from dvc.config import Config

        cache = Config(os.path.join(root, ".dvc"))["cache"]
    except Exception:  # noqa: BLE001 (any DVC failure means: no store, write files as before)
        return None
    if list(cache.get("type") or [])[:1] != [LINKED_CACHE_TYPE]:
        return None
    return Path(cache.get("dir") or os.path.join(root, ".dvc", "cache")) / "files" / "md5"


def uncached_outputs(pipeline: Mapping[str, Any], root: Path) -> frozenset[Path]:
    """The outputs that ``pipeline`` (a parsed ``dvc.yaml`` in the folder ``root``) declares
    ``cache: false``, as absolute paths.

    >>> pipeline = {"stages": {"draw": {
    ...     "cmd": "draw", "outs": ["data/labels"], "plots": [{"plots/render": {"cache": False}}],
    ... }}}
    >>> [p.name for p in uncached_outputs(pipeline, Path("/project"))]
    ['render']
    """
    found = set()
    for stage in (pipeline.get("stages") or {}).values():
        body = stage.get("do", stage) if isinstance(stage, dict) else {}
        for kind in ("outs", "metrics", "plots"):
            for entry in body.get(kind) or []:
                if isinstance(entry, dict):
                    for path, options in entry.items():
                        if isinstance(options, dict) and options.get("cache") is False:
                            found.add((root / path).resolve())
    return frozenset(found)


def object_path(store: Path, md5: str) -> Path:
    """Where DVC keeps the file whose MD5 is ``md5`` (DVC 3: two hex digits, then the rest)."""
    return store / md5[:2] / md5[2:]


def md5_of(path: Path) -> str:
    """The MD5 of a file's bytes, as DVC names its objects."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()
