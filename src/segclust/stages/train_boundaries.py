"""Stage ``train_boundaries``: a boundary model trained on human boundaries.

``python -m segclust.stages.train_boundaries <name>`` trains ``boundaries.models.<name>``
(:mod:`segclust.boundary_model`; ``dvc.yaml`` runs one stage per model, ``foreach``) on the
photos of ``boundaries.train.images`` and the human segmentations beside them in
``boundaries.train.ground_truth`` (the BSDS500 train split by default). Nothing else is
read: the split that is scored never reaches training or the choice of its settings.

1. Textons: the texton filter responses of ``texton_pixels`` seeded pixels of every photo,
   pooled, clustered by KMeans into ``cues.textons`` centres.
2. Rows: every photo's cues (:func:`segclust.boundary_cues.cue_stack`) at the working
   resolution (``boundaries.max_pixels``), and ``pixels_per_image`` seeded pixels, half on
   an annotator's boundary (weighted by consensus), half far from every boundary.
3. The classifier, fitted on all rows (one thread).

Photos run on the stage's workers (``execution``); every seed comes from ``seed`` and the
photo's name, results are gathered in name order, so the model's bytes are the same for 1 or
N workers and on every run. Outputs: ``models/boundaries_<name>.npz`` (kept in Git, versioned
by DVC: a fresh clone has the trained model without the data) and
``metrics/train_boundaries_<name>.json``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from segclust.boundaries import human_boundaries
from segclust.boundary_cues import cnn_cues, cue_stack, lab_unit
from segclust.boundary_model import (
    BoundariesConfig,
    BoundaryModel,
    ModelSpec,
    file_digest,
    fit_classifier,
    learn_textons,
    model_bytes,
    per_image_seed,
    sample_training_pixels,
    texton_rows,
)
from segclust.errors import ConfigError, TrainingDataError
from segclust.execution import ExecutionConfig
from segclust.groundtruth import read_ground_truth, training_pairs
from segclust.imageio import IMAGE_EXTENSIONS, read_image
from segclust.parallel import map_images
from segclust.params import integer
from segclust.pixels import colour_channels, shrink_to, to_float01
from segclust.stages._base import METRICS_DIR, run_stage, write_atomic, write_json

log = logging.getLogger("segclust")

Pair = tuple[str, Path, list[Path]]


@dataclass(frozen=True)
class TrainSettings:
    """What the stage reads of ``params.yaml``: the seed, the ``boundaries`` section, how to
    run, and which model (the command line's name, else ``boundaries.model``)."""

    seed: int
    boundaries: BoundariesConfig
    execution: ExecutionConfig
    name: str

    @classmethod
    def load(cls, path: Path, name: str | None = None) -> TrainSettings:
        """From a ``params.yaml``."""
        try:
            params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: not found (run from the project root)") from exc
        return cls.load_dict(params, name)

    @classmethod
    def load_dict(cls, params: dict[str, Any], name: str | None = None) -> TrainSettings:
        """From the composed parameters."""
        boundaries = BoundariesConfig.from_dict(params.get("boundaries") or {})
        name = name or boundaries.model
        if name not in boundaries.models:
            raise ConfigError(
                f"train_boundaries: no model {name!r} in boundaries.models "
                f"({', '.join(boundaries.models)})"
            )
        return cls(
            seed=integer(params.get("seed", 0), "seed", 0),
            boundaries=boundaries,
            execution=ExecutionConfig.from_dict(params.get("execution") or {}),
            name=name,
        )


def read_photo(path: Path, max_pixels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A photo as BGR (or grey) float32 in [0, 1] at the working resolution
    (:func:`segclust.pixels.shrink_to`), and its own (height, width)."""
    pixels = colour_channels(read_image(path))
    return to_float01(shrink_to(pixels, max_pixels)), pixels.shape[:2]


def read_annotations(pair: Pair, shape: tuple[int, int], full: tuple[int, int]) -> list:
    """The photo's annotations at the working shape (nearest label), checked against its size."""
    _, photo, files = pair
    annotations = read_ground_truth(files)
    if annotations[0].shape != full:
        raise TrainingDataError(
            f"{files[0]}: ground truth is {annotations[0].shape[1]}x{annotations[0].shape[0]}, "
            f"the photo {photo} is {full[1]}x{full[0]}"
        )
    if shape == full:
        return annotations
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * full[0] / shape[0]).astype(int), full[0] - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * full[1] / shape[1]).astype(int), full[1] - 1)
    return [a[rows][:, cols] for a in annotations]


def image_texton_rows(pair: Pair, *, count: int, seed: int, max_pixels: int) -> np.ndarray:
    """One photo's seeded texton filter responses (step 1)."""
    stem, photo_path, _ = pair
    photo, _ = read_photo(photo_path, max_pixels)
    return texton_rows(lab_unit(photo)[:, :, 0], count, per_image_seed(seed, f"textons:{stem}"))


def image_training_rows(
    pair: Pair,
    *,
    spec: ModelSpec,
    textons: np.ndarray,
    train: dict[str, Any],
    seed: int,
    max_pixels: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One photo's cues and sampled training pixels (step 2): rows, labels, weights."""
    stem, photo_path, _ = pair
    photo, full = read_photo(photo_path, max_pixels)
    humans = human_boundaries(read_annotations(pair, photo.shape[:2], full))
    stages = spec.cues.cnn_stages
    cnn = cnn_cues(photo, stages, _device(train["device"])) if stages else None
    cues = cue_stack(photo, spec.cues, textons, cnn)
    return sample_training_pixels(
        cues,
        humans,
        count=train["pixels_per_image"],
        negative_distance=train["negative_distance"],
        seed=per_image_seed(seed, stem),
    )


def _device(device: str) -> str:
    from segclust.learned import resolve_device

    return resolve_device(device, "boundaries.train")


def train_model(settings: TrainSettings, pairs: list[Pair]) -> BoundaryModel:
    """Steps 1-3 over ``pairs`` on the stage's workers."""
    config, seed = settings.boundaries, settings.seed
    spec, train = config.models[settings.name], dict(config.train)
    textons = np.zeros((0, 10), np.float32)
    if spec.cues.textons:
        rows = list(
            map_images(
                partial(
                    image_texton_rows,
                    count=train["texton_pixels"],
                    seed=seed,
                    max_pixels=config.max_pixels,
                ),
                pairs,
                execution=settings.execution,
                desc="textons",
            )
        )
        textons = learn_textons(np.concatenate(rows), spec.cues.textons, seed)
    parts = list(
        map_images(
            partial(
                image_training_rows,
                spec=spec,
                textons=textons,
                train=train,
                seed=seed,
                max_pixels=config.max_pixels,
            ),
            pairs,
            execution=settings.execution,
            desc="training pixels",
        )
    )
    rows = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    weights = np.concatenate([p[2] for p in parts])
    log.info(
        "%d rows of %d cues from %d photos (%d on boundaries); fitting %s",
        len(rows), rows.shape[1], len(pairs), int(labels.sum()), spec.classifier,
    )  # fmt: skip
    estimator = fit_classifier(spec, rows, labels, weights, seed)
    training = {
        "images": len(pairs),
        "rows": len(rows),
        "positives": int(labels.sum()),
        "seed": seed,
        "max_pixels": config.max_pixels,
        **{k: train[k] for k in ("pixels_per_image", "texton_pixels", "negative_distance")},
    }
    return BoundaryModel(spec, textons, estimator, training)


def main(settings: TrainSettings) -> None:
    config = settings.boundaries
    train = config.train
    pairs = training_pairs(train["images"], train["ground_truth"], IMAGE_EXTENSIONS)
    log.info("training %s on %d photos of %s", settings.name, len(pairs), train["images"])
    model = train_model(settings, pairs)
    path = config.model_path(settings.name)
    write_atomic(path, model_bytes(model))
    estimator = model.estimator[-1]
    summary = {
        "model": settings.name,
        "file": str(path),
        "sha256": file_digest(path),
        "classifier": model.spec.classifier,
        "cues": int(model.estimator[0].n_features_in_),
        **model.training,
    }
    if hasattr(estimator, "loss_curve_"):
        summary["final_loss"] = round(float(estimator.loss_curve_[-1]), 6)
    write_json(METRICS_DIR / f"train_boundaries_{settings.name}.json", summary)
    log.info("wrote %s (sha256 %s)", path, summary["sha256"][:12])


if __name__ == "__main__":
    chosen = sys.argv[1] if len(sys.argv) > 1 else None
    run_stage("train_boundaries", main, partial(TrainSettings.load, name=chosen))
