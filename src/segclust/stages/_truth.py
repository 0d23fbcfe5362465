"""Which photos the evaluation stages score: the features stage's photos that have
annotations in ``data.ground_truth``. Shared by ``evaluate`` and ``evaluate_boundaries`` (and
kept out of :mod:`segclust.stages._common`, so that no other stage imports the ground-truth
readers at start-up)."""

from __future__ import annotations

from pathlib import Path

from segclust.errors import ImageInputError
from segclust.groundtruth import ground_truth_files
from segclust.stages._common import feature_entries


def photos_with_ground_truth(gt_root: Path) -> tuple[list[str], int]:
    """(the photos with annotations in ``gt_root``, in name order; how many have none).

    Only the files are looked up; the annotations are read once, by the worker that scores
    the photo. A ``gt_root`` that is not a folder is a one-line error.
    """
    if not gt_root.is_dir():
        raise ImageInputError(f"data.ground_truth {gt_root} is not a folder")
    stems = [stem for stem, _sidecar in feature_entries()]
    with_truth = [stem for stem in stems if ground_truth_files(gt_root, stem)]
    return with_truth, len(stems) - len(with_truth)
