"""Decoded images as pixel arrays: bit depth to [0, 1], alpha dropped, grey, display RGB.

Shared by smoothing, features and rendering; OpenCV does the colour conversion.
"""

from __future__ import annotations

import numpy as np

from segclust.errors import ImageInputError


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


def working_size(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """(height, width) shrunk to at most about ``max_pixels`` pixels, aspect kept (or as it is).

    >>> working_size(3000, 4000, 160_000), working_size(321, 481, 160_000)
    ((346, 462), (321, 481))
    """
    import math

    scale = math.sqrt(max_pixels / (height * width))
    if scale >= 1:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink_to(pixels: np.ndarray, max_pixels: int) -> np.ndarray:
    """``pixels`` at :func:`working_size` (OpenCV ``INTER_AREA``; unchanged when small enough)."""
    import cv2

    height, width = working_size(*pixels.shape[:2], max_pixels)
    if (height, width) == pixels.shape[:2]:
        return pixels
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
