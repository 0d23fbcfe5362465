"""What every stage shares: the validated config, the output layout, the per-image cache
(logging, one-line errors and atomic writes come from :mod:`segclust.stages._base`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from segclust.config import Config, load_config
from segclust.dvcstore import dvc_object_store, uncached_outputs
from segclust.errors import SegclustError
from segclust.execution import ExecutionConfig
from segclust.imagecache import PACKAGE, ImageCache, save_remembered_digests
from segclust.parallel import map_images
from segclust.report import rounded
from segclust.stages import _base
from segclust.stages._base import (  # noqa: F401  (re-exported for the stages)
    METRICS_DIR,
    PARAMS_FILE,
    TIMINGS_DIR,
    atomic_dir,
    json_bytes,
    read_json,
    save_npy,
    write_atomic,
    write_json,
    write_timings,
)
from segclust.tables import spread, table_bytes

COUNTS = ("mean", "median")  # of counts (clusters, segments, regions): two numbers are enough

log = logging.getLogger("segclust")

FEATURES_DIR = Path("data/features")
SMOOTHED_SUFFIX = ".smoothed.png"  # the features stage's smoothed photo, for the hierarchy
LABELS_DIR = Path("data/labels")
TUNED_DIR = Path("data/tuned")
REGIONS_DIR = Path("data/regions")
HIERARCHY_DIR = Path("data/hierarchy")
BOUNDARIES_DIR = Path("data/boundaries")
STUDIES_DIR = Path("data/studies")
TRIALS_DIR = Path("plots/trials")
HISTORY_DIR = Path("plots/history")
RENDER_DIR = Path("plots/render")
IMAGES_DIR = Path("plots/images")  # per-image tables, one CSV per stage


def run_stage(name: str, body: Callable[[Config], None]) -> None:
    """Run ``body`` with the validated config; user errors become one line, exit code 2."""
    _base.run_stage(name, body, load_config)


def feature_entries() -> list[tuple[str, dict[str, Any]]]:
    """(stem, sidecar) for every image the features stage wrote, sorted by stem."""
    sidecars = sorted(FEATURES_DIR.glob("*.json"))
    if not sidecars:
        raise SegclustError(f"no features in {FEATURES_DIR}; run the features stage first")
    return [(p.stem, read_json(p)) for p in sidecars]


def write_table(stage: str, rows: dict[str, dict[str, Any]], first: tuple[str, ...] = ()) -> None:
    """``plots/images/<stage>.csv``: one row per image (:func:`segclust.tables.table_bytes`)."""
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    write_atomic(IMAGES_DIR / f"{stage}.csv", table_bytes(rows, first))


def reason_counts(reasons: list[str]) -> dict[str, int]:
    """How many images gave each reason, numbers replaced by N so that reasons group
    ("all 768 points are noise" and "all 912 points are noise" are one reason)."""
    counts: dict[str, int] = {}
    for reason in reasons:
        key = re.sub(r"\d[\d,.]*", "N", reason)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def summarise(per_image: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What experiments are compared by, a fixed number of columns whatever the image count:
    the spread of the silhouette and cluster counts (:func:`segclust.tables.spread`), means
    of the other scores, and why a silhouette was undefined."""

    def mean(key: str) -> float | None:
        values = [m[key] for m in per_image.values() if m.get(key) is not None]
        return rounded(np.mean(values)) if values else None

    backends = sorted({m["backend"] for m in per_image.values() if "backend" in m})
    devices = sorted({m["feature_device"] for m in per_image.values() if "feature_device" in m})
    undefined = [m for m in per_image.values() if m.get("silhouette") is None]
    return {
        "images": len(per_image),
        "silhouette": spread(m.get("silhouette") for m in per_image.values()),
        "silhouette_undefined": len(undefined),
        "silhouette_undefined_why": reason_counts(
            [m.get("undefined_reason", "undefined") for m in undefined]
        ),
        "calinski_harabasz": mean("calinski_harabasz"),
        "davies_bouldin": mean("davies_bouldin"),
        "n_clusters": spread((m.get("n_clusters") for m in per_image.values()), COUNTS),
        "noise_fraction": mean("noise_fraction"),
        "backend": ",".join(backends),
        "feature_device": ",".join(devices),
    }


def describe(scores: dict[str, Any]) -> str:
    """A short human summary of one image's scores for the log line."""
    sil = scores.get("silhouette")
    sil_text = (
        f"silhouette={sil:.3f} ({scores['silhouette_method']}, "
        f"n={scores['silhouette_sample_size']})"
        if sil is not None
        else f"silhouette=null ({scores.get('undefined_reason', 'undefined')})"
    )
    return (
        f"{scores['n_clusters']} clusters, noise {scores['noise_fraction']:.1%}, "
        f"{sil_text}, backend={scores['backend']}"
    )


def read_pipeline() -> dict[str, Any] | None:
    """``dvc.yaml`` of the folder the stage runs in (DVC runs it in its ``wdir``), parsed;
    None without one (a work folder)."""
    import yaml

    try:
        return yaml.safe_load(Path("dvc.yaml").read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return None


def stage_params(stage: str, pipeline: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameters ``stage`` depends on, as DVC sees them: its ``params`` in ``pipeline``
    (:func:`read_pipeline`) read from ``params.yaml``; without a pipeline, all but
    ``execution``."""
    import yaml

    params = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8")) or {}
    try:
        keys = pipeline["stages"][stage]["params"]
    except (KeyError, TypeError):
        return {k: v for k, v in params.items() if k != "execution"}
    chosen: dict[str, Any] = {}
    for key in keys:
        value: Any = params
        for part in str(key).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        chosen[str(key)] = value
    return chosen


def stage_cache(
    stage: str, config: Config, extra: Any = None, outs: Mapping[str, Path] | None = None
) -> ImageCache:
    """The per-image cache of ``stage`` (:mod:`segclust.imagecache`), off when
    ``execution.cache`` is false. Under DVC with a hard-linked cache it links unchanged files
    from DVC's objects, except into those of ``outs`` (folders from :func:`atomic_dir`) that
    DVC does not cache (:func:`segclust.dvcstore.uncached_outputs`)."""
    on = config.execution.cache
    root = Path(config.execution.cache_dir) if on else None
    objects = dvc_object_store() if on else None
    pipeline = read_pipeline()
    uncached = ()
    if objects is not None and outs and pipeline:
        skip = uncached_outputs(pipeline, Path.cwd())
        uncached = [name for name, path in outs.items() if final_of(path).resolve() in skip]
    params = stage_params(stage, pipeline)
    code = stage_code(stage, pipeline)
    return ImageCache.for_stage(stage, params, root, extra, objects, uncached, code)


def stage_code(stage: str, pipeline: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The ``segclust`` source files ``stage`` runs, as DVC sees them: its ``deps`` in
    ``pipeline`` (:func:`read_pipeline`, paths from the folder the stage runs in) that are
    files of the imported package, relative to it; None without such deps (every source file
    then keys the per-image cache, :func:`segclust.imagecache.code_fingerprint`).

    >>> import os
    >>> dep = os.path.relpath(PACKAGE / "labels.py")
    >>> stage_code("s", {"stages": {"s": {"deps": ["data/x", {dep: {"cache": False}}]}}})
    ('labels.py',)
    >>> stage_code("s", {"stages": {"s": {"deps": ["data/x"]}}}) is None
    True
    """
    try:
        deps = pipeline["stages"][stage]["deps"]
    except (KeyError, TypeError):
        return None
    found = []
    for dep in deps:
        path = Path(str(next(iter(dep)) if isinstance(dep, dict) else dep))
        if path.suffix == ".py":
            full = (Path.cwd() / path).resolve()
            if full.is_relative_to(PACKAGE):
                found.append(full.relative_to(PACKAGE).as_posix())
    return tuple(sorted(found)) or None


def final_of(path: Path) -> Path:
    """The output an :func:`atomic_dir` folder will replace (``path`` itself otherwise).

    >>> import tempfile
    >>> parent = Path(tempfile.mkdtemp())
    >>> with atomic_dir(parent / "render") as out:
    ...     final_of(out) == parent / "render"
    True
    >>> final_of(parent / "render") == parent / "render"
    True
    """
    prefix = re.match(rf"^\.(.+)\.{re.escape(_base._HOST)}\.\d+\.\w+\.tmp$", path.name)
    return path.with_name(prefix.group(1)) if prefix else path


def cached_image(
    item: Any,
    *,
    cache: ImageCache,
    inputs_of: Callable[[Any], tuple[str, list[Path]]],
    image_fn: Callable[..., Any],
    outs: dict[str, Path],
) -> tuple[Any, bool]:
    """``image_fn(item, out=...)`` through the stage's per-image cache: (result, hit).

    With one output folder named ``out`` the function gets it as ``out``; with several, it
    gets the dict of them as ``dirs``; with none (a stage that only scores), nothing."""
    stem, inputs = inputs_of(item)

    def work(folders: dict[str, Path]) -> Any:
        if not folders:
            return image_fn(item)
        if list(folders) == ["out"]:
            return image_fn(item, out=folders["out"])
        return image_fn(item, dirs=dict(folders))

    return cache.run(stem, inputs, outs, work)


def feature_inputs(entry: tuple[str, dict[str, Any]]) -> tuple[str, list[Path]]:
    """(stem, input files) of a stage that reads one image's features and sidecar."""
    stem = entry[0]
    return stem, [FEATURES_DIR / f"{stem}.npy", FEATURES_DIR / f"{stem}.json"]


def map_cached(
    stage: str,
    config: Config,
    items: Sequence[Any],
    *,
    inputs_of: Callable[[Any], tuple[str, list[Path]]],
    image_fn: Callable[..., Any],
    outs: dict[str, Path],
    extra: Any = None,
    execution: ExecutionConfig | None = None,
) -> Iterator[Any]:
    """Every item's ``image_fn`` result, in order, on the stage's workers
    (:func:`segclust.parallel.map_images`) through its per-image cache (:func:`stage_cache`,
    :func:`cached_image`); logs how many came from the cache once all are done.

    The hits are settled here, in the stage's process (a key from remembered digests, a few
    links, one small pickle; the digests learned are written back before the misses run),
    and only the misses go to workers: handing 10,000 cached photos
    to a pool one task each cost more than the lookups, and when one photo is new it runs
    without starting a pool at all."""
    cache = stage_cache(stage, config, extra, outs)
    settled: dict[int, Any] = {}
    misses: list[Any] = []
    for index, item in enumerate(items):
        stem, inputs = inputs_of(item)
        found, result = cache.lookup(stem, inputs, outs)
        if found:
            settled[index] = result
        else:
            misses.append(item)
    save_remembered_digests()  # every input's digest is known now: one table per folder
    work = partial(
        cached_image,
        cache=cache,
        inputs_of=inputs_of,
        image_fn=image_fn,
        outs=outs,
    )
    computed = map_images(
        work, misses, execution=execution or config.execution, desc=stage, done=len(settled)
    )
    hits = len(settled)
    for index in range(len(items)):
        if index in settled:
            yield settled.pop(index)
            continue
        result, hit = next(computed)
        hits += hit
        yield result
    if hits:
        log.info("%d of %d image(s) from the per-image cache", hits, len(items))
