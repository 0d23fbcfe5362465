"""Reading human segmentations (ground truth) to score a segmentation against.

``scipy.io.loadmat`` decodes the Berkeley (BSDS300/500) ``.mat`` files and OpenCV decodes
plain label-map PNGs; this module only finds the files, checks what came out and turns every
problem into a one-line :class:`~segclust.errors.ImageInputError` that names the file.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

# Same as segclust.imageio: OpenCV reads this once, at import, whichever module imports it first.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(2**31 - 1))

import cv2
import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from segclust.errors import ImageInputError, TrainingDataError


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _as_labels(path: Path, what: str, labels: object) -> np.ndarray:
    """A 2-D integer label map as int32, or a clear error: MATLAB users often save doubles."""
    arr = np.asarray(labels)
    if arr.ndim != 2 or min(arr.shape) == 0:
        raise ImageInputError(f"{path}: {what} is not a 2-D label map (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise ImageInputError(f"{path}: {what} holds non-integer labels")
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ImageInputError(f"{path}: {what} has non-numeric type {arr.dtype}")
    if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
        raise ImageInputError(f"{path}: {what} has labels outside the int32 range")
    return arr.astype(np.int32)


def read_bsds_mat(path: str | Path) -> list[np.ndarray]:
    """Every annotator's label map from a BSDS ``groundTruth/<id>.mat`` file.

    The file holds a 1×K struct array ``groundTruth``; ``[0, k]["Segmentation"][0, 0]`` is
    annotator k's uint16 label map (labels start at 1).

    Returns
    -------
    list of numpy.ndarray
        K int32 arrays of shape H×W, in the file's order.

    Raises
    ------
    ImageInputError
        If the file cannot be read, is not a MATLAB v5 file, lacks ``groundTruth`` or holds
        no usable annotation.
    """
    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path), appendmat=False)
    except FileNotFoundError as exc:
        raise ImageInputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise ImageInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (MatReadError, ValueError, TypeError, NotImplementedError) as exc:
        # NotImplementedError: MATLAB v7.3 (HDF5) files, which loadmat does not read
        raise ImageInputError(f"{path}: not a readable .mat file ({_one_line(exc)})") from exc
    if "groundTruth" not in mat:
        keys = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise ImageInputError(f"{path}: no 'groundTruth' variable (variables: {keys})")
    entries = np.asarray(mat["groundTruth"])
    if entries.size == 0:
        raise ImageInputError(f"{path}: 'groundTruth' holds no annotations")
    labels: list[np.ndarray] = []
    for k, entry in enumerate(entries.ravel()):
        names = getattr(getattr(entry, "dtype", None), "names", None) or ()
        if "Segmentation" not in names:
            raise ImageInputError(f"{path}: groundTruth entry {k} has no 'Segmentation' field")
        seg = np.asarray(entry["Segmentation"])
        if seg.dtype == object:  # the usual 1×1 cell around the array
            if seg.size != 1:
                raise ImageInputError(f"{path}: groundTruth entry {k} 'Segmentation' is empty")
            seg = seg.ravel()[0]
        labels.append(_as_labels(path, f"annotation {k}", seg))
    shapes = {a.shape for a in labels}
    if len(shapes) > 1:
        raise ImageInputError(f"{path}: annotations differ in shape ({sorted(shapes)})")
    return labels


def read_label_png(path: str | Path) -> np.ndarray:
    """A single-channel 8- or 16-bit PNG whose pixel values are region labels, as int32.

    Colour images are refused: a rendered (false-colour) segmentation is not a label map and
    converting it to grey could merge distinct regions.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageInputError(f"{path}: not an image file OpenCV can read")
    if image.ndim != 2:
        channels = image.shape[2] if image.ndim == 3 else image.ndim
        raise ImageInputError(
            f"{path}: label maps must be single-channel (grey) images, this one has "
            f"{channels} channels; save region labels as an 8- or 16-bit grey PNG"
        )
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageInputError(f"{path}: label maps must be 8- or 16-bit, not {image.dtype}")
    return image.astype(np.int32)


def ground_truth_files(root: str | Path, stem: str) -> list[Path]:
    """The files holding image ``stem``'s human segmentations under ``root`` ([] if none),
    found without reading them.

    ``root/<stem>.mat`` (BSDS format, all annotators) wins; otherwise ``root/<stem>.png`` and
    ``root/<stem>_*.png`` (one annotator each, in sorted name order).
    """
    root = Path(root)
    mat = root / f"{stem}.mat"
    if mat.is_file():
        return [mat]
    pngs: list[Path] = []
    single = root / f"{stem}.png"
    if single.is_file():
        pngs.append(single)
    pattern = os.path.join(glob.escape(str(root)), f"{glob.escape(stem)}_*.png")
    pngs.extend(sorted(Path(p) for p in glob.glob(pattern) if os.path.isfile(p)))
    return pngs


def find_ground_truth(root: str | Path, stem: str) -> list[np.ndarray]:
    """The human segmentations of image ``stem`` under ``root``, or [] when there are none
    (the files of :func:`ground_truth_files`, read)."""
    return read_ground_truth(ground_truth_files(root, stem))


def _first(names: list[str], n: int = 3) -> str:
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def training_pairs(
    images: str | Path, truth: str | Path, extensions: tuple[str, ...]
) -> list[tuple[str, Path, list[Path]]]:
    """(stem, photo, ground-truth files) of every photo in ``images``, sorted by stem, for
    training on human boundaries; the folders must pair up exactly.

    A :class:`~segclust.errors.TrainingDataError` (one line) when a folder is missing, when no
    photo has ground truth, when some photos have none, or when some ground-truth files
    (``.mat`` / ``.png``) belong to no photo; the first unmatched stems are named.
    """
    from segclust.imageio import list_images

    images, truth = Path(images), Path(truth)
    for what, folder in (("images", images), ("ground_truth", truth)):
        if not folder.is_dir():
            raise TrainingDataError(
                f"boundaries.train.{what}: {folder} is not a folder (the BSDS500 train split, "
                "images/ and groundTruth/, or your own photos and label maps)"
            )
    try:
        photos = list_images(images, None, extensions)
    except ImageInputError as exc:
        raise TrainingDataError(f"boundaries.train.images: {exc}") from exc
    pairs = [(p.stem, p, ground_truth_files(truth, p.stem)) for p in photos]
    if not any(files for _, _, files in pairs):
        raise TrainingDataError(
            f"{truth}: no ground truth for any of the {len(pairs)} photos in {images} "
            "(expected <stem>.mat, or <stem>.png / <stem>_<k>.png label maps)"
        )
    lonely = [stem for stem, _, files in pairs if not files]
    if lonely:
        raise TrainingDataError(
            f"{truth}: no ground truth for {len(lonely)} of the photos in {images}: "
            f"{_first(lonely)}"
        )
    claimed = {f.resolve() for _, _, files in pairs for f in files}
    orphans = sorted(
        p.stem
        for p in truth.iterdir()
        if p.is_file() and p.suffix.lower() in (".mat", ".png") and p.resolve() not in claimed
    )
    if orphans:
        raise TrainingDataError(
            f"{truth}: {len(orphans)} ground-truth file(s) match no photo in {images}: "
            f"{_first(orphans)}"
        )
    return pairs


def read_ground_truth(files: list[Path]) -> list[np.ndarray]:
    """The annotations held by ``files`` (from :func:`ground_truth_files`)."""
    if files and files[0].suffix == ".mat":
        return read_bsds_mat(files[0])
    return [read_label_png(p) for p in files]
