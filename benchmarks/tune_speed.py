"""The tune stage's search per photo, before and after its trials shared the image's
prepared data (issue 22), with Felzenszwalb-Huttenlocher timed in the same run.

For the first ``--images`` photos of a BSDS500-layout folder (test split by default) this
makes the features as the ``features`` stage does (not timed), then times, on one thread,
``--repeats`` times in a rotating order:

* ``before``: :func:`segclust.tuning.tune_clustering` with ``reuse=False`` (every trial
  recomputes what does not depend on it, the best trial is refitted) and the registry's
  KMeans seeded by scikit-learn's own k-means++ (:func:`sklearn_seeding`): the code path
  before issue 22;
* ``now``: ``reuse=True`` (the default) and :mod:`segclust.seeding`'s k-means++;
* FH: ``skimage.segmentation.felzenszwalb(rgb, scale=500, sigma=0.8, min_size=200)``.

Both tune paths run the committed ``params.yaml`` (the recommended setting: KMeans on Lab
after mean-shift, k by silhouette, 20 trials) and include the winner's refit and reported
scores. ``identical``: the two studies give the same journal bytes and trials table, and
the same best parameters, labels and reported scores. The stage adds its outputs per photo
(journal, trials table, history plot), timed apart here for ``now``.

    python benchmarks/tune_speed.py --images 8

Nothing here is a test: numbers are measured, not asserted. Per photo the fastest of the
repeats counts (the machine may be shared); the table gives their mean over photos.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import optuna

from segclust.algorithms import ALGORITHMS, FitContext
from segclust.config import Config, load_config
from segclust.features import feature_matrix
from segclust.imageio import list_images, read_image
from segclust.pixels import to_display_rgb
from segclust.smoothing import smooth_image
from segclust.stages.tune import _save_history
from segclust.tuning import TuneResult, study_journal_bytes, trials_table, tune_clustering

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BSDS = ROOT.parent / "shared" / "data" / "bsds500"


def _kmeans_before(p: Mapping[str, Any], c: FitContext) -> Any:
    """The registry's KMeans factory before issue 22: scikit-learn's own k-means++."""
    from sklearn.cluster import KMeans

    return KMeans(
        n_clusters=p["n_clusters"], n_init=p["n_init"], max_iter=p["max_iter"], random_state=c.seed
    )


@contextlib.contextmanager
def sklearn_seeding() -> Iterator[None]:
    """The registry's KMeans entry with :func:`_kmeans_before` while the block runs."""
    entry = ALGORITHMS["kmeans"]
    ALGORITHMS["kmeans"] = dataclasses.replace(entry, sklearn=_kmeans_before)  # type: ignore[index]
    try:
        yield
    finally:
        ALGORITHMS["kmeans"] = entry  # type: ignore[index]


def tune_runner(x: np.ndarray, shape: tuple[int, int], config: Config, before: bool) -> Callable:
    """One photo's study as the tune stage runs it, before issue 22 or now."""

    def run() -> TuneResult:
        with sklearn_seeding() if before else contextlib.nullcontext():
            return tune_clustering(
                x,
                shape,
                config.cluster,
                config.tune,
                backend="sklearn",
                seed=config.seed,
                metrics=config.metrics,
                study_name="photo",
                reuse=not before,
            )

    return run


def fh_runner(rgb: np.ndarray) -> Callable:
    from skimage.segmentation import felzenszwalb

    return lambda: felzenszwalb(rgb, scale=500, sigma=0.8, min_size=200)


def same_result(a: TuneResult, b: TuneResult) -> bool:
    """Same study (journal bytes, trials table) and the same winner and reported scores."""
    return (
        study_journal_bytes(a.study) == study_journal_bytes(b.study)
        and trials_table(a.study) == trials_table(b.study)
        and a.best_params == b.best_params
        and (a.search, a.search_points, a.algorithm) == (b.search, b.search_points, b.algorithm)
        and np.array_equal(a.best.labels, b.best.labels)
        and a.best.metrics == b.best.metrics
    )


def output_seconds(result: TuneResult, config: Config) -> float:
    """What the stage writes per photo besides the labels: journal, trials, history plot."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        study_journal_bytes(result.study)
        trials_table(result.study)
        _save_history(result.study, Path(folder) / "h.png", "photo", config.render.dpi)
    return time.perf_counter() - started


def measure(path: Path, config: Config, repeats: int) -> dict[str, Any]:
    image = read_image(path)
    x, _ = feature_matrix(smooth_image(image, config.smoothing), config.features, config.scaler)
    shape = image.shape[:2]
    runs = {
        "before": tune_runner(x, shape, config, before=True),
        "now": tune_runner(x, shape, config, before=False),
        "fh": fh_runner(to_display_rgb(image)),
    }
    names = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    results: dict[str, Any] = {}
    for r in range(repeats):
        for name in names[r % 3 :] + names[: r % 3]:  # rotate who goes first
            started = time.perf_counter()
            results[name] = runs[name]()
            seconds[name].append(time.perf_counter() - started)
    return {
        "image": path.stem,
        **{name: min(values) for name, values in seconds.items()},
        "outputs": output_seconds(results["now"], config),
        "identical": same_result(results["before"], results["now"]),
        "k": results["now"].best_params.get("n_clusters"),
        "search": results["now"].search,
    }


def table(rows: list[dict[str, Any]], command: str) -> str:
    fh = float(np.mean([r["fh"] for r in rows]))
    same = sum(r["identical"] for r in rows)
    lines = [
        f"Tune search per photo, {len(rows)} BSDS photos, one thread, fastest of the repeats "
        f"per photo, mean over photos: `{command}`. Tune = `tune_clustering` (20 trials, "
        "refit and reported scores) on the committed params.yaml. Load average at the end: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
        "",
        "| path | s/photo | × FH | identical to before |",
        "|---|---|---|---|",
        f"| FH (felzenszwalb scale=500, sigma=0.8, min_size=200) | {fh:.3f} | 1.00 | |",
    ]
    before = float(np.mean([r["before"] for r in rows]))
    now = float(np.mean([r["now"] for r in rows]))
    lines.append(f"| tune, before issue 22 | {before:.3f} | {before / fh:.2f} | |")
    lines.append(
        f"| tune, now | {now:.3f} | {now / fh:.2f} | "
        f"{'yes' if same == len(rows) else 'NO'} ({same}/{len(rows)}) |"
    )
    outputs = float(np.mean([r["outputs"] for r in rows]))
    lines += [
        "",
        f"Before / now: {before / now:.2f}×. The stage also writes per photo the journal, the "
        f"trials table and the history plot: {outputs:.3f} s (now).",
        "",
        "| photo | search | k | before s | now s | FH s | identical |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['image']} | {r['search']} | {r['k']} | {r['before']:.3f} | {r['now']:.3f} "
            f"| {r['fh']:.3f} | {'yes' if r['identical'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="photos (the first N)")
    parser.add_argument("--bsds", type=Path, default=DEFAULT_BSDS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_config(ROOT / "params.yaml")
    paths = list_images(args.bsds / "images", None, (".jpg", ".png"))[: args.images]
    rows = []
    for path in paths:
        rows.append(measure(path, config, args.repeats))
        print(f"{path.stem}: {rows[-1]}", file=sys.stderr)
    text = table(rows, "python " + " ".join(sys.argv))
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
