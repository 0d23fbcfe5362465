"""Boundary maps: a model's probability made thin (orientation, non-maximum suppression).

A classifier's per-pixel boundary probability is a ridge a few pixels wide; the boundary
benchmark and the watershed want it one pixel wide. As Structured Edges and HED do
(Dollár & Zitnick's ``edgesNms``), each pixel's *normal* is read off the smoothed map's
second derivatives (:func:`boundary_orientation`), and a pixel survives only where it is not
below its two neighbours along that normal (:func:`non_maximum_suppression`, bilinear
samples by OpenCV's ``remap``). NumPy and OpenCV do the work.

>>> import numpy as np
>>> step = np.zeros((24, 24), np.float32); step[:, 12:] = 1.0
>>> import cv2
>>> ridge = np.abs(cv2.Sobel(cv2.GaussianBlur(step, (0, 0), 2.0), cv2.CV_32F, 1, 0))
>>> thin = thin_boundaries(ridge, smooth=0.0, border=0)
>>> kept = np.flatnonzero(thin[12])              # the ridge peaks at columns 11 and 12
>>> len(kept), int(kept[0]) in (11, 12)            # one of the two survives
(1, True)
"""

from __future__ import annotations

import numpy as np

from segclust.boundary_model import BoundariesConfig, BoundaryModel, probability_map
from segclust.pixels import colour_channels, shrink_to, to_float01


def boundary_orientation(probability: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """The normal of the ridge through every pixel, in [0, π) radians (0 = along x).

    From the Hessian of the map smoothed at ``sigma`` pixels: the normal of a ridge is the
    direction of strongest curvature, ``atan(Oyy · sign(−Oxy) / Oxx)`` (``edgesNms``), with
    the sign of 0 taken as 1 (an axis-aligned ridge has Oxy = 0 exactly; ``edgesNms`` would
    give every horizontal ridge the normal of a vertical one).
    """
    import cv2

    smoothed = cv2.GaussianBlur(
        np.asarray(probability, np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT
    )
    oy, ox = np.gradient(smoothed)
    oxy, oxx = np.gradient(ox)
    oyy = np.gradient(oy, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):  # flat map: 0/0, any normal will do
        angle = np.arctan(oyy * np.where(oxy > 0, -1, 1) / (oxx + np.float32(1e-5)))
    return np.mod(np.nan_to_num(angle, nan=0.0), np.pi).astype(np.float32)


def non_maximum_suppression(
    probability: np.ndarray,
    orientation: np.ndarray,
    *,
    radius: int = 1,
    margin: float = 1.0,
    border: int = 5,
) -> np.ndarray:
    """``probability`` where it is a maximum along its normal, else 0 (H×W float32).

    A pixel is suppressed when ``margin`` × its value is below the map at any of the
    ``radius`` samples behind it along ``orientation``, or not above the samples ahead of
    it (so of two equal pixels on a flat ridge top, one survives: a blurred step thins to
    one pixel); the ``border`` pixels nearest the frame fade out linearly (a frame is not a
    boundary).
    """
    import cv2

    p = np.asarray(probability, np.float32)
    height, width = p.shape
    rows, cols = np.indices((height, width), dtype=np.float32)
    dx, dy = np.cos(orientation).astype(np.float32), np.sin(orientation).astype(np.float32)
    keep = np.ones(p.shape, bool)
    for step in range(1, radius + 1):
        for sign in (-step, step):
            neighbour = cv2.remap(
                p, cols + sign * dx, rows + sign * dy, cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT,
            )  # fmt: skip
            keep &= (p * np.float32(margin) >= neighbour) if sign < 0 else (p > neighbour)
    thin = np.where(keep, p, np.float32(0))
    if border > 0:
        ramp_r = np.minimum(np.arange(height), np.arange(height)[::-1])[:, None]
        ramp_c = np.minimum(np.arange(width), np.arange(width)[::-1])[None, :]
        thin *= np.clip(np.minimum(ramp_r, ramp_c) / np.float32(border), 0, 1).astype(np.float32)
    return thin


def thin_boundaries(
    probability: np.ndarray, *, smooth: float = 1.0, radius: int = 1, border: int = 5
) -> np.ndarray:
    """A one-pixel-wide boundary map: the probability smoothed at ``smooth`` pixels (0: not),
    then :func:`non_maximum_suppression` along :func:`boundary_orientation`."""
    import cv2

    p = np.asarray(probability, np.float32)
    if smooth > 0:
        p = cv2.GaussianBlur(p, (0, 0), smooth, borderType=cv2.BORDER_REFLECT)
    return non_maximum_suppression(p, boundary_orientation(p), radius=radius, border=border)


def boundary_maps(
    image: np.ndarray, model: BoundaryModel, config: BoundariesConfig, device: str = "cpu"
) -> np.ndarray:
    """A decoded photo's learned boundary maps at the working size (``config.max_pixels``):
    float32 (2, h, w), the probability smoothed at ``config.smooth`` pixels and its thin map
    (:func:`thin_boundaries`)."""
    import cv2

    photo = to_float01(shrink_to(colour_channels(np.asarray(image)), config.max_pixels))
    probability = probability_map(model, photo, device)
    if config.smooth > 0:
        probability = cv2.GaussianBlur(
            probability, (0, 0), config.smooth, borderType=cv2.BORDER_REFLECT
        )
    thin = thin_boundaries(probability, smooth=0.0, radius=config.thin_radius)
    return np.stack([probability, thin])
