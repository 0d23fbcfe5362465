"""Region benchmark on a BSDS500-style folder: how close each setting comes to people.

Runs the pipeline's own core on every image and scores each segmentation against all human
annotations (Covering, PRI, VI in bits and in nats, ARI; means over annotators, then over
images):

* the seed's three feature sets × KMeans / BIRCH / DBSCAN with the config defaults, and the
  same after Optuna tuning on the silhouette (``--trials`` TPE trials on ``--max-points``);
* a grid: every feature set in ``GRID_FEATURES`` (seed and colour/texture ones) × KMeans with
  k in ``GRID_K``; from it, rows that choose k per image by an internal criterion
  (silhouette, Calinski-Harabasz, Davies-Bouldin — no ground truth in the choice), the seed's
  way (grey, k in 2..8 by silhouette), and the Spearman rank correlation, over the k of one
  image and feature set, between each criterion and each human score (mean over images);
* every row above again as connected regions (``regions=connected``: each connected piece of
  a cluster a region, pieces under ``REGIONS.min_area_fraction`` of the image merged into
  their nearest region), marked ``· regions``; grid feature sets may smooth the photo first
  (``smoothing=meanshift``);
* scikit-image's ``felzenszwalb``, ``slic`` and ``quickshift`` as outside references.

    python benchmarks/bsds.py --limit 10            # quick look
    python benchmarks/bsds.py --jobs 2 --out benchmarks/results/bsds_200.md   # all 200

Nothing here is a test: numbers are measured, not asserted. Seconds are per image, wall time
of that row's segmentation alone (features included), one thread per process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import optuna
import yaml
from scipy.stats import spearmanr

from segclust.algorithms import ALGORITHMS as REGISTRY
from segclust.clustering import cluster_features
from segclust.config import (
    ClusterConfig,
    FeatureConfig,
    MetricsConfig,
    RegionsConfig,
    ScalerConfig,
    SmoothingConfig,
    TuneConfig,
)
from segclust.evaluation import compare_to_annotators
from segclust.features import feature_matrix
from segclust.groundtruth import read_bsds_mat
from segclust.imageio import read_image
from segclust.metrics import configured_metrics
from segclust.pixels import to_display_rgb
from segclust.regions import segments_for
from segclust.segmentation import cluster_and_score
from segclust.smoothing import smooth_image
from segclust.tuning import tune_clustering

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BSDS = ROOT.parent / "shared" / "data" / "bsds500"
SEED_FEATURES = ("intensity", "intensity_xy", "sobel")
# Every registered algorithm (segclust.algorithms): a new entry is benchmarked without edits here.
ALGORITHMS = tuple(REGISTRY)
# (row label, conf/features preset, scaler scope, conf/smoothing preset) of the KMeans grid.
GRID_FEATURES = (
    ("intensity", "intensity", "column", "none"),
    ("rgb", "rgb", "column", "none"),
    ("hsv", "hsv", "column", "none"),
    ("lab", "lab", "column", "none"),
    ("lab_xy", "lab_xy", "column", "none"),
    ("lab_texture (block scope)", "lab_texture", "block", "none"),
    ("meanshift-smoothed lab", "lab", "column", "meanshift"),
    ("meanshift-smoothed lab_xy", "lab_xy", "column", "meanshift"),
)
REGIONS = RegionsConfig.from_dict(
    yaml.safe_load((ROOT / "conf" / "regions" / "connected.yaml").read_text())
)
GRID_K = (2, 3, 4, 5, 6, 7, 8)
CRITERIA = {"silhouette": 1, "calinski_harabasz": 1, "davies_bouldin": -1}  # 1: higher better
SCORES = ("covering", "pri", "vi", "ari")
# Cheap silhouette settings for the many grid and tuning evaluations (stderr ~0.01).
METRICS = MetricsConfig(
    silhouette_max_exact=2000, silhouette_sample_size=2000, silhouette_reference_size=5000
)


def load_group(group: str, name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "conf" / group / f"{name}.yaml").read_text())


def features_of(
    image: np.ndarray, preset: str, scope: str = "column", smoothing: str = "none"
) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    config = FeatureConfig.from_dict(load_group("features", preset))
    smoothed = smooth_image(image, SmoothingConfig.from_dict(load_group("smoothing", smoothing)))
    x, _ = feature_matrix(smoothed, config, ScalerConfig("standard", scope=scope))
    return x, time.perf_counter() - started


def as_regions(labels: np.ndarray) -> tuple[np.ndarray, float]:
    """The connected-regions segmentation of a label map, and its seconds."""
    started = time.perf_counter()
    regions = segments_for(labels, REGIONS)
    return regions, time.perf_counter() - started


def seed_rows(image: np.ndarray, trials: int, max_points: int, seed: int) -> list[tuple]:
    """(row, labels or why none, seconds) for the seed's sets, fixed and silhouette-tuned."""
    shape = image.shape[:2]
    tune = TuneConfig.from_dict(load_group("tune", "default"))
    out = []
    for feature in SEED_FEATURES:
        x, feature_seconds = features_of(image, feature)
        for algorithm in ALGORITHMS:
            cluster = ClusterConfig.from_dict(load_group("cluster", algorithm))
            name = f"{feature} · {algorithm}"
            started = time.perf_counter()
            fixed = cluster_and_score(x, shape, cluster, seed=seed, metrics=METRICS)
            out.append((name, fixed.labels, feature_seconds + time.perf_counter() - started))
            started = time.perf_counter()
            tuned = tune_clustering(
                x,
                shape,
                cluster,
                replace(tune, n_trials=trials, max_points=max_points),
                seed=seed,
                metrics=METRICS,
            )
            labels = "no valid trial" if tuned.best is None else tuned.best.labels
            out.append((f"{name} · tuned", labels, feature_seconds + time.perf_counter() - started))
    return out


def grid_records(image: np.ndarray, annotations: list, seed: int) -> list[dict[str, Any]]:
    """KMeans for every grid feature set and k: internal criteria, human scores, seconds."""
    shape = image.shape[:2]
    records = []
    for label, preset, scope, smoothing in GRID_FEATURES:
        x, feature_seconds = features_of(image, preset, scope, smoothing)
        for k in GRID_K:
            started = time.perf_counter()
            params = {"n_clusters": k, "n_init": 2, "max_iter": 300}
            result = cluster_features(x, "kmeans", params, seed=seed)
            seconds = time.perf_counter() - started
            criteria = configured_metrics(
                x,
                result.labels,
                METRICS,
                seed=seed,
                compression=result.row_compression,
            )
            human = compare_to_annotators(result.labels.reshape(shape), annotations)
            regions, region_seconds = as_regions(result.labels.reshape(shape))
            human_regions = compare_to_annotators(regions, annotations)
            records.append(
                {
                    "features": label,
                    "k": k,
                    **{c: criteria[c] for c in CRITERIA},
                    **{s: human[s] for s in SCORES},
                    "seconds": feature_seconds + seconds,
                    "regions": {s: human_regions[s] for s in SCORES}
                    | {"seconds": region_seconds, "segments": int(regions.max()) + 1},
                }
            )
    return records


def reference_rows(image: np.ndarray) -> list[tuple]:
    from skimage.segmentation import felzenszwalb, quickshift, slic

    rgb = to_display_rgb(image)
    out = []
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


def score_image(args: tuple[Path, Path, int, int, int]) -> dict[str, Any]:
    image_path, gt_path, trials, max_points, seed = args
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    image = read_image(image_path)
    annotations = read_bsds_mat(gt_path)
    rows: dict[str, dict[str, Any]] = {}
    for name, labels, seconds in seed_rows(image, trials, max_points, seed) + reference_rows(image):
        if isinstance(labels, str):
            rows[name] = {"missing": labels}
            continue
        scores = compare_to_annotators(labels, annotations)
        rows[name] = {k: scores[k] for k in SCORES} | {"seconds": seconds}
        if name.startswith("skimage"):
            continue
        regions, region_seconds = as_regions(labels)
        scores = compare_to_annotators(regions, annotations)
        rows[f"{name} · regions"] = {k: scores[k] for k in SCORES} | {
            "seconds": seconds + region_seconds,
            "segments": int(regions.max()) + 1,
        }
    return {"image": image_path.stem, "rows": rows, "grid": grid_records(image, annotations, seed)}


def chosen_rows(grid: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows that pick k per image by an internal criterion (no ground truth)."""
    rows = {}
    for label, *_ in GRID_FEATURES:
        mine = [r for r in grid if r["features"] == label]
        seconds = sum(r["seconds"] for r in mine)  # choosing needs every k
        for criterion, sign in CRITERIA.items():
            scored = [r for r in mine if r[criterion] is not None]
            if not scored:
                continue
            best = max(scored, key=lambda r, c=criterion, s=sign: s * r[c])
            name = f"{label} · kmeans · k by {criterion.replace('_', '-')}"
            rows[name] = {s: best[s] for s in SCORES} | {"seconds": seconds, "k": best["k"]}
            if "regions" in best:  # raw files from before regions existed lack it
                regions = best["regions"]
                rows[f"{name} · regions"] = {s: regions[s] for s in SCORES} | {
                    "seconds": seconds + regions["seconds"],
                    "k": best["k"],
                    "segments": regions["segments"],
                }
    seed_way = [r for r in grid if r["features"] == "intensity" and r["k"] <= 8]
    seed_way = [r for r in seed_way if r["silhouette"] is not None]
    if seed_way:
        best = max(seed_way, key=lambda r: r["silhouette"])
        rows["the seed's way: intensity · kmeans · k in 2..8 by silhouette"] = {
            s: best[s] for s in SCORES
        } | {"seconds": sum(r["seconds"] for r in seed_way), "k": best["k"]}
    return rows


def criterion_correlations(
    results: list[dict[str, Any]],
) -> dict[tuple[str, str, str], list[float]]:
    """Spearman ρ over k (one image, one feature set) of criterion vs human score."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for result in results:
        for label, *_ in GRID_FEATURES:
            mine = [r for r in result["grid"] if r["features"] == label]
            for criterion, sign in CRITERIA.items():
                usable = [r for r in mine if r[criterion] is not None]
                if len(usable) < 3:
                    continue
                crit = [sign * r[criterion] for r in usable]
                for segments in ("clusters", "regions"):
                    if segments == "regions" and "regions" not in usable[0]:
                        continue
                    for score in SCORES:
                        human = [
                            (-1 if score == "vi" else 1)
                            * (r[score] if segments == "clusters" else r["regions"][score])
                            for r in usable
                        ]
                        if np.ptp(crit) == 0 or np.ptp(human) == 0:
                            continue
                        rho = float(spearmanr(crit, human).statistic)
                        out[(criterion, segments, score)].append(rho)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_BSDS, help="BSDS-style folder (images/, groundTruth/)"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="stop after the N-th image (sorted by name)"
    )
    parser.add_argument(
        "--skip", type=int, default=0, help="leave out the first N images (sorted by name)"
    )
    parser.add_argument("--trials", type=int, default=5, help="Optuna trials per tuned row")
    parser.add_argument(
        "--max-points", type=int, default=2000, help="tune on at most this many pixels"
    )
    parser.add_argument("--jobs", type=int, default=1, help="images in parallel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--raw", type=Path, help="write every image's scores here (JSON), updated as they come"
    )
    parser.add_argument("--out", type=Path, help="also write the report (Markdown)")
    parser.add_argument(
        "--report-only", type=Path, help="no runs: rebuild the report from a --raw file"
    )
    args = parser.parse_args()
    if args.report_only:
        results = sorted(json.loads(args.report_only.read_text()), key=lambda r: r["image"])
        results = results[args.skip : args.limit]
        header = f"BSDS500 region benchmark: {len(results)} images (from {args.report_only})."
        report = "\n\n".join([header, rows_table(results), correlation_table(results)])
        print(report)
        if args.out:
            args.out.write_text(report + "\n", encoding="utf-8")
        return
    images = sorted((args.root / "images").glob("*.jpg"))[args.skip : args.limit]
    if not images:
        sys.exit(f"no images in {args.root / 'images'} (see --root)")
    jobs = [
        (p, args.root / "groundTruth" / f"{p.stem}.mat", args.trials, args.max_points, args.seed)
        for p in images
    ]
    results = []
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, result in enumerate(pool.map(score_image, jobs), start=1):
            result["rows"].update(chosen_rows(result["grid"]))
            results.append(result)
            if args.raw:  # so that an interrupted run still has its images
                args.raw.write_text(json.dumps(results))
            print(f"\r{i}/{len(jobs)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    header = (
        f"BSDS500 region benchmark: {len(images)} images from {args.root}; tuned rows: "
        f"{args.trials} TPE trials on <= {args.max_points} points; seed {args.seed}; "
        f"{time.perf_counter() - started:.0f} s wall on {args.jobs} process(es)."
    )
    report = "\n\n".join([header, rows_table(results), correlation_table(results)])
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")


def rows_table(results: list[dict[str, Any]]) -> str:
    """One Markdown row per setting: means over the images it produced labels for."""
    totals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        for name, row in result["rows"].items():
            totals[name].append(row)
    # each "<row> · regions" right below its "<row>", whatever order the images gave
    order = [
        n for n in totals if not (n.endswith(" · regions") and n[: -len(" · regions")] in totals)
    ]
    order = [m for n in order for m in (n, f"{n} · regions") if m in totals]
    lines = [
        "| setting | Covering ↑ | PRI ↑ | VI bits ↓ | VI nats ↓ | ARI ↑ | mean k | mean segments"
        " | s / image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in order:
        rows = totals[name]
        scored = [r for r in rows if "missing" not in r]
        reasons = sorted({r["missing"] for r in rows if "missing" in r})
        if not scored:
            lines.append(f"| {name} | {', '.join(reasons)} | | | | | | | |")
            continue
        mean = {k: float(np.mean([r[k] for r in scored])) for k in (*SCORES, "seconds")}
        k = f"{np.mean([r['k'] for r in scored]):.1f}" if "k" in scored[0] else ""
        segments = (
            f"{np.mean([r['segments'] for r in scored]):.1f}" if "segments" in scored[0] else ""
        )
        note = "" if not reasons else f" ({len(rows) - len(scored)} images: {', '.join(reasons)})"
        lines.append(
            f"| {name}{note} | {mean['covering']:.3f} | {mean['pri']:.3f} | {mean['vi']:.3f} | "
            f"{mean['vi'] * np.log(2):.3f} | {mean['ari']:.3f} | {k} | {segments} | "
            f"{mean['seconds']:.2f} |"
        )
    return "\n".join(lines)


def correlation_over_images(results: list[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """Spearman ρ over images (one feature set, one k) of criterion vs human score."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for label, *_ in GRID_FEATURES:
        for k in GRID_K:
            records = [
                r
                for result in results
                for r in result["grid"]
                if r["features"] == label and r["k"] == k
            ]
            for criterion, sign in CRITERIA.items():
                usable = [r for r in records if r[criterion] is not None]
                if len(usable) < 10:
                    continue
                crit = [sign * r[criterion] for r in usable]
                for score in SCORES:
                    human = [(-1 if score == "vi" else 1) * r[score] for r in usable]
                    out[(criterion, score)].append(float(spearmanr(crit, human).statistic))
    return out


def correlation_table(results: list[dict[str, Any]]) -> str:
    rho = criterion_correlations(results)
    lines = [
        "Agreement of internal criteria with people: Spearman ρ between the criterion "
        "(oriented so higher = better; Davies-Bouldin negated) and the human score (VI "
        "negated) over the k of one image and feature set, mean ± sd over "
        f"(image, feature set) pairs; k in {list(GRID_K)}.",
        "",
        "| criterion | segments scored | ρ with Covering | ρ with PRI | ρ with −VI | ρ with ARI |",
        "|---|---|---|---|---|---|",
    ]
    for segments in ("clusters", "regions"):
        for criterion in CRITERIA:
            cells = []
            for score in SCORES:
                values = rho.get((criterion, segments, score), [])
                cells.append(f"{np.mean(values):+.3f} ± {np.std(values):.3f}" if values else "–")
            if all(cell == "–" for cell in cells):
                continue
            name = criterion.replace("_", "-")
            lines.append(f"| {name} | {segments} | " + " | ".join(cells) + " |")
    over_images = correlation_over_images(results)
    lines += [
        "",
        "Across images: Spearman ρ over the images between the criterion and the human score of "
        "the clusters, for one feature set and one k, mean ± sd over (feature set, k) pairs "
        "(does a better score mark a photo that is segmented better?).",
        "",
        "| criterion | ρ with Covering | ρ with PRI | ρ with −VI | ρ with ARI |",
        "|---|---|---|---|---|",
    ]
    for criterion in CRITERIA:
        cells = []
        for score in SCORES:
            values = over_images.get((criterion, score), [])
            cells.append(f"{np.mean(values):+.3f} ± {np.std(values):.3f}" if values else "–")
        lines.append(f"| {criterion.replace('_', '-')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
