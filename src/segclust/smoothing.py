"""Edge-preserving smoothing of the photo before its features are computed: one registry entry
per method, read by config validation and by :func:`smooth_image`.

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
photo's bit depth. Alpha is dropped first, as the features do. Deterministic. Adding a method
is one :class:`Smoother` entry here plus ``conf/smoothing/<name>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from segclust.params import Param, choice
from segclust.pixels import colour_channels, to_float01

if TYPE_CHECKING:
    from segclust.config import SmoothingConfig

# (H×W or H×W×3 pixels, alpha dropped, float64 made float32; params) -> filtered pixels
Filter = Callable[[np.ndarray, Mapping[str, Any]], np.ndarray]


@dataclass(frozen=True)
class Smoother:
    """One smoothing method: its parameter specs and the filter (see the module docstring)."""

    name: str
    params: Mapping[str, Param]
    apply: Filter | None  # None: the photo is used as decoded
    summary: str = ""


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    return np.round(to_float01(pixels) * 255).astype(np.uint8)


def _gaussian(pixels: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(pixels, (0, 0), p["sigma"], borderType=cv2.BORDER_REFLECT)


def _bilateral(pixels: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    import cv2

    sigma_colour = p["sigma_colour"]
    if pixels.dtype != np.uint8:  # OpenCV: 8-bit or float32; float colours are in [0, 1]
        pixels = to_float01(pixels)
        sigma_colour = sigma_colour / 255
    return cv2.bilateralFilter(pixels, p["diameter"], sigma_colour, p["sigma_space"])


def _meanshift(pixels: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    import cv2

    eight_bit = _to_uint8(pixels)
    grey = eight_bit.ndim == 2
    if grey:
        eight_bit = cv2.merge([eight_bit, eight_bit, eight_bit])
    out = cv2.pyrMeanShiftFiltering(eight_bit, p["spatial_radius"], p["colour_radius"])
    return out[:, :, 0] if grey else out


_POSITIVE = {"low": 0, "low_open": True}
_ENTRIES = (
    Smoother("none", {}, None, summary="the photo as decoded"),
    Smoother(
        "gaussian",
        {"sigma": Param(float, 1.0, **_POSITIVE, doc="pixels")},
        _gaussian,
        summary="blurs noise and edges alike",
    ),
    Smoother(
        "bilateral",
        {
            "diameter": Param(int, 9, low=1, doc="pixels"),
            "sigma_colour": Param(float, 30.0, **_POSITIVE, doc="8-bit units"),
            "sigma_space": Param(float, 7.0, **_POSITIVE, doc="pixels"),
        },
        _bilateral,
        summary="averages only similar colours: edges stay sharp",
    ),
    Smoother(
        "meanshift",
        {
            "spatial_radius": Param(int, 7, low=1, doc="pixels"),
            "colour_radius": Param(float, 15.0, **_POSITIVE, doc="8-bit units"),
        },
        _meanshift,
        summary="each pixel to its colour mode: flattens textured surfaces",
    ),
)

SMOOTHERS: Mapping[str, Smoother] = {entry.name: entry for entry in _ENTRIES}


def get_smoother(name: Any, key: str = "smoothing.method") -> Smoother:
    """The registry entry for ``name``, or a ConfigError listing the known ones."""
    return SMOOTHERS[choice(name, key, tuple(SMOOTHERS))]


def smooth_image(image: np.ndarray, config: SmoothingConfig) -> np.ndarray:
    """The photo after ``config``'s filter: H×W or H×W×3 (BGR), alpha dropped.

    ``none`` returns the image itself (alpha included), so features are unchanged.
    """
    entry = get_smoother(config.method)
    if entry.apply is None:
        return image
    pixels = np.ascontiguousarray(colour_channels(np.asarray(image)))
    if pixels.dtype == np.float64:
        pixels = pixels.astype(np.float32)
    return entry.apply(pixels, config.params)
