"""Stage ``boundaries``: every photo's learned boundary map (:mod:`segclust.boundary_model`).

The model ``boundaries.model`` (``models/boundaries_<name>.npz``, made by the
``train_boundaries`` stage) gives each pixel of the photo, at the working resolution
``boundaries.max_pixels``, the probability that people draw a boundary there; smoothed
(``boundaries.smooth``) and thinned by non-maximum suppression along the boundary's normal
(:func:`segclust.boundary_maps.thin_boundaries`). The ``hierarchy`` stage builds its
watershed and merging heights on the probability (``hierarchy.edges: learned``), and
``evaluate`` scores the thin map with the boundary benchmark.

Outputs: ``data/boundaries/<stem>.npy`` (float32 (2, h, w): [0] the smoothed probability,
[1] the thin map), ``data/boundaries/model.json`` (which model made them: name, file,
SHA-256, device), ``metrics/boundaries.json`` and ``plots/images/boundaries.csv``. The
model's digest is part of every photo's per-image cache key.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.boundary_maps import boundary_maps
from segclust.boundary_model import (
    BoundariesConfig,
    ModelSpec,
    check_spec,
    file_digest,
    load_model,
)
from segclust.config import Config
from segclust.errors import ConfigError
from segclust.imageio import read_image
from segclust.stages._common import (
    BOUNDARIES_DIR,
    METRICS_DIR,
    atomic_dir,
    feature_entries,
    map_cached,
    run_stage,
    save_npy,
    write_json,
    write_table,
    write_timings,
)
from segclust.tables import spread

log = logging.getLogger("segclust")
TABLE_FIRST = ("boundary_share", "height", "width")  # plots/images/boundaries.csv's
RETRAIN = "dvc repro train_boundaries"
MODEL_RECORD = "model.json"


def boundaries_image(
    entry: tuple[str, dict], config: Config, model_path: Path, device: str, out: Path
) -> tuple:
    """One photo's maps, written into ``out``; (stem, per-image row, seconds) back."""
    stem, sidecar = entry
    started = time.perf_counter()
    settings = BoundariesConfig.from_dict(config.boundaries)
    model = _model(str(model_path))
    photo = read_image(Path(sidecar["source"]), max_pixels=config.data.max_pixels)
    maps = boundary_maps(photo, model, settings, device)
    save_npy(out / f"{stem}.npy", maps)
    row = {
        "height": int(maps.shape[1]),
        "width": int(maps.shape[2]),
        "boundary_share": round(float(np.mean(maps[1] >= 0.5)), 6),
    }
    return stem, row, round(time.perf_counter() - started, 3)


def _inputs(entry: tuple[str, dict]) -> tuple[str, list[Path]]:
    """The photo alone (the model's digest is in the key through ``extra``)."""
    return entry[0], [Path(entry[1]["source"])]


_MODELS: dict[str, object] = {}


def _model(path: str):
    """The model at ``path``, loaded once per worker process."""
    if path not in _MODELS:
        _MODELS[path] = load_model(path, RETRAIN)
    return _MODELS[path]


@dataclass(frozen=True)
class _Trained:
    """A model file's header: all :func:`check_spec` reads (``.spec``) of a model."""

    spec: ModelSpec


def trained_spec(path: Path) -> ModelSpec:
    """What the model file at ``path`` was trained on, from its header alone (NumPy, no
    scikit-learn). Any problem with the file is :func:`load_model`'s to name, in one line.

    A worker restores the classifier on its first photo to compute and checks the file
    whole. A run whose every photo comes from the cache skips that, soundly: each photo's
    cache key holds the model file's SHA-256, the bytes of the cue code and the library
    versions, the very things :func:`load_model` checks, so a hit was made by this model
    after it passed those checks.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes().decode())
        return ModelSpec.from_dict(header["model"], "model")
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, ConfigError):
        return _model(str(path)).spec  # raises the ModelFileError that names the problem


def resolve(settings: BoundariesConfig, spec: ModelSpec) -> str:
    """Where the CNN cues run (``cpu`` without them)."""
    if not spec.cues.cnn_stages:
        return "cpu"
    from segclust.learned import resolve_device

    return resolve_device(settings.device, "boundaries")


def summary(per_image: dict[str, dict]) -> dict:
    """The fields of ``metrics/boundaries.json`` that come from the images' rows (the rest is
    the model's record; see :mod:`segclust.stages.gather`)."""
    return {
        "images": len(per_image),
        "boundary_share": spread((r["boundary_share"] for r in per_image.values()), ("mean",)),
    }


def main(config: Config) -> None:
    settings = BoundariesConfig.from_dict(config.boundaries)
    model_path = settings.model_path()
    # a missing or foreign model, or one trained for other params, fails here, once; the
    # classifier (and scikit-learn) is restored only in a worker with a photo to compute
    spec = trained_spec(model_path)
    check_spec(_Trained(spec), settings.models[settings.model], model_path, settings.model)
    device = resolve(settings, spec)
    record = {
        "model": settings.model,
        "file": str(model_path),
        "sha256": file_digest(model_path),
        "device": device,
    }
    per_image: dict[str, dict] = {}
    timings: dict[str, float] = {}
    with atomic_dir(BOUNDARIES_DIR) as out, logging_redirect_tqdm():
        entries = feature_entries()
        for stem, row, seconds in map_cached(
            "boundaries",
            config,
            entries,
            inputs_of=_inputs,
            image_fn=partial(boundaries_image, config=config, model_path=model_path, device=device),
            outs={"out": out},
            extra=record,
        ):
            per_image[stem] = row
            timings[stem] = seconds
        write_json(out / MODEL_RECORD, record)
    log.info(
        "%d photo(s) with %s (%s, sha256 %s) on %s",
        len(per_image), settings.model, model_path, record["sha256"][:12], device,
    )  # fmt: skip
    write_table("boundaries", per_image, first=TABLE_FIRST)
    write_json(METRICS_DIR / "boundaries.json", record | summary(per_image))
    write_timings("boundaries", timings)


if __name__ == "__main__":
    run_stage("boundaries", main)
