"""Edge-preserving smoothing of the photo before its features are computed.

Pixel features carry texture and sensor noise that scatter a uniform surface over several
clusters; smoothing first makes regions flatter while (for the edge-preserving filters) keeping
their borders. OpenCV does the work:

``none``
    the photo as decoded (the seed's way).
``gaussian`` (``sigma``)
    ``cv2.GaussianBlur``: flattens noise and blurs edges alike.
``bilateral`` (``diameter``, ``sigma_colour``, ``sigma_space``)
    ``cv2.bilateralFilter``: averages only over similar colours, so edges stay sharp.
``meanshift`` (``spatial_radius``, ``colour_radius``)
    ``cv2.pyrMeanShiftFiltering``: moves each pixel to the mode of its colour neighbourhood,
    which turns a textured surface into a nearly flat one (best on BSDS500, see
    ``benchmarks/bsds.py``). Needs 8-bit colour: 16-bit and float photos are reduced to 8 bits
    for it, grey photos are filtered as three equal channels.

Colour distances (``sigma_colour``, ``colour_radius``) are in 8-bit units (0-255) whatever the
photo's bit depth. Alpha is dropped first, as the features do. Deterministic.
"""

from __future__ import annotations

import numpy as np

from segclust.config import SmoothingConfig
from segclust.features import colour_channels, to_float01


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    return np.round(to_float01(pixels) * 255).astype(np.uint8)


def smooth_image(image: np.ndarray, config: SmoothingConfig) -> np.ndarray:
    """The photo after ``config``'s filter: H×W or H×W×3 (BGR), alpha dropped.

    ``none`` returns the image itself (alpha included), so features are unchanged.
    """
    if config.method == "none":
        return image
    import cv2

    pixels = np.ascontiguousarray(colour_channels(np.asarray(image)))
    if pixels.dtype == np.float64:
        pixels = pixels.astype(np.float32)
    if config.method == "gaussian":
        return cv2.GaussianBlur(
            pixels, (0, 0), config.params["sigma"], borderType=cv2.BORDER_REFLECT
        )
    if config.method == "bilateral":
        sigma_colour = config.params["sigma_colour"]
        if pixels.dtype != np.uint8:  # OpenCV: 8-bit or float32; float colours are in [0, 1]
            pixels = to_float01(pixels)
            sigma_colour = sigma_colour / 255
        return cv2.bilateralFilter(
            pixels, config.params["diameter"], sigma_colour, config.params["sigma_space"]
        )
    if config.method == "meanshift":
        eight_bit = _to_uint8(pixels)
        grey = eight_bit.ndim == 2
        if grey:
            eight_bit = cv2.merge([eight_bit, eight_bit, eight_bit])
        out = cv2.pyrMeanShiftFiltering(
            eight_bit, config.params["spatial_radius"], config.params["colour_radius"]
        )
        return out[:, :, 0] if grey else out
    raise ValueError(f"unknown smoothing method {config.method!r}")
