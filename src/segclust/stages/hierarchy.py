"""Stage ``hierarchy``: the cascade. Per image, a region hierarchy stored as its ultrametric
contour map, and the configured cut of it (:mod:`segclust.hierarchy`).

Boundary strength is the learned boundary probability of the ``boundaries`` stage
(``hierarchy.edges: learned``, the default; the hierarchy is then built at the maps' working
resolution) or the hand-made Sobel colour gradient (``gradient``). Leaves are watershed
basins of the boundary strength (``hierarchy.leaves: watershed``) or the tuned clusters of
the ``tune`` stage (the configured ones where tuning found none), each connected piece a
leaf (``clusters``). A stage of its own after ``regions``: sweeping the cut
(``dvc exp run -S hierarchy.cut=regions``) re-runs only this stage, ``render`` and ``evaluate``.

Outputs: ``data/hierarchy/ucm/<stem>.npy`` (float32 (2, H, W): the UCM, any level can be cut
from it), ``data/hierarchy/cut/<stem>.npy`` (int32 labels of the configured cut) and
``metrics/hierarchy.json`` (the spread of regions and levels over images, and with learned
edges the boundary model's name and SHA-256, also part of every per-image cache key) and
``plots/images/hierarchy.csv`` (regions of the cut and levels of the hierarchy, per image).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.config import Config, HierarchyConfig
from segclust.errors import ModelFileError
from segclust.hierarchy import build_hierarchy, cut_hierarchy, working_size
from segclust.imageio import read_image
from segclust.stages._common import (
    BOUNDARIES_DIR,
    COUNTS,
    FEATURES_DIR,
    HIERARCHY_DIR,
    LABELS_DIR,
    METRICS_DIR,
    SMOOTHED_SUFFIX,
    TUNED_DIR,
    atomic_dir,
    feature_entries,
    map_cached,
    read_json,
    run_stage,
    save_npy,
    write_json,
    write_table,
    write_timings,
)
from segclust.tables import spread

log = logging.getLogger("segclust")
TABLE_FIRST = ("regions", "levels")  # plots/images/hierarchy.csv's first columns


def _cluster_leaves(stem: str) -> np.ndarray:
    tuned = TUNED_DIR / f"{stem}.npy"
    return np.load(tuned if tuned.exists() else LABELS_DIR / f"{stem}.npy")


def hierarchy_image(entry: tuple[str, dict], config: Config, out: Path) -> tuple:
    """One image's hierarchy and cut, written into ``out``; (stem, counts, seconds) back."""
    stem, sidecar = entry
    started = time.perf_counter()
    settings = config.hierarchy
    image = read_image(Path(sidecar["source"]), max_pixels=config.data.max_pixels)
    leaves = _cluster_leaves(stem) if settings.leaves == "clusters" else None
    probability = _probability(stem) if settings.edges == "learned" else None
    smoothed = _smoothed(stem) if _reads_smoothed(image, settings, probability) else None
    hierarchy = build_hierarchy(image, config.smoothing, settings, leaves, probability, smoothed)
    cut = cut_hierarchy(hierarchy, settings)
    for sub in ("ucm", "cut"):
        (out / sub).mkdir(exist_ok=True)
    save_npy(out / "ucm" / f"{stem}.npy", hierarchy.ucm)
    save_npy(out / "cut" / f"{stem}.npy", cut)
    counts = {"levels": int(hierarchy.levels.size), "regions": int(cut.max()) + 1}
    return stem, counts, round(time.perf_counter() - started, 3)


def _reads_smoothed(
    image: np.ndarray, settings: HierarchyConfig, probability: np.ndarray | None
) -> bool:
    """Whether the hierarchy reads the smoothed photo at the photo's own size (the colour
    term, built at full size): only then is the features stage's copy of use."""
    if settings.edges == "learned":
        return settings.colour_weight > 0 and np.shape(probability) == image.shape[:2]
    return working_size(*image.shape[:2], settings.max_pixels) == image.shape[:2]


def _smoothed(stem: str) -> np.ndarray | None:
    """The photo as the ``features`` stage smoothed it (the same smoothing params, which
    are this stage's too), or None when it kept none."""
    import cv2

    path = FEATURES_DIR / f"{stem}{SMOOTHED_SUFFIX}"
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None


def _probability(stem: str) -> np.ndarray:
    """The learned boundary probability of the ``boundaries`` stage (its map [0])."""
    return np.load(BOUNDARIES_DIR / f"{stem}.npy", mmap_mode="r")[0]


def _inputs(entry: tuple[str, dict], leaves: str, edges: str) -> tuple[str, list[Path]]:
    """The photo and its sidecar, the cluster labels when they are the leaves, the learned
    boundary map when it is the boundary strength."""
    stem, sidecar = entry
    inputs = [
        Path(sidecar["source"]),
        FEATURES_DIR / f"{stem}.json",
        FEATURES_DIR / f"{stem}{SMOOTHED_SUFFIX}",
    ]
    if leaves == "clusters":
        inputs += [TUNED_DIR / f"{stem}.npy", LABELS_DIR / f"{stem}.npy"]
    if edges == "learned":
        inputs.append(BOUNDARIES_DIR / f"{stem}.npy")
    return stem, inputs


def boundary_model_record() -> dict:
    """Which boundary model made the maps (``data/boundaries/model.json``), or a one-line
    error saying how to make them."""
    path = BOUNDARIES_DIR / "model.json"
    if not path.is_file():
        raise ModelFileError(
            f"hierarchy.edges=learned needs the learned boundary maps of the boundaries stage "
            f"({path} is missing); run `dvc repro boundaries` (it needs a trained model, "
            "models/boundaries_<boundaries.model>.npz), or use hierarchy=gradient"
        )
    return read_json(path)


def summary(per_image: dict[str, dict]) -> dict:
    """The fields of ``metrics/hierarchy.json`` that come from the images' rows (the rest is
    the config's and the model's; see :mod:`segclust.stages.gather`)."""
    return {
        "images": len(per_image),
        "regions": spread((e["regions"] for e in per_image.values()), COUNTS),
        "levels": spread((e["levels"] for e in per_image.values()), ("mean",)),
    }


def main(config: Config) -> None:
    per_image: dict[str, dict] = {}
    timings: dict[str, float] = {}
    settings = config.hierarchy
    model = boundary_model_record() if settings.edges == "learned" else None
    with atomic_dir(HIERARCHY_DIR) as out, logging_redirect_tqdm():
        for sub in ("ucm", "cut"):
            (out / sub).mkdir()
        entries = feature_entries()
        for stem, counts, seconds in map_cached(
            "hierarchy",
            config,
            entries,
            inputs_of=partial(_inputs, leaves=settings.leaves, edges=settings.edges),
            image_fn=partial(hierarchy_image, config=config),
            outs={"out": out},
            extra=None if model is None else {"boundary_model": model["sha256"]},
        ):
            per_image[stem] = counts
            timings[stem] = seconds
            log.debug(
                "%s: %d levels, cut (%s) -> %d regions",
                stem,
                counts["levels"],
                settings.cut,
                counts["regions"],
            )
    settled = {"cut": settings.cut, "edges": settings.edges, "leaves": settings.leaves}
    if model is not None:
        settled["boundary_model"] = {k: model[k] for k in ("model", "sha256", "device")}
    write_table("hierarchy", per_image, first=TABLE_FIRST)
    write_json(METRICS_DIR / "hierarchy.json", settled | summary(per_image))
    write_timings("hierarchy", timings)


if __name__ == "__main__":
    run_stage("hierarchy", main)
