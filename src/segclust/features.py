"""Per-pixel feature matrices from a decoded image.

The blocks' column builders come from the registry (:mod:`segclust.blocks`: OpenCV,
scikit-image), scikit-learn does the column scaling (:mod:`segclust.scaling`). Everything is
float32 and vectorised: cost is linear in the number of pixels.

A feature set (``conf/features/*.yaml``) is a list of *blocks*, each with a ``weight``
applied after scaling (0 switches a block off, larger values make it count more):

``intensity``
    grey level (OpenCV's BGR luma weights), 1 column.
``xy``
    the pixel's column ``x`` and row ``y``: spatial closeness (compact regions).
``sobel`` (``ksize``, ``sigma``)
    Sobel derivatives ``sobel_x``, ``sobel_y`` and the gradient magnitude of the grey image
    after a Gaussian blur of ``sigma`` pixels: edge features only.
``rgb``, ``hsv``, ``lab``
    colour (:mod:`segclust.colour`); hue enters as cos/sin of its angle.
``lbp`` (``points``, ``radius``, ``window``), ``glcm`` (``levels``, ``distance``, ``window``)
    texture (:mod:`segclust.texture`): local LBP histograms, windowed GLCM statistics.
``cnn`` (``layers``, ``dims``, ``max_pixels``, ``tile``, ``halo``, ``seed``, ``device``)
    a pretrained EfficientNet-Lite0's stage outputs, reduced by PCA and upsampled
    (:mod:`segclust.learned`; the optional ``deep`` extra).
``autoencoder`` (``inputs``, ``dims``, ``train_on``, ...), ``pca`` (``inputs``, ``dims``, ...)
    the stacked ``inputs`` blocks compressed by a small autoencoder (``deep`` extra) or PCA;
    the autoencoder is trained on each image's pixels, or (``train_on: dataset``) once on
    pixels pooled from every image of the stage (:func:`fit_on_dataset`).

The presets are the files of ``conf/features/`` (:mod:`segclust.presets`), read by Hydra
and by :func:`segclust.segment` alike; the seed's three sets are ``intensity``,
``intensity_xy`` and ``sobel``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from segclust.blocks import get_block
from segclust.config import FeatureConfig, ScalerConfig
from segclust.pixels import colour_channels, to_float01, to_grey
from segclust.scaling import scale_columns

__all__ = ["column_weights", "feature_matrix", "fit_on_dataset", "raw_features", "to_grey"]


def _grey_and_pixels(image: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """The grey image, and the colour pixels when a block needs them (else grey again)."""
    image = np.asarray(image)
    grey = to_grey(image)
    needs_colour = any(get_block(block.kind).colour for block in config.blocks)
    return grey, to_float01(colour_channels(image)) if needs_colour else grey


def raw_features(
    image: np.ndarray, config: FeatureConfig, fitted: Mapping[int, Any] | None = None
) -> tuple[np.ndarray, list[str], list[slice]]:
    """Unscaled feature columns (N×d float32), their names and each block's column slice.

    ``image`` is a decoded image (H×W grey or H×W×3/4 BGR[A], any bit depth) or grey
    floats in [0, 1]. ``fitted`` maps the index of a block trained on the whole dataset
    (:func:`fit_on_dataset`) to its fitted state.
    """
    grey, pixels = _grey_and_pixels(image, config)
    columns, names, blocks = [], [], []
    for index, block in enumerate(config.blocks):
        params = block.params
        if fitted and index in fitted:
            params = {**params, "fitted": fitted[index]}
        values, block_names = get_block(block.kind).columns(grey, pixels, params)
        blocks.append(slice(len(names), len(names) + len(block_names)))
        columns.append(values)
        names += block_names
    raw = columns[0] if len(columns) == 1 else np.concatenate(columns, axis=1)
    return np.ascontiguousarray(raw, dtype=np.float32), names, blocks


def fit_on_dataset(
    load: Callable[[int], np.ndarray], count: int, config: FeatureConfig
) -> dict[int, Any]:
    """Fit every block whose params say ``train_on: dataset`` on all ``count`` images.

    ``load(i)`` returns image ``i`` as :func:`raw_features` takes it (smoothed as the
    stage smooths it); images are read one at a time, so memory stays one image's. Returns
    the fitted states by block index, for ``raw_features(..., fitted=)``; empty when no
    block asks for it.
    """
    fitted: dict[int, Any] = {}
    for index, block in enumerate(config.blocks):
        entry = get_block(block.kind)
        if entry.fits_dataset(block.params) and entry.dataset_fit is not None:
            images = (_grey_and_pixels(load(i), config) for i in range(count))
            fitted[index] = entry.dataset_fit(images, count, block.params)
    return fitted


def column_weights(config: FeatureConfig, blocks: list[slice], n_columns: int) -> np.ndarray:
    """Each column's block weight, applied after scaling (so scaling cannot undo it)."""
    weights = np.ones(n_columns, dtype=np.float32)
    for block, columns in zip(config.blocks, blocks, strict=True):
        weights[columns] = block.weight
    return weights


def feature_matrix(
    image: np.ndarray,
    features: FeatureConfig,
    scaler: ScalerConfig,
    fitted: Mapping[int, Any] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Scaled, weighted features ready to cluster: (N×d float32, column names).

    ``fitted``: blocks trained on the dataset (:func:`fit_on_dataset`), by block index.
    """
    raw, names, blocks = raw_features(image, features, fitted)
    scaled = scale_columns(raw, scaler, blocks)
    weights = column_weights(features, blocks, len(names))
    if not np.all(weights == 1):
        scaled *= weights
    return np.ascontiguousarray(scaled, dtype=np.float32), names
