"""The feature blocks: one registry entry each, read by config validation and features.

A :class:`Block` entry holds its parameter specs (:mod:`segclust.params`), whether it needs
the photo's colour (else it gets the grey image only), and the column builder that turns the
pixels into N×c float32 columns with their names. :mod:`segclust.features` concatenates the
blocks a feature set lists, scales and weights them; :mod:`segclust.config` validates
``features.blocks`` from the same entries. Adding a block is one entry here (its builder may
live in its own module, as colour and texture do) plus a preset in ``conf/features/``.

OpenCV does the pixel work (Gaussian blur, Sobel), :mod:`segclust.colour` the colour spaces,
:mod:`segclust.texture` LBP (scikit-image) and windowed GLCM statistics,
:mod:`segclust.learned` the learned blocks (``cnn``, ``autoencoder``: PyTorch, the optional
``deep`` extra; ``pca``: scikit-learn).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from segclust.colour import colour_columns
from segclust.errors import ConfigError
from segclust.params import NameList, Param, choice
from segclust.texture import glcm_features, lbp_histogram

# (grey H×W in [0, 1], pixels H×W×3 BGR in [0, 1] or grey, params) -> (N×c columns, names)
ColumnBuilder = Callable[[np.ndarray, np.ndarray, Mapping[str, Any]], tuple[np.ndarray, list[str]]]
# (every image's (grey, pixels), how many, params) -> a fitted state the builder then receives
# as params["fitted"]: a block trained on the dataset's pixels rather than each image's own
DatasetFit = Callable[[Iterable[tuple[np.ndarray, np.ndarray]], int, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Block:
    """One block of feature columns (see the module docstring)."""

    name: str
    params: Mapping[str, Param]
    columns: ColumnBuilder
    colour: bool = False  # needs the colour pixels, not only grey
    summary: str = ""
    dataset_fit: DatasetFit | None = None  # used when its params say ``train_on: dataset``

    def fits_dataset(self, params: Mapping[str, Any]) -> bool:
        """Whether these params ask for one fit on the whole dataset (:attr:`dataset_fit`)."""
        return self.dataset_fit is not None and params.get("train_on") == "dataset"


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


# Blocks a compressing block (autoencoder, pca) may stack: the hand-made ones
COMPRESSIBLE = ("intensity", "xy", "sobel", "rgb", "hsv", "lab", "lbp", "glcm")
STAGES = tuple(str(stage) for stage in range(1, 8))


def _inputs() -> Param:
    return NameList(str, "lab+lbp+glcm", allowed=COMPRESSIBLE, doc="blocks stacked")


def _device() -> Param:
    return Param(
        str, "auto", choices=("auto", "cpu", "cuda"), doc="torch device (auto: CUDA if present)"
    )


def _stacked_inputs(grey: np.ndarray, pixels: np.ndarray, p: Mapping[str, Any]) -> np.ndarray:
    """The ``inputs`` blocks (default params) stacked and standard-scaled, one scale a block."""
    from segclust.config import ScalerConfig
    from segclust.scaling import scale_columns

    columns, spans = [], []
    for name in p["inputs"].split("+"):
        entry = BLOCKS[name]
        defaults = {key: spec.default for key, spec in entry.params.items()}
        values, names = entry.columns(grey, pixels, defaults)
        start = sum(c.shape[1] for c in columns)
        spans.append(slice(start, start + len(names)))
        columns.append(values)
    raw = np.concatenate(columns, axis=1).astype(np.float32, copy=False)
    return scale_columns(raw, ScalerConfig("standard", scope="block"), spans)


def _pca(grey: np.ndarray, pixels: np.ndarray, p: Mapping[str, Any]) -> tuple:
    from segclust.learned import pca_columns

    stacked = _stacked_inputs(grey, pixels, p)
    key = "features.blocks.pca"
    values = pca_columns(stacked, p["dims"], sample=p["sample"], seed=p["seed"], key=key)
    return values, [f"pca_{i + 1}" for i in range(values.shape[1])]


def _autoencoder_settings(p: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    from segclust.learned import require_torch, resolve_device

    key = "features.blocks.autoencoder"
    require_torch(key)
    device = resolve_device(p["device"], key)
    return device, {"hidden": p["hidden"], "epochs": p["epochs"], "seed": p["seed"]}


def _autoencoder(grey: np.ndarray, pixels: np.ndarray, p: Mapping[str, Any]) -> tuple:
    from segclust.learned import autoencoder_columns, encode_rows

    device, settings = _autoencoder_settings(p)
    stacked = _stacked_inputs(grey, pixels, p)
    if p["train_on"] == "dataset":
        if p.get("fitted") is None:
            raise ConfigError(
                "features.blocks.autoencoder.train_on=dataset is trained on every image of the"
                " features stage; one photo alone has no dataset (use train_on=image)"
            )
        values = encode_rows(p["fitted"], stacked, device=device)
    else:
        values, _ = autoencoder_columns(
            stacked, p["dims"], sample=p["sample"], device=device, **settings
        )
    return values, [f"ae_{i + 1}@{device}" for i in range(values.shape[1])]


def _autoencoder_dataset(
    images: Iterable[tuple[np.ndarray, np.ndarray]], count: int, p: Mapping[str, Any]
) -> Any:
    """One autoencoder trained on ``sample`` seeded pixels pooled evenly from every image."""
    from segclust.learned import pooled_rows, train_autoencoder

    device, settings = _autoencoder_settings(p)
    stacked = (_stacked_inputs(grey, pixels, p) for grey, pixels in images)
    rows = pooled_rows(stacked, count, p["sample"], p["seed"])
    return train_autoencoder(rows, p["dims"], device=device, **settings)


def _cnn(grey: np.ndarray, pixels: np.ndarray, p: Mapping[str, Any]) -> tuple:
    from segclust import learned
    from segclust.colour import as_bgr

    key = "features.blocks.cnn"
    learned.require_torch(key)
    device = learned.resolve_device(p["device"], key)
    extractor, strides = learned.pretrained_extractor(device)
    rgb = np.ascontiguousarray(as_bgr(pixels)[:, :, ::-1])
    stages = [int(stage) for stage in p["layers"].split("+")]
    with learned.deterministic_torch(p["seed"], device):
        values = learned.cnn_columns(
            rgb,
            extractor,
            strides,
            stages,
            dims=p["dims"],
            max_pixels=p["max_pixels"],
            tile=p["tile"],
            halo=p["halo"],
            seed=p["seed"],
            device=device,
        )
    return values, [f"cnn_{i + 1}@{device}" for i in range(values.shape[1])]


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
    Block(
        "pca",
        {
            "inputs": _inputs(),
            "dims": Param(int, 3, low=1, doc="principal components kept"),
            "sample": Param(int, 50_000, low=0, doc="seeded pixels PCA is fitted on (0: all)"),
            "seed": Param(int, 0, low=0, doc="seeds the pixel sample"),
        },
        _pca,
        colour=True,
        summary="scikit-learn PCA of the stacked, block-scaled inputs: the linear baseline",
    ),
    Block(
        "autoencoder",
        {
            "inputs": _inputs(),
            "dims": Param(int, 3, low=1, doc="code columns (the bottleneck)"),
            "hidden": Param(int, 32, low=1, doc="units of the hidden layers"),
            "epochs": Param(int, 30, low=1, doc="passes over the training sample"),
            "sample": Param(int, 20_000, low=0, doc="seeded pixels it is trained on (0: all)"),
            "seed": Param(int, 0, low=0, doc="seeds the weights, sample and batches"),
            "train_on": Param(
                str,
                "image",
                choices=("image", "dataset"),
                doc="pixels it is trained on: each image's own, or pooled from every image",
            ),
            "device": _device(),
        },
        _autoencoder,
        colour=True,
        summary="small torch autoencoder of the stacked, block-scaled inputs",
        dataset_fit=_autoencoder_dataset,
    ),
    Block(
        "cnn",
        {
            "layers": NameList(str, "2+4", allowed=STAGES, doc="EfficientNet-Lite0 stages 1-7"),
            "dims": Param(int, 8, low=0, doc="principal components kept (0: every channel)"),
            "max_pixels": Param(int, 160_000, low=0, doc="larger photos shrunk to it (0: never)"),
            "tile": Param(int, 512, low=0, doc="network run on tiles of this side (0: whole)"),
            "halo": Param(int, 64, low=0, doc="context pixels around each tile"),
            "seed": Param(int, 0, low=0, doc="seeds the PCA sample"),
            "device": _device(),
        },
        _cnn,
        colour=True,
        summary="pretrained EfficientNet-Lite0 stage outputs, PCA-reduced, upsampled",
    ),
)

BLOCKS: Mapping[str, Block] = {entry.name: entry for entry in _ENTRIES}


def get_block(name: Any, key: str = "features.blocks") -> Block:
    """The registry entry for ``name``, or a ConfigError listing the known ones."""
    return BLOCKS[choice(name, key, tuple(BLOCKS))]
