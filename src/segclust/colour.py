"""Colour-space feature columns of an image, on OpenCV's colour conversions.

Input is float32 BGR in [0, 1] (OpenCV order, any source bit depth already converted by
:func:`segclust.features.to_float01`); a grey image is treated as BGR with equal channels.

``rgb``
    red, green, blue in [0, 1].
``hsv``
    hue as the angle it is — ``hue_cos``, ``hue_sin`` (so 359° and 1° are neighbours and a
    shift of 360° changes nothing) — then saturation and value in [0, 1].
``lab``
    CIE L*a*b* (D65): ``L`` in [0, 100], ``a``, ``b`` roughly in [-128, 127]; Euclidean
    distance in it approximates perceived colour difference (use ``scaler.scope: block`` to
    keep that geometry when scaling).
"""

from __future__ import annotations

import numpy as np

COLOUR_BLOCKS = ("rgb", "hsv", "lab")


def as_bgr(pixels: np.ndarray) -> np.ndarray:
    """H×W×3 float32 BGR from H×W grey or H×W×3 BGR floats in [0, 1]."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return np.ascontiguousarray(pixels)
    raise ValueError(f"expected H×W or H×W×3 pixels, got shape {pixels.shape}")


def hue_columns(hue_degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of hue angles in degrees: equal for angles 360° apart."""
    radians = np.deg2rad(hue_degrees.astype(np.float64))
    return np.cos(radians).astype(np.float32), np.sin(radians).astype(np.float32)


def colour_columns(pixels: np.ndarray, space: str) -> tuple[np.ndarray, list[str]]:
    """N×c float32 columns of ``space`` (``rgb``, ``hsv`` or ``lab``) and their names."""
    import cv2

    bgr = as_bgr(pixels)
    if space == "rgb":
        return bgr[:, :, ::-1].reshape(-1, 3).copy(), ["red", "green", "blue"]
    if space == "hsv":
        hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)  # float input: H in [0, 360)
        cos, sin = hue_columns(hsv[:, :, 0])
        columns = [cos.ravel(), sin.ravel(), hsv[:, :, 1].ravel(), hsv[:, :, 2].ravel()]
        return np.stack(columns, axis=1), ["hue_cos", "hue_sin", "saturation", "value"]
    if space == "lab":
        lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab)  # float input: L in [0, 100]
        return lab.reshape(-1, 3), ["L", "a", "b"]
    raise ValueError(f"unknown colour space {space!r}; allowed: {', '.join(COLOUR_BLOCKS)}")
