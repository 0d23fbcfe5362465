"""The sampled silhouette before and after weighting the reference by its distinct rows.

The ``cluster`` stage and the ``tune`` stage's best trial each score a photo with the sampled
silhouette (5,000 queries against a 20,000-point reference, ``metrics:``), and every trial
scores one more (1,000 against 5,000, ``tune:``). A profile of both stages on BSDS photos
(cProfile, ``benchmarks/stage_costs.py --profile``) put about 40 % of their time in its
distance sums. Queries were already computed once per distinct row; a photo smoothed by mean
shift repeats its colours in the reference too (5,600-15,000 distinct rows in 20,000), so the
distances are now computed once per distinct (cluster, row) and weighted by its count.

For each of the first ``--images`` photos of a BSDS500-layout folder: the features of
``+experiment=best`` (mean shift, CIE Lab, standard scaling), KMeans with k = 4 as the
``cluster`` stage fits it, then both settings scored by the implementation at ``BEFORE``
(read from Git) and by the working tree's, one after the other on each photo, best of
``--repeats``. The values must
agree within 1e-12 (asserted; the test suite checks the same on synthetic rows).

    python benchmarks/silhouette_rows.py --bsds ../shared/data/bsds500 --images 16 \\
        --out benchmarks/results/silhouette_rows.md

Nothing here is a test: numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from git_source import module_at

from segclust import silhouette
from segclust.clustering import cluster_features
from segclust.config import Config
from segclust.features import feature_matrix
from segclust.imageio import read_image
from segclust.presets import compose_params
from segclust.smoothing import smooth_image

BEFORE = "cadb2ed"
SETTINGS = {"metrics (cluster, tune's best)": (5000, 20000), "a tune trial": (1000, 5000)}


def photo_features(path: Path, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The photo's feature matrix and the ``cluster`` stage's KMeans labels."""
    smoothed = smooth_image(read_image(path), config.smoothing)
    x, _ = feature_matrix(smoothed, config.features, config.scaler, None)
    labels = cluster_features(x, "kmeans", config.cluster.params, seed=config.seed).labels
    return x, labels


def best_seconds(module, x, labels, n_query, n_reference, repeats) -> tuple[float, float]:
    queries = module.draw_queries(x, n_query, 0)
    best, value = np.inf, np.nan
    for _ in range(repeats):
        started = time.perf_counter()
        value, _ = module.silhouette_sampled(
            x, labels, n_query=n_query, n_reference=n_reference, seed=0, queries=queries
        )
        best = min(best, time.perf_counter() - started)
    return best, value


def distinct_reference_rows(x, labels, n_reference) -> int:
    """Distinct (cluster, row) pairs among a reference of that size (for the table)."""
    rng = np.random.default_rng(0)
    index = rng.choice(x.shape[0], size=min(n_reference, x.shape[0]), replace=False)
    keyed = np.column_stack([labels[index], x[index].astype(np.float64).view(np.int64)])
    return int(np.unique(keyed, axis=0).shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bsds", type=Path, required=True)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    before = module_at(BEFORE, "src/segclust/silhouette.py")
    config = Config.from_dict(compose_params(["+experiment=best"]))
    paths = sorted((args.bsds / "images").glob("*.jpg"))[: args.images]
    totals = {name: [0.0, 0.0] for name in SETTINGS}
    rows = []
    for path in paths:
        x, labels = photo_features(path, config)
        cells = [path.stem, str(distinct_reference_rows(x, labels, 20000))]
        for name, (n_query, n_reference) in SETTINGS.items():
            old, old_value = best_seconds(before, x, labels, n_query, n_reference, args.repeats)
            new, new_value = best_seconds(silhouette, x, labels, n_query, n_reference, args.repeats)
            assert abs(new_value - old_value) <= 1e-12, (path, name, old_value, new_value)
            totals[name][0] += old
            totals[name][1] += new
            cells += [f"{old * 1000:.1f}", f"{new * 1000:.1f}", f"{abs(new_value - old_value):.0e}"]
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    n = len(paths)
    lines = [
        f"Command: `python benchmarks/silhouette_rows.py {' '.join(sys.argv[1:])}`, one core,",
        f"Python {platform.python_version()}, NumPy {np.__version__}. The first {n} photos of",
        f"`{args.bsds.name}`, `+experiment=best` features, KMeans k = 4; before = {BEFORE}",
        "(read from Git), after = this tree; best of "
        f"{args.repeats}, one after the other on each photo. Values agree within 1e-12 (asserted).",
        "",
        "| setting | before ms / photo | after ms / photo | after / before |",
        "|---|---|---|---|",
    ]
    for name, (old, new) in totals.items():
        lines.append(f"| {name} | {old / n * 1000:.1f} | {new / n * 1000:.1f} | {new / old:.2f} |")
    header = ["photo", "distinct (cluster, row) in 20,000"]
    for name in SETTINGS:
        header += [f"{name}: before ms", "after ms", "abs diff"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
