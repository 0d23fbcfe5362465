"""Typed, validated configuration.

``params.yaml`` (what DVC composes from ``conf/`` with Hydra) is a plain nested dict. It is
validated here once, at the edge, into frozen dataclasses; every problem becomes a one-line
:class:`~segclust.errors.ConfigError` that names the key and the allowed values. Plain
dataclasses do the work: no schema library is needed for a config this size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segclust.errors import ConfigError

SCALERS = ("standard", "minmax", "robust")
# Tuning objectives (internal scores) and whether Optuna maximises them.
OBJECTIVES = ("silhouette", "calinski_harabasz", "davies_bouldin")
MAXIMISE = {"silhouette": True, "calinski_harabasz": True, "davies_bouldin": False}
SCALER_SCOPES = ("column", "block")
# Feature blocks and their parameters with defaults (ints stay ints, floats floats).
BLOCK_PARAMS: dict[str, dict[str, Any]] = {
    "intensity": {},
    "xy": {},
    "sobel": {"ksize": 3, "sigma": 1.0},
    "rgb": {},
    "hsv": {},
    "lab": {},
    "lbp": {"points": 8, "radius": 1.0, "window": 15},
    "glcm": {"levels": 8, "distance": 1, "window": 15},
}
BLOCK_MINIMA = {"levels": 2, "points": 4, "window": 3}
# The seed's three feature sets, as blocks.
SEED_PRESETS: dict[str, tuple[str, ...]] = {
    "intensity": ("intensity",),
    "intensity_xy": ("intensity", "xy"),
    "sobel": ("sobel",),
}
ALGORITHMS = ("kmeans", "birch", "dbscan")
BACKENDS = ("auto", "sklearn", "cuml")
SOBEL_KSIZES = (1, 3, 5, 7)

# Parameters each algorithm takes, besides ``algorithm`` itself.
ALGORITHM_PARAMS: dict[str, tuple[str, ...]] = {
    "kmeans": ("n_clusters", "n_init", "max_iter"),
    "birch": ("n_clusters", "threshold", "branching_factor"),
    "dbscan": ("eps", "min_samples"),
}


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {', '.join(allowed)}")
    return str(value)


def _int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value}")
    return int(value)


def _float(value: Any, key: str, *, minimum: float = 0.0, inclusive: bool = False) -> float:
    relation = ">=" if inclusive else ">"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number {relation} {minimum:g}, got {value!r}")
    number = float(value)
    ok = number >= minimum if inclusive else number > minimum
    if not math.isfinite(number) or not ok:
        raise ConfigError(f"{key} must be a finite number {relation} {minimum:g}, got {value}")
    return number


def _section(params: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if key not in params:
        raise ConfigError(f"missing config section {key!r} (is params.yaml composed from conf/?)")
    value = params[key]
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping, got {type(value).__name__}")
    return value


def _no_unknown(section: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )


@dataclass(frozen=True)
class DataConfig:
    """Where the images are and how much of an image we accept."""

    root: str = "data/samples"
    ground_truth: str = "data/ground_truth"
    images: tuple[str, ...] | None = None
    extensions: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
    max_pixels: int = 100_000_000

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataConfig:
        _no_unknown(d, "data", ("root", "ground_truth", "images", "extensions", "max_pixels"))
        root = d.get("root", cls.root)
        if not isinstance(root, str) or not root.strip():
            raise ConfigError(f"data.root must be a non-empty path, got {root!r}")
        ground_truth = d.get("ground_truth", cls.ground_truth)
        if not isinstance(ground_truth, str) or not ground_truth.strip():
            raise ConfigError(f"data.ground_truth must be a folder path, got {ground_truth!r}")
        images = d.get("images")
        if images is not None:
            if isinstance(images, str) or not all(isinstance(i, str) for i in images):
                raise ConfigError("data.images must be null or a list of file names")
            images = tuple(images)
        extensions = tuple(str(e).lower() for e in d.get("extensions", cls.extensions))
        if not extensions or not all(e.startswith(".") for e in extensions):
            raise ConfigError("data.extensions must be a non-empty list like ['.png', '.jpg']")
        return cls(
            root=root,
            ground_truth=ground_truth,
            images=images,
            extensions=extensions,
            max_pixels=_int(d.get("max_pixels", cls.max_pixels), "data.max_pixels", 4),
        )


@dataclass(frozen=True)
class BlockConfig:
    """One block of feature columns (see :mod:`segclust.features`) and its weight."""

    kind: str
    weight: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, kind: str, d: Mapping[str, Any] | None) -> BlockConfig:
        key = f"features.blocks.{kind}"
        _choice(kind, "features.blocks", tuple(BLOCK_PARAMS))
        d = {} if d is None else d
        if not isinstance(d, Mapping):
            raise ConfigError(f"{key} must be a mapping like {{weight: 1.0}}, got {d!r}")
        defaults = BLOCK_PARAMS[kind]
        _no_unknown(d, key, ("weight", *defaults))
        params: dict[str, Any] = {}
        for name, default in defaults.items():
            value = d.get(name, default)
            if isinstance(default, int):
                params[name] = _int(value, f"{key}.{name}", BLOCK_MINIMA.get(name, 1))
            else:
                params[name] = _float(value, f"{key}.{name}", inclusive=name == "sigma")
        if kind == "sobel" and params["ksize"] not in SOBEL_KSIZES:
            raise ConfigError(f"{key}.ksize must be one of {SOBEL_KSIZES}, got {params['ksize']}")
        if "window" in params and params["window"] % 2 == 0:
            raise ConfigError(f"{key}.window must be odd, got {params['window']}")
        weight = _float(d.get("weight", 1.0), f"{key}.weight", inclusive=True)
        return cls(kind=kind, weight=weight, params=params)


@dataclass(frozen=True)
class FeatureConfig:
    """Which per-pixel features to build: named blocks of columns, each with a weight.

    ``FeatureConfig("intensity_xy")`` gives a preset's blocks (the seed's three sets);
    ``from_dict`` reads ``name`` (a label) and ``blocks`` from the ``features`` group.
    """

    name: str = "intensity"
    blocks: tuple[BlockConfig, ...] = ()

    def __post_init__(self) -> None:
        if not self.blocks:
            if self.name not in SEED_PRESETS:
                raise ConfigError(
                    f"features: {self.name!r} is not a preset (allowed: "
                    f"{', '.join(SEED_PRESETS)}) and has no features.blocks"
                )
            preset = tuple(BlockConfig.from_dict(kind, {}) for kind in SEED_PRESETS[self.name])
            object.__setattr__(self, "blocks", preset)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureConfig:
        _no_unknown(d, "features", ("name", "blocks"))
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"features.name must be a non-empty label, got {name!r}")
        blocks = d.get("blocks")
        if blocks is None:
            return cls(name=name)
        if not isinstance(blocks, Mapping) or not blocks:
            raise ConfigError(
                "features.blocks must map block names to settings, e.g. {lab: {weight: 1.0}}"
            )
        parsed = tuple(BlockConfig.from_dict(str(kind), v) for kind, v in blocks.items())
        if all(block.weight == 0 for block in parsed):
            raise ConfigError("features.blocks: at least one block needs a weight > 0")
        return cls(name=name, blocks=parsed)

    def block(self, kind: str) -> BlockConfig | None:
        return next((b for b in self.blocks if b.kind == kind), None)


@dataclass(frozen=True)
class ScalerConfig:
    """How feature columns are scaled before clustering (see :mod:`segclust.scaling`)."""

    name: str = "standard"
    scope: str = "column"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScalerConfig:
        _no_unknown(d, "scaler", ("name", "scope"))
        return cls(
            name=_choice(d.get("name"), "scaler.name", SCALERS),
            scope=_choice(d.get("scope", cls.scope), "scaler.scope", SCALER_SCOPES),
        )


@dataclass(frozen=True)
class ClusterConfig:
    """One clustering algorithm and its parameters."""

    algorithm: str = "kmeans"
    params: Mapping[str, Any] = field(default_factory=lambda: {"n_clusters": 4})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], key: str = "cluster") -> ClusterConfig:
        algorithm = _choice(d.get("algorithm"), f"{key}.algorithm", ALGORITHMS)
        _no_unknown(d, key, ("algorithm", *ALGORITHM_PARAMS[algorithm]))
        return cls(algorithm=algorithm, params=validate_cluster_params(algorithm, d, key))


def validate_cluster_params(
    algorithm: str, d: Mapping[str, Any], key: str = "cluster"
) -> dict[str, Any]:
    """Check and fill defaults for one algorithm's parameters; returns a plain dict."""
    _choice(algorithm, f"{key}.algorithm", ALGORITHMS)
    unknown = sorted(set(d) - {"algorithm", *ALGORITHM_PARAMS[algorithm]})
    if unknown:
        allowed = ", ".join(ALGORITHM_PARAMS[algorithm])
        raise ConfigError(
            f"{key}: unknown parameter(s) {', '.join(unknown)} for {algorithm}; allowed: {allowed}"
        )
    if algorithm == "kmeans":
        return {
            "n_clusters": _int(d.get("n_clusters", 4), f"{key}.n_clusters", 2),
            "n_init": _int(d.get("n_init", 4), f"{key}.n_init", 1),
            "max_iter": _int(d.get("max_iter", 300), f"{key}.max_iter", 1),
        }
    if algorithm == "birch":
        return {
            "n_clusters": _int(d.get("n_clusters", 4), f"{key}.n_clusters", 2),
            "threshold": _float(d.get("threshold", 0.5), f"{key}.threshold"),
            "branching_factor": _int(d.get("branching_factor", 50), f"{key}.branching_factor", 2),
        }
    return {
        "eps": _float(d.get("eps", 0.05), f"{key}.eps"),
        "min_samples": _int(d.get("min_samples", 200), f"{key}.min_samples", 1),
    }


@dataclass(frozen=True)
class MetricsConfig:
    """When the O(N^2) silhouette is computed exactly and when estimated from samples."""

    silhouette_max_exact: int = 5000
    silhouette_sample_size: int = 5000
    silhouette_reference_size: int = 20000

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricsConfig:
        _no_unknown(
            d,
            "metrics",
            ("silhouette_max_exact", "silhouette_sample_size", "silhouette_reference_size"),
        )
        return cls(
            silhouette_max_exact=_int(
                d.get("silhouette_max_exact", cls.silhouette_max_exact),
                "metrics.silhouette_max_exact",
                2,
            ),
            silhouette_sample_size=_int(
                d.get("silhouette_sample_size", cls.silhouette_sample_size),
                "metrics.silhouette_sample_size",
                3,
            ),
            silhouette_reference_size=_int(
                d.get("silhouette_reference_size", cls.silhouette_reference_size),
                "metrics.silhouette_reference_size",
                2,
            ),
        )


@dataclass(frozen=True)
class ParamRange:
    """One tunable parameter: an int or float range, optionally log-scaled."""

    low: float
    high: float
    log: bool = False
    is_int: bool = False


# Which parameters of each algorithm are integers when tuned.
_INT_PARAMS = {"n_clusters", "n_init", "max_iter", "branching_factor", "min_samples"}


def _algorithms(value: Any, space: Mapping[str, Any]) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(a, str) for a in value):
        raise ConfigError(f"tune.algorithms must be a list like [kmeans, dbscan], got {value!r}")
    for algorithm in value:
        _choice(algorithm, "tune.algorithms", ALGORITHMS)
        if algorithm not in space:
            raise ConfigError(f"tune.algorithms: {algorithm} has no tune.space.{algorithm}")
    if len(set(value)) != len(value):
        raise ConfigError(f"tune.algorithms lists an algorithm twice: {list(value)}")
    return tuple(value)


@dataclass(frozen=True)
class TuneConfig:
    """An Optuna search: how many trials, on how many points, over which space."""

    n_trials: int = 20
    max_points: int = 20000
    max_clusters: int = 20
    max_noise_fraction: float = 0.3
    space: Mapping[str, Mapping[str, ParamRange]] = field(default_factory=dict)
    objective: str = "silhouette"
    algorithms: tuple[str, ...] = ()  # two or more: the algorithm is searched too

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TuneConfig:
        _no_unknown(
            d,
            "tune",
            (
                "n_trials",
                "max_points",
                "max_clusters",
                "max_noise_fraction",
                "space",
                "objective",
                "algorithms",
            ),
        )
        max_noise = _float(
            d.get("max_noise_fraction", cls.max_noise_fraction), "tune.max_noise_fraction"
        )
        if max_noise > 1:
            raise ConfigError(f"tune.max_noise_fraction must be in (0, 1], got {max_noise}")
        raw_space = d.get("space") or {}
        if not isinstance(raw_space, Mapping):
            raise ConfigError("tune.space must map algorithm names to parameter ranges")
        space: dict[str, dict[str, ParamRange]] = {}
        for algorithm, ranges in raw_space.items():
            _choice(algorithm, "tune.space", ALGORITHMS)
            if not isinstance(ranges, Mapping) or not ranges:
                raise ConfigError(f"tune.space.{algorithm} must map parameter names to ranges")
            space[algorithm] = {}
            for param, spec in ranges.items():
                key = f"tune.space.{algorithm}.{param}"
                if param not in ALGORITHM_PARAMS[algorithm]:
                    allowed = ", ".join(ALGORITHM_PARAMS[algorithm])
                    raise ConfigError(
                        f"{key}: {algorithm} has no parameter {param!r}; allowed: {allowed}"
                    )
                if not isinstance(spec, Mapping):
                    raise ConfigError(f"{key} must be a mapping with low and high")
                _no_unknown(spec, key, ("low", "high", "log"))
                is_int = param in _INT_PARAMS
                if is_int:
                    minimum = 2 if param in ("n_clusters", "branching_factor") else 1
                    low = _int(spec.get("low"), f"{key}.low", minimum)
                    high = _int(spec.get("high"), f"{key}.high", minimum)
                else:
                    low = _float(spec.get("low"), f"{key}.low")
                    high = _float(spec.get("high"), f"{key}.high")
                if high < low:
                    raise ConfigError(f"{key}: high ({high}) must be >= low ({low})")
                log = spec.get("log", False)
                if not isinstance(log, bool):
                    raise ConfigError(f"{key}.log must be true or false, got {log!r}")
                space[algorithm][param] = ParamRange(low=low, high=high, log=log, is_int=is_int)
        return cls(
            n_trials=_int(d.get("n_trials", cls.n_trials), "tune.n_trials", 1),
            max_points=_int(d.get("max_points", cls.max_points), "tune.max_points", 10),
            max_clusters=_int(d.get("max_clusters", cls.max_clusters), "tune.max_clusters", 2),
            max_noise_fraction=max_noise,
            space=space,
            objective=_choice(d.get("objective", cls.objective), "tune.objective", OBJECTIVES),
            algorithms=_algorithms(d.get("algorithms") or (), space),
        )

    def alternatives(self) -> dict[str, Mapping[str, ParamRange]] | None:
        """Algorithm → space when the algorithm is searched too (two or more listed)."""
        if len(self.algorithms) < 2:
            return None
        return {algorithm: self.space[algorithm] for algorithm in self.algorithms}

    def space_for(self, algorithm: str) -> Mapping[str, ParamRange]:
        if algorithm not in self.space:
            listed = ", ".join(self.space) or "none"
            raise ConfigError(f"tune.space has no entry for {algorithm!r} (it has: {listed})")
        return self.space[algorithm]


REGION_METHODS = ("clusters", "connected")
REGION_CONNECTIVITIES = (1, 2)  # scikit-image's: 4 or 8 neighbours
# Each smoothing method's parameters: (name, kind, minimum, default); see segclust.smoothing.
SMOOTHING_PARAMS: dict[str, tuple[tuple[str, str, float, float], ...]] = {
    "none": (),
    "gaussian": (("sigma", "float", 0.0, 1.0),),
    "bilateral": (
        ("diameter", "int", 1, 9),
        ("sigma_colour", "float", 0.0, 30.0),
        ("sigma_space", "float", 0.0, 7.0),
    ),
    "meanshift": (("spatial_radius", "int", 1, 7), ("colour_radius", "float", 0.0, 15.0)),
}


@dataclass(frozen=True)
class SmoothingConfig:
    """Filter applied to the photo before its features (:mod:`segclust.smoothing`)."""

    method: str = "none"
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SmoothingConfig:
        method = _choice(d.get("method", "none"), "smoothing.method", tuple(SMOOTHING_PARAMS))
        spec = SMOOTHING_PARAMS[method]
        _no_unknown(d, f"smoothing ({method})", ("method", *(name for name, *_ in spec)))
        params: dict[str, Any] = {}
        for name, kind, minimum, default in spec:
            key = f"smoothing.{name}"
            value = d.get(name, default)
            if kind == "int":
                params[name] = _int(value, key, int(minimum))
            else:
                params[name] = _float(value, key, minimum=minimum)
        return cls(method=method, params=params)


@dataclass(frozen=True)
class RegionsConfig:
    """What a segment is: a cluster as found, or a connected region (:mod:`segclust.regions`)."""

    method: str = "clusters"
    min_area_fraction: float = 0.01
    connectivity: int = 1

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RegionsConfig:
        _no_unknown(d, "regions", ("method", "min_area_fraction", "connectivity"))
        fraction = _float(
            d.get("min_area_fraction", cls.min_area_fraction),
            "regions.min_area_fraction",
            minimum=0.0,
            inclusive=True,
        )
        if fraction >= 1:
            raise ConfigError(
                "regions.min_area_fraction is a share of the image's pixels: it must be < 1,"
                f" got {fraction}"
            )
        connectivity = d.get("connectivity", cls.connectivity)
        if connectivity not in REGION_CONNECTIVITIES or isinstance(connectivity, bool):
            raise ConfigError(
                f"regions.connectivity must be 1 (4 neighbours) or 2 (8), got {connectivity!r}"
            )
        return cls(
            method=_choice(d.get("method", cls.method), "regions.method", REGION_METHODS),
            min_area_fraction=fraction,
            connectivity=int(connectivity),
        )


@dataclass(frozen=True)
class RenderConfig:
    """How cluster maps and contour overlays are drawn."""

    cmap: str = "tab10"
    min_width: int = 480
    contour_thickness: int = 1
    dpi: int = 100

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RenderConfig:
        _no_unknown(d, "render", ("cmap", "min_width", "contour_thickness", "dpi"))
        import matplotlib

        cmap = d.get("cmap", cls.cmap)
        if cmap not in matplotlib.colormaps:
            raise ConfigError(
                f"render.cmap: unknown matplotlib colormap {cmap!r} (e.g. tab10, tab20, viridis)"
            )
        return cls(
            cmap=cmap,
            min_width=_int(d.get("min_width", cls.min_width), "render.min_width", 16),
            contour_thickness=_int(
                d.get("contour_thickness", cls.contour_thickness), "render.contour_thickness", 1
            ),
            dpi=_int(d.get("dpi", cls.dpi), "render.dpi", 20),
        )


@dataclass(frozen=True)
class Config:
    """The whole validated pipeline configuration."""

    seed: int
    backend: str
    data: DataConfig
    features: FeatureConfig
    scaler: ScalerConfig
    cluster: ClusterConfig
    metrics: MetricsConfig
    tune: TuneConfig
    render: RenderConfig
    regions: RegionsConfig = RegionsConfig()
    smoothing: SmoothingConfig = SmoothingConfig()

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> Config:
        top = (
            "seed",
            "backend",
            "data",
            "features",
            "scaler",
            "cluster",
            "metrics",
            "tune",
            "render",
            "regions",
            "smoothing",
        )
        _no_unknown(params, "params", top)
        return cls(
            seed=_int(params.get("seed", 0), "seed", 0),
            backend=_choice(params.get("backend", "auto"), "backend", BACKENDS),
            data=DataConfig.from_dict(_section(params, "data")),
            features=FeatureConfig.from_dict(_section(params, "features")),
            scaler=ScalerConfig.from_dict(_section(params, "scaler")),
            cluster=ClusterConfig.from_dict(_section(params, "cluster")),
            metrics=MetricsConfig.from_dict(_section(params, "metrics")),
            tune=TuneConfig.from_dict(_section(params, "tune")),
            render=RenderConfig.from_dict(_section(params, "render")),
            # optional: params.yaml files from before regions existed keep working
            regions=RegionsConfig.from_dict(
                _section(params, "regions") if "regions" in params else {}
            ),
            smoothing=SmoothingConfig.from_dict(
                _section(params, "smoothing") if "smoothing" in params else {}
            ),
        )


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read and validate ``params.yaml``; a missing or malformed file is a ConfigError."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: not found (run from the project root)") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(params, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return Config.from_dict(params)
