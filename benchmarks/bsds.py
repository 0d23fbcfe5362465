"""Region benchmark on a BSDS500-style folder: how close each setting comes to people.

Runs the pipeline's own core (features, clustering, Optuna tuning on silhouette) and
scikit-image's felzenszwalb / slic / quickshift as outside references on every image, scores
each segmentation against all human annotations (Covering, PRI, VI in bits, ARI; means over
annotators, then over images) and prints one Markdown table.

    python benchmarks/bsds.py --limit 10            # quick look
    python benchmarks/bsds.py --jobs 2              # all 200 test images, both cores

Nothing here is a test: numbers are measured, not asserted. Seconds are per image, wall time
of that row's segmentation alone (features included), in a single thread per process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import optuna
import yaml

from segclust.api import cluster_and_score
from segclust.config import (
    ClusterConfig,
    FeatureConfig,
    MetricsConfig,
    ScalerConfig,
    TuneConfig,
)
from segclust.evaluation import compare_to_annotators
from segclust.features import feature_matrix, to_display_rgb
from segclust.groundtruth import read_bsds_mat
from segclust.imageio import read_image
from segclust.tuning import tune_clustering

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BSDS = ROOT.parent / "shared" / "data" / "bsds500"
FEATURES = ("intensity", "intensity_xy", "sobel")
ALGORITHMS = ("kmeans", "birch", "dbscan")
SCORES = ("covering", "pri", "vi", "ari")


def load_group(group: str, name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "conf" / group / f"{name}.yaml").read_text())


def segment_rows(
    image: np.ndarray, trials: int, max_points: int, seed: int
) -> list[tuple[str, np.ndarray | str, float]]:
    """(row name, labels or why there are none, seconds) for every setting on one image."""
    from skimage.segmentation import felzenszwalb, quickshift, slic

    metrics = MetricsConfig(silhouette_max_exact=2000, silhouette_sample_size=2000)
    tune = TuneConfig.from_dict(load_group("tune", "default"))
    out: list[tuple[str, np.ndarray | str, float]] = []
    for feature in FEATURES:
        started = time.perf_counter()
        x, _ = feature_matrix(
            image, FeatureConfig.from_dict(load_group("features", feature)), ScalerConfig()
        )
        shape = image.shape[:2]
        feature_seconds = time.perf_counter() - started
        for algorithm in ALGORITHMS:
            cluster = ClusterConfig.from_dict(load_group("cluster", algorithm))
            name = f"{feature} · {algorithm}"
            started = time.perf_counter()
            fixed = cluster_and_score(x, shape, cluster, seed=seed, metrics=metrics)
            out.append((name, fixed.labels, feature_seconds + time.perf_counter() - started))
            started = time.perf_counter()
            tuned = tune_clustering(
                x,
                shape,
                cluster,
                tune.space_for(algorithm),
                n_trials=trials,
                max_points=max_points,
                max_clusters=tune.max_clusters,
                max_noise_fraction=tune.max_noise_fraction,
                seed=seed,
                metrics=metrics,
            )
            labels = "no valid trial" if tuned.best is None else tuned.best.labels
            out.append((f"{name} · tuned", labels, feature_seconds + time.perf_counter() - started))
    rgb = to_display_rgb(image)
    for name, run in (
        (
            "skimage felzenszwalb(scale=500, sigma=0.8, min_size=200)",
            lambda: felzenszwalb(rgb, scale=500, sigma=0.8, min_size=200),
        ),
        (
            "skimage slic(n_segments=100, compactness=10)",
            lambda: slic(rgb, n_segments=100, compactness=10, start_label=0),
        ),
        (
            "skimage quickshift(kernel_size=5, max_dist=10, ratio=0.5)",
            lambda: quickshift(rgb, kernel_size=5, max_dist=10, ratio=0.5),
        ),
    ):
        started = time.perf_counter()
        labels = run()
        out.append((name, labels, time.perf_counter() - started))
    return out


def score_image(args: tuple[Path, Path, int, int, int]) -> dict[str, dict[str, float]]:
    image_path, gt_path, trials, max_points, seed = args
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    image = read_image(image_path)
    annotations = read_bsds_mat(gt_path)
    rows: dict[str, dict[str, float]] = {}
    for name, labels, seconds in segment_rows(image, trials, max_points, seed):
        if isinstance(labels, str):
            rows[name] = {"missing": labels}
            continue
        scores = compare_to_annotators(labels, annotations)
        rows[name] = {k: scores[k] for k in SCORES} | {"seconds": seconds}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_BSDS,
        help="BSDS-style folder with images/ and groundTruth/",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--trials", type=int, default=10, help="Optuna trials per tuned row")
    parser.add_argument(
        "--max-points",
        type=int,
        default=5000,
        help="tune on at most this many pixels (distinct rows or subsample)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="images in parallel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--raw", type=Path, default=None, help="also write every image's scores to this JSON file"
    )
    args = parser.parse_args()
    images = sorted((args.root / "images").glob("*.jpg"))[: args.limit]
    if not images:
        sys.exit(f"no images in {args.root / 'images'} (see --root)")
    jobs = [
        (p, args.root / "groundTruth" / f"{p.stem}.mat", args.trials, args.max_points, args.seed)
        for p in images
    ]
    totals: dict[str, list[dict[str, float]]] = defaultdict(list)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, rows in enumerate(pool.map(score_image, jobs), start=1):
            for name, row in rows.items():
                totals[name].append(row)
            print(f"\r{i}/{len(jobs)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(
        f"BSDS500 region benchmark: {len(images)} images from {args.root}, "
        f"tuning {args.trials} trials on <= {args.max_points} points, seed {args.seed}, "
        f"{time.perf_counter() - started:.0f} s wall on {args.jobs} process(es)\n"
    )
    if args.raw:
        args.raw.write_text(json.dumps(totals, indent=1))
    print_table(totals)


def print_table(totals: dict[str, list[dict[str, Any]]]) -> None:
    """One Markdown row per setting: means over the images it produced labels for."""
    print("| setting | Covering ↑ | PRI ↑ | VI (bits) ↓ | ARI ↑ | s / image |")
    print("|---|---|---|---|---|---|")
    for name, rows in totals.items():
        scored = [r for r in rows if "missing" not in r]
        reasons = sorted({r["missing"] for r in rows if "missing" in r})
        if not scored:
            print(f"| {name} | {', '.join(reasons)} | | | | |")
            continue
        mean = {k: float(np.mean([r[k] for r in scored])) for k in (*SCORES, "seconds")}
        note = "" if not reasons else f" ({len(rows) - len(scored)} images: {', '.join(reasons)})"
        print(
            f"| {name}{note} | {mean['covering']:.3f} | {mean['pri']:.3f} | "
            f"{mean['vi']:.3f} | {mean['ari']:.3f} | {mean['seconds']:.2f} |"
        )


if __name__ == "__main__":
    main()
