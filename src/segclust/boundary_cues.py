"""Boundary cues: per-pixel evidence that an object boundary passes, for the learned model.

The cues of Pb and gPb (Martin et al. 2004; Arbeláez et al. 2011): at every pixel, how
different the histograms of L*, a*, b* and of *textons* are on the two halves of a disc cut
by a line through the pixel, at several orientations and radii. Here the two halves are
weighted by a Gaussian derivative, ``(n·x) G_σ(x)`` (positive on one half, negative on the
other), instead of a flat disc. That weighting is *steerable*: the difference of the two
halves' histograms at any orientation θ is ``cos θ · Dx + sin θ · Dy`` of one pair of
derivative-filtered bin images, so the χ² distance ``Σ_b (g_b − h_b)² / (g_b + h_b)`` is a
quadratic form in (cos θ, sin θ). Its maximum and minimum over every orientation are the two
eigenvalues of a 2×2 tensor per pixel: all orientations cost as much as one. Radii come from
an image pyramid (2×2 means; σ = ``sigma`` pixels at each level, so radius ≈ 2^k · σ).

Per pixel (:func:`cue_stack`, names from :meth:`CueSpec.names`):

* for L*, a*, b* (``colour_bins`` soft bins each) and textons (``textons`` hard bins, a
  dictionary learned on the training split, :func:`texton_responses`), at ``scales`` pyramid
  levels: √ of the largest and of the smallest χ² over orientations;
* the L*a*b* gradient magnitude at σ = 1 and 3 pixels (Sobel of a Gaussian blur);
* L*, a*, b* themselves;
* optionally (``cnn``, the ``deep`` extra) the frozen EfficientNet-Lite0 stage outputs of
  :mod:`segclust.learned`, upsampled (bilinear) to the photo.

OpenCV does the filtering (``cvtColor``, ``GaussianBlur``, ``Sobel``, ``resize``), NumPy the
binning and the tensors. Arrays in, arrays out: BGR (or grey) photos in [0, 1], float32
H×W×F cues.

>>> photo = np.zeros((32, 32, 3), np.float32)
>>> photo[:, 16:] = 1.0                          # black | white
>>> spec = CueSpec(colour_bins=4, textons=0, scales=1)
>>> cues = cue_stack(photo, spec)
>>> cues.shape == (32, 32, len(spec.names()))
True
>>> strongest = cues[:, :, spec.names().index("L_s0_max")]
>>> int(np.argmax(strongest[16]))                # on the step, between columns 15 and 16
15
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from segclust.params import NameList, Param, validate_params

# the filter bank textons are made of: Gaussian first and second derivatives of L* at two
# scales (x, y, xx, yy, xy at σ = 1 and 2 pixels), scale-normalised
TEXTON_SCALES = (1.0, 2.0)
TEXTON_FILTERS = 5 * len(TEXTON_SCALES)
GRADIENT_SCALES = (1.0, 3.0)
CHANNELS = ("L", "a", "b")
_EPS = np.float32(1e-3)  # keeps empty bins out of the χ² denominators

CUE_PARAMS: Mapping[str, Param] = {
    "colour_bins": Param(int, 12, low=2, high=64, doc="soft histogram bins per L*, a*, b*"),
    "textons": Param(int, 32, low=0, high=256, doc="texton dictionary size (0: no texture)"),
    "scales": Param(int, 4, low=1, high=6, doc="pyramid levels: radii sigma, 2 sigma, ..."),
    "sigma": Param(float, 2.0, low=0.5, high=8.0, doc="half-disc Gaussian scale, pixels"),
    "cnn": NameList(
        str, "", allowed=tuple("1234567"), empty_ok=True, doc="EfficientNet-Lite0 stages 1-7"
    ),
}


@dataclass(frozen=True)
class CueSpec:
    """Which cues a boundary model reads; stored in the model file, so that a model is only
    ever applied to the cues it was trained on."""

    colour_bins: int = 12
    textons: int = 32
    scales: int = 4
    sigma: float = 2.0
    cnn: str = ""  # "+"-joined EfficientNet-Lite0 stages, "" for none

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], key: str = "boundaries.cues") -> CueSpec:
        return cls(**validate_params(CUE_PARAMS, d, key))

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CUE_PARAMS}

    @property
    def cnn_stages(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.cnn.split("+")) if self.cnn else ()

    def names(self, cnn_channels: int | None = None) -> list[str]:
        """The column names of :func:`cue_stack`, in order (CNN columns as ``cnn_<i>``)."""
        groups = [*CHANNELS, *(["texton"] if self.textons else [])]
        names = [
            f"{g}_s{k}_{m}" for g in groups for k in range(self.scales) for m in ("max", "min")
        ]
        names += [f"{c}_gradient_{s:g}" for c in CHANNELS for s in GRADIENT_SCALES]
        names += list(CHANNELS)
        if self.cnn_stages:
            from segclust.learned import LITE0_STAGES

            width = cnn_channels or sum(LITE0_STAGES[s - 1][0] for s in self.cnn_stages)
            names += [f"cnn_{i}" for i in range(width)]
        return names


def lab_unit(photo: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (OpenCV, D65) of a BGR or grey photo in [0, 1], each channel mapped to
    [0, 1] (L*/100, (a* + 100)/200, (b* + 100)/200): H×W×3 float32."""
    import cv2

    bgr = np.asarray(photo, dtype=np.float32)
    if bgr.ndim == 2:
        bgr = np.repeat(bgr[:, :, None], 3, axis=2)
    lab = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2Lab)
    lab *= np.array([1 / 100, 1 / 200, 1 / 200], np.float32)
    lab += np.array([0, 0.5, 0.5], np.float32)
    return np.clip(lab, 0.0, 1.0, out=lab)


def soft_histogram(channel: np.ndarray, bins: int) -> np.ndarray:
    """Each pixel's value in [0, 1] shared between its two nearest of ``bins`` bin centres
    (linear weights summing to 1): H×W×bins float32."""
    position = np.clip(np.asarray(channel, np.float32) * bins - 0.5, 0, bins - 1).ravel()
    low = position.astype(np.int32)  # floor, as position >= 0
    upper = (position - low).astype(np.float32)
    out = np.zeros((position.size, bins + 1), np.float32)
    rows = np.arange(position.size)
    out[rows, low] = 1 - upper
    out[rows, low + 1] += upper
    out[:, bins - 1] += out[:, bins]  # the top bin's overflow (its weight is 0 there)
    return out[:, :bins].reshape(*np.shape(channel), bins)


def one_hot(codes: np.ndarray, bins: int) -> np.ndarray:
    """Integer codes in [0, bins) as H×W×bins float32 indicator images."""
    flat = np.asarray(codes).ravel()
    out = np.zeros((flat.size, bins), np.float32)
    out[np.arange(flat.size), flat] = 1
    return out.reshape(*np.shape(codes), bins)


def texton_responses(lightness: np.ndarray) -> np.ndarray:
    """The texton filter bank on L* (H×W in [0, 1]): H×W×10 float32 (see TEXTON_SCALES)."""
    import cv2

    out = []
    for sigma in TEXTON_SCALES:
        blurred = cv2.GaussianBlur(lightness, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        for dx, dy, power in ((1, 0, 1), (0, 1, 1), (2, 0, 2), (0, 2, 2), (1, 1, 2)):
            response = cv2.Sobel(
                blurred, cv2.CV_32F, dx, dy, ksize=3, borderType=cv2.BORDER_REFLECT
            )
            out.append(response * np.float32(sigma**power))
    return np.stack(out, axis=2)


def nearest_texton(responses: np.ndarray, textons: np.ndarray) -> np.ndarray:
    """Index of the nearest texton (rows of ``textons``, k×10) of every pixel: H×W int32."""
    flat = responses.reshape(-1, responses.shape[-1])
    centres = np.asarray(textons, np.float32)
    distance = flat @ (-2 * centres.T) + (centres * centres).sum(axis=1)
    return distance.argmin(axis=1).astype(np.int32).reshape(responses.shape[:2])


def half_disc_tensor(stack: np.ndarray, sigma: float) -> tuple[np.ndarray, ...]:
    """χ² between the two Gaussian-derivative half discs, as a quadratic form per pixel.

    ``stack`` is H×W×B bin images (histograms per pixel). Returns (Axx, Axy, Ayy), each H×W,
    such that χ²(θ) = Axx cos²θ + 2 Axy cos θ sin θ + Ayy sin²θ for the line at normal θ.
    """
    import cv2

    border = cv2.BORDER_REFLECT
    total = cv2.GaussianBlur(stack, (0, 0), sigma, borderType=border).reshape(stack.shape)
    scale = np.float32(sigma / 4)
    dx = cv2.Sobel(total, cv2.CV_32F, 1, 0, ksize=3, borderType=border).reshape(stack.shape)
    dy = cv2.Sobel(total, cv2.CV_32F, 0, 1, ksize=3, borderType=border).reshape(stack.shape)
    dx *= scale
    dy *= scale
    inverse = 1 / (total + _EPS)
    weighted_x = dx * inverse
    return (
        np.einsum("ijk,ijk->ij", weighted_x, dx),
        np.einsum("ijk,ijk->ij", weighted_x, dy),
        np.einsum("ijk,ijk->ij", dy * inverse, dy),
    )


def tensor_extremes(axx: np.ndarray, axy: np.ndarray, ayy: np.ndarray) -> tuple[np.ndarray, ...]:
    """√ of the largest and smallest eigenvalue of [[Axx, Axy], [Axy, Ayy]] per pixel: the
    strongest and weakest half-disc difference over every orientation."""
    mean = (axx + ayy) / 2
    radius = np.sqrt(((axx - ayy) / 2) ** 2 + axy * axy)
    return np.sqrt(np.maximum(mean + radius, 0)), np.sqrt(np.maximum(mean - radius, 0))


def _halve(stack: np.ndarray) -> np.ndarray:
    """2×2 means (the last row or column repeated when a side is odd)."""
    h, w = stack.shape[:2]
    if h % 2 or w % 2:
        stack = np.pad(stack, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    h, w = stack.shape[:2]
    return stack.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3), dtype=np.float32)


def _upsample(plane: np.ndarray, level: int, shape: tuple[int, int]) -> np.ndarray:
    """A level-``level`` pyramid plane back to the photo's H×W (bilinear, cell centres)."""
    import cv2

    if level == 0:
        return plane
    factor = 2**level
    size = (plane.shape[1] * factor, plane.shape[0] * factor)
    return cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR)[: shape[0], : shape[1]]


def histogram_gradients(stack: np.ndarray, scales: int, sigma: float) -> list[np.ndarray]:
    """The strongest and weakest half-disc χ² of bin images ``stack`` (H×W×B) at ``scales``
    pyramid levels: 2 × scales H×W float32 planes, level by level (max, min)."""
    shape = stack.shape[:2]
    out = []
    level_stack = np.ascontiguousarray(stack, dtype=np.float32)
    for level in range(scales):
        if level:
            level_stack = _halve(level_stack)
        tensor = [_upsample(t, level, shape) for t in half_disc_tensor(level_stack, sigma)]
        out += list(tensor_extremes(*tensor))
    return out


def colour_gradients(lab: np.ndarray) -> list[np.ndarray]:
    """σ × the gradient magnitude of each L*a*b* channel at σ in GRADIENT_SCALES."""
    import cv2

    out = []
    for c in range(lab.shape[2]):
        for sigma in GRADIENT_SCALES:
            blurred = cv2.GaussianBlur(lab[:, :, c], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
            gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
            out.append(np.sqrt(gx * gx + gy * gy) * np.float32(sigma / 8))
    return out


def cue_stack(
    photo: np.ndarray,
    spec: CueSpec,
    textons: np.ndarray | None = None,
    cnn: np.ndarray | None = None,
) -> np.ndarray:
    """Every cue of ``spec`` for a BGR (or grey) photo in [0, 1]: H×W×F float32.

    Parameters
    ----------
    photo : numpy.ndarray
        H×W×3 BGR or H×W grey, float in [0, 1].
    spec : CueSpec
        Which cues (their order is :meth:`CueSpec.names`).
    textons : numpy.ndarray, optional
        The texton dictionary (``spec.textons`` × 10), required when ``spec.textons`` > 0.
    cnn : numpy.ndarray, optional
        H×W×C CNN columns (:func:`cnn_cues`), required when ``spec.cnn`` names stages.

    Returns
    -------
    numpy.ndarray
        H×W×F float32, F = ``len(spec.names())``.
    """
    lab = lab_unit(photo)
    stacks = [soft_histogram(lab[:, :, c], spec.colour_bins) for c in range(3)]
    if spec.textons:
        if textons is None or len(textons) != spec.textons:
            raise ValueError(f"the cues need a dictionary of {spec.textons} textons")
        codes = nearest_texton(texton_responses(lab[:, :, 0]), textons)
        stacks.append(one_hot(codes, spec.textons))
    planes: list[np.ndarray] = []
    for stack in stacks:
        planes += histogram_gradients(stack, spec.scales, spec.sigma)
    planes += colour_gradients(lab)
    planes += [lab[:, :, c] for c in range(3)]
    cues = np.stack(planes, axis=2)
    if spec.cnn_stages:
        if cnn is None:
            raise ValueError(f"the cues need the CNN stages {spec.cnn}")
        cues = np.concatenate([cues, cnn], axis=2)
    return np.ascontiguousarray(cues, dtype=np.float32)


def cnn_cues(photo: np.ndarray, stages: tuple[int, ...], device: str = "cpu") -> np.ndarray:
    """EfficientNet-Lite0's outputs of ``stages`` (frozen ImageNet weights, the ``deep``
    extra), each upsampled (bilinear) to the photo: H×W×C float32.

    The photo is mirrored to a multiple of the deepest stride and run whole, one thread,
    inside :func:`segclust.learned.deterministic_torch`.
    """
    import cv2

    from segclust.learned import _resize, deterministic_torch, pretrained_extractor, stage_maps

    pixels = np.asarray(photo, np.float32)
    rgb = np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels[:, :, ::-1]
    height, width = rgb.shape[:2]
    extractor, strides = pretrained_extractor(device)
    step = max(strides[s - 1] for s in stages)
    padded_h, padded_w = -(-height // step) * step, -(-width // step) * step
    rgb = np.pad(rgb, ((0, padded_h - height), (0, padded_w - width), (0, 0)), mode="symmetric")
    with deterministic_torch(0, device):
        maps = stage_maps(rgb, extractor, strides, stages, tile=0, halo=0, device=device)
    upsampled = [_resize(m, padded_w, padded_h, cv2.INTER_LINEAR)[:height, :width] for m in maps]
    return np.ascontiguousarray(np.concatenate(upsampled, axis=2), dtype=np.float32)
