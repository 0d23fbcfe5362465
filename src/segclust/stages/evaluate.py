"""Stage ``evaluate``: configured and tuned segments against human segmentations.

For every image with ground truth in ``data.ground_truth`` (see
:func:`segclust.groundtruth.find_ground_truth`), scores both segment maps of the ``regions``
stage (clusters, or connected regions with ``regions=connected``) against each human
annotation and averages over annotators: Segmentation Covering, Probabilistic Rand Index,
Variation of Information (bits, as in the BSDS tables) and adjusted Rand index. DBSCAN noise
counts as one more region. Output: ``metrics/evaluate.json`` (``summary`` means over the
evaluated images and ``images.<stem>``), so ``dvc exp show`` ranks experiments by agreement
with people.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.config import Config
from segclust.errors import ImageInputError
from segclust.evaluation import compare_to_annotators
from segclust.groundtruth import find_ground_truth
from segclust.report import rounded
from segclust.stages._common import (
    METRICS_DIR,
    REGIONS_DIR,
    feature_entries,
    run_stage,
    write_json,
)

log = logging.getLogger("segclust")
SCORES = ("covering", "pri", "vi", "ari")


def _rounded_scores(scores: dict) -> dict:
    return {k: rounded(scores[k]) for k in SCORES}


def _mean(per_image: dict, which: str) -> dict | None:
    rows = [m[which] for m in per_image.values() if which in m]
    if not rows:
        return None
    return {k: rounded(np.mean([r[k] for r in rows])) for k in SCORES}


def main(config: Config) -> None:
    gt_root = Path(config.data.ground_truth)
    if not gt_root.is_dir():
        raise ImageInputError(f"data.ground_truth {gt_root} is not a folder")
    per_image: dict[str, dict] = {}
    missing = 0
    with logging_redirect_tqdm():
        for stem, _sidecar in tqdm(feature_entries(), desc="evaluate", unit="image", disable=None):
            annotations = find_ground_truth(gt_root, stem)
            if not annotations:
                missing += 1
                continue
            entry: dict = {"n_annotators": len(annotations)}
            for which, path in (
                ("configured", REGIONS_DIR / "configured" / f"{stem}.npy"),
                ("tuned", REGIONS_DIR / "tuned" / f"{stem}.npy"),
            ):
                if not path.exists():
                    continue
                labels = np.load(path)
                try:
                    entry[which] = _rounded_scores(compare_to_annotators(labels, annotations))
                except ValueError as exc:
                    raise ImageInputError(f"{gt_root / stem}: {exc}") from exc
            per_image[stem] = entry
            log.info(
                "%s: %s",
                stem,
                ", ".join(
                    f"{w} covering={entry[w]['covering']:.3f} pri={entry[w]['pri']:.3f} "
                    f"vi={entry[w]['vi']:.3f}"
                    for w in ("configured", "tuned")
                    if w in entry
                ),
            )
    summary: dict = {
        "images_evaluated": len(per_image),
        "images_without_ground_truth": missing,
        "segments": config.regions.method,
    }
    for which in ("configured", "tuned"):
        mean = _mean(per_image, which)
        if mean is not None:
            summary[which] = mean
    if not per_image:
        log.info("no ground truth found in %s; nothing to evaluate", gt_root)
    write_json(METRICS_DIR / "evaluate.json", {"summary": summary, "images": per_image})


if __name__ == "__main__":
    run_stage("evaluate", main)
