"""Typed, validated configuration.

``params.yaml`` (what DVC composes from ``conf/`` with Hydra) is a plain nested dict. It is
validated here once, at the edge, into frozen dataclasses; every problem becomes a one-line
:class:`~segclust.errors.ConfigError` that names the key and the allowed values. The
pluggable kinds are validated from their registries' parameter specs
(:mod:`segclust.algorithms`, :mod:`segclust.blocks`, :mod:`segclust.smoothing`), so a new
entry there needs nothing here. Plain dataclasses do the work: no schema library is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from segclust.algorithms import ALGORITHMS, get_algorithm
from segclust.blocks import get_block
from segclust.errors import ConfigError
from segclust.execution import ExecutionConfig
from segclust.hierarchy import CUTS, get_cut
from segclust.imageio import IMAGE_EXTENSIONS
from segclust.params import (
    Param,
    SearchRange,
    choice,
    integer,
    no_unknown,
    number,
    search_range,
    validate_params,
)
from segclust.smoothing import get_smoother

SCALERS = ("standard", "minmax", "robust")
# Tuning objectives (internal scores) and whether Optuna maximises them.
OBJECTIVES = ("silhouette", "calinski_harabasz", "davies_bouldin")
MAXIMISE = {"silhouette": True, "calinski_harabasz": True, "davies_bouldin": False}
SCALER_SCOPES = ("column", "block")
BACKENDS = ("auto", "sklearn", "cuml")


def _section(params: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if key not in params:
        raise ConfigError(f"missing config section {key!r} (is params.yaml composed from conf/?)")
    value = params[key]
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class DataConfig:
    """Where the images are and how much of an image we accept."""

    root: str = "data/samples"
    ground_truth: str = "data/ground_truth"
    images: tuple[str, ...] | None = None
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS
    max_pixels: int = 100_000_000

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataConfig:
        no_unknown(d, "data", ("root", "ground_truth", "images", "extensions", "max_pixels"))
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
            max_pixels=integer(d.get("max_pixels", cls.max_pixels), "data.max_pixels", 4),
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
        entry = get_block(kind)
        d = {} if d is None else d
        if not isinstance(d, Mapping):
            raise ConfigError(f"{key} must be a mapping like {{weight: 1.0}}, got {d!r}")
        params = validate_params(entry.params, d, key, ignore=("weight",))
        weight = number(d.get("weight", 1.0), f"{key}.weight", inclusive=True)
        return cls(kind=kind, weight=weight, params=params)


@dataclass(frozen=True)
class FeatureConfig:
    """Which per-pixel features to build: named blocks of columns, each with a weight.

    ``FeatureConfig("lab")`` gives the blocks of the preset ``conf/features/lab.yaml``, the
    file Hydra composes for ``features=lab``; ``from_dict`` reads ``name`` (a label) and
    ``blocks`` from the ``features`` group.
    """

    name: str = "intensity"
    blocks: tuple[BlockConfig, ...] = ()

    def __post_init__(self) -> None:
        if not self.blocks:
            from segclust.presets import preset

            blocks = preset("features", self.name).get("blocks")
            if not blocks:
                raise ConfigError(f"features: preset {self.name!r} has no blocks")
            parsed = FeatureConfig.from_dict({"name": self.name, "blocks": blocks}).blocks
            object.__setattr__(self, "blocks", parsed)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureConfig:
        no_unknown(d, "features", ("name", "blocks"))
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
        no_unknown(d, "scaler", ("name", "scope"))
        return cls(
            name=choice(d.get("name"), "scaler.name", SCALERS),
            scope=choice(d.get("scope", cls.scope), "scaler.scope", SCALER_SCOPES),
        )


@dataclass(frozen=True)
class ClusterConfig:
    """One clustering algorithm (:mod:`segclust.algorithms`) and its parameters.

    ``ClusterConfig("dbscan")`` has that algorithm's registry defaults.
    """

    algorithm: str = "kmeans"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        entry = get_algorithm(self.algorithm)
        object.__setattr__(self, "params", {**entry.default_params(), **self.params})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], key: str = "cluster") -> ClusterConfig:
        algorithm = get_algorithm(d.get("algorithm"), f"{key}.algorithm").name
        return cls(algorithm=algorithm, params=validate_cluster_params(algorithm, d, key))


def validate_cluster_params(
    algorithm: str, d: Mapping[str, Any], key: str = "cluster"
) -> dict[str, Any]:
    """Check and fill defaults for one algorithm's parameters; returns a plain dict."""
    entry = get_algorithm(algorithm, f"{key}.algorithm")
    unknown = sorted(set(d) - {"algorithm", *entry.params})
    if unknown:
        allowed = ", ".join(entry.params)
        raise ConfigError(
            f"{key}: unknown parameter(s) {', '.join(unknown)} for {algorithm}; allowed: {allowed}"
        )
    return validate_params(entry.params, d, key, ignore=("algorithm",))


@dataclass(frozen=True)
class MetricsConfig:
    """When the O(N^2) silhouette is computed exactly and when estimated from samples."""

    silhouette_max_exact: int = 5000
    silhouette_sample_size: int = 5000
    silhouette_reference_size: int = 20000

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MetricsConfig:
        no_unknown(
            d,
            "metrics",
            ("silhouette_max_exact", "silhouette_sample_size", "silhouette_reference_size"),
        )
        return cls(
            silhouette_max_exact=integer(
                d.get("silhouette_max_exact", cls.silhouette_max_exact),
                "metrics.silhouette_max_exact",
                2,
            ),
            silhouette_sample_size=integer(
                d.get("silhouette_sample_size", cls.silhouette_sample_size),
                "metrics.silhouette_sample_size",
                3,
            ),
            silhouette_reference_size=integer(
                d.get("silhouette_reference_size", cls.silhouette_reference_size),
                "metrics.silhouette_reference_size",
                2,
            ),
        )


def _algorithms(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(a, str) for a in value):
        raise ConfigError(f"tune.algorithms must be a list like [kmeans, dbscan], got {value!r}")
    for algorithm in value:
        get_algorithm(algorithm, "tune.algorithms")
    if len(set(value)) != len(value):
        raise ConfigError(f"tune.algorithms lists an algorithm twice: {list(value)}")
    return tuple(value)


def tune_space(raw_space: Any) -> dict[str, dict[str, SearchRange]]:
    """Every algorithm's search space: the registry's default ranges, with ``tune.space``'s
    entries (``{low, high, log}``, any subset) applied on top."""
    raw_space = raw_space or {}
    if not isinstance(raw_space, Mapping):
        raise ConfigError("tune.space must map algorithm names to parameter ranges")
    for algorithm, ranges in raw_space.items():
        entry = get_algorithm(algorithm, "tune.space")
        if not isinstance(ranges, Mapping):
            raise ConfigError(f"tune.space.{algorithm} must map parameter names to ranges")
        for param in ranges:
            if param not in entry.params:
                allowed = ", ".join(entry.params)
                raise ConfigError(
                    f"tune.space.{algorithm}.{param}: {algorithm} has no parameter {param!r}; "
                    f"allowed: {allowed}"
                )
    space: dict[str, dict[str, SearchRange]] = {}
    for name, entry in ALGORITHMS.items():
        overrides = raw_space.get(name) or {}
        space[name] = {
            param: search_range(spec, overrides.get(param), f"tune.space.{name}.{param}")
            for param, spec in entry.params.items()
            if spec.search is not None or param in overrides
        }
    return space


@dataclass(frozen=True)
class TuneConfig:
    """An Optuna search: how many trials, on how many points, over which space."""

    n_trials: int = 20
    max_points: int = 20000
    max_clusters: int = 20
    max_noise_fraction: float = 0.3
    space: Mapping[str, Mapping[str, SearchRange]] = field(default_factory=lambda: tune_space({}))
    objective: str = "silhouette"
    algorithms: tuple[str, ...] = ()  # two or more: the algorithm is searched too
    # trials compare settings: a smaller seeded silhouette estimate than the reported one
    silhouette_sample_size: int = 1000
    silhouette_reference_size: int = 5000
    workers: int = 1  # trials of one image in parallel (shared study storage); 1 = serial

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TuneConfig:
        no_unknown(
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
                "silhouette_sample_size",
                "silhouette_reference_size",
                "workers",
            ),
        )
        max_noise = number(
            d.get("max_noise_fraction", cls.max_noise_fraction), "tune.max_noise_fraction"
        )
        if max_noise > 1:
            raise ConfigError(f"tune.max_noise_fraction must be in (0, 1], got {max_noise}")
        space = tune_space(d.get("space"))
        algorithms = _algorithms(d.get("algorithms") or ())
        for algorithm in algorithms:
            if not space[algorithm]:
                raise ConfigError(f"tune.algorithms: {algorithm} has no tunable parameter")
        return cls(
            n_trials=integer(d.get("n_trials", cls.n_trials), "tune.n_trials", 1),
            max_points=integer(d.get("max_points", cls.max_points), "tune.max_points", 10),
            max_clusters=integer(d.get("max_clusters", cls.max_clusters), "tune.max_clusters", 2),
            max_noise_fraction=max_noise,
            space=space,
            objective=choice(d.get("objective", cls.objective), "tune.objective", OBJECTIVES),
            algorithms=algorithms,
            silhouette_sample_size=integer(
                d.get("silhouette_sample_size", cls.silhouette_sample_size),
                "tune.silhouette_sample_size",
                3,
            ),
            silhouette_reference_size=integer(
                d.get("silhouette_reference_size", cls.silhouette_reference_size),
                "tune.silhouette_reference_size",
                2,
            ),
            workers=integer(d.get("workers", cls.workers), "tune.workers", 1),
        )

    def trial_metrics(self, metrics: MetricsConfig) -> MetricsConfig:
        """How trials are scored: ``metrics`` with this search's silhouette sample sizes.

        Trials only rank settings of one image, so a smaller seeded estimate serves (its
        standard error is about 0.01); the winner is scored again with ``metrics``.
        """
        return replace(
            metrics,
            silhouette_sample_size=self.silhouette_sample_size,
            silhouette_reference_size=self.silhouette_reference_size,
        )

    def alternatives(self) -> dict[str, Mapping[str, SearchRange]] | None:
        """Algorithm → space when the algorithm is searched too (two or more listed)."""
        if len(self.algorithms) < 2:
            return None
        return {algorithm: self.space[algorithm] for algorithm in self.algorithms}

    def space_for(self, algorithm: str) -> Mapping[str, SearchRange]:
        """The search space of ``algorithm``; a ConfigError when it has nothing to tune."""
        space = self.space.get(algorithm)
        if not space:
            raise ConfigError(
                f"tune.space.{algorithm}: no parameter of {algorithm} is tuned; give one, e.g. "
                f"-S '+tune.space.{algorithm}.<param>={{low: 1, high: 2}}'"
            )
        return space


REGION_METHODS = ("clusters", "connected")
REGION_CONNECTIVITIES = (1, 2)  # scikit-image's: 4 or 8 neighbours


@dataclass(frozen=True)
class SmoothingConfig:
    """Filter applied to the photo before its features (:mod:`segclust.smoothing`)."""

    method: str = "none"
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SmoothingConfig:
        entry = get_smoother(d.get("method", "none"))
        params = validate_params(entry.params, d, "smoothing", ignore=("method",))
        return cls(method=entry.name, params=params)


@dataclass(frozen=True)
class RegionsConfig:
    """What a segment is: a cluster as found, or a connected region (:mod:`segclust.regions`)."""

    method: str = "clusters"
    min_area_fraction: float = 0.01
    connectivity: int = 1

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RegionsConfig:
        no_unknown(d, "regions", ("method", "min_area_fraction", "connectivity"))
        fraction = number(
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
            method=choice(d.get("method", cls.method), "regions.method", REGION_METHODS),
            min_area_fraction=fraction,
            connectivity=int(connectivity),
        )


LEAF_SOURCES = ("watershed", "clusters")
EDGE_SOURCES = ("learned", "gradient")
# The hierarchy's own parameters (the cut's come from the registry in segclust.hierarchy).
HIERARCHY_PARAMS: Mapping[str, Param] = {
    "edges": Param(str, "learned", choices=EDGE_SOURCES),
    "leaves": Param(str, "watershed", choices=LEAF_SOURCES),
    "leaf_area": Param(int, 400, low=1, doc="pixels per watershed leaf"),
    "gradient_sigma": Param(float, 1.0, low=0, low_open=True, doc="pixels"),
    "gradient_weight": Param(float, 2.0, low=0, doc="x Sobel/8, against the colour term"),
    "colour_weight": Param(float, 0.25, low=0, high=1, doc="share of the colour difference"),
    "max_pixels": Param(int, 160_000, low=64, doc="working resolution of larger photos"),
    "thresholds": Param(int, 40, low=2, doc="levels scored for ODS/OIS by evaluate"),
}


@dataclass(frozen=True)
class HierarchyConfig:
    """The region hierarchy (cascade) and how it is cut (:mod:`segclust.hierarchy`).

    Every cut's parameter is always present (so ``dvc exp run -S`` can set any of them);
    only the one of ``cut`` is used.
    """

    edges: str = "learned"
    leaves: str = "watershed"
    leaf_area: int = 400
    gradient_sigma: float = 1.0
    gradient_weight: float = 2.0
    colour_weight: float = 0.25
    max_pixels: int = 160_000
    thresholds: int = 40
    cut: str = "threshold"
    cut_params: Mapping[str, Any] = field(
        default_factory=lambda: {k: p.default for k, p in CUTS["threshold"].params.items()}
    )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HierarchyConfig:
        cut_specs = {k: v for entry in CUTS.values() for k, v in entry.params.items()}
        no_unknown(d, "hierarchy", ("cut", *HIERARCHY_PARAMS, *cut_specs))
        own = validate_params(
            HIERARCHY_PARAMS, {k: d[k] for k in HIERARCHY_PARAMS if k in d}, "hierarchy"
        )
        every_cut = validate_params(cut_specs, {k: d[k] for k in cut_specs if k in d}, "hierarchy")
        entry = get_cut(d.get("cut", cls.cut))
        return cls(
            **own,
            cut=entry.name,
            cut_params={k: every_cut[k] for k in entry.params},
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
        no_unknown(d, "render", ("cmap", "min_width", "contour_thickness", "dpi"))
        import matplotlib

        cmap = d.get("cmap", cls.cmap)
        if cmap not in matplotlib.colormaps:
            raise ConfigError(
                f"render.cmap: unknown matplotlib colormap {cmap!r} (e.g. tab10, tab20, viridis)"
            )
        return cls(
            cmap=cmap,
            min_width=integer(d.get("min_width", cls.min_width), "render.min_width", 16),
            contour_thickness=integer(
                d.get("contour_thickness", cls.contour_thickness), "render.contour_thickness", 1
            ),
            dpi=integer(d.get("dpi", cls.dpi), "render.dpi", 20),
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
    hierarchy: HierarchyConfig = HierarchyConfig()
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    # the learned boundary model's section, as composed: validated by the two stages that
    # read it (segclust.boundary_model.BoundariesConfig), so that the other stages' code
    # dependencies do not include the model's code
    boundaries: Mapping[str, Any] = field(default_factory=dict)

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
            "hierarchy",
            "execution",
            "boundaries",
        )
        no_unknown(params, "params", top)
        return cls(
            seed=integer(params.get("seed", 0), "seed", 0),
            backend=choice(params.get("backend", "auto"), "backend", BACKENDS),
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
            hierarchy=HierarchyConfig.from_dict(
                _section(params, "hierarchy") if "hierarchy" in params else {}
            ),
            execution=ExecutionConfig.from_dict(
                _section(params, "execution") if "execution" in params else {}
            ),
            boundaries=_section(params, "boundaries") if "boundaries" in params else {},
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
