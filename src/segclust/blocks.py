"""The feature blocks: one registry entry each, read by config validation and features.

A :class:`Block` entry holds its parameter specs (:mod:`segclust.params`), whether it needs
the photo's colour (else it gets the grey image only), and the column builder that turns the
pixels into N×c float32 columns with their names. :mod:`segclust.features` concatenates the
blocks a feature set lists, scales and weights them; :mod:`segclust.config` validates
``features.blocks`` from the same entries. Adding a block is one entry here (its builder may
live in its own module, as colour and texture do) plus a preset in ``conf/features/``.

OpenCV does the pixel work (Gaussian blur, Sobel), :mod:`segclust.colour` the colour spaces,
:mod:`segclust.texture` LBP (scikit-image) and windowed GLCM statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from segclust.colour import colour_columns
from segclust.params import Param, choice
from segclust.texture import glcm_features, lbp_histogram

# (grey H×W in [0, 1], pixels H×W×3 BGR in [0, 1] or grey, params) -> (N×c columns, names)
ColumnBuilder = Callable[[np.ndarray, np.ndarray, Mapping[str, Any]], tuple[np.ndarray, list[str]]]


@dataclass(frozen=True)
class Block:
    """One block of feature columns (see the module docstring)."""

    name: str
    params: Mapping[str, Param]
    columns: ColumnBuilder
    colour: bool = False  # needs the colour pixels, not only grey
    summary: str = ""


def _intensity(grey: np.ndarray, _pixels: np.ndarray, _p: Mapping[str, Any]) -> tuple:
    return grey.reshape(-1, 1).astype(np.float32, copy=False), ["intensity"]


def _xy(grey: np.ndarray, _pixels: np.ndarray, _p: Mapping[str, Any]) -> tuple:
    rows, cols = np.indices(grey.shape, dtype=np.float32)
    return np.stack([cols.ravel(), rows.ravel()], axis=1), ["x", "y"]


def _sobel(grey: np.ndarray, _pixels: np.ndarray, p: Mapping[str, Any]) -> tuple:
    import cv2

    smoothed = grey
    if p["sigma"] > 0:
        smoothed = cv2.GaussianBlur(grey, (0, 0), p["sigma"], borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(smoothed, cv2.CV_32F, 1, 0, ksize=p["ksize"])
    gy = cv2.Sobel(smoothed, cv2.CV_32F, 0, 1, ksize=p["ksize"])
    # numpy, not cv2.magnitude: OpenCV's first call takes another code path and
    # differs in the last bit, which would break byte-identical outputs.
    magnitude = np.sqrt(gx * gx + gy * gy)
    return (
        np.stack([gx.ravel(), gy.ravel(), magnitude.ravel()], axis=1),
        ["sobel_x", "sobel_y", "sobel_magnitude"],
    )


def _colour(space: str) -> ColumnBuilder:
    def build(_grey: np.ndarray, pixels: np.ndarray, _p: Mapping[str, Any]) -> tuple:
        return colour_columns(pixels, space)

    return build


def _lbp(grey: np.ndarray, _pixels: np.ndarray, p: Mapping[str, Any]) -> tuple:
    return lbp_histogram(grey, points=p["points"], radius=p["radius"], window=p["window"])


def _glcm(grey: np.ndarray, _pixels: np.ndarray, p: Mapping[str, Any]) -> tuple:
    return glcm_features(grey, levels=p["levels"], distance=p["distance"], window=p["window"])


def _window() -> Param:
    return Param(int, 15, low=3, odd=True, doc="odd side of the square window, pixels")


_ENTRIES = (
    Block("intensity", {}, _intensity, summary="grey level (OpenCV luma), 1 column"),
    Block("xy", {}, _xy, summary="pixel column x and row y: favours compact regions"),
    Block(
        "sobel",
        {
            "ksize": Param(int, 3, choices=(1, 3, 5, 7), doc="Sobel aperture"),
            "sigma": Param(float, 1.0, low=0, doc="Gaussian blur first, pixels (0: none)"),
        },
        _sobel,
        summary="sobel_x, sobel_y, gradient magnitude of the blurred grey image",
    ),
    Block("rgb", {}, _colour("rgb"), colour=True, summary="red, green, blue in [0, 1]"),
    Block("hsv", {}, _colour("hsv"), colour=True, summary="hue as cos/sin, saturation, value"),
    Block("lab", {}, _colour("lab"), colour=True, summary="CIE L*a*b*: perceptual distance"),
    Block(
        "lbp",
        {
            "points": Param(int, 8, low=4, doc="LBP circle points"),
            "radius": Param(float, 1.0, low=0, low_open=True, doc="LBP circle radius, pixels"),
            "window": _window(),
        },
        _lbp,
        summary="share of each uniform LBP code in the window (points + 2 columns)",
    ),
    Block(
        "glcm",
        {
            "levels": Param(int, 8, low=2, doc="grey levels the image is quantised to"),
            "distance": Param(int, 1, low=1, doc="pixel pair offset"),
            "window": _window(),
        },
        _glcm,
        summary="windowed GLCM contrast, dissimilarity, homogeneity, energy, correlation",
    ),
)

BLOCKS: Mapping[str, Block] = {entry.name: entry for entry in _ENTRIES}


def get_block(name: Any, key: str = "features.blocks") -> Block:
    """The registry entry for ``name``, or a ConfigError listing the known ones."""
    return BLOCKS[choice(name, key, tuple(BLOCKS))]
