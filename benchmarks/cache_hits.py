"""What one photo found in the per-image cache costs, before and after one-file entries.

Adding one photo to 10,000 took 177 s against 15 s for the photo alone
(``benchmarks/results/scale_10k.md``); 83 s of it were the stages' own lookups of the
10,000 photos already done, about 1 ms per photo per stage. A profile of ``features`` on
all-hits at 10,000 photos (cProfile, this machine) put most of that in reading three small
files per entry (the remembered input digest, ``result.pickle``, ``md5.json``) and listing
its folder, not in the links. An entry now holds one pickle with the result and every
file's size and MD5, and the input digests come from one table per input folder read once
per run, so a hit reads one small file and lists nothing.

This builds the same ``--photos`` entries with each implementation (the one at ``BEFORE``,
read from Git, and the working tree's), three files per photo as the ``features`` stage
writes them, each file also linked into a DVC-style object store as under ``dvc repro``,
then times a pass that finds every photo in its cache and links its files into a fresh
output folder. ``cold``: the page cache dropped first (``/proc/sys/vm/drop_caches``, needs
root; skipped with a note otherwise), as after a stage that read gigabytes of photos;
``warm``: straight after. Same photos, same machine, implementations alternating.

    python benchmarks/cache_hits.py --photos 10000 --out benchmarks/results/cache_hits.md

Nothing here is a test: ``tests/test_dvcstore.py`` checks what a hit links.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
import types
from datetime import UTC, datetime
from pathlib import Path

from segclust import imagecache
from segclust.dvcstore import md5_of, object_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from git_source import module_at

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "9460dcb"  # three reads and a folder listing per hit


def old_imagecache() -> types.ModuleType:
    """``segclust/imagecache.py`` as it was at ``BEFORE`` (its code fingerprint reads the
    package's files beside it)."""
    return module_at(BEFORE, "src/segclust/imagecache.py", imagecache.__file__)


def make_inputs(folder: Path, photos: int) -> list[tuple[str, list[Path]]]:
    """Per photo: a stem and its two input files (a feature matrix and its sidecar)."""
    folder.mkdir(parents=True)
    items = []
    for k in range(photos):
        stem = f"p{k:05d}"
        matrix, sidecar = folder / f"{stem}.npy", folder / f"{stem}.json"
        matrix.write_bytes(hashlib.sha256(stem.encode()).digest() * 64)
        sidecar.write_text(f'{{"stem": "{stem}"}}\n')
        items.append((stem, [matrix, sidecar]))
    return items


def writer(stem: str):
    """The work of one photo: three files, as ``features`` writes them."""

    def work(folders):
        out = Path(folders["out"])
        (out / f"{stem}.npy").write_bytes(stem.encode() * 2000)
        (out / f"{stem}.json").write_text(f'{{"height": 1, "stem": "{stem}"}}\n')
        (out / f"{stem}.smoothed.png").write_bytes(stem.encode() * 500)
        return stem, 0.1, f"{stem}: done"

    return work


def populate(module, root: Path, items, store: Path):
    """Every photo stored in ``module``'s cache under ``root``, its files also DVC objects."""
    cache = module.ImageCache.for_stage("features", {"k": 1}, root, None, store)
    scratch = root.parent / f"{root.name}-first"
    for stem, inputs in items:
        cache.run(stem, inputs, {"out": scratch}, writer(stem))
    for path in scratch.iterdir():  # as `dvc repro` leaves them: objects named by MD5
        stored = object_path(store, md5_of(path))
        stored.parent.mkdir(parents=True, exist_ok=True)
        if not stored.exists():
            os.link(path, stored)
    shutil.rmtree(scratch)
    if hasattr(module, "save_remembered_digests"):  # as the stage does after its lookups
        module.save_remembered_digests()
    return cache


def drop_page_cache() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        return False
    return True


def hit_pass(cache, items, out: Path) -> float:
    """Seconds to find every photo and link its files, as a stage's fresh process does (the
    digest tables it has read are forgotten first: a stage reads them once per run)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    imagecache._TABLES.clear()
    started = time.perf_counter()
    for stem, inputs in items:
        found, _ = cache.lookup(stem, inputs, {"out": out})
        if not found:
            raise SystemExit(f"{stem} was not found in the cache: the benchmark is broken")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="segclust-cache-hits-"))
    try:
        items = make_inputs(work / "inputs", args.photos)
        store = work / "dvc-objects"
        caches = {
            "before": populate(old_imagecache(), work / "before", items, store),
            "after": populate(imagecache, work / "after", items, store),
        }
        seconds: dict[tuple[str, str], list[float]] = {}
        dropped = True
        for _ in range(args.repeats):
            for name, cache in caches.items():
                dropped &= drop_page_cache()
                seconds.setdefault((name, "cold"), []).append(hit_pass(cache, items, work / "out"))
                seconds.setdefault((name, "warm"), []).append(hit_pass(cache, items, work / "out"))
        for name in caches:  # both link the same files: the same objects, by inode
            hit_pass(caches[name], items, work / f"check-{name}")
        check = {
            name: sorted((p.name, p.stat().st_ino) for p in (work / f"check-{name}").iterdir())
            for name in caches
        }
        assert check["before"] == check["after"], "the two link different files"
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"Command: `python benchmarks/cache_hits.py --photos {args.photos} --repeats "
        f"{args.repeats}` — run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python "
        f"{platform.python_version()}, one process.",
        "",
        f"{args.photos} photos, 3 files each, every one found in the per-image cache and linked "
        "from DVC-style objects into a fresh folder; before = `imagecache.py` at "
        f"{BEFORE} (a digest record per input, result.pickle, md5.json, a folder listing), "
        "after = one pickle per entry and a digest table per input folder, read once per pass. "
        "Both linked the same objects (asserted). Best of "
        f"{args.repeats} passes each."
        + ("" if dropped else " The page cache could not be dropped here: cold = warm."),
        "",
        "| pass | before ms / photo | after ms / photo | after / before |",
        "|---|---|---|---|",
    ]
    for kind in ("cold", "warm"):
        before = min(seconds[("before", kind)]) / args.photos * 1e3
        after = min(seconds[("after", kind)]) / args.photos * 1e3
        lines.append(f"| {kind} | {before:.3f} | {after:.3f} | {after / before:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
