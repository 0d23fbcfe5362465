"""Stage ``features``: image files -> scaled per-pixel feature matrices (``.npy``).

Outputs, per image ``<stem>``: ``data/features/<stem>.npy`` (N×d float32, row-major pixel
order) and ``data/features/<stem>.json`` (image shape, feature names, source file, and the
device the features were computed on: ``cuda`` when a torch block ran there, else ``cpu``).

A block trained on the whole dataset (``features.blocks.autoencoder.train_on: dataset``) is
fitted first, on every image in turn (:func:`segclust.features.fit_on_dataset`); its weights'
digest is part of each image's cache key.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.config import Config
from segclust.errors import ImageInputError
from segclust.features import feature_matrix, fit_on_dataset
from segclust.imageio import list_images, read_image
from segclust.pixels import colour_channels
from segclust.smoothing import smooth_image
from segclust.stages._common import (
    FEATURES_DIR,
    SMOOTHED_SUFFIX,
    atomic_dir,
    json_bytes,
    map_cached,
    run_stage,
    save_npy,
    write_timings,
)

log = logging.getLogger("segclust")


def device_of(names: list[str]) -> str:
    """``cuda`` when a learned block ran on the GPU (its names end in ``@cuda``), else ``cpu``."""
    return "cuda" if any(name.endswith("@cuda") for name in names) else "cpu"


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Pixel errors (odd types, NaN) raised inside name the file they came from."""
    try:
        yield
    except ImageInputError as exc:
        raise ImageInputError(f"{path}: {exc}") from exc


def _read_smoothed(path: Path, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The image as read, and smoothed as its features see it: one definition for the
    features and for the pass that fits a block on every image (they must not differ)."""
    image = read_image(path, max_pixels=config.data.max_pixels)
    with _naming(path):
        return image, smooth_image(image, config.smoothing)


def features_image(
    path: Path, config: Config, out: Path, fitted: dict[int, Any] | None = None
) -> tuple[str, float, str]:
    """One image's feature matrix and sidecar, written into ``out``; (stem, seconds, log) back."""
    started = time.perf_counter()
    image, smoothed = _read_smoothed(path, config)
    with _naming(path):
        matrix, names = feature_matrix(smoothed, config.features, config.scaler, fitted)
    height, width = image.shape[:2]
    save_npy(out / f"{path.stem}.npy", matrix)
    kept = smoothed_png(image, smoothed)
    if kept is not None:
        (out / f"{path.stem}{SMOOTHED_SUFFIX}").write_bytes(kept)
    sidecar = {
        "source": Path(path).as_posix(),
        "height": int(height),
        "width": int(width),
        "feature_names": names,
        "device": device_of(names),
        "source_dtype": str(image.dtype),
        "source_channels": 1 if image.ndim == 2 else int(image.shape[2]),
    }
    (out / f"{path.stem}.json").write_bytes(json_bytes(sidecar))
    line = (
        f"{path.stem}: {width}x{height} {image.dtype}, {sidecar['source_channels']} channel(s)"
        f" -> {config.features.name} {matrix.shape}"
    )
    return path.stem, round(time.perf_counter() - started, 3), line


def smoothed_png(image: np.ndarray, smoothed: np.ndarray) -> bytes | None:
    """The smoothed photo as lossless PNG bytes (OpenCV, BGR or grey, 8 or 16 bits), for the
    ``hierarchy`` stage's colour term: mean shift is the slowest step of both stages, and
    smoothing once saves about a quarter of a photo's segmenting time. None when there is
    nothing to keep (no smoothing) or PNG cannot hold it (float pixels: the hierarchy then
    smooths again)."""
    import cv2

    if smoothed is image or smoothed.dtype not in (np.uint8, np.uint16):
        return None
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(colour_channels(smoothed)), params)
    return encoded.tobytes() if ok else None


def _inputs(path: Path) -> tuple[str, list[Path]]:
    return path.stem, [path]


def fit_dataset_blocks(paths: list[Path], config: Config) -> dict[int, Any]:
    """The blocks trained on every image (``train_on: dataset``), fitted; logged."""
    started = time.perf_counter()
    fitted = fit_on_dataset(
        lambda i: _read_smoothed(paths[i], config)[1], len(paths), config.features
    )
    for index, state in fitted.items():
        log.info(
            "%s: trained on %d pixels pooled from %d image(s), loss %.4f, %.1f s",
            config.features.blocks[index].kind,
            state.rows,
            len(paths),
            state.loss,
            time.perf_counter() - started,
        )
    return fitted


def main(config: Config) -> None:
    paths = list_images(config.data.root, config.data.images, config.data.extensions)
    fitted = fit_dataset_blocks(paths, config)
    timings: dict[str, float] = {}
    with atomic_dir(FEATURES_DIR) as out, logging_redirect_tqdm():
        for stem, seconds, line in map_cached(
            "features",
            config,
            paths,
            inputs_of=_inputs,
            image_fn=partial(features_image, config=config, fitted=fitted or None),
            outs={"out": out},
            extra={str(i): state.digest() for i, state in fitted.items()} or None,
        ):
            timings[stem] = seconds
            log.debug("%s", line)
    write_timings("features", timings)


if __name__ == "__main__":
    run_stage("features", main)
