"""Scaling of feature columns, on scikit-learn's scalers.

A scaler is chosen by name from the ``scaler`` config group (``standard``: zero mean, unit
variance; ``minmax``: [0, 1]; ``robust``: median 0, interquartile range 1, so a few extreme
pixels — specular highlights, sensor defects — do not squash everyone else) and fitted per
image on all of its pixels.

``scope``:
``column``
    every column scaled on its own (the seed's behaviour): each column counts equally in the
    distance, whatever its units.
``block``
    the columns of one feature block share one scale (each column is still centred): the
    block's internal geometry is kept — Euclidean distance in LAB stays a perceptual colour
    difference, x and y keep the image's aspect — and every block, whatever its number of
    columns, counts as much as one column scaled alone (the shared scale is the Euclidean
    norm of the block's column scales). The block weights then say how much each block
    counts: with ``column`` scope a 10-column LBP histogram would outweigh grey ten to one.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from segclust.config import ScalerConfig

Scaler = StandardScaler | MinMaxScaler | RobustScaler


def make_scaler(config: ScalerConfig) -> Scaler:
    """The scikit-learn transformer named by ``scaler.name``."""
    if config.name == "standard":
        return StandardScaler()
    if config.name == "minmax":
        return MinMaxScaler()
    if config.name == "robust":
        return RobustScaler()
    raise ValueError(f"unknown scaler {config.name!r}")


def _column_scales(scaler: Scaler) -> tuple[np.ndarray, np.ndarray]:
    """(centre, scale) per column such that transform(x) == (x - centre) / scale."""
    if isinstance(scaler, MinMaxScaler):
        scale = 1.0 / scaler.scale_
        return -scaler.min_ * scale, scale
    centre = scaler.mean_ if isinstance(scaler, StandardScaler) else scaler.center_
    return centre, scaler.scale_


def scale_columns(
    raw: np.ndarray, config: ScalerConfig, blocks: list[slice] | None = None
) -> np.ndarray:
    """Fit the configured scaler on ``raw`` (N×d) and return the scaled float32 copy.

    ``blocks``: the column slices of each feature block, used when ``scope`` is ``block``.
    Constant columns (a flat grey image) become zeros rather than NaN: scikit-learn leaves
    a zero spread unscaled.
    """
    scaler = make_scaler(config).fit(raw)
    if config.scope == "column" or not blocks:
        return np.asarray(scaler.transform(raw), dtype=np.float32)
    centre, scale = _column_scales(scaler)
    shared = scale.astype(np.float64).copy()
    for block in blocks:
        shared[block] = float(np.sqrt(np.sum(scale[block].astype(np.float64) ** 2)))
    shared[shared == 0] = 1.0
    if config.name == "minmax":  # keep [0, 1]-like values: shift by the column minimum
        return ((raw - scaler.data_min_) / shared).astype(np.float32)
    return ((raw - centre) / shared).astype(np.float32)
