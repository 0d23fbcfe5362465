"""Shards: the pipeline once per folder of photos, so that a new photo reruns one folder's stages.

DVC hashes, caches and checks out every dependency and output file of a stage that reruns,
whichever changed: adding one photo to 10,000 cost 41 s of DVC's own time on three stages
that do nothing else, against 12 s with 10 shards of 1,000 and 21 s with 100 of 100
(``benchmarks/results/dvc_shards.md``). So, for collections past about a thousand photos::

    python -m segclust.shards --photos ../my_photos --size 500 [--ground-truth ../truth]
    dvc repro --downstream -R shards

lays out ``shards/`` beside ``dvc.yaml``:

- ``shards/<name>/dvc.yaml`` (:func:`shard_pipeline`): every stage of ``dvc.yaml`` but the
  training stages, run in the shard's folder; ``src/`` and ``models/`` dependencies point
  back to the project's. One pipeline file, so one ``dvc.lock``, per shard: DVC rereads and
  rewrites a stage's lock file after every stage, and one lock over 20 shards (a
  ``foreach``) cost about 6 s a stage (``benchmarks/results/scale_10k_shards501.md``);
- ``shards/<name>/``: links to the project's ``params.yaml`` (which the stages' ``params``
  and ``${...}`` read), ``models`` and per-image cache (one cache for the project and every
  shard), and the shard's photos under ``data.root`` (and their ground truth under
  ``data.ground_truth``) as hard links, copies across devices;
- ``shards/dvc.yaml``: ``gather`` alone (:mod:`segclust.stages.gather`), and
  ``shards/params.yaml``, a link to ``params.yaml``;
- ``shards/placed.json``: the lay-out (name -> photo files), from which the next run tells
  which shards changed.

A stage runs in its shard's folder as it runs in the project's: the same code, params and
relative paths, so every per-image output is the bytes the unsharded pipeline writes (and
the per-image cache keys them alike, on the stage's own params and code). Each shard has its own
``metrics/`` and ``plots/images/`` tables over its photos; ``gather`` writes
``shards/metrics/`` and ``shards/plots/images/`` over every photo, the bytes the unsharded
pipeline writes for the whole collection (both checked by ``tests/test_shards.py`` with a
real ``dvc repro``).

Photos go to shards in sorted order, ``size`` to a shard. Run again after adding photos to
``--photos``: only the new ones are placed, filling the last shard and then new ones, so the
shards already computed keep their photos and their DVC stages stay up to date. It prints
the ``dvc repro --downstream shards/<name>/dvc.yaml`` that runs only the shards whose photos
changed, and ``gather``, without DVC visiting every other shard's stages. To drop a photo,
delete it from ``--photos`` and from its shard; a shard left with none leaves the pipeline
(its ``dvc.yaml`` and ``dvc.lock`` are removed, its outputs stay), and ``gather`` pools the
others. A lay-out written before one ``dvc.yaml`` per shard (``shards/dvc.yaml`` with a
``foreach``) is rewritten so, its ``dvc.lock`` entries moved to the shards' own, so that no
stage reruns for it. In 20 shards of 501 photos, adding one photo to 10,000 took 1.7× that
photo alone with its shard named, 2.8× without (``scale_10k_shards501_split.md``); much
smaller shards multiply DVC's checks and the processes started, larger ones its per-file
costs (the file above), so ``--size`` defaults to 500.

Python's standard library does the work (``os.link``, ``shutil``); PyYAML reads and writes
the pipeline.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from segclust.errors import SegclustError
from segclust.groundtruth import ground_truth_files
from segclust.imageio import list_images
from segclust.stages._base import read_json, write_atomic, write_json

FOLDER = Path("shards")
PLACED = "placed.json"  # the last lay-out (name -> photo files), beside shards/dvc.yaml
_SHARD = re.compile(r"s\d{4,}")  # a shard's folder name (shard_name)
_BACK = "../../"  # from a shard's folder to the project's
_PROJECT_PATHS = ("src/", "models/")  # dependencies that stay the project's own
# what gather reads besides the tables and summaries: each shard's evaluation parts
EVALUATION_PARTS = ("evaluation", "evaluation_boundaries")
# the stages whose tables and summaries `gather` pools over the shards
GATHERED = (
    "boundaries", "cluster", "tune", "regions", "hierarchy", "evaluate", "evaluate_boundaries",
)  # fmt: skip


def shard_name(index: int) -> str:
    """``s0000``, ``s0001``, ...: names that sort as the shards were made.

    >>> shard_name(12)
    's0012'
    """
    return f"s{index:04d}"


def assign(current: dict[str, list[str]], photos: list[str], size: int) -> dict[str, list[str]]:
    """The shards after placing ``photos`` (file names) that no shard holds yet.

    Parameters
    ----------
    current : the shards as they are (name -> file names), possibly empty.
    photos : every photo of the collection; those already in a shard stay where they are.
    size : photos per shard; the last shard is filled first, then new shards are made.

    Returns
    -------
    dict
        Every shard (name -> sorted file names), the untouched ones included.

    >>> assign({}, ["c.jpg", "a.jpg", "b.jpg"], 2)
    {'s0000': ['a.jpg', 'b.jpg'], 's0001': ['c.jpg']}
    >>> assign({"s0000": ["a.jpg", "b.jpg"], "s0001": ["c.jpg"]}, ["a.jpg", "d.jpg", "e.jpg"], 2)
    {'s0000': ['a.jpg', 'b.jpg'], 's0001': ['c.jpg', 'd.jpg'], 's0002': ['e.jpg']}
    """
    if size < 1:
        raise SegclustError(f"shard size must be >= 1, got {size}")
    shards = {name: sorted(names) for name, names in sorted(current.items())}
    placed = {photo for names in shards.values() for photo in names}
    new = sorted(p for p in set(photos) if p not in placed)
    while new:
        last = next(reversed(shards), None)
        if last is None or len(shards[last]) >= size:
            last = shard_name(1 + max((int(name[1:]) for name in shards), default=-1))
            shards[last] = []
        room = size - len(shards[last])
        shards[last] = sorted(shards[last] + new[:room])
        new = new[room:]
    return shards


def shard_pipeline(pipeline: dict[str, Any]) -> dict[str, Any]:
    """A shard's ``dvc.yaml`` (``shards/<name>/dvc.yaml``, the same for every shard) from the
    project's: every stage that is not a ``foreach`` (the model training, done once for the
    project) as it is, its ``src/`` and ``models/`` dependencies pointing back at the
    project's, its summaries and tables plain outputs.

    Each shard has its own ``dvc.yaml`` and so its own ``dvc.lock``: DVC rereads and rewrites
    the lock of a stage's pipeline after every stage, and one lock for every shard (a
    ``foreach``) made that cost grow with the number of shards
    (``benchmarks/results/scale_10k_shards501.md``).

    >>> root = {"stages": {"cluster": {"cmd": "python -m x", "deps": ["data/features",
    ...     "src/segclust/x.py"], "outs": ["data/labels"]}}}
    >>> shard_pipeline(root)["stages"]["cluster"]["deps"]
    ['data/features', '../../src/segclust/x.py']
    """
    stages = {}
    for name, stage in _per_shard_stages(pipeline):
        do = copy.deepcopy(stage)
        if "deps" in do:
            do["deps"] = [_project_path(dep) for dep in do["deps"]]
        # a shard's summaries and tables are plain outputs: `dvc metrics show` and
        # `dvc exp show` list gather's, over the whole collection, not one per shard
        for kind in ("metrics", "plots"):
            for out in do.pop(kind, []):
                path, settings = _out_entry(out)
                do.setdefault("outs", []).append({path: {"cache": settings.get("cache", True)}})
        stages[name] = do
    return {"stages": stages}


def gather_pipeline(pipeline: dict[str, Any], shards: list[str]) -> dict[str, Any]:
    """``shards/dvc.yaml``: ``gather`` alone, which summarises every shard's photos together.

    >>> root = {"stages": {"cluster": {"cmd": "python -m x", "deps": ["src/segclust/x.py"],
    ...     "plots": [{"plots/images/cluster.csv": {"x": "silhouette"}}]}}}
    >>> gather = gather_pipeline(root, ["s0000", "s0001"])["stages"]["gather"]
    >>> gather["cmd"]
    'python -m segclust.stages.gather s0000 s0001'
    >>> gather["plots"][1]
    {'plots/images/cluster.csv': {'x': 'silhouette', 'cache': False}}
    """
    code: set[str] = {"src/segclust/stages/gather.py"}
    plots: dict[str, Any] = {}  # the tables' plot settings, for gather's pooled tables
    for _, stage in _per_shard_stages(pipeline):
        code |= {d for d in stage.get("deps", []) if isinstance(d, str) and d.startswith("src/")}
        plots |= dict(_out_entry(out) for out in stage.get("plots", []))
    return {"stages": {"gather": _gather_stage(shards, code, plots)}}


def _per_shard_stages(pipeline: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The project's stages that run per shard: all but the ``foreach`` and ``matrix`` ones
    (the model training, done once for the project)."""
    stages = pipeline["stages"].items()
    return [(name, s) for name, s in stages if "foreach" not in s and "matrix" not in s]


def _out_entry(out: Any) -> tuple[str, dict[str, Any]]:
    """An output of ``dvc.yaml`` (a path, or ``{path: settings}``) as (path, settings)."""
    return next(iter(out.items())) if isinstance(out, dict) else (out, {})


def _gather_stage(shards: list[str], code: set[str], plots: dict[str, Any]) -> dict[str, Any]:
    """The stage that summarises every shard's photos together (run in ``shards/``): it reads
    each shard's tables, summaries and evaluation parts (:mod:`segclust.stages.gather`); its
    code dependencies are every stage's, a superset of its own imports. Its tables are plots
    as the project's are (``plots``: their settings in ``dvc.yaml``)."""
    per_shard = [f"{s}/data/{parts}" for s in shards for parts in EVALUATION_PARTS]
    for stage in GATHERED:
        per_shard += [f"{s}/metrics/{stage}.json" for s in shards]
        per_shard += [f"{s}/plots/images/{stage}.csv" for s in shards]
    tables = [f"plots/images/{stage}.csv" for stage in GATHERED]
    return {
        "cmd": "python -m segclust.stages.gather " + " ".join(shards),
        "deps": per_shard + ["../" + path for path in sorted(code)],
        "metrics": [{f"metrics/{stage}.json": {"cache": False}} for stage in GATHERED],
        "plots": [{t: plots.get(t, {}) | {"cache": False}} for t in tables],
    }


def _project_path(dep: Any) -> Any:
    """A dependency as seen from a shard's folder: the project's code and models stay the
    project's; the rest (data, the shard's own outputs) is the shard's."""
    if isinstance(dep, dict):
        return {_project_path(key): value for key, value in dep.items()}
    if isinstance(dep, str) and dep.startswith(_PROJECT_PATHS):
        return _BACK + dep
    return dep


def _relative_inside(value: Any, key: str) -> Path:
    """A params path that must name a folder inside each shard."""
    if value is None:
        raise SegclustError(f"{key} is not set; shards need a folder for it")
    path = Path(str(value))
    if path.is_absolute() or ".." in path.parts:
        raise SegclustError(
            f"{key} is {value!r}: shards need a relative path inside the project (each shard "
            "holds its own photos there); set it to a folder such as data/samples"
        )
    return path


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:  # another device, or links not allowed
        shutil.copy2(source, target)


def _symlink(target: str, at: Path) -> None:
    if not at.is_symlink():
        at.symlink_to(target)


def _current(into: Path, root: Path) -> dict[str, list[str]]:
    """The shards on disk: name -> the photo files in its ``data.root``. A shard whose
    photos were all removed is left out of the pipeline (its folder stays)."""
    shards = {}
    for folder in sorted(into.iterdir()) if into.is_dir() else []:
        photos = folder / root
        if _SHARD.fullmatch(folder.name) and photos.is_dir():
            names = sorted(p.name for p in photos.iterdir() if p.is_file())
            if names:
                shards[folder.name] = names
    return shards


def lay_out(
    project: Path,
    photos: Path,
    size: int,
    ground_truth: Path | None = None,
    into: Path = FOLDER,
) -> dict[str, list[str]]:
    """Place every photo of ``photos`` that no shard holds yet, and (re)write the sharded
    pipeline; back: the shards (name -> photo files). See the module's docstring."""
    project = project.resolve()
    for needed in ("params.yaml", "dvc.yaml"):
        if not (project / needed).is_file():
            raise SegclustError(f"no {needed} in {project}: run this in the project's folder")
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    data = params.get("data", {})
    if data.get("images") is not None:
        raise SegclustError("data.images lists photos by name; shards need it null")
    root = _relative_inside(data.get("root"), "data.root")
    truth = _relative_inside(data.get("ground_truth"), "data.ground_truth")
    names = [p.name for p in list_images(photos, None, data.get("extensions", []))]
    into = project / into
    shards = assign(_current(into, root), names, size)
    cache = Path(str(params.get("execution", {}).get("cache_dir", ".segclust-cache")))
    if not cache.is_absolute():
        (project / cache).mkdir(parents=True, exist_ok=True)
    for name, files in shards.items():
        folder = into / name
        (folder / root).mkdir(parents=True, exist_ok=True)
        (folder / truth).mkdir(parents=True, exist_ok=True)
        _symlink(_BACK + "params.yaml", folder / "params.yaml")
        _symlink(_BACK + "models", folder / "models")
        if not cache.is_absolute():
            _symlink(_BACK + cache.as_posix(), folder / cache)
        for file in files:
            _link_or_copy(photos / file, folder / root / file)
            if ground_truth is not None:
                for found in ground_truth_files(ground_truth, Path(file).stem):
                    _link_or_copy(found, folder / truth / found.name)
    pipeline = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))
    # a lay-out of one `foreach` over every shard, made before this one: its shards' lock
    # entries go to their own locks now, the shared lock loses them last
    kept_lock = _split_lock(into)
    header = (
        "# Written by `python -m segclust.shards` from {}dvc.yaml: edit that and run it again.\n"
    )
    text = yaml.safe_dump(shard_pipeline(pipeline), sort_keys=False)
    for name in shards:
        _write_if_changed(into / name / "dvc.yaml", header.format(_BACK) + text)
    for left in sorted(into.glob("s*/dvc.yaml")):  # shards that left: DVC forgets them
        if _SHARD.fullmatch(left.parent.name) and left.parent.name not in shards:
            left.unlink()
            (left.parent / "dvc.lock").unlink(missing_ok=True)
    gather = yaml.safe_dump(gather_pipeline(pipeline, list(shards)), sort_keys=False)
    _write_if_changed(into / "dvc.yaml", header.format("../") + gather)
    _symlink("../params.yaml", into / "params.yaml")  # gather's config
    if kept_lock is not None:
        _write_if_changed(into / "dvc.lock", yaml.safe_dump(kept_lock, sort_keys=False))
    # the lay-out, so that the next run can tell which shards lost photos (their folders
    # no longer show them) as well as which gained some
    write_json(into / PLACED, shards)
    return shards


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` (atomically) unless ``path`` holds it already."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_atomic(path, text.encode("utf-8"))


def _split_lock(into: Path) -> dict[str, Any] | None:
    """Copy each shard's entries of ``shards/dvc.lock`` (``<stage>@<shard>``, from a lay-out
    of one ``foreach`` over every shard) into the shard's own ``dvc.lock`` as ``<stage>``, so
    that DVC finds its stages up to date in the lay-out of one ``dvc.yaml`` per shard; back:
    what ``shards/dvc.lock`` keeps (``gather``'s entry), for the caller to write once the new
    pipeline files are in place, or None when there is nothing to split."""
    lock = into / "dvc.lock"
    if not lock.is_file():
        return None
    entries = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
    stages = entries.get("stages") or {}
    if not any("@" in name for name in stages):
        return None
    per_shard: dict[str, dict[str, Any]] = {}
    kept = {name: entry for name, entry in stages.items() if "@" not in name}  # gather's
    for name, entry in stages.items():
        stage, _, shard = name.partition("@")
        if shard and (into / shard).is_dir():  # entries of shards gone are dropped
            per_shard.setdefault(shard, {})[stage] = entry
    schema = entries.get("schema", "2.0")
    for shard, moved in per_shard.items():
        if not (into / shard / "dvc.lock").exists():
            text = yaml.safe_dump({"schema": schema, "stages": moved}, sort_keys=False)
            _write_if_changed(into / shard / "dvc.lock", text)
    return {"schema": schema, "stages": kept}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m segclust.shards", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--photos", type=Path, required=True, help="the collection's folder")
    parser.add_argument("--size", type=int, default=500, help="photos per shard (500)")
    parser.add_argument("--ground-truth", type=Path, default=None)
    parser.add_argument("--project", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    try:
        before = placed(args.project)
        shards = lay_out(args.project, args.photos, args.size, args.ground_truth)
    except SegclustError as exc:
        print(f"shards: error: {exc}", file=sys.stderr)
        sys.exit(2)
    photos = sum(len(files) for files in shards.values())
    print(f"{photos} photos in {len(shards)} shard(s) under {args.project / FOLDER}")
    print(repro_hint(before, shards))


def placed(project: Path, into: Path = FOLDER) -> dict[str, list[str]]:
    """The shards as the last lay-out left them (name -> photo files), empty before the first.

    Read from ``shards/placed.json``, which the lay-out writes: the folders alone cannot say
    which photos a user has deleted since. Lay-outs made before that file existed are read
    from the folders.
    """
    project = project.resolve()
    record = project / into / PLACED
    if record.is_file():
        return read_json(record)
    if not (project / "params.yaml").is_file():
        return {}
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    root = _relative_inside((params.get("data") or {}).get("root"), "data.root")
    return _current(project / into, root)


def changed_shards(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """The shards whose photos differ (new shards included), in name order.

    >>> changed_shards({"s0000": ["a.jpg"]}, {"s0000": ["a.jpg"], "s0001": ["b.jpg"]})
    ['s0001']
    >>> changed_shards({"s0000": ["a.jpg"]}, {"s0000": ["a.jpg", "c.jpg"]})
    ['s0000']
    """
    return [name for name, files in after.items() if before.get(name) != files]


def repro_hint(before: dict[str, list[str]], after: dict[str, list[str]]) -> str:
    """What to run after a lay-out: only the stages of the shards whose photos changed, and
    ``gather``, so that DVC does not visit every other shard's stages (a no-op over 10
    shards of 1,001 photos took 20 s, ``benchmarks/results/scale_10k_shards1001.md``).

    >>> print(repro_hint({"s0000": ["a.jpg"]}, {"s0000": ["a.jpg"], "s0001": ["b.jpg"]}))
    photos changed in shard(s) s0001; to run them and gather:
      dvc repro --downstream shards/s0001/dvc.yaml
    (after a change of code or params, every shard: dvc repro --downstream -R shards)
    >>> print(repro_hint({}, {"s0000": ["a.jpg"], "s0001": ["b.jpg"]}))
    photos changed in every shard (2); to run them and gather:
      dvc repro --downstream -R shards
    >>> print(repro_hint({"s0000": ["a.jpg"], "s0001": ["b.jpg"]}, {"s0000": ["a.jpg"]}))
    shard(s) s0001 left; to pool the rest:
      dvc repro --downstream shards/dvc.yaml:gather
    >>> print(repro_hint({"s0000": ["a.jpg"]}, {"s0000": ["a.jpg"]}))
    no shard changed (every shard: dvc repro --downstream -R shards)
    """
    folder = FOLDER.as_posix()
    every = f"dvc repro --downstream -R {folder}"
    changed = changed_shards(before, after)
    gone = [name for name in before if name not in after]
    if len(changed) > 1 and len(changed) == len(after):  # say, a first lay-out: one command
        return f"photos changed in every shard ({len(after)}); to run them and gather:\n  {every}"
    if changed:
        targets = " ".join(f"{folder}/{name}/dvc.yaml" for name in changed)
        return (
            f"photos changed in shard(s) {', '.join(changed)}; to run them and gather:\n"
            f"  dvc repro --downstream {targets}\n"
            f"(after a change of code or params, every shard: {every})"
        )
    if gone:  # only shards whose photos are all gone: gather pools the others again, and
        # --downstream keeps DVC from checking every shard's stages upstream of it first
        return (
            f"shard(s) {', '.join(gone)} left; to pool the rest:\n"
            f"  dvc repro --downstream {folder}/dvc.yaml:gather"
        )
    return f"no shard changed (every shard: {every})"


if __name__ == "__main__":
    main()
