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
  best level per image: an oracle that reads the ground truth, reported, never used to cut).

The learned boundary map itself is scored as an edge map by its own stage,
:mod:`segclust.stages.evaluate_boundaries`, which a change to the segmentations never reruns.

Outputs: ``metrics/evaluate.json`` (the summary experiments are compared by: the spread of
Covering over images, mean PRI and VI, pooled boundary F, per segment map, and the
hierarchy's ODS/OIS), so ``dvc exp show`` ranks experiments by agreement with people; and
``plots/images/evaluate.csv``, every score of every image (``<map>_<score>`` columns) with
the silhouette of the clustering beside it (from ``plots/images/{cluster,tune}.csv``), which
``dvc plots`` draws per image; and ``data/evaluation/``, what the summary is computed from
(every image's scores and boundary counts, :class:`EvaluationParts`), so that shards' photos
are summarised together (:mod:`segclust.stages.gather`). Wall seconds per image go to
``metrics/timings/evaluate.json`` (not an output, as for every stage:
:func:`segclust.stages._base.write_timings`).
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
    HIERARCHY_DIR,
    IMAGES_DIR,
    METRICS_DIR,
    REGIONS_DIR,
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
from segclust.tables import read_table, spread

log = logging.getLogger("segclust")
SCORES = ("covering", "pri", "vi", "ari", "boundary_p", "boundary_r", "boundary_f")
EVALUATION_DIR = Path("data/evaluation")  # what metrics/evaluate.json is computed from
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


def _summary(per_image: dict, counts: list[np.ndarray], which: str) -> dict | None:
    rows = [m[which] for m in per_image.values() if which in m]
    if not rows:
        return None
    out: dict = {"covering": spread(r["covering"] for r in rows)}
    out |= {k: rounded(np.mean([r[k] for r in rows])) for k in ("pri", "vi")}
    # boundary F over the data set sums the counts first, as Berkeley's benchmark does
    out["boundary_f"] = rounded(boundary_scores(np.asarray(counts)[:, None, :]).ods_f)
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
TABLE_FIRST = ("n_annotators", *COLUMNS)  # plots/images/evaluate.csv's first columns


def evaluate_image(stem: str, gt_root: Path, levels: np.ndarray | None) -> tuple:
    """One image against its annotators: (stem, scores per map, boundary counts per map,
    region scores and boundary counts at every level, or None, and the wall seconds it
    took).

    One :class:`~segclust.boundaries.BoundaryMatcher` serves every map of the image (the
    segment maps, the hierarchy's levels), so each contour's
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
    return stem, entry, image_counts, regions, boundaries, _seconds(started)


def _seconds(started: float) -> float:
    return round(time.perf_counter() - started, 3)


def _inputs(stem: str, gt_root: Path) -> tuple[str, list[Path]]:
    """The annotations and every map scored."""
    maps = [folder / f"{stem}.npy" for folder in MAPS.values()]
    return stem, [*ground_truth_files(gt_root, stem), *maps, HIERARCHY_DIR / "ucm" / f"{stem}.npy"]


@dataclass
class EvaluationParts:
    """What the summary of ``metrics/evaluate.json`` is computed from, per image: its scores,
    each segment map's boundary counts, the hierarchy's counts at every level. Kept in
    ``data/evaluation/`` (:func:`save_parts`), so that a summary over several shards' photos
    is the one their photos give together (:mod:`segclust.stages.gather`)."""

    per_image: dict[str, dict] = field(default_factory=dict)
    counts: dict[str, dict[str, np.ndarray]] = field(default_factory=lambda: {w: {} for w in MAPS})
    levels_of: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    missing: int = 0  # photos without ground truth

    def merge(self, other: EvaluationParts) -> None:
        """Add another shard's photos (shards hold different photos)."""
        self.per_image |= other.per_image
        for which in MAPS:
            self.counts[which] |= other.counts[which]
        self.levels_of |= other.levels_of
        self.missing += other.missing


def evaluation_summary(
    parts: EvaluationParts, levels: np.ndarray | None, segments: str
) -> dict[str, Any]:
    """``metrics/evaluate.json`` from the parts, photos taken in name order (so the sums, and
    the bytes, do not depend on which worker finished first, or on shards)."""
    stems = sorted(parts.per_image)
    per_image = {stem: parts.per_image[stem] for stem in stems}
    summary: dict[str, Any] = {
        "images_evaluated": len(per_image),
        "images_without_ground_truth": parts.missing,
        "segments": segments,
    }
    for which in MAPS:
        counts = [parts.counts[which][s] for s in stems if s in parts.counts[which]]
        mean = _summary(per_image, counts, which)
        if mean is not None:
            summary[which] = mean
    with_levels = [s for s in stems if s in parts.levels_of]
    if with_levels and levels is not None:
        region = region_ods_ois(np.stack([parts.levels_of[s][0] for s in with_levels]), levels)
        bound = boundary_scores(np.stack([parts.levels_of[s][1] for s in with_levels]), levels)
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
    return summary


def save_parts(folder: Path, parts: EvaluationParts, levels: np.ndarray | None) -> None:
    """The parts into ``folder``: ``parts.json`` (scores, which photos each array holds, the
    levels) and one ``.npy`` per array, rows in photo name order."""
    stems = sorted(parts.per_image)
    index: dict[str, Any] = {
        "per_image": {s: parts.per_image[s] for s in stems},
        "missing": parts.missing,
        "levels": None if levels is None else levels.tolist(),
        "counts": {w: [s for s in stems if s in parts.counts[w]] for w in MAPS},
        "levels_of": [s for s in stems if s in parts.levels_of],
    }
    (folder / "parts.json").write_bytes(json_bytes(index))
    arrays = {f"counts_{w}": [parts.counts[w][s] for s in index["counts"][w]] for w in MAPS}
    arrays["level_regions"] = [parts.levels_of[s][0] for s in index["levels_of"]]
    arrays["level_boundaries"] = [parts.levels_of[s][1] for s in index["levels_of"]]
    for name, rows in arrays.items():
        if rows:
            save_npy(folder / f"{name}.npy", np.stack(rows))


def load_parts(folder: Path) -> tuple[EvaluationParts, np.ndarray | None]:
    """What :func:`save_parts` wrote: the parts and the levels."""
    index = read_json(folder / "parts.json")

    def rows(name: str, stems: list[str]) -> dict[str, np.ndarray]:
        return dict(zip(stems, np.load(folder / f"{name}.npy"), strict=True)) if stems else {}

    levels_of = dict(
        zip(
            index["levels_of"],
            zip(
                rows("level_regions", index["levels_of"]).values(),
                rows("level_boundaries", index["levels_of"]).values(),
                strict=True,
            ),
            strict=True,
        )
    )
    parts = EvaluationParts(
        per_image=index["per_image"],
        counts={w: rows(f"counts_{w}", index["counts"][w]) for w in MAPS},
        levels_of=levels_of,
        missing=index["missing"],
    )
    levels = None if index["levels"] is None else np.asarray(index["levels"], dtype=np.float64)
    return parts, levels


def main(config: Config) -> None:
    gt_root = Path(config.data.ground_truth)
    with_truth, missing = photos_with_ground_truth(gt_root)
    parts = EvaluationParts(missing=missing)
    levels = evaluation_levels(config.hierarchy.edges, config.hierarchy.thresholds)
    timings: dict[str, float] = {}
    with logging_redirect_tqdm():
        # the levels are a fixed grid: part of every image's key, not a function of the others
        extra = {"levels": None if levels is None else levels.tolist(), "truth": str(gt_root)}
        for stem, entry, image_counts, regions, boundaries, seconds in map_cached(
            "evaluate",
            config,
            with_truth,
            inputs_of=partial(_inputs, gt_root=gt_root),
            image_fn=partial(evaluate_image, gt_root=gt_root, levels=levels),
            outs={},
            extra=extra,
        ):
            for which, value in image_counts.items():
                parts.counts[which][stem] = value
            if regions is not None:
                parts.levels_of[stem] = (regions, boundaries)
            parts.per_image[stem] = entry
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
    summary = evaluation_summary(parts, levels, config.regions.method)
    if not parts.per_image:
        log.info("no ground truth found in %s; nothing to evaluate", gt_root)
    with atomic_dir(EVALUATION_DIR) as out:
        save_parts(out, parts, levels)
    write_table("evaluate", _table_rows(parts.per_image), first=TABLE_FIRST)
    write_json(METRICS_DIR / "evaluate.json", summary)
    write_timings("evaluate", timings)


if __name__ == "__main__":
    run_stage("evaluate", main)
