"""Would Optuna pruners stop losing KMeans trials early without changing the winner?

Issue 22 asked whether trials can stop early when they cannot win. A KMeans trial is
``n_init`` k-means++ starts and the best by inertia; run as one-start fits sharing one
``RandomState`` the starts are exactly those of ``KMeans(n_init=...)`` (checked here: with
no pruner every trial value equals the tune stage's). After the first start a trial
reports the silhouette of that start's clustering (scored as trials are) and an Optuna
pruner may stop it, saving the other starts and the final score.

For the first ``--images`` photos of a BSDS500-layout folder (features as the ``features``
stage makes them, the committed ``params.yaml``), one table: per pruner, on how many photos
the study picks the same k as without pruning, the trials' CPU seconds per photo, the KMeans
starts fitted and the trials pruned per photo. There is no bound on a clustering's
silhouette from its first start, so any pruner here is a heuristic.

    python benchmarks/tune_pruning.py --images 16

Nothing here is a test: numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import optuna
from sklearn.cluster import KMeans

from segclust import tuning
from segclust.compression import RowCompression
from segclust.config import Config, load_config
from segclust.features import feature_matrix
from segclust.imageio import list_images, read_image
from segclust.labels import relabel_by_size
from segclust.metrics import configured_metrics
from segclust.seeding import KMeansPlusPlus
from segclust.smoothing import smooth_image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BSDS = ROOT.parent / "shared" / "data" / "bsds500"
PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "MedianPruner(n_startup_trials=2)": lambda: optuna.pruners.MedianPruner(2, 0),
    "MedianPruner(n_startup_trials=5)": lambda: optuna.pruners.MedianPruner(5, 0),
    "PercentilePruner(75, n_startup_trials=2)": lambda: optuna.pruners.PercentilePruner(75, 2, 0),
}


def same_clustering(labels: np.ndarray, best: np.ndarray) -> bool:
    """scikit-learn's test for keeping the earlier start: ``labels`` map onto ``best``."""
    pairs = labels.astype(np.int64) * (int(best.max()) + 1) + best
    return np.count_nonzero(np.bincount(pairs)) == np.count_nonzero(np.bincount(labels))


def pruned_study(x: np.ndarray, config: Config, pruner: optuna.pruners.BasePruner) -> dict:
    """The tune stage's KMeans study with starts fitted one by one and ``pruner`` after the
    first; back: the study, its trials' CPU seconds and the starts fitted."""
    tune, cluster, seed = config.tune, config.cluster, config.seed
    _, subset, found = tuning._plan(x, "kmeans", tune.max_points, seed)
    rows = x if subset is None else x[subset]
    compression = tuning._trial_compression(found, x.shape[0])
    objective = tuning.make_objective(
        rows, cluster, tune, backend="sklearn", seed=seed, metrics=config.metrics,
        compression=compression,
    )  # fmt: skip
    search = objective.search_rows.compression
    fit_x, inverse, weight = rows, None, None
    if isinstance(search, RowCompression):
        fit_x, inverse, weight = search.rows, search.inverse, search.counts.astype(np.float64)
    seen: dict[int, tuple[float, float | None]] = {}
    starts = [0]

    def score(labels: np.ndarray) -> float:
        labels = relabel_by_size((labels if inverse is None else labels[inverse]).astype(np.int32))
        found = objective.search_rows.scores(labels) or configured_metrics(
            rows, labels, objective.metrics, seed=seed, compression=search,
            queries=objective.queries,
        )  # fmt: skip
        return found["silhouette"]

    def starts_of(trial: optuna.Trial, params: dict[str, Any]) -> tuple[float, float | None]:
        """(first start's value, trial value or None when pruned after the first start)."""
        state, best, best_start = np.random.RandomState(seed), None, 0
        for start in range(params["n_init"]):
            fit = KMeans(
                params["n_clusters"], init=KMeansPlusPlus(weight), n_init=1,
                max_iter=params["max_iter"], random_state=state,
            ).fit(fit_x, sample_weight=weight)  # fmt: skip
            starts[0] += 1
            if best is None or (
                fit.inertia_ < best.inertia_ and not same_clustering(fit.labels_, best.labels_)
            ):
                best, best_start = fit, start
            if start == 0:
                first = score(best.labels_)
                trial.report(first, 0)
                if trial.should_prune():
                    return first, None
        return first, first if best_start == 0 else score(best.labels_)

    def run(trial: optuna.Trial) -> float:
        _, params = tuning.trial_algorithm(trial, cluster, tune)
        k = params["n_clusters"]
        if k in seen:
            first, value = seen[k]
            trial.report(first, 0)
        else:
            first, value = seen[k] = starts_of(trial, params)
        if value is None:
            raise optuna.TrialPruned()
        return value

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner
    )
    started = time.process_time()
    study.optimize(run, n_trials=tune.n_trials)
    return {"study": study, "cpu": time.process_time() - started, "starts": starts[0]}


def stage_study(x: np.ndarray, config: Config) -> dict:
    """The tune stage's own trials (one ``KMeans(n_init=...)`` fit each) and their CPU
    seconds, to check the start-by-start study against."""
    tune, seed = config.tune, config.seed
    _, subset, found = tuning._plan(x, "kmeans", tune.max_points, seed)
    setup = tuning._StudySetup(
        features=x if subset is None else x[subset], cluster=config.cluster, tune=tune,
        backend="sklearn", seed=seed, metrics=config.metrics, shape=None,
        compression=tuning._trial_compression(found, x.shape[0]),
    )  # fmt: skip
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    started = time.process_time()
    setup.run(study, tune.n_trials)
    return {"values": [t.value for t in study.trials], "cpu": time.process_time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--bsds", type=Path, default=DEFAULT_BSDS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_config(ROOT / "params.yaml")
    paths = list_images(args.bsds / "images", None, (".jpg", ".png"))[: args.images]
    rows: dict[str, list[dict]] = {name: [] for name in PRUNERS}
    exact, stage_cpu = 0, []
    for path in paths:
        image = read_image(path)
        smooth = smooth_image(image, config.smoothing)
        x, _ = feature_matrix(smooth, config.features, config.scaler)
        for name, make in PRUNERS.items():
            run = pruned_study(x, config, make())
            trials = run["study"].trials
            rows[name].append(
                {
                    "k": run["study"].best_trial.params["n_clusters"],
                    "cpu": run["cpu"],
                    "starts": run["starts"],
                    "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
                }
            )
            if name == "none":
                stage = stage_study(x, config)
                exact += [t.value for t in trials] == stage["values"]
                stage_cpu.append(stage["cpu"])
        print(path.stem, {n: r[-1]["k"] for n, r in rows.items()}, file=sys.stderr)
    n = len(paths)
    lines = [
        f"Optuna pruners after the first KMeans start, {n} BSDS photos, committed params.yaml, "
        f"one thread: `python {' '.join(sys.argv)}`. Without a pruner the start-by-start "
        f"study gives the tune stage's trial values on {exact}/{n} photos. CPU seconds, "
        "not wall time: the machine may be shared.",
        "",
        "| pruner | same k as without | trials' CPU s/photo | KMeans starts/photo "
        "| trials pruned/photo |",
        "|---|---|---|---|---|",
        f"| the tune stage (one fit of n_init starts per trial) | {n}/{n} | "
        f"{np.mean(stage_cpu):.3f} | 28.0 | 0.0 |",
    ]
    for name, found in rows.items():
        same = sum(a["k"] == b["k"] for a, b in zip(found, rows["none"], strict=True))
        lines.append(
            f"| starts one by one, {name} | {same}/{n} | "
            f"{np.mean([r['cpu'] for r in found]):.3f} | "
            f"{np.mean([r['starts'] for r in found]):.1f} | "
            f"{np.mean([r['pruned'] for r in found]):.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
