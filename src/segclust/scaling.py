"""Column scaling of feature matrices, on scikit-learn's scalers.

A scaler is chosen by name from the ``scaler`` config group; it is fitted per image, on
all of that image's pixels, so every feature column counts equally in the distance.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler

from segclust.config import ScalerConfig


def make_scaler(config: ScalerConfig) -> StandardScaler:
    """The scikit-learn transformer named by ``scaler.name``."""
    if config.name == "standard":
        return StandardScaler()
    raise ValueError(f"unknown scaler {config.name!r}")


def scale_columns(raw: np.ndarray, config: ScalerConfig) -> np.ndarray:
    """Fit the configured scaler on ``raw`` (N×d) and return the scaled float32 copy.

    Constant columns (a flat grey image) become zeros rather than NaN: scikit-learn
    leaves a zero variance unscaled.
    """
    scaled = make_scaler(config).fit_transform(raw)
    return np.asarray(scaled, dtype=np.float32)
