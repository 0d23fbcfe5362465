"""Per-pixel feature matrices from a decoded image.

OpenCV does the pixel work (colour conversion, Gaussian blur, Sobel); scikit-learn scales
the columns. Everything is float32 and vectorised: cost is linear in the number of pixels.

Feature sets
------------
``intensity``
    grey level only (1 column).
``intensity_xy``
    grey level plus the pixel's column ``x`` and row ``y``; after scaling, the two
    coordinate columns are multiplied by ``xy_weight`` so that it sets how much spatial
    closeness counts against intensity (0 ignores position).
``sobel``
    the Sobel derivatives ``sobel_x``, ``sobel_y`` and the gradient magnitude
    ``sobel_magnitude`` of the grey image after a Gaussian blur of ``sigma`` pixels
    (``ksize`` is the Sobel aperture). These are edge features only: regions of different
    flat intensity look alike to them.
"""

from __future__ import annotations

import numpy as np

from segclust.config import FeatureConfig, ScalerConfig
from segclust.errors import ImageInputError
from segclust.scaling import scale_columns


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


def raw_features(grey: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, list[str]]:
    """Unscaled feature columns (N×d float32, row-major pixel order) and their names."""
    import cv2

    if grey.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {grey.shape}")
    height, width = grey.shape
    if config.name == "intensity":
        return grey.reshape(-1, 1).astype(np.float32, copy=False), ["intensity"]
    if config.name == "intensity_xy":
        rows, cols = np.indices((height, width), dtype=np.float32)
        columns = [grey.ravel(), cols.ravel(), rows.ravel()]
        return np.stack(columns, axis=1).astype(np.float32, copy=False), ["intensity", "x", "y"]
    if config.name == "sobel":
        smoothed = grey
        if config.sobel_sigma > 0:
            smoothed = cv2.GaussianBlur(
                grey, (0, 0), config.sobel_sigma, borderType=cv2.BORDER_REFLECT
            )
        gx = cv2.Sobel(smoothed, cv2.CV_32F, 1, 0, ksize=config.sobel_ksize)
        gy = cv2.Sobel(smoothed, cv2.CV_32F, 0, 1, ksize=config.sobel_ksize)
        # numpy, not cv2.magnitude: OpenCV's first call takes another code path and
        # differs in the last bit, which would break byte-identical outputs.
        magnitude = np.sqrt(gx * gx + gy * gy)
        return (
            np.stack([gx.ravel(), gy.ravel(), magnitude.ravel()], axis=1),
            ["sobel_x", "sobel_y", "sobel_magnitude"],
        )
    raise ValueError(f"unknown feature set {config.name!r}")


def column_weights(names: list[str], config: FeatureConfig) -> np.ndarray:
    """Weights applied after scaling (so that scaling cannot undo them)."""
    weights = np.ones(len(names), dtype=np.float32)
    for i, name in enumerate(names):
        if name in ("x", "y"):
            weights[i] = config.xy_weight
    return weights


def feature_matrix(
    grey: np.ndarray, features: FeatureConfig, scaler: ScalerConfig
) -> tuple[np.ndarray, list[str]]:
    """Scaled, weighted features ready to cluster: (N×d float32, column names)."""
    raw, names = raw_features(grey, features)
    scaled = scale_columns(raw, scaler)
    weights = column_weights(names, features)
    if not np.all(weights == 1):
        scaled *= weights
    return np.ascontiguousarray(scaled, dtype=np.float32), names
