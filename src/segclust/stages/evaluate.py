"""Stage ``evaluate``: every segment map, and the hierarchy's levels, against human segmentations.

For every image with ground truth in ``data.ground_truth`` (see
:func:`segclust.groundtruth.find_ground_truth`):

* the configured and tuned segments of the ``regions`` stage and the configured cut of the
  ``hierarchy`` stage are scored against each human annotation and averaged over annotators:
  Segmentation Covering, Probabilistic Rand Index, Variation of Information (bits, as in the
  BSDS tables), adjusted Rand index, and the boundary benchmark's precision, recall and F
  (:mod:`segclust.boundaries`); DBSCAN noise counts as one more region;
* the hierarchy is cut at ``hierarchy.thresholds`` levels, log-spaced over the merge heights
  of all evaluated images, for the BSDS tables' ODS (one level for every image) and OIS (the
  best level per image: an oracle that reads the ground truth, reported, never used to cut);
* the learned boundary map of the ``boundaries`` stage (its thin map) is scored as an edge
  map, as Structured Edges and HED are published: the boundary benchmark at
  ``EDGE_THRESHOLDS`` probabilities, ODS, OIS and AP (photos whose map is at another
  working size than their ground truth are left out, and counted).

Outputs: ``metrics/evaluate.json`` (the summary experiments are compared by: the spread of
Covering over images, mean PRI and VI, pooled boundary F, per segment map, and the
hierarchy's ODS/OIS), so ``dvc exp show`` ranks experiments by agreement with people; and
``plots/images/evaluate.csv``, every score of every image (``<map>_<score>`` columns) with
the silhouette of the clustering beside it (from ``plots/images/{cluster,tune}.csv``), which
``dvc plots`` draws per image. Wall seconds per image go to ``metrics/timings/evaluate.json``
(not an output, as for every stage: :func:`segclust.stages._base.write_timings`).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.boundaries import (
    BoundaryMatcher,
    berkeley_thresholds,
    boundary_counts_over_thresholds,
    boundary_map,
    boundary_scores,
    human_boundaries,
    precision_recall,
    segmentation_boundary_counts,
)
from segclust.config import Config
from segclust.errors import ImageInputError
from segclust.evaluation import compare_to_annotators
from segclust.groundtruth import find_ground_truth, ground_truth_files
from segclust.hierarchy import Hierarchy, boundary_strength
from segclust.levels import evaluation_levels, region_ods_ois, region_scores_by_level
from segclust.report import rounded
from segclust.stages._common import (
    BOUNDARIES_DIR,
    HIERARCHY_DIR,
    IMAGES_DIR,
    METRICS_DIR,
    REGIONS_DIR,
    feature_entries,
    map_cached,
    run_stage,
    write_json,
    write_table,
    write_timings,
)
from segclust.tables import read_table, spread

log = logging.getLogger("segclust")
SCORES = ("covering", "pri", "vi", "ari", "boundary_p", "boundary_r", "boundary_f")
# probabilities at which the learned thin boundary map is scored (Berkeley's own 99 cost
# 6 times as much and move ODS F by well under 0.01)
EDGE_THRESHOLDS = berkeley_thresholds(15)
MAPS = {
    "configured": REGIONS_DIR / "configured",
    "tuned": REGIONS_DIR / "tuned",
    "hierarchy": HIERARCHY_DIR / "cut",
}


def _region_scores(
    labels: np.ndarray, annotations: list[np.ndarray], humans: BoundaryMatcher
) -> dict:
    """A segment map's region scores; first the shape check its boundary counts would fail."""
    humans.check_shape(boundary_map(labels).shape)
    return compare_to_annotators(labels, annotations)


def _flat_scores(scores: dict, labels: np.ndarray, humans: BoundaryMatcher) -> tuple:
    """A segment map's scores (region scores beside) and boundary counts."""
    counts = segmentation_boundary_counts(labels, humans)[0]
    p, r, f = (float(v) for v in precision_recall(counts))
    scores = scores | {"boundary_p": p, "boundary_r": r, "boundary_f": f}
    return {k: rounded(scores[k]) for k in SCORES}, counts


def _summary(per_image: dict, counts: dict[str, list], which: str) -> dict | None:
    rows = [m[which] for m in per_image.values() if which in m]
    if not rows:
        return None
    out: dict = {"covering": spread(r["covering"] for r in rows)}
    out |= {k: rounded(np.mean([r[k] for r in rows])) for k in ("pri", "vi")}
    # boundary F over the data set sums the counts first, as Berkeley's benchmark does
    out["boundary_f"] = rounded(boundary_scores(np.asarray(counts[which])[:, None, :]).ods_f)
    return out


def _table_rows(per_image: dict) -> dict[str, dict]:
    """One flat row per image: ``<map>_<score>``, with the clusterings' silhouettes beside."""
    silhouettes = {
        which: read_table(IMAGES_DIR / f"{stage}.csv")
        for which, stage in (("configured", "cluster"), ("tuned", "tune"))
        if (IMAGES_DIR / f"{stage}.csv").exists()
    }
    rows: dict[str, dict] = {}
    for stem, entry in per_image.items():
        row: dict = {"n_annotators": entry["n_annotators"]}
        for which in MAPS:
            for score, value in entry.get(which, {}).items():
                row[f"{which}_{score}"] = value
        for which, table in silhouettes.items():
            row[f"{which}_silhouette"] = table.get(stem, {}).get("silhouette")
        rows[stem] = row
    return rows


COLUMNS = (
    *(f"{which}_{score}" for which in MAPS for score in SCORES),
    "configured_silhouette",
    "tuned_silhouette",
)


def _edge_counts(stem: str, humans: BoundaryMatcher) -> np.ndarray | None:
    """Boundary counts of the learned thin map at EDGE_THRESHOLDS, or None (no map, or one at
    another size than the ground truth)."""
    path = BOUNDARIES_DIR / f"{stem}.npy"
    if not path.exists():
        return None
    thin = np.load(path, mmap_mode="r")[1]
    if thin.shape != humans.humans[0].shape:
        return None
    return boundary_counts_over_thresholds(np.asarray(thin), humans, EDGE_THRESHOLDS)


def evaluate_image(stem: str, gt_root: Path, levels: np.ndarray | None) -> tuple:
    """One image against its annotators: (stem, scores per map, boundary counts per map,
    region scores and boundary counts at every level, or None, the learned edge map's
    boundary counts, or None, and the wall seconds it took).

    One :class:`~segclust.boundaries.BoundaryMatcher` serves every map of the image (the
    segment maps, the edge map's thresholds, the hierarchy's levels), so each contour's
    matching is solved once per annotator."""
    started = time.perf_counter()
    annotations = find_ground_truth(gt_root, stem)
    humans = BoundaryMatcher(human_boundaries(annotations))
    flat: dict[str, tuple[dict, np.ndarray]] = {}
    for which, folder in MAPS.items():
        path = folder / f"{stem}.npy"
        if not path.exists():
            continue
        labels = np.load(path)
        try:
            flat[which] = _region_scores(labels, annotations, humans), labels
        except ValueError as exc:
            raise ImageInputError(f"{gt_root / stem}: {exc}") from exc
    edges = _edge_counts(stem, humans)
    regions = boundaries = None
    ucm_path = HIERARCHY_DIR / "ucm" / f"{stem}.npy"
    if levels is not None and ucm_path.exists():
        hierarchy = Hierarchy.from_ucm(np.load(ucm_path))
        regions = region_scores_by_level(hierarchy, annotations, levels)
        # a pixel is on the cut's boundary at t when its strength is > t (next float)
        boundaries = boundary_counts_over_thresholds(
            boundary_strength(hierarchy.ucm), humans, np.nextafter(levels, np.inf)
        )
    entry: dict = {"n_annotators": len(annotations)}
    if regions is not None:
        # merges the fixed grid cannot tell apart from the leaves or from one region
        merges = hierarchy.levels
        outside = np.count_nonzero((merges < levels[0]) | (merges > levels[-1]))
        entry["merges_outside_levels"] = rounded(outside / max(merges.size, 1))
    # the segment maps' boundaries last: their contours are mostly the levels' own, matched
    image_counts: dict[str, np.ndarray] = {}
    for which, (scores, labels) in flat.items():
        entry[which], image_counts[which] = _flat_scores(scores, labels, humans)
    return stem, entry, image_counts, regions, boundaries, edges, _seconds(started)


def _seconds(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def _inputs(stem: str, gt_root: Path) -> tuple[str, list[Path]]:
    """The annotations and every map scored."""
    maps = [folder / f"{stem}.npy" for folder in MAPS.values()]
    more = [HIERARCHY_DIR / "ucm" / f"{stem}.npy", BOUNDARIES_DIR / f"{stem}.npy"]
    return stem, [*ground_truth_files(gt_root, stem), *maps, *more]


def main(config: Config) -> None:
    gt_root = Path(config.data.ground_truth)
    if not gt_root.is_dir():
        raise ImageInputError(f"data.ground_truth {gt_root} is not a folder")
    with_truth = []
    missing = 0
    for stem, _sidecar in feature_entries():
        if ground_truth_files(gt_root, stem):  # read once, by the worker that scores it
            with_truth.append(stem)
        else:
            missing += 1
    levels = evaluation_levels(config.hierarchy.edges, config.hierarchy.thresholds)
    per_image: dict[str, dict] = {}
    counts: dict[str, list] = {which: [] for which in MAPS}
    level_regions, level_boundaries, edge_counts = [], [], []
    timings: dict[str, float] = {}
    with logging_redirect_tqdm():
        # the levels are a fixed grid: part of every image's key, not a function of the others
        extra = {"levels": None if levels is None else levels.tolist(), "truth": str(gt_root)}
        for stem, entry, image_counts, regions, boundaries, edges, seconds in map_cached(
            "evaluate",
            config,
            with_truth,
            inputs_of=partial(_inputs, gt_root=gt_root),
            image_fn=partial(evaluate_image, gt_root=gt_root, levels=levels),
            outs={},
            extra=extra,
        ):
            for which, value in image_counts.items():
                counts[which].append(value)
            if regions is not None:
                level_regions.append(regions)
                level_boundaries.append(boundaries)
            if edges is not None:
                edge_counts.append(edges)
            per_image[stem] = entry
            timings[stem] = seconds
            log.debug(
                "%s: %s",
                stem,
                ", ".join(
                    f"{w} covering={entry[w]['covering']:.3f} pri={entry[w]['pri']:.3f} "
                    f"vi={entry[w]['vi']:.3f} F={entry[w]['boundary_f']:.3f}"
                    for w in MAPS
                    if w in entry
                ),
            )
    summary: dict = {
        "images_evaluated": len(per_image),
        "images_without_ground_truth": missing,
        "segments": config.regions.method,
    }
    for which in MAPS:
        mean = _summary(per_image, counts, which)
        if mean is not None:
            summary[which] = mean
    if level_regions:
        region = region_ods_ois(np.stack(level_regions), levels)
        bound = boundary_scores(np.stack(level_boundaries), levels)
        ods, ois = region["ods"], region["ois"]
        outside = [
            e["merges_outside_levels"] for e in per_image.values() if "merges_outside_levels" in e
        ]
        summary["hierarchy_levels"] = {
            "levels": len(levels),
            "range": [rounded(levels[0]), rounded(levels[-1])],
            "merges_outside_levels": rounded(float(np.mean(outside))) if outside else None,
            "ods": {k: rounded(ods[k]) for k in ("covering", "pri", "vi")}
            | {"boundary_f": rounded(bound.ods_f)},
            "ois": {k: rounded(ois[k]) for k in ("covering", "pri", "vi")}
            | {"boundary_f": rounded(bound.ois_f)},
            "boundary_ap": rounded(bound.ap),
        }
    if edge_counts:
        edge = boundary_scores(np.stack(edge_counts), EDGE_THRESHOLDS)
        summary["learned_boundaries"] = {
            "images": len(edge_counts),
            "images_other_size": len(per_image) - len(edge_counts),
            "ods_f": rounded(edge.ods_f),
            "ois_f": rounded(edge.ois_f),
            "ap": rounded(edge.ap),
            "ods_threshold": rounded(edge.ods_threshold),
        }
    if not per_image:
        log.info("no ground truth found in %s; nothing to evaluate", gt_root)
    write_table("evaluate", _table_rows(per_image), first=("n_annotators", *COLUMNS))
    write_json(METRICS_DIR / "evaluate.json", summary)
    write_timings("evaluate", timings)


if __name__ == "__main__":
    run_stage("evaluate", main)
