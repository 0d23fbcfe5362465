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

import numpy as np
from tqdm import tqdm
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
    run_stage,
    save_npy,
    write_json,
    write_table,
)
from segclust.tables import spread

log = logging.getLogger("segclust")
COLUMNS = ("configured_clusters", "configured_segments", "tuned_clusters", "tuned_segments")


def _count(labels: np.ndarray) -> int:
    return int(np.count_nonzero(np.bincount(labels.ravel() + 1)[1:]))


def main(config: Config) -> None:
    per_image: dict[str, dict] = {}
    with atomic_dir(REGIONS_DIR) as out, logging_redirect_tqdm():
        for which in ("configured", "tuned"):
            (out / which).mkdir()
        for stem, _sidecar in tqdm(feature_entries(), desc="regions", unit="image", disable=None):
            entry: dict[str, int] = {}
            for which, folder in (("configured", LABELS_DIR), ("tuned", TUNED_DIR)):
                path = folder / f"{stem}.npy"
                if not path.exists():  # tuning found no valid clustering for this image
                    continue
                labels = np.load(path)
                result = segments_for(labels, config.regions)
                save_npy(out / which / f"{stem}.npy", result)
                entry[f"{which}_clusters"] = _count(labels)
                entry[f"{which}_segments"] = _count(result)
            per_image[stem] = entry
            log.debug(
                "%s: %s",
                stem,
                ", ".join(
                    f"{w} {entry[f'{w}_clusters']} clusters -> {entry[f'{w}_segments']} segments"
                    for w in ("configured", "tuned")
                    if f"{w}_segments" in entry
                ),
            )
    summary: dict = {"method": config.regions.method, "images": len(per_image)}
    for key in ("configured_segments", "tuned_segments"):
        summary[key] = spread((e.get(key) for e in per_image.values()), COUNTS)
    write_table("regions", per_image, first=COLUMNS)
    write_json(METRICS_DIR / "regions.json", summary)


if __name__ == "__main__":
    run_stage("regions", main)
