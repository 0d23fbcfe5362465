"""Hyperparameter search with Optuna on an internal score: the silhouette (default),
Calinski-Harabasz (both maximised) or Davies-Bouldin (minimised), ``tune.objective``.

A seeded TPE sampler makes the search reproducible. A trial whose clustering is degenerate
(one cluster, all noise, more than ``max_clusters`` clusters, more than
``max_noise_fraction`` noise) is *pruned* with the reason in its user attributes; a trial
whose clustering raises (e.g. out of memory for a huge ``eps``) is *failed* via Optuna's
``catch=``. Neither stops the study.

Where the search runs (``search`` in the results):
``full``
    every pixel (the image has at most ``max_points`` pixels);
``compressed``
    every pixel, exactly, through the distinct feature rows and their counts (KMeans and
    DBSCAN when there are at most ``max_points`` distinct rows);
``subsample``
    a seeded subsample of ``max_points`` pixels; the winner is refitted on every pixel,
    through its registry entry's ``refit_rule`` where a parameter counts pixels (DBSCAN
    keeps ``min_samples`` and shrinks ``eps`` to the same density; HDBSCAN scales
    ``min_cluster_size``). Algorithms that need the pixel grid (Ward) are always searched
    ``full``.

The trials of one image share what does not depend on them: the distinct rows the plan
found, the silhouette's query sample (:func:`segclust.silhouette.draw_queries`) and, for a
search on every pixel, the best trial's clustering, which is the refit. A parameter set
TPE proposes again is not clustered again. None of it changes a number
(``tune_clustering(reuse=False)`` recomputes everything; the tests compare the two).

The search space, the parameter types and the estimators all come from the algorithm
registry (:mod:`segclust.algorithms`). Trials are scored by :mod:`segclust.metrics` on the
CPU whatever back-end clusters, so the winner does not depend on the machine.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from segclust.algorithms import get_algorithm
from segclust.clustering import ClusterResult, cluster_features
from segclust.compression import DEFAULT_MAX_DISTINCT_FRACTION, RowCompression, compress_rows
from segclust.config import (
    MAXIMISE,
    ClusterConfig,
    MetricsConfig,
    TuneConfig,
    validate_cluster_params,
)
from segclust.metrics import calinski_harabasz_davies_bouldin, configured_metrics
from segclust.params import SearchRange
from segclust.report import rounded
from segclust.segmentation import Segmentation, cluster_and_score, score_clustering
from segclust.silhouette import QuerySample, dense_labels, draw_queries, weighted_silhouette

log = logging.getLogger(__name__)

# Exceptions that fail one trial but never the study.
TRIAL_ERRORS: tuple[type[Exception], ...] = (ValueError, MemoryError, ArithmeticError)


@dataclass(frozen=True)
class TuneResult:
    """The study, the winner refitted at full resolution, and how the search was done."""

    study: optuna.Study
    best_params: dict[str, Any] | None
    best: Segmentation | None
    search: str  # "full", "compressed" or "subsample"
    search_points: int
    algorithm: str | None = None  # the best trial's algorithm


def suggest_params(
    trial: optuna.Trial, space: Mapping[str, SearchRange], prefix: str = ""
) -> dict[str, Any]:
    """Draw one value per tunable parameter from its range (Optuna names get ``prefix``)."""
    params: dict[str, Any] = {}
    for name, rng in space.items():
        if rng.is_int:
            value = trial.suggest_int(prefix + name, int(rng.low), int(rng.high), log=rng.log)
        else:
            value = trial.suggest_float(prefix + name, rng.low, rng.high, log=rng.log)
        params[name] = value
    return params


def trial_algorithm(
    trial: optuna.Trial | optuna.trial.FrozenTrial, cluster: ClusterConfig, tune: TuneConfig
) -> tuple[str, dict[str, Any]]:
    """The algorithm and validated parameters of a trial (live: drawn; frozen: read back).

    Without ``tune.alternatives()`` the trial draws ``cluster.algorithm``'s parameters from
    ``tune.space_for`` it. With them the algorithm is a categorical ``algorithm`` and each
    algorithm's parameters are conditional on it, named ``<algorithm>.<param>``. Either way
    the ``cluster`` params are the defaults of ``cluster.algorithm``.
    """
    alternatives = tune.alternatives()
    if alternatives is None:
        drawn = (
            dict(trial.params)
            if isinstance(trial, optuna.trial.FrozenTrial)
            else suggest_params(trial, tune.space_for(cluster.algorithm))
        )
        algorithm = cluster.algorithm
    elif isinstance(trial, optuna.trial.FrozenTrial):
        algorithm = trial.params["algorithm"]
        prefix = f"{algorithm}."
        drawn = {k[len(prefix) :]: v for k, v in trial.params.items() if k.startswith(prefix)}
    else:
        algorithm = trial.suggest_categorical("algorithm", list(alternatives))
        drawn = suggest_params(trial, alternatives[algorithm], prefix=f"{algorithm}.")
    base = dict(cluster.params) if algorithm == cluster.algorithm else {}
    return algorithm, validate_cluster_params(algorithm, {**base, **drawn}, key="tune")


def search_subset(n_rows: int, max_points: int, seed: int) -> np.ndarray | None:
    """Sorted row indices of a seeded subsample, or None when every row fits."""
    if n_rows <= max_points:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=max_points, replace=False))


def plan_search(
    features: np.ndarray, algorithm: str, max_points: int, seed: int
) -> tuple[str, np.ndarray | None]:
    """How to search: ``full``, ``compressed`` (exact) or ``subsample`` (with its rows)."""
    search, subset, _ = _plan(features, algorithm, max_points, seed)
    return search, subset


def _plan(
    features: np.ndarray, algorithm: str, max_points: int, seed: int
) -> tuple[str, np.ndarray | None, RowCompression | None]:
    """:func:`plan_search`, and the distinct rows it found when it searches ``compressed``."""
    n_rows = features.shape[0]
    if n_rows <= max_points or get_algorithm(algorithm).needs_grid:
        return "full", None, None
    if get_algorithm(algorithm).sample_weight:
        found = compress_rows(features, max_distinct_fraction=max_points / n_rows)
        if found is not None:
            return "compressed", None, found
    return "subsample", search_subset(n_rows, max_points, seed), None


def _trial_compression(found: RowCompression | None, n_rows: int) -> RowCompression | str | None:
    """What ``compress_rows`` (default share) would say of the rows the plan compressed:
    the same distinct rows, or None when over that share of them is distinct; "auto" (find
    out) when the plan did not compress."""
    if found is None:
        return "auto"
    return found if found.n_distinct <= DEFAULT_MAX_DISTINCT_FRACTION * n_rows else None


class _SearchRows:
    """The search rows' distinct rows, computed once per study and shared by every trial.

    With them a trial clusters the distinct rows (weights = counts) and, for 1-D rows or
    few distinct rows, scores the exact silhouette, Calinski-Harabasz and Davies-Bouldin
    from the distinct rows alone.
    """

    def __init__(
        self,
        features: np.ndarray,
        algorithm: str,
        max_exact: int,
        compression: RowCompression | str | None = "auto",
    ) -> None:
        """``compression``: ``compress_rows(features)`` when the caller has it already."""
        self.compression: RowCompression | str | None = "auto"
        self.representative: np.ndarray | None = None
        self.max_exact = max_exact
        if get_algorithm(algorithm).sample_weight:
            given = not isinstance(compression, str)
            self.compression = compression if given else compress_rows(features)
        if isinstance(self.compression, RowCompression):
            self.representative = np.empty(self.compression.n_distinct, dtype=np.intp)
            self.representative[self.compression.inverse] = np.arange(features.shape[0])

    def scores(self, labels: np.ndarray) -> dict[str, Any] | None:
        """n_clusters, noise_fraction and the three scores from the distinct rows, or None."""
        if self.representative is None:
            return None
        found = self.compression
        assert isinstance(found, RowCompression)
        row_labels = labels[self.representative]
        valid = row_labels != -1
        counts = found.counts[valid]
        rows, kept = found.rows[valid], row_labels[valid]
        dense, n_clusters = dense_labels(kept)
        total = int(found.counts.sum())
        result: dict[str, Any] = {
            "n_clusters": n_clusters,
            "noise_fraction": rounded(1.0 - int(counts.sum()) / total),
            "silhouette": None,
            "calinski_harabasz": None,
            "davies_bouldin": None,
        }
        if rows.shape[1] > 1 and rows.shape[0] > self.max_exact:
            return None
        if n_clusters < 2 or n_clusters >= counts.sum():
            result["undefined_reason"] = f"{n_clusters} cluster(s); the scores need 2 or more"
            return result
        ch, db = calinski_harabasz_davies_bouldin(rows, dense, counts)
        result["calinski_harabasz"], result["davies_bouldin"] = rounded(ch), rounded(db)
        result["silhouette"] = rounded(weighted_silhouette(rows, counts, kept))
        return result


def make_objective(
    features: np.ndarray,
    cluster: ClusterConfig,
    tune: TuneConfig,
    *,
    backend: str,
    seed: int,
    metrics: MetricsConfig,
    shape: tuple[int, int] | None = None,
    compression: RowCompression | str | None = "auto",
    reuse: bool = True,
) -> _Objective:
    """Optuna objective: cluster with the trial's params, return the ``tune.objective`` score.

    The space is ``tune.space_for(cluster.algorithm)``, or the algorithm itself is searched
    when ``tune.algorithms`` lists two or more. ``shape``: the H×W the rows form, when they
    are every pixel (algorithms on the pixel grid need it).

    Clusterings with more than ``tune.max_clusters`` clusters or more than
    ``tune.max_noise_fraction`` noise are pruned: the silhouette rewards both (single grey
    levels as clusters score 1.0; DBSCAN scores higher by calling hard pixels noise).

    TPE often proposes a parameter set again (integer ranges are small); a repeat reuses
    the earlier outcome instead of clustering again, which is exact since runs are seeded.

    What does not depend on the trial is prepared once (``reuse``): the rows' distinct rows
    (``compression``: ``compress_rows(features)`` when the caller has them) and the
    silhouette's query sample. The objective keeps the clustering of its best trial, which
    is the refit when ``features`` are every pixel. ``reuse=False`` is the search as it was
    before (each trial draws its own sample): the same values, for timing the difference.
    """
    metrics = tune.trial_metrics(metrics)
    search_rows = _SearchRows(
        features,
        _planning_algorithm(cluster, tune),
        metrics.silhouette_max_exact,
        compression=compression if reuse else "auto",
    )
    queries = _query_sample(features, metrics, seed) if reuse else None
    return _Objective(
        features, cluster, tune, backend, seed, metrics, shape, search_rows, queries, reuse
    )


def _query_sample(features: np.ndarray, metrics: MetricsConfig, seed: int) -> QuerySample | None:
    """The sampled silhouette's queries for ``features``, or None where no sample is drawn
    (one column is scored exactly; so is a sample as large as the rows)."""
    if features.shape[1] == 1 or metrics.silhouette_sample_size >= features.shape[0]:
        return None
    return draw_queries(features, metrics.silhouette_sample_size, seed)


@dataclass
class _Objective:
    """The trials' objective (see :func:`make_objective`), with what trials share."""

    features: np.ndarray
    cluster: ClusterConfig
    tune: TuneConfig
    backend: str
    seed: int
    metrics: MetricsConfig
    shape: tuple[int, int] | None
    search_rows: _SearchRows
    queries: QuerySample | None
    keep_best: bool
    seen: dict[tuple, tuple[dict[str, Any], float | None]] = field(default_factory=dict)
    best: tuple[tuple, float, ClusterResult] | None = None  # key, value, clustering

    def __call__(self, trial: optuna.Trial) -> float:
        algorithm, params = trial_algorithm(trial, self.cluster, self.tune)
        key = _params_key(algorithm, params)
        if key in self.seen:
            attrs, value = self.seen[key]
            return _finish(trial, attrs, value)
        result = cluster_features(
            self.features,
            algorithm,
            params,
            backend=self.backend,
            seed=self.seed,
            shape=self.shape,
            compression=self.search_rows.compression,
        )
        scores = self.search_rows.scores(result.labels)
        if scores is None:
            scores = configured_metrics(
                self.features,
                result.labels,
                self.metrics,
                seed=self.seed,
                compression=self.search_rows.compression,
                queries=self.queries,
            )
        attrs = _degenerate(scores, self.tune)
        value = scores[self.tune.objective]
        self.seen[key] = (attrs, value)
        if self.keep_best and value is not None and "reason" not in attrs:
            self._keep(key, float(value), result)
        return _finish(trial, attrs, value)

    def clustering_of(self, algorithm: str, params: Mapping[str, Any]) -> ClusterResult | None:
        """The kept clustering, when it is the one of these parameters."""
        if self.best is None or self.best[0] != _params_key(algorithm, params):
            return None
        return self.best[2]

    def _keep(self, key: tuple, value: float, result: ClusterResult) -> None:
        """Keep the first trial of the best value, the one ``study.best_trial`` names."""
        if self.best is not None:
            better = value > self.best[1] if MAXIMISE[self.tune.objective] else value < self.best[1]
            if not better:
                return
        self.best = (key, value, result)


def _params_key(algorithm: str, params: Mapping[str, Any]) -> tuple:
    return (algorithm, *sorted(params.items()))


def _degenerate(scores: Mapping[str, Any], tune: TuneConfig) -> dict[str, Any]:
    """The trial's user attributes, with the reason when its clustering is degenerate."""
    objective = tune.objective
    attrs = {"n_clusters": scores["n_clusters"], "noise_fraction": scores["noise_fraction"]}
    if scores[objective] is None:
        attrs["reason"] = scores.get("undefined_reason", f"{objective} undefined")
    elif scores["n_clusters"] > tune.max_clusters:
        attrs["reason"] = f"{scores['n_clusters']} clusters > tune.max_clusters"
    elif scores["noise_fraction"] > tune.max_noise_fraction:
        attrs["reason"] = f"noise fraction {scores['noise_fraction']:.3g} > tune.max_noise_fraction"
    return attrs


def _finish(trial: optuna.Trial, attrs: dict[str, Any], value: float | None) -> float:
    """Record the outcome on the trial; a degenerate clustering (a reason) prunes it."""
    for name, attr in attrs.items():
        trial.set_user_attr(name, attr)
    if value is None or "reason" in attrs:
        raise optuna.TrialPruned(attrs.get("reason", "score undefined"))
    return float(value)


def tune_clustering(
    features: np.ndarray,
    shape: tuple[int, int],
    cluster: ClusterConfig,
    tune: TuneConfig,
    *,
    backend: str = "sklearn",
    seed: int = 0,
    metrics: MetricsConfig | None = None,
    storage: optuna.storages.BaseStorage | str | None = None,
    study_name: str = "segclust",
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
    reuse: bool = True,
) -> TuneResult:
    """Run the study on ``features`` (N×d of an H×W image) and refit the best trial.

    ``tune`` says how many trials, on how many points, over which space, for which
    objective; ``tune.algorithms`` (two or more) makes the algorithm part of the search,
    otherwise ``cluster.algorithm`` is tuned and its other parameters keep ``cluster``'s.
    ``storage``: an Optuna storage, or a URL (an RDB) or a file path (a journal file). With
    ``tune.workers`` > 1 it must be a URL or a path, which every trial process opens
    (:func:`parallel_trials`); the serial default gives the same trials on every run.

    ``reuse``: the trials share what does not depend on them (:func:`make_objective`), and a
    search on every pixel keeps its best trial's clustering as the refit (serial trials).
    ``reuse=False`` recomputes all of it, as before: the same result, slower
    (benchmarks/tune_speed.py times both).
    """
    metrics = metrics or MetricsConfig()
    search, subset, found = _plan(
        features, _planning_algorithm(cluster, tune), tune.max_points, seed
    )
    search_x = features if subset is None else features[subset]
    if tune.alternatives() is None:  # one clear refusal, not a study of failed trials
        get_algorithm(cluster.algorithm).check_size(search_x.shape[0])
    if tune.workers > 1 and not isinstance(storage, str):
        raise ValueError("tune.workers > 1 needs a storage the workers share: a URL or a path")
    study = optuna.create_study(
        direction="maximize" if MAXIMISE[tune.objective] else "minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        storage=open_storage(storage) if isinstance(storage, str) else storage,
        study_name=study_name,
    )
    search_setup = _StudySetup(
        features=search_x,
        cluster=cluster,
        tune=tune,
        backend=backend,
        seed=seed,
        metrics=metrics,
        shape=shape if subset is None else None,
        compression=_trial_compression(found, features.shape[0]),
        reuse=reuse,
    )
    objective = None
    if tune.workers > 1:
        assert isinstance(storage, str)
        parallel_trials(search_setup, study_name, storage, callbacks)
        shared = optuna.load_study(study_name=study_name, storage=open_storage(storage))
        study = optuna.create_study(direction=shared.direction, study_name=study_name)
        study.add_trials(shared.get_trials())  # in memory: the result outlives the storage
    else:
        objective = search_setup.run(study, tune.n_trials, callbacks)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return TuneResult(study, None, None, search, int(search_x.shape[0]))
    algorithm, best_params = trial_algorithm(study.best_trial, cluster, tune)
    refit_rule = get_algorithm(algorithm).refit_rule
    if search == "subsample" and refit_rule is not None:
        best_params = refit_rule(
            best_params, search_x.shape[0], features.shape[0], features.shape[1]
        )
    kept = None
    if reuse and objective is not None and subset is None:
        kept = objective.clustering_of(algorithm, best_params)
    queries = _query_sample(features, metrics, seed) if reuse else None
    if kept is not None:  # the best trial clustered every pixel: it is the refit
        best = score_clustering(
            features, shape, algorithm, kept, seed=seed, metrics=metrics, queries=queries
        )
    else:
        best_cluster = ClusterConfig(algorithm=algorithm, params=best_params)
        best = cluster_and_score(
            features,
            shape,
            best_cluster,
            backend=backend,
            seed=seed,
            metrics=metrics,
            queries=queries,
        )
    return TuneResult(study, best_params, best, search, int(search_x.shape[0]), algorithm)


@dataclass(frozen=True)
class _StudySetup:
    """Everything a process needs to run trials of one study (picklable, for workers)."""

    features: np.ndarray
    cluster: ClusterConfig
    tune: TuneConfig
    backend: str
    seed: int
    metrics: MetricsConfig
    shape: tuple[int, int] | None
    compression: RowCompression | str | None = "auto"  # compress_rows(features), if known
    reuse: bool = True

    def run(
        self,
        study: optuna.Study,
        n_trials: int,
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
    ) -> _Objective:
        """Run ``n_trials`` trials; back: the objective, which holds the best clustering."""
        objective = make_objective(
            self.features,
            self.cluster,
            self.tune,
            backend=self.backend,
            seed=self.seed,
            metrics=self.metrics,
            shape=self.shape,
            compression=self.compression,
            reuse=self.reuse,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # estimator warnings are recorded per trial instead
            study.optimize(objective, n_trials=n_trials, catch=TRIAL_ERRORS, callbacks=callbacks)
        return objective


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """An Optuna storage from a URL (``sqlite:///x.db``, ``postgresql://...``: an RDB) or a
    file path (a journal file, Optuna's storage for processes on one file system)."""
    if "://" in storage:
        return optuna.storages.get_storage(storage)
    backend = optuna.storages.journal.JournalFileBackend(storage)
    return optuna.storages.JournalStorage(backend)


def _trial_worker(
    setup: _StudySetup, study_name: str, storage: str, n_trials: int, worker: int
) -> None:
    """One process's share of a parallel study: load it from the shared storage and run."""
    from threadpoolctl import threadpool_limits

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # each worker's sampler is seeded apart, or all of them would propose the same points
    sampler = optuna.samplers.TPESampler(seed=setup.seed + worker)
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage), sampler=sampler)
    with threadpool_limits(limits=1):
        setup.run(study, n_trials)


def parallel_trials(
    setup: _StudySetup,
    study_name: str,
    storage: str,
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
) -> None:
    """Run ``setup.tune.n_trials`` trials of a study on ``setup.tune.workers`` processes.

    Optuna's distributed optimisation: every worker process loads the same study from the
    shared ``storage`` (a journal file or an RDB) and runs its share of the trials; the
    storage serialises them. Not reproducible: TPE in each worker conditions on the trials
    finished so far, which depends on timing. ``callbacks`` run once at the end, per trial.
    """
    from joblib import Parallel, delayed

    workers, n_trials = setup.tune.workers, setup.tune.n_trials
    shares = [n_trials // workers + (w < n_trials % workers) for w in range(workers)]
    Parallel(n_jobs=workers)(
        delayed(_trial_worker)(setup, study_name, storage, share, w)
        for w, share in enumerate(shares)
        if share
    )
    if callbacks:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
        for trial in study.get_trials(deepcopy=False):
            for callback in callbacks:
                callback(study, trial)


def _planning_algorithm(cluster: ClusterConfig, tune: TuneConfig) -> str:
    """The algorithm whose needs decide the search set: one on the pixel grid wins (every
    pixel), then one without weights (no distinct-row compression)."""
    alternatives = tune.alternatives()
    if alternatives is None:
        return cluster.algorithm
    grid = [a for a in alternatives if get_algorithm(a).needs_grid]
    unweighted = [a for a in alternatives if not get_algorithm(a).sample_weight]
    return (grid or unweighted or list(alternatives))[0]


def trials_table(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: number, state, objective value and best so far, params, reason.

    Timings are left out on purpose: the table is a DVC plot and must be byte-identical
    when the study is rerun with the same parameters.
    """
    param_names = sorted({name for t in study.trials for name in t.params})
    better = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    rows = []
    best = None
    for trial in study.trials:
        value = trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None
        if value is not None:
            best = value if best is None else better(best, value)
        row: dict[str, Any] = {
            "trial": trial.number,
            "state": trial.state.name,
            "value": "" if value is None else f"{value:.6g}",
            "best_value": "" if best is None else f"{best:.6g}",
        }
        for name in param_names:
            v = trial.params.get(name, "")
            row[name] = f"{v:.6g}" if isinstance(v, float) else v
        row["n_clusters_found"] = trial.user_attrs.get("n_clusters", "")
        row["noise_fraction"] = trial.user_attrs.get("noise_fraction", "")
        row["reason"] = trial.user_attrs.get("reason", "")
        rows.append(row)
    return rows


class _RecordingBackend(optuna.storages.journal.BaseJournalBackend):
    """Optuna's journal operations kept in memory, in order (Optuna's public backend API)."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
        return self.logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.logs.extend(logs)


def study_journal_bytes(study: optuna.Study) -> bytes:
    """The finished study as an Optuna journal file whose bytes depend only on its trials.

    Optuna stamps every journal line with a random worker id and wall-clock times, which
    would make DVC see a new output on every run. Here the trials are copied into a
    JournalStorage (one create-trial line each) with no start or end times and one fixed
    worker id, so the same parameters give the same file. Trial durations are in the stage's timings
    file instead. ``optuna.load_study`` reads the file as any journal.
    """
    backend = _RecordingBackend()
    storage = optuna.storages.JournalStorage(backend)
    study_id = storage.create_new_study(list(study.directions), study.study_name)
    for name, value in sorted(study.user_attrs.items()):
        storage.set_study_user_attr(study_id, name, value)
    for trial in study.get_trials(deepcopy=True):
        trial.datetime_start = None
        trial.datetime_complete = None
        storage.create_new_trial(study_id, template_trial=trial)
    lines = []
    for log in backend.logs:
        entry = {**log, "worker_id": "segclust"}  # one fixed writer, not a random uuid
        lines.append(json.dumps(entry, separators=(",", ":"), sort_keys=True))
    return ("\n".join(lines) + "\n").encode()
