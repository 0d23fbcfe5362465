"""Finding and decoding input images safely.

Pillow reads the header first (format, size) so that an image whose header claims billions
of pixels is refused before anything is decoded, and so that a truncated JPEG is caught
(OpenCV only warns and returns a half-grey picture). OpenCV then decodes, because it keeps
16-bit depth and every channel layout (grey, BGR, BGRA) as they are.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

# OpenCV reads this once, at import: keep its own decoder limit above ours, which is checked
# against the header before OpenCV sees the bytes.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(2**31 - 1))

import cv2
from PIL import Image, UnidentifiedImageError

from segclust.errors import ImageInputError

MIN_SIDE = 2
# the file types read by default (data.extensions, the training folder of boundary models)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def safe_join(root: Path, name: str) -> Path:
    """Join ``name`` to ``root`` and refuse any name that would escape ``root``.

    Symbolic links are not resolved on purpose: a DVC-tracked folder may hold links into
    the DVC cache, which lives outside the folder and is legitimate.
    """
    if not name or os.path.isabs(name) or "\x00" in name:
        raise ImageInputError(f"data.images entry {name!r} must be a relative file name")
    joined = os.path.normpath(os.path.join(root, name))
    base = os.path.normpath(root)
    if os.path.commonpath([base, joined]) != base or joined == base:
        raise ImageInputError(f"data.images entry {name!r} escapes the data folder {root}")
    return Path(joined)


def list_images(
    root: str | Path, names: Iterable[str] | None, extensions: Iterable[str]
) -> list[Path]:
    """The images to process, sorted, with names that are unique as output stems."""
    root = Path(root)
    if not root.is_dir():
        raise ImageInputError(f"data.root {root} is not a folder")
    if names is None:
        exts = {e.lower() for e in extensions}
        paths = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in exts)
        if not paths:
            raise ImageInputError(f"no images in {root} (looked for {', '.join(sorted(exts))})")
    else:
        paths = [safe_join(root, name) for name in names]
        if not paths:
            raise ImageInputError("data.images is an empty list")
        for path in paths:
            if not path.is_file():
                raise ImageInputError(f"{path}: no such file")
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise ImageInputError(
                f"{path} and {stems[path.stem]} share the name {path.stem!r}; "
                "outputs are named by it, so rename one"
            )
        stems[path.stem] = path
    return paths


def read_image(path: str | Path, *, max_pixels: int = 100_000_000) -> np.ndarray:
    """Decode an image file as OpenCV does (BGR/BGRA/grey, 8 or 16 bit), after checks.

    Raises :class:`ImageInputError` with the file name for anything that is not a whole,
    reasonably sized image.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise ImageInputError(f"{path}: empty file")
    width, height, fmt = _check_header(path, data, max_pixels)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageInputError(f"{path}: OpenCV cannot decode this {fmt} file")
    if image.shape[:2] != (height, width):
        raise ImageInputError(
            f"{path}: decoded size {image.shape[1]}x{image.shape[0]} differs from the "
            f"header's {width}x{height}"
        )
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageInputError(f"{path}: unsupported pixel type {image.dtype}")
    return image


def _check_header(path: Path, data: bytes, max_pixels: int) -> tuple[int, int, str]:
    # Pillow's own bomb guard would refuse with its limit and no size; ours applies instead,
    # from the header alone, so it is switched off while the header is read.
    pillow_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            fmt = im.format or "image"
            if width * height > max_pixels:
                raise ImageInputError(
                    f"{path}: header says {width}x{height} = {width * height:,} pixels, "
                    f"above data.max_pixels = {max_pixels:,}; refusing to decode"
                )
            if min(width, height) < MIN_SIDE:
                raise ImageInputError(
                    f"{path}: image is {width}x{height}; at least "
                    f"{MIN_SIDE}x{MIN_SIDE} pixels are needed to cluster"
                )
            if fmt in ("JPEG", "MPO"):
                im.load()  # raises on a truncated or corrupt stream
    except ImageInputError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageInputError(f"{path}: not an image file Pillow or OpenCV can read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"{path}: truncated or corrupt image ({exc})") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    return width, height, fmt
