"""Stage ``evaluate_boundaries``: the learned boundary maps as edge maps, against people.

For every image with ground truth in ``data.ground_truth``, the thin map of the
``boundaries`` stage is scored as Structured Edges and HED are published: Berkeley's boundary
benchmark (:mod:`segclust.boundaries`) at ``EDGE_THRESHOLDS`` probabilities, then ODS, OIS
and AP over the images. Photos whose map is at another working size than their ground truth
are left out, and counted.

This is the boundary model's benchmark, so it is a stage of its own beside ``evaluate``
(which scores the segmentations): it reads only ``data/boundaries``, so a sweep over the
clustering, the regions or the hierarchy never re-scores the maps, and its cost (most of it
SciPy's LAPJVsp matching the long contours of a soft map's low thresholds) is reported with
the boundary model's, apart from the segmentations'.

Outputs: ``metrics/evaluate_boundaries.json`` (ODS F, OIS F, AP, the ODS threshold, how many
photos), ``plots/images/evaluate_boundaries.csv`` (every image's best F and its threshold)
and ``data/evaluation_boundaries/`` (every image's counts per threshold, so that shards'
photos are summarised together: :mod:`segclust.stages.gather`). Wall seconds per image go to
``metrics/timings/evaluate_boundaries.json``, as for every stage.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.boundaries import (
    BoundaryMatcher,
    berkeley_thresholds,
    boundary_counts_over_thresholds,
    boundary_scores,
    human_boundaries,
    precision_recall,
)
from segclust.config import Config
from segclust.errors import ImageInputError
from segclust.groundtruth import find_ground_truth, ground_truth_files
from segclust.report import rounded
from segclust.stages._common import (
    BOUNDARIES_DIR,
    METRICS_DIR,
    atomic_dir,
    json_bytes,
    map_cached,
    read_json,
    run_stage,
    save_npy,
    write_json,
    write_table,
    write_timings,
)
from segclust.stages._truth import photos_with_ground_truth

log = logging.getLogger("segclust")
# probabilities at which the learned thin boundary map is scored (Berkeley's own 99 cost
# 6 times as much and move ODS F by well under 0.01)
EDGE_THRESHOLDS = berkeley_thresholds(15)
EVALUATION_DIR = Path("data/evaluation_boundaries")  # what the summary is computed from
TABLE_FIRST = ("n_annotators", "best_f", "best_threshold")


@dataclass
class EdgeParts:
    """What ``metrics/evaluate_boundaries.json`` is computed from: every scored image's
    counts per threshold, and the photos left out (no ground truth; a map at another size
    than its ground truth). Each image's best F is in the stage's table, not here."""

    counts: dict[str, np.ndarray] = field(default_factory=dict)
    missing: int = 0
    other_size: int = 0

    def merge(self, other: EdgeParts) -> None:
        """Add another shard's photos (shards hold different photos)."""
        self.counts |= other.counts
        self.missing += other.missing
        self.other_size += other.other_size


def edge_counts(thin: np.ndarray, humans: BoundaryMatcher) -> np.ndarray | None:
    """Boundary counts (``EDGE_THRESHOLDS`` × 4) of a thin probability map, or None when it
    is at another size than the ground truth (a photo the boundaries stage worked on at a
    reduced size)."""
    if thin.shape != humans.humans[0].shape:
        return None
    return boundary_counts_over_thresholds(np.asarray(thin), humans, EDGE_THRESHOLDS)


def score_image(stem: str, gt_root: Path) -> tuple[str, np.ndarray | None, dict, float]:
    """One image: (stem, its counts or None, its table row, the wall seconds it took)."""
    started = time.perf_counter()
    annotations = find_ground_truth(gt_root, stem)
    humans = BoundaryMatcher(human_boundaries(annotations))
    counts = edge_counts(_map_of(stem), humans)
    row: dict[str, Any] = {"n_annotators": len(annotations)}
    if counts is not None:
        f = precision_recall(counts)[2]
        best = int(np.argmax(f))  # the first threshold of the image's best F, as OIS takes
        row |= {"best_f": rounded(f[best]), "best_threshold": rounded(EDGE_THRESHOLDS[best])}
    return stem, counts, row, round(time.perf_counter() - started, 3)


def _map_of(stem: str) -> np.ndarray:
    """The thin map of the boundaries stage (plane 1 of its ``.npy``)."""
    path = BOUNDARIES_DIR / f"{stem}.npy"
    if not path.is_file():
        raise ImageInputError(f"{path} is missing: run the boundaries stage first")
    return np.load(path, mmap_mode="r")[1]


def edge_summary(parts: EdgeParts) -> dict[str, Any]:
    """``metrics/evaluate_boundaries.json`` from the parts, photos in name order (so the sums,
    and the bytes, do not depend on which worker finished first, or on shards)."""
    stems = sorted(parts.counts)
    summary: dict[str, Any] = {
        "images": len(stems),
        "images_other_size": parts.other_size,
        "images_without_ground_truth": parts.missing,
        "thresholds": len(EDGE_THRESHOLDS),
    }
    if stems:
        edge = boundary_scores(np.stack([parts.counts[s] for s in stems]), EDGE_THRESHOLDS)
        summary |= {
            "ods_f": rounded(edge.ods_f),
            "ois_f": rounded(edge.ois_f),
            "ap": rounded(edge.ap),
            "ods_threshold": rounded(edge.ods_threshold),
        }
    return summary


def save_parts(folder: Path, parts: EdgeParts) -> None:
    """The parts into ``folder``: ``parts.json`` (which photos ``counts.npy`` holds, the photos
    left out) and ``counts.npy`` (images × thresholds × 4, rows in name order)."""
    stems = sorted(parts.counts)
    index = {
        "stems": stems,
        "missing": parts.missing,
        "other_size": parts.other_size,
    }
    (folder / "parts.json").write_bytes(json_bytes(index))
    if stems:
        save_npy(folder / "counts.npy", np.stack([parts.counts[s] for s in stems]))


def load_parts(folder: Path) -> EdgeParts:
    """What :func:`save_parts` wrote."""
    index = read_json(folder / "parts.json")
    stems = index["stems"]
    counts = np.load(folder / "counts.npy") if stems else []
    return EdgeParts(
        counts=dict(zip(stems, counts, strict=True)),
        missing=index["missing"],
        other_size=index["other_size"],
    )


def _inputs(stem: str, gt_root: Path) -> tuple[str, list[Path]]:
    """The annotations and the boundary map scored."""
    return stem, [*ground_truth_files(gt_root, stem), BOUNDARIES_DIR / f"{stem}.npy"]


def main(config: Config) -> None:
    gt_root = Path(config.data.ground_truth)
    with_truth, missing = photos_with_ground_truth(gt_root)
    parts = EdgeParts(missing=missing)
    rows: dict[str, dict] = {}  # plots/images/evaluate_boundaries.csv
    timings: dict[str, float] = {}
    with logging_redirect_tqdm():
        extra = {"thresholds": EDGE_THRESHOLDS.tolist(), "truth": str(gt_root)}
        for stem, counts, row, seconds in map_cached(
            "evaluate_boundaries",
            config,
            with_truth,
            inputs_of=partial(_inputs, gt_root=gt_root),
            image_fn=partial(score_image, gt_root=gt_root),
            outs={},
            extra=extra,
        ):
            rows[stem] = row
            if counts is None:
                parts.other_size += 1
            else:
                parts.counts[stem] = counts
            timings[stem] = seconds
    if not with_truth:
        log.info("no ground truth found in %s; no boundary map scored", gt_root)
    with atomic_dir(EVALUATION_DIR) as out:
        save_parts(out, parts)
    write_table("evaluate_boundaries", rows, first=TABLE_FIRST)
    write_json(METRICS_DIR / "evaluate_boundaries.json", edge_summary(parts))
    write_timings("evaluate_boundaries", timings)


if __name__ == "__main__":
    run_stage("evaluate_boundaries", main)
