"""Stage ``cluster``: feature matrices -> labels (H×W int32, -1 = noise) and metrics.

Outputs: ``data/labels/<stem>.npy``, ``metrics/cluster.json`` (the summary over images that
experiments are compared by) and ``plots/images/cluster.csv`` (every score, one row per
image); wall times go to ``metrics/timings/cluster.json``, apart, so that the metrics stay
byte-identical from run to run.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.backends import resolve_backend
from segclust.config import Config
from segclust.segmentation import cluster_and_score
from segclust.stages._common import (
    FEATURES_DIR,
    LABELS_DIR,
    METRICS_DIR,
    atomic_dir,
    describe,
    feature_entries,
    feature_inputs,
    map_cached,
    run_stage,
    save_npy,
    summarise,
    write_json,
    write_table,
    write_timings,
)

log = logging.getLogger("segclust")
TABLE_FIRST = ("algorithm", "n_clusters", "silhouette")  # plots/images/cluster.csv's first columns


def cluster_image(entry: tuple[str, dict], config: Config, out: Path) -> tuple[str, dict, float]:
    """One image's clustering, written to ``out``; (stem, scores, seconds) back."""
    stem, sidecar = entry
    started = time.perf_counter()
    features = np.load(FEATURES_DIR / f"{stem}.npy")
    result = cluster_and_score(
        features,
        (sidecar["height"], sidecar["width"]),
        config.cluster,
        backend=config.backend,
        seed=config.seed,
        metrics=config.metrics,
    )
    save_npy(out / f"{stem}.npy", result.labels)
    scores = dict(result.metrics)
    # where the features were computed (cuda when a torch block ran on the GPU), beside the
    # clustering's own back-end: GPU features are not byte-identical to the CPU reference
    scores["feature_device"] = sidecar.get("device", "cpu")
    if "notes" in scores:
        scores["notes"] = "; ".join(scores["notes"])
    return stem, scores, round(time.perf_counter() - started, 3)


def summary(per_image: dict[str, dict]) -> dict:
    """``metrics/cluster.json``: every field comes from the images' rows (so shards' rows
    give the collection's, :mod:`segclust.stages.gather`)."""
    return summarise(per_image)


def main(config: Config) -> None:
    # fail early, before any work; what "auto" chose is part of each image's cache key
    used = resolve_backend(config.backend, config.cluster.algorithm)
    entries = feature_entries()
    per_image: dict[str, dict] = {}
    timings: dict[str, float] = {}
    with atomic_dir(LABELS_DIR) as out, logging_redirect_tqdm():
        for stem, scores, seconds in map_cached(
            "cluster",
            config,
            entries,
            inputs_of=feature_inputs,
            image_fn=partial(cluster_image, config=config),
            outs={"out": out},
            extra={"backend": str(used)},
        ):
            per_image[stem] = scores
            timings[stem] = seconds
            log.debug("%s: %s %s", stem, config.cluster.algorithm, describe(scores))
    write_table("cluster", per_image, first=TABLE_FIRST)
    write_json(METRICS_DIR / "cluster.json", summary(per_image))
    write_timings("cluster", timings)


if __name__ == "__main__":
    run_stage("cluster", main)
