"""Per-pixel texture features: local LBP histograms and windowed GLCM statistics.

No per-pixel Python loops: scikit-image computes the LBP codes, and every local statistic is
a mean over a ``window``×``window`` box, i.e. one OpenCV ``boxFilter`` of a per-pixel image.

``lbp``
    scikit-image's ``local_binary_pattern`` (``method="uniform"``: P + 2 codes, rotation
    invariant), then for every code the share of the window's pixels carrying it.
``glcm``
    the grey-level co-occurrence statistics of scikit-image's ``graycoprops`` for the pixel
    pairs (x, x + offset) with x in the window, symmetric and normalised, averaged over the
    offsets (0, d) and (d, 0): contrast, dissimilarity and homogeneity are box means of
    functions of the difference between a pixel and its neighbour (on the quantised levels);
    energy needs the co-occurrence matrix itself — one box mean per level pair, so grey is
    quantised to ``levels`` (8 by default: 64 box filters per offset); correlation is the
    Pearson correlation of the pair values, from box means of q, q² and q·q'.
"""

from __future__ import annotations

import numpy as np

GLCM_NAMES = ["glcm_contrast", "glcm_dissimilarity", "glcm_homogeneity", "glcm_energy",
              "glcm_correlation"]  # fmt: skip


def box_mean(image: np.ndarray, window: int) -> np.ndarray:
    """Mean over the window centred on every pixel (borders reflected), float32."""
    import cv2

    return cv2.boxFilter(
        image.astype(np.float32, copy=False),
        -1,
        (window, window),
        normalize=True,
        borderType=cv2.BORDER_REFLECT,
    )


def lbp_histogram(
    grey: np.ndarray, *, points: int = 8, radius: float = 1.0, window: int = 15
) -> tuple[np.ndarray, list[str]]:
    """N×(points+2) shares of each uniform LBP code in the window around every pixel."""
    from skimage.feature import local_binary_pattern

    levels = np.round(np.clip(grey, 0.0, 1.0) * 65535).astype(np.uint16)  # integer input
    codes = local_binary_pattern(levels, points, radius, method="uniform").astype(np.int32)
    columns = [box_mean((codes == code).astype(np.float32), window).ravel()
               for code in range(points + 2)]  # fmt: skip
    return np.stack(columns, axis=1), [f"lbp_{code}" for code in range(points + 2)]


def quantise(grey: np.ndarray, levels: int) -> np.ndarray:
    """Grey in [0, 1] to integer levels 0..levels-1 (int32)."""
    return np.minimum((np.clip(grey, 0.0, 1.0) * levels).astype(np.int32), levels - 1)


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image[y + dy, x + dx]``, with the border pixels repeated past the edge."""
    height, width = image.shape
    rows = np.minimum(np.arange(height) + dy, height - 1)
    cols = np.minimum(np.arange(width) + dx, width - 1)
    return image[rows][:, cols]


def glcm_offset_features(q: np.ndarray, q_next: np.ndarray, levels: int, window: int) -> np.ndarray:
    """H×W×5 GLCM statistics of the pairs (q, q_next) in each window (one offset)."""
    diff = (q - q_next).astype(np.float32)
    contrast = box_mean(diff * diff, window)
    dissimilarity = box_mean(np.abs(diff), window)
    homogeneity = box_mean(1.0 / (1.0 + diff * diff), window)
    # Symmetric GLCM entry P(i, j) = (share of pairs (i, j) + share of pairs (j, i)) / 2,
    # accumulated level pair by level pair so memory stays O(pixels).
    low, high = np.minimum(q, q_next), np.maximum(q, q_next)
    pair_code = low * levels + high
    second_moment = np.zeros(q.shape, dtype=np.float32)
    for i in range(levels):
        for j in range(i, levels):
            share = box_mean((pair_code == i * levels + j).astype(np.float32), window)
            if i == j:
                second_moment += share * share
            else:  # P(i, j) = P(j, i) = share / 2, counted twice
                second_moment += share * share / 2.0
    energy = np.sqrt(second_moment)
    a, b = q.astype(np.float32), q_next.astype(np.float32)
    mean = (box_mean(a, window) + box_mean(b, window)) / 2.0  # symmetric: both orders count
    second = (box_mean(a * a, window) + box_mean(b * b, window)) / 2.0
    variance = np.maximum(second - mean * mean, 0.0)
    covariance = box_mean(a * b, window) - mean * mean
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.where(variance > 1e-6, covariance / variance, 1.0).astype(np.float32)
    return np.stack([contrast, dissimilarity, homogeneity, energy, correlation], axis=-1)


def glcm_features(
    grey: np.ndarray, *, levels: int = 8, distance: int = 1, window: int = 15
) -> tuple[np.ndarray, list[str]]:
    """N×5 windowed GLCM statistics, averaged over horizontal and vertical offsets."""
    q = quantise(grey, levels)
    horizontal = glcm_offset_features(q, shifted(q, 0, distance), levels, window)
    vertical = glcm_offset_features(q, shifted(q, distance, 0), levels, window)
    mean = (horizontal + vertical) / 2.0
    return mean.reshape(-1, len(GLCM_NAMES)).astype(np.float32), list(GLCM_NAMES)
