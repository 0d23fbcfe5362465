"""Stage ``tune``: an Optuna study per image over the configured algorithm's parameters.

Outputs, per image ``<stem>``:
- ``data/tuned/<stem>.npy`` best labels at full resolution, ``data/tuned/<stem>.yaml``
  best parameters (and how the search was done);
- ``data/studies/<stem>.journal`` the Optuna study (a JournalStorage file whose bytes depend
  only on the trials, see :func:`segclust.tuning.study_journal_bytes`; load it with
  ``optuna.load_study``);
- ``plots/trials/<stem>.csv`` trial vs objective value (a DVC plot) and
  ``plots/history/<stem>.png`` Optuna's optimisation history;
- ``metrics/tune.json`` the summary of the best scores over images, and
  ``plots/images/tune.csv`` the best scores and search of every image.

Wall times go to ``metrics/timings/tune.json``, which DVC does not track (see
:func:`segclust.stages._common.write_timings`).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import optuna
import yaml
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from segclust.backends import resolve_backend
from segclust.config import Config
from segclust.parallel import worker_count
from segclust.report import rounded
from segclust.stages._common import (
    FEATURES_DIR,
    HISTORY_DIR,
    METRICS_DIR,
    STUDIES_DIR,
    TRIALS_DIR,
    TUNED_DIR,
    atomic_dir,
    describe,
    feature_entries,
    feature_inputs,
    map_cached,
    run_stage,
    save_npy,
    summarise,
    write_json,
    write_table,
    write_timings,
)
from segclust.tuning import study_journal_bytes, trials_table, tune_clustering

log = logging.getLogger("segclust")
TABLE_FIRST = ("status", "algorithm", "n_clusters", "silhouette")  # plots/images/tune.csv's


def tune_image(
    entry: tuple[str, dict], config: Config, show_trials: bool, dirs: dict[str, Path]
) -> tuple[str, dict, float, int, str]:
    """One image's study, its outputs written into ``dirs``; back: (stem, scores, seconds,
    log level, log line), so that the stage logs in order whichever worker ran it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stem, sidecar = entry
    algorithm = config.cluster.algorithm
    started = time.perf_counter()
    features = np.load(FEATURES_DIR / f"{stem}.npy")
    storage = _study_storage(config, dirs["studies"], stem)
    with tqdm(
        total=config.tune.n_trials,
        desc=f"  {stem}",
        unit="trial",
        leave=False,
        disable=None if show_trials else True,
    ) as bar:
        result = tune_clustering(
            features,
            (sidecar["height"], sidecar["width"]),
            config.cluster,
            config.tune,
            backend=config.backend,
            seed=config.seed,
            metrics=config.metrics,
            storage=storage,
            study_name=stem,
            callbacks=[lambda _study, _trial: bar.update()],
        )
    if storage is not None and "://" not in storage:
        Path(storage).unlink()  # the live journal; the result holds the study in memory
    (dirs["studies"] / f"{stem}.journal").write_bytes(study_journal_bytes(result.study))
    rows = trials_table(result.study)
    (dirs["trials"] / f"{stem}.csv").write_text(_csv(rows), encoding="utf-8")
    _save_history(
        result.study,
        dirs["history"] / f"{stem}.png",
        stem,
        config.render.dpi,
        config.tune.objective,
    )
    states = [r["state"] for r in rows]
    scores: dict = {
        "algorithm": result.algorithm or algorithm,
        "search": result.search,
        "search_points": result.search_points,
        "trials_complete": states.count("COMPLETE"),
        "trials_pruned": states.count("PRUNED"),
        "trials_failed": states.count("FAIL"),
        "feature_device": sidecar.get("device", "cpu"),
    }
    if result.best is None:
        scores["status"] = "no valid clustering in any trial"
        level = logging.WARNING
        line = (
            f"{stem}: no trial gave a valid clustering ({scores['trials_pruned']} pruned, "
            f"{scores['trials_failed']} failed); widen tune.space.{algorithm}"
        )
    else:
        save_npy(dirs["tuned"] / f"{stem}.npy", result.best.labels)
        best_space = config.tune.space_for(result.algorithm)
        best = {
            "algorithm": result.algorithm,
            **result.best_params,
            "search": result.search,
            "search_points": result.search_points,
        }
        (dirs["tuned"] / f"{stem}.yaml").write_text(
            yaml.safe_dump(best, sort_keys=True), encoding="utf-8"
        )
        metrics = {k: v for k, v in result.best.metrics.items() if k != "notes"}
        scores["objective"] = config.tune.objective
        scores["search_value"] = rounded(result.study.best_value)
        scores.update(
            metrics,
            status="ok",
            **{f"best_{k}": result.best_params[k] for k in best_space},
        )
        level = logging.DEBUG  # one line per photo only with SEGCLUST_LOG=debug
        line = f"{stem}: best {result.best_params} after {len(rows)} trials: {describe(metrics)}"
    return stem, scores, round(time.perf_counter() - started, 3), level, line


def _study_storage(config: Config, studies: Path, stem: str) -> str | None:
    """Where one image's trial workers share its study (``tune.workers`` > 1), else None.

    ``execution.study_storage`` (an RDB URL, whose earlier study of this image is replaced),
    or a journal file in the stage's temporary output folder. Either can be watched live
    with ``optuna-dashboard`` while the trials run.
    """
    if config.tune.workers == 1:
        return None
    url = config.execution.study_storage
    if url is None:
        path = (studies / f".{stem}.live.journal").resolve()
        log.debug("%s: %d trial workers share %s", stem, config.tune.workers, path)
        return str(path)
    try:
        optuna.delete_study(study_name=stem, storage=url)
    except KeyError:
        pass  # no earlier study of this image
    log.debug("%s: %d trial workers share study %r at %s", stem, config.tune.workers, stem, url)
    return url


def main(config: Config) -> None:
    algorithm = config.cluster.algorithm
    alternatives = config.tune.alternatives()
    used = [str(resolve_backend(config.backend, name)) for name in alternatives or (algorithm,)]
    if not alternatives:
        config.tune.space_for(algorithm)  # fail early when nothing is tunable
    entries = feature_entries()
    per_image: dict[str, dict] = {}
    timings: dict[str, float] = {}
    with (
        atomic_dir(TUNED_DIR) as tuned,
        atomic_dir(STUDIES_DIR) as studies,
        atomic_dir(TRIALS_DIR) as trials_dir,
        atomic_dir(HISTORY_DIR) as history_dir,
        logging_redirect_tqdm(),
    ):
        dirs = {"tuned": tuned, "studies": studies, "trials": trials_dir, "history": history_dir}
        execution = config.execution
        if config.tune.workers > 1:  # the cores go to one image's trials at a time
            execution = replace(execution, jobs=1, engine="joblib", address=None)
        show_trials = (
            execution.engine == "joblib" and worker_count(execution.jobs, len(entries)) == 1
        )
        for stem, scores, seconds, level, line in map_cached(
            "tune",
            config,
            entries,
            inputs_of=feature_inputs,
            image_fn=partial(tune_image, config=config, show_trials=show_trials),
            outs=dirs,
            extra={"backend": used},
            execution=execution,
        ):
            per_image[stem] = scores
            timings[stem] = seconds
            log.log(level, "%s", line)
    write_table("tune", per_image, first=TABLE_FIRST)
    write_json(METRICS_DIR / "tune.json", summary(per_image))
    write_timings("tune", timings)


def summary(per_image: dict[str, dict]) -> dict:
    """``metrics/tune.json``: the best scores of the images with a valid trial, and counts;
    every field from the images' rows (see :mod:`segclust.stages.gather`)."""
    out = summarise({k: v for k, v in per_image.items() if v["status"] == "ok"})
    out["images"] = len(per_image)
    out["images_without_valid_trial"] = sum(v["status"] != "ok" for v in per_image.values())
    return out


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def history_values(study: optuna.Study) -> tuple[list[int], list[float], list[float]]:
    """(trial numbers, values, best value so far) of the study's complete trials, as Optuna's
    optimisation-history plot draws them."""
    better = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    trials, values, best = [], [], []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        trials.append(trial.number)
        values.append(float(trial.value))
        best.append(values[-1] if not best else better(best[-1], values[-1]))
    return trials, values, best


def _save_history(
    study: optuna.Study, path: Path, stem: str, dpi: int, objective: str = "silhouette"
) -> None:
    """Optuna's optimisation history as its matplotlib flavour draws it (the trials' values,
    the best so far, a legend), drawn into an array (:func:`segclust.render.history_picture`)
    and encoded by OpenCV: a matplotlib figure per photo was about a fifth of the stage."""
    from segclust.render import history_picture, png_bytes

    trials, values, best = history_values(study)
    picture = history_picture(
        trials,
        values,
        best,
        title=f"{stem}: optimisation history",
        ylabel=objective.replace("_", "-"),
        dpi=dpi,
    )
    path.write_bytes(png_bytes(picture))


if __name__ == "__main__":
    run_stage("tune", main)
