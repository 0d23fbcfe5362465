"""Per-pixel feature matrices from a decoded image.

OpenCV does the pixel work (colour conversion, Gaussian blur, Sobel, box filters),
scikit-image the LBP codes, scikit-learn the column scaling. Everything is float32 and
vectorised: cost is linear in the number of pixels.

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

The seed's three sets are presets: ``intensity`` = [intensity], ``intensity_xy`` =
[intensity, xy], ``sobel`` = [sobel].
"""

from __future__ import annotations

import numpy as np

from segclust.colour import COLOUR_BLOCKS, colour_columns
from segclust.config import FeatureConfig, ScalerConfig
from segclust.errors import ImageInputError
from segclust.scaling import scale_columns
from segclust.texture import glcm_features, lbp_histogram


def to_float01(image: np.ndarray) -> np.ndarray:
    """Pixel values as float32 in [0, 1], whatever the bit depth (8, 16 bit or float)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535)
    if np.issubdtype(image.dtype, np.floating):
        out = image.astype(np.float32)
        if not np.isfinite(out).all():
            raise ImageInputError("image has NaN or infinite pixel values")
        return np.clip(out, 0.0, 1.0)
    raise ImageInputError(f"unsupported pixel type {image.dtype}")


def colour_channels(image: np.ndarray) -> np.ndarray:
    """Drop alpha and squeeze single channels: H×W (grey) or H×W×3 (BGR, OpenCV order)."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[:, :, :3]  # alpha only says where the picture is: it is not a colour
    raise ImageInputError(f"unsupported image layout {image.shape}")


def to_grey(image: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] (float32, H×W), using OpenCV's BGR luma weights.

    The conversion runs at the image's own bit depth (OpenCV rounds to integers), so an
    8-bit photo keeps at most 256 grey levels, as the clustering's compression expects.
    """
    import cv2

    channels = colour_channels(image)
    if channels.dtype not in (np.uint8, np.uint16) and not np.issubdtype(
        channels.dtype, np.floating
    ):
        raise ImageInputError(f"unsupported pixel type {channels.dtype}")
    if channels.ndim == 3:
        if channels.dtype == np.float64:
            channels = channels.astype(np.float32)
        channels = cv2.cvtColor(np.ascontiguousarray(channels), cv2.COLOR_BGR2GRAY)
    return to_float01(channels)


def to_display_rgb(image: np.ndarray) -> np.ndarray:
    """An 8-bit RGB copy for pictures (grey becomes three equal channels)."""
    pixels = to_float01(colour_channels(image))
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    else:
        pixels = pixels[:, :, ::-1]
    return np.round(pixels * 255).astype(np.uint8)


def _block_columns(
    kind: str,
    params: dict,
    grey: np.ndarray,
    pixels: np.ndarray,
) -> tuple[np.ndarray, list[str]]:
    """Unscaled columns of one block (N×c float32, row-major pixel order) and their names."""
    import cv2

    height, width = grey.shape
    if kind == "intensity":
        return grey.reshape(-1, 1).astype(np.float32, copy=False), ["intensity"]
    if kind == "xy":
        rows, cols = np.indices((height, width), dtype=np.float32)
        return np.stack([cols.ravel(), rows.ravel()], axis=1), ["x", "y"]
    if kind == "sobel":
        smoothed = grey
        if params["sigma"] > 0:
            smoothed = cv2.GaussianBlur(
                grey, (0, 0), params["sigma"], borderType=cv2.BORDER_REFLECT
            )
        gx = cv2.Sobel(smoothed, cv2.CV_32F, 1, 0, ksize=params["ksize"])
        gy = cv2.Sobel(smoothed, cv2.CV_32F, 0, 1, ksize=params["ksize"])
        # numpy, not cv2.magnitude: OpenCV's first call takes another code path and
        # differs in the last bit, which would break byte-identical outputs.
        magnitude = np.sqrt(gx * gx + gy * gy)
        return (
            np.stack([gx.ravel(), gy.ravel(), magnitude.ravel()], axis=1),
            ["sobel_x", "sobel_y", "sobel_magnitude"],
        )
    if kind in COLOUR_BLOCKS:
        return colour_columns(pixels, kind)
    if kind == "lbp":
        return lbp_histogram(
            grey, points=params["points"], radius=params["radius"], window=params["window"]
        )
    if kind == "glcm":
        return glcm_features(
            grey, levels=params["levels"], distance=params["distance"], window=params["window"]
        )
    raise ValueError(f"unknown feature block {kind!r}")


def raw_features(
    image: np.ndarray, config: FeatureConfig
) -> tuple[np.ndarray, list[str], list[slice]]:
    """Unscaled feature columns (N×d float32), their names and each block's column slice.

    ``image`` is a decoded image (H×W grey or H×W×3/4 BGR[A], any bit depth) or grey
    floats in [0, 1].
    """
    image = np.asarray(image)
    grey = to_grey(image)
    needs_colour = any(block.kind in COLOUR_BLOCKS for block in config.blocks)
    pixels = to_float01(colour_channels(image)) if needs_colour else grey
    columns, names, blocks = [], [], []
    for block in config.blocks:
        values, block_names = _block_columns(block.kind, dict(block.params), grey, pixels)
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
