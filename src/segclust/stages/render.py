"""Stage ``render``: pictures of every image's configured and tuned segmentation.

Outputs, per image ``<stem>``, in ``plots/render/`` (declared as DVC image plots):
``<stem>_grey.png`` (original beside its grey transform), ``<stem>_clusters.png``
(coloured cluster maps with a legend of cluster sizes) and ``<stem>_contours.png``
(cluster outlines drawn over the original with OpenCV, configured | tuned) and
``<stem>_hierarchy.png`` (the hierarchy's ultrametric contour map in grey beside the outlines
of its configured cut).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.config import Config
from segclust.hierarchy import boundary_strength
from segclust.imageio import read_image
from segclust.pixels import to_display_rgb, to_grey
from segclust.render import (
    captioned,
    cluster_colours,
    cluster_map_picture,
    contour_panel,
    grey_picture,
    png_bytes,
    side_by_side,
    text_size,
    ucm_panel,
)
from segclust.stages._common import (
    BOUNDARIES_DIR,
    FEATURES_DIR,
    HIERARCHY_DIR,
    REGIONS_DIR,
    RENDER_DIR,
    TUNED_DIR,
    atomic_dir,
    feature_entries,
    map_cached,
    run_stage,
    write_timings,
)

log = logging.getLogger("segclust")
# zlib level 1, 'up' filter: fast and small (the trade-off: segclust.render.png_bytes)
PNG_COMPRESSION = 1


def render_image(entry: tuple[str, dict], config: Config, out: Path) -> tuple[str, float, str]:
    """One image's pictures, written into ``out``; (stem, seconds, what was drawn) back."""
    stem, sidecar = entry
    started = time.perf_counter()
    suffix = " · regions" if config.regions.method == "connected" else ""
    image = read_image(Path(sidecar["source"]), max_pixels=config.data.max_pixels)
    rgb, grey = to_display_rgb(image), to_grey(image)
    configured = np.load(REGIONS_DIR / "configured" / f"{stem}.npy")
    tuned_path = REGIONS_DIR / "tuned" / f"{stem}.npy"
    tuned = np.load(tuned_path) if tuned_path.exists() else None
    configured_name = f"configured {config.cluster.algorithm}{suffix}"
    tuned_name = f"tuned {_tuned_algorithm(stem, config)}{suffix}"

    size, min_width = text_size(config.render.dpi), config.render.min_width
    grey_panels = grey_picture(rgb, grey, title=stem, min_width=min_width, size=size)
    _write_png(out / f"{stem}_grey.png", grey_panels)
    clusters = cluster_map_picture(
        [(configured_name, configured), (tuned_name, tuned)],
        cmap=config.render.cmap,
        title=f"{stem}: {config.features.name} features",
        min_width=min_width,
        size=size,
    )
    _write_png(out / f"{stem}_clusters.png", clusters)

    panels = [
        captioned(_contours(rgb, labels, config), caption, size=size)
        for caption, labels in ((configured_name, configured), (tuned_name, tuned))
        if labels is not None
    ]
    _write_png(out / f"{stem}_contours.png", side_by_side(panels))
    if (HIERARCHY_DIR / "ucm" / f"{stem}.npy").exists():
        _write_png(out / f"{stem}_hierarchy.png", _hierarchy_picture(stem, rgb, config, size))
    drawn = (
        "configured + tuned"
        if tuned is not None
        else "configured only (tuning found no valid clustering)"
    )
    return stem, round(time.perf_counter() - started, 3), drawn


def main(config: Config) -> None:
    entries = feature_entries()
    timings: dict[str, float] = {}
    with atomic_dir(RENDER_DIR) as out, logging_redirect_tqdm():
        for stem, seconds, drawn in map_cached(
            "render",
            config,
            entries,
            inputs_of=_inputs,
            image_fn=partial(render_image, config=config),
            outs={"out": out},
        ):
            timings[stem] = seconds
            log.debug("%s: rendered %s", stem, drawn)
    write_timings("render", timings)


def _inputs(entry: tuple[str, dict]) -> tuple[str, list[Path]]:
    """Every file one image's pictures are drawn from."""
    stem, sidecar = entry
    return stem, [
        Path(sidecar["source"]),
        FEATURES_DIR / f"{stem}.json",
        REGIONS_DIR / "configured" / f"{stem}.npy",
        REGIONS_DIR / "tuned" / f"{stem}.npy",
        TUNED_DIR / f"{stem}.yaml",
        HIERARCHY_DIR / "ucm" / f"{stem}.npy",
        HIERARCHY_DIR / "cut" / f"{stem}.npy",
        BOUNDARIES_DIR / f"{stem}.npy",
    ]


def _tuned_algorithm(stem: str, config: Config) -> str:
    """The algorithm of the tuned segmentation: the study's winner (``tune.algorithms`` may
    search several), read from ``data/tuned/<stem>.yaml``."""
    path = TUNED_DIR / f"{stem}.yaml"
    if path.exists():
        best = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return str(best.get("algorithm", config.cluster.algorithm))
    return config.cluster.algorithm


def _hierarchy_picture(stem: str, rgb: np.ndarray, config: Config, size: int) -> np.ndarray:
    ucm = np.load(HIERARCHY_DIR / "ucm" / f"{stem}.npy")
    cut = np.load(HIERARCHY_DIR / "cut" / f"{stem}.npy")
    settings = config.hierarchy
    value = ", ".join(f"{k}={v:g}" for k, v in settings.cut_params.items())
    panels = []
    if settings.edges == "learned":
        thin = np.load(BOUNDARIES_DIR / f"{stem}.npy", mmap_mode="r")[1]
        if thin.shape != ucm.shape[1:]:  # built at the working size: shown at the photo's
            thin = cv2.resize(np.asarray(thin), ucm.shape[:0:-1], interpolation=cv2.INTER_LINEAR)
        panels.append(
            captioned(
                ucm_panel(np.asarray(thin), min_width=config.render.min_width, gamma=1.0),
                "learned boundaries (thinned)",
                size=size,
            )
        )
    panels += [
        captioned(
            ucm_panel(boundary_strength(ucm), min_width=config.render.min_width),
            f"hierarchy on {settings.edges} edges (UCM)",
            size=size,
        ),
        captioned(
            _contours(rgb, cut, config),
            f"cut at {value}: {int(cut.max()) + 1} regions",
            size=size,
        ),
    ]
    return side_by_side(panels)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    path.write_bytes(png_bytes(rgb, PNG_COMPRESSION))


def _contours(rgb: np.ndarray, labels: np.ndarray, config: Config) -> np.ndarray:
    colours = cluster_colours(int(labels.max(initial=-1)) + 1, config.render.cmap)
    return contour_panel(
        rgb,
        labels,
        colours,
        min_width=config.render.min_width,
        thickness=config.render.contour_thickness,
    )


if __name__ == "__main__":
    run_stage("render", main)
