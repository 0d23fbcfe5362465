"""Stage ``regions``: the segments that are drawn and scored, from the configured and tuned labels.

``regions.method: clusters`` keeps every cluster as one segment (the files are the labels'
own bytes); ``connected`` makes each connected piece of a cluster a region and merges pieces
under ``regions.min_area_fraction`` of the image into their nearest region
(:func:`segclust.regions.segments_for`). A stage of its own so that sweeping these
parameters re-runs only this stage, ``render`` and ``evaluate``, never the clustering.

Outputs: ``data/regions/{configured,tuned}/<stem>.npy``, ``metrics/regions.json`` (the
spread of the segment counts over images) and ``plots/images/regions.csv`` (clusters and
segments of every image).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.config import Config
from segclust.regions import segments_for
from segclust.stages._common import (
    COUNTS,
    LABELS_DIR,
    METRICS_DIR,
    REGIONS_DIR,
    TUNED_DIR,
    atomic_dir,
    feature_entries,
    map_cached,
    run_stage,
    save_npy,
    write_json,
    write_table,
    write_timings,
)
from segclust.tables import spread

log = logging.getLogger("segclust")
COLUMNS = ("configured_clusters", "configured_segments", "tuned_clusters", "tuned_segments")
TABLE_FIRST = COLUMNS  # plots/images/regions.csv's first columns


def _count(labels: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(labels.ravel() + 1)[1:]))


def regions_image(entry: tuple[str, dict], config: Config, out: Path) -> tuple:
    """One image's configured and tuned segments, written into ``out``; (stem, counts,
    seconds) back."""
    stem = entry[0]
    started = time.perf_counter()
    counts: dict[str, int] = {}
    for which, folder in (("configured", LABELS_DIR), ("tuned", TUNED_DIR)):
        path = folder / f"{stem}.npy"
        if not path.exists():  # tuning found no valid clustering for this image
            continue
        labels = np.load(path)
        result = segments_for(labels, config.regions)
        (out / which).mkdir(exist_ok=True)
        save_npy(out / which / f"{stem}.npy", result)
        counts[f"{which}_clusters"] = _count(labels)
        counts[f"{which}_segments"] = _count(result)
    return stem, counts, round(time.perf_counter() - started, 3)


def _inputs(entry: tuple[str, dict]) -> tuple[str, list[Path]]:
    stem = entry[0]
    return stem, [LABELS_DIR / f"{stem}.npy", TUNED_DIR / f"{stem}.npy"]


def summary(per_image: dict[str, dict]) -> dict:
    """The fields of ``metrics/regions.json`` that come from the images' rows (the rest is
    the config's; see :mod:`segclust.stages.gather`)."""
    out: dict = {"images": len(per_image)}
    for key in ("configured_segments", "tuned_segments"):
        out[key] = spread((e.get(key) for e in per_image.values()), COUNTS)
    return out


def main(config: Config) -> None:
    per_image: dict[str, dict] = {}
    timings: dict[str, float] = {}
    with atomic_dir(REGIONS_DIR) as out, logging_redirect_tqdm():
        for which in ("configured", "tuned"):
            (out / which).mkdir()
        for stem, entry, seconds in map_cached(
            "regions",
            config,
            feature_entries(),
            inputs_of=_inputs,
            image_fn=partial(regions_image, config=config),
            outs={"out": out},
        ):
            per_image[stem] = entry
            timings[stem] = seconds
            log.debug(
                "%s: %s",
                stem,
                ", ".join(
                    f"{w} {entry[f'{w}_clusters']} clusters -> {entry[f'{w}_segments']} segments"
                    for w in ("configured", "tuned")
                    if f"{w}_segments" in entry
                ),
            )
    write_table("regions", per_image, first=TABLE_FIRST)
    write_json(METRICS_DIR / "regions.json", {"method": config.regions.method} | summary(per_image))
    write_timings("regions", timings)


if __name__ == "__main__":
    run_stage("regions", main)
