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
``autoencoder`` (``inputs``, ``dims``, ...), ``pca`` (``inputs``, ``dims``, ...)
    the stacked ``inputs`` blocks compressed by a small autoencoder (``deep`` extra) or PCA.

The presets are the files of ``conf/features/`` (:mod:`segclust.presets`), read by Hydra
and by :func:`segclust.segment` alike; the seed's three sets are ``intensity``,
``intensity_xy`` and ``sobel``.
"""

from __future__ import annotations

import numpy as np

from segclust.blocks import get_block
from segclust.config import FeatureConfig, ScalerConfig
from segclust.pixels import colour_channels, to_float01, to_grey
from segclust.scaling import scale_columns

__all__ = ["column_weights", "feature_matrix", "raw_features", "to_grey"]


def raw_features(
    image: np.ndarray, config: FeatureConfig
) -> tuple[np.ndarray, list[str], list[slice]]:
    """Unscaled feature columns (N×d float32), their names and each block's column slice.

    ``image`` is a decoded image (H×W grey or H×W×3/4 BGR[A], any bit depth) or grey
    floats in [0, 1].
    """
    image = np.asarray(image)
    grey = to_grey(image)
    needs_colour = any(get_block(block.kind).colour for block in config.blocks)
    pixels = to_float01(colour_channels(image)) if needs_colour else grey
    columns, names, blocks = [], [], []
    for block in config.blocks:
        values, block_names = get_block(block.kind).columns(grey, pixels, block.params)
        blocks.append(slice(len(names), len(names) + len(block_names)))
        columns.append(values)
        names += block_names
    raw = columns[0] if len(columns) == 1 else np.concatenate(columns, axis=1)
    return np.ascontiguousarray(raw, dtype=np.float32), names, blocks


def column_weights(config: FeatureConfig, blocks: list[slice], n_columns: int) -> np.ndarray:
    """Each column's block weight, applied after scaling (so scaling cannot undo it)."""
    weights = np.ones(n_columns, dtype=np.float32)
    for block, columns in zip(config.blocks, blocks, strict=True):
        weights[columns] = block.weight
    return weights


def feature_matrix(
    image: np.ndarray, features: FeatureConfig, scaler: ScalerConfig
) -> tuple[np.ndarray, list[str]]:
    """Scaled, weighted features ready to cluster: (N×d float32, column names)."""
    raw, names, blocks = raw_features(image, features)
    scaled = scale_columns(raw, scaler, blocks)
    weights = column_weights(features, blocks, len(names))
    if not np.all(weights == 1):
        scaled *= weights
    return np.ascontiguousarray(scaled, dtype=np.float32), names
