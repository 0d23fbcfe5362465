"""The cascade (region hierarchy) on BSDS500: settings chosen on train, reported on test, once.

Two commands, in this order:

    # 1. choose every dataset-level setting on the TRAIN split (no test image is read)
    python benchmarks/cascade.py select --bsds ../shared/data/bsds500-train --jobs 2 \\
        --out benchmarks/results/cascade_train.md
    # 2. report the TEST split once, with the settings train chose (read from step 1's JSON)
    python benchmarks/cascade.py report --bsds ../shared/data/bsds500 --jobs 2 \\
        --settings benchmarks/results/cascade_train.json --out benchmarks/results/cascade_test.md

``select`` builds the hierarchy of every train image for each candidate in ``CANDIDATES``
(boundary-strength weights, leaf size, watershed or cluster leaves) and scores its cuts
against the human segmentations: at fixed thresholds, at multiples of each image's median
leaf-boundary height (``relative``) and at region counts. It keeps the candidate and the
threshold with the best mean Covering at one fixed threshold (the primary BSDS region score),
then the best ``relative_threshold`` and ``n_regions`` for that candidate, and writes them to
``cascade_train.json``; ``conf/hierarchy/default.yaml`` holds the same values (a test checks).

``report`` runs, per test image, in the same run: the cascade's three cuts, its ODS and OIS
over ``--levels`` thresholds, the best flat row of ``benchmarks/bsds.py`` (mean-shift + lab +
KMeans, k in 2..8 by silhouette, connected regions), the seed's way (grey KMeans, k by
silhouette), scikit-image's Felzenszwalb-Huttenlocher and SLIC; region scores (Covering, PRI,
VI in bits) and the boundary benchmark (:mod:`segclust.boundaries`: P/R/F at ODS and OIS,
AP), seconds per image for each; and quotes published rows with their source. Nothing chosen
per image reads ground truth, except the OIS rows, which are labelled as the oracle they are.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import yaml

from segclust.boundaries import (
    boundary_counts_over_thresholds,
    boundary_scores,
    human_boundaries,
    segmentation_boundary_counts,
)
from segclust.config import HierarchyConfig, SmoothingConfig
from segclust.evaluation import compare_to_annotators
from segclust.groundtruth import read_bsds_mat
from segclust.hierarchy import (
    CUTS,
    Hierarchy,
    boundary_strength,
    cut_hierarchy,
    photo_hierarchy,
)
from segclust.imageio import read_image
from segclust.levels import region_ods_ois, region_scores_by_level, threshold_grid
from segclust.pixels import colour_channels, to_display_rgb, to_float01
from segclust.smoothing import smooth_image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SMOOTHING = SmoothingConfig.from_dict(
    yaml.safe_load((ROOT / "conf" / "smoothing" / "meanshift.yaml").read_text())
)
REGION = ("covering", "pri", "vi")

# Candidates tried on train (leaves of 100 px and gradient scale 1 unless named): the share of
# colour in the merging order, the gradient's weight, the leaf size, the leaves themselves.
CANDIDATES: dict[str, dict[str, Any]] = {
    "boundary only, gradient x4": {"gradient_weight": 4.0},
    "colour 0.5, gradient x4": {"colour_weight": 0.5, "gradient_weight": 4.0},
    "colour 0.7, gradient x4": {"colour_weight": 0.7, "gradient_weight": 4.0},
    "colour 0.85, gradient x4": {"colour_weight": 0.85, "gradient_weight": 4.0},
    "colour only, gradient x4": {"colour_weight": 1.0, "gradient_weight": 4.0},
    "colour 0.85, gradient x2": {"colour_weight": 0.85, "gradient_weight": 2.0},
    "colour 0.85, gradient x8": {"colour_weight": 0.85, "gradient_weight": 8.0},
    "colour 0.85, gradient x4, leaves 50 px": {
        "colour_weight": 0.85,
        "gradient_weight": 4.0,
        "leaf_area": 50,
    },
    "colour 0.85, gradient x4, leaves 200 px": {
        "colour_weight": 0.85,
        "gradient_weight": 4.0,
        "leaf_area": 200,
    },
    "colour 0.85, gradient x4, cluster leaves (lab KMeans k=8)": {
        "colour_weight": 0.85,
        "gradient_weight": 4.0,
        "leaves": "clusters",
    },
}
SELECT_THRESHOLDS = threshold_grid(2.0, 120.0, 28)
SELECT_RELATIVE = threshold_grid(0.5, 30.0, 20)
SELECT_REGIONS = (2, 3, 4, 6, 8, 12, 16, 24, 32)
CLUSTER_LEAVES_K = 8

# Published BSDS500 test-split figures (ODS), quoted with their source. Region scores as issue 11
# quotes them; boundary F only where checked here: gPb-owt-ucm's from Berkeley's own result
# file (tests/test_boundaries.py reproduces it), the human one by our code (boundary_humans.md).
PUBLISHED = (
    (
        "gPb-owt-ucm (cue weights learned on BSDS)",
        0.59,
        0.83,
        1.69,
        0.73,
        "Arbeláez et al. 2011, TPAMI",
    ),
    ("PMI (Isola et al., no training)", 0.60, 0.82, 1.65, None, "Isola et al. 2014, ECCV"),
    ("Mean shift", 0.54, 0.79, 1.85, None, "Arbeláez et al. 2011"),
    ("NCuts", 0.45, 0.78, 2.23, None, "Arbeláez et al. 2011"),
    ("Felzenszwalb-Huttenlocher", 0.52, 0.80, 2.21, None, "Arbeláez et al. 2011"),
    ("Human", 0.72, 0.88, 1.17, 0.80, "Arbeláez et al. 2011"),
)


def images_of(bsds: Path, limit: int | None, step: int) -> list[tuple[Path, Path]]:
    pairs = [
        (path, bsds / "groundTruth" / f"{path.stem}.mat")
        for path in sorted((bsds / "images").glob("*.jpg"))
    ]
    pairs = [p for p in pairs if p[1].is_file()][::step]
    return pairs[:limit] if limit else pairs


def cluster_leaves(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """KMeans (k=8) clusters of mean-shift-smoothed lab pixels: the 'our clusters' leaves."""
    from segclust.clustering import cluster_features
    from segclust.config import FeatureConfig, ScalerConfig
    from segclust.features import feature_matrix

    x, _ = feature_matrix(
        smooth_image(image, SMOOTHING),
        FeatureConfig.from_dict({"name": "lab"}),
        ScalerConfig("standard", scope="column"),
    )
    params = {"n_clusters": CLUSTER_LEAVES_K, "n_init": 2, "max_iter": 300}
    return cluster_features(x, "kmeans", params, seed=seed).labels.reshape(image.shape[:2])


def ucm_of(image: np.ndarray, settings: HierarchyConfig, smoothed: np.ndarray) -> Hierarchy:
    """The hierarchy of a BSDS photo (below ``max_pixels``: built at full size, as the stage
    does), with the smoothing done once for every candidate."""
    leaves = cluster_leaves(image) if settings.leaves == "clusters" else None
    return photo_hierarchy(to_float01(colour_channels(image)), smoothed, settings, leaves)


# --- select (train) ----------------------------------------------------------------------------


def select_image(args: tuple[Path, Path]) -> dict[str, Any]:
    image_path, gt_path = args
    image = read_image(image_path)
    annotations = read_bsds_mat(gt_path)
    started = time.perf_counter()
    smoothed = to_float01(colour_channels(smooth_image(image, SMOOTHING)))
    smoothing_seconds = time.perf_counter() - started
    out: dict[str, Any] = {"stem": image_path.stem}
    for name, overrides in CANDIDATES.items():
        settings = HierarchyConfig.from_dict({"edges": "gradient", **overrides})
        started = time.perf_counter()
        hierarchy = ucm_of(image, settings, smoothed)
        seconds = time.perf_counter() - started + smoothing_seconds
        fixed = region_scores_by_level(hierarchy, annotations, SELECT_THRESHOLDS)
        median = float(np.median(hierarchy.ucm[hierarchy.ucm > 0]))
        relative = region_scores_by_level(hierarchy, annotations, SELECT_RELATIVE * median)
        regions = np.array(
            [
                [compare_to_annotators(hierarchy.cut_regions(n), annotations)[s] for s in REGION]
                for n in SELECT_REGIONS
            ]
        )
        out[name] = {
            "fixed": fixed.tolist(),
            "relative": relative.tolist(),
            "regions": regions.tolist(),
            "seconds": seconds,
        }
    return out


def _best(scores: np.ndarray) -> int:
    return int(np.argmax(scores.mean(axis=0)[:, 0]))  # by mean Covering


def select_report(records: list[dict[str, Any]], command: str) -> tuple[str, dict[str, Any]]:
    lines = [
        f"BSDS500 **train** split, {len(records)} images, one run: `{command}`.",
        "",
        "Each candidate's hierarchy cut at one fixed threshold for every image (chosen here by "
        "mean Covering), at a multiple of each image's median leaf-boundary height "
        "(`relative`, internal criterion) and at a number of regions; OIS = each image's best "
        "fixed threshold (an oracle, for reference only). VI in bits. Seconds per image: "
        "smoothing + hierarchy (1 process per image, one thread).",
        "",
        "| candidate | fixed: threshold | Covering | PRI | VI | relative: x | Covering | "
        "regions: n | Covering | OIS Covering | s / image |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    best_name, best_cov = None, -1.0
    table: dict[str, dict[str, Any]] = {}
    for name in CANDIDATES:
        fixed = np.array([r[name]["fixed"] for r in records])
        relative = np.array([r[name]["relative"] for r in records])
        regions = np.array([r[name]["regions"] for r in records])
        i, j, k = _best(fixed), _best(relative), _best(regions)
        row = {
            "threshold": float(SELECT_THRESHOLDS[i]),
            "fixed": fixed.mean(axis=0)[i].tolist(),
            "relative_threshold": float(SELECT_RELATIVE[j]),
            "relative": relative.mean(axis=0)[j].tolist(),
            "n_regions": int(SELECT_REGIONS[k]),
            "regions": regions.mean(axis=0)[k].tolist(),
            "ois_covering": float(fixed[:, :, 0].max(axis=1).mean()),
            "seconds": float(np.mean([r[name]["seconds"] for r in records])),
        }
        table[name] = row
        lines.append(
            f"| {name} | {row['threshold']:.3g} | {row['fixed'][0]:.3f} | {row['fixed'][1]:.3f} "
            f"| {row['fixed'][2]:.3f} | {row['relative_threshold']:.3g} | "
            f"{row['relative'][0]:.3f} | {row['n_regions']} | {row['regions'][0]:.3f} | "
            f"{row['ois_covering']:.3f} | {row['seconds']:.2f} |"
        )
        if row["fixed"][0] > best_cov:
            best_name, best_cov = name, row["fixed"][0]
    chosen_row = table[best_name]
    settings = HierarchyConfig.from_dict({"edges": "gradient", **CANDIDATES[best_name]})
    chosen = {
        "candidate": best_name,
        "leaves": settings.leaves,
        "leaf_area": settings.leaf_area,
        "gradient_sigma": settings.gradient_sigma,
        "gradient_weight": settings.gradient_weight,
        "colour_weight": settings.colour_weight,
        "threshold": round(chosen_row["threshold"], 2),
        "relative_threshold": round(chosen_row["relative_threshold"], 2),
        "n_regions": chosen_row["n_regions"],
    }
    lines += [
        "",
        f"Chosen (best fixed-threshold Covering): **{best_name}**; "
        + ", ".join(f"`{k}: {v}`" for k, v in chosen.items() if k != "candidate")
        + ". Written to `cascade_train.json`; `conf/hierarchy/default.yaml` holds the same.",
    ]
    return "\n".join(lines) + "\n", {"chosen": chosen, "candidates": table}


# --- report (test) -----------------------------------------------------------------------------


def flat_rows(image: np.ndarray) -> list[tuple[str, np.ndarray, float]]:
    """The best flat row and the seed's way (benchmarks/bsds.py's grid), FH and SLIC."""
    import bsds
    from skimage.segmentation import felzenszwalb, slic

    from segclust.clustering import cluster_features
    from segclust.metrics import configured_metrics

    rows = []
    for label, preset, smoothing, regions in (
        (
            "today's best: meanshift + lab + KMeans, k in 2..8 by silhouette, regions",
            "lab",
            "meanshift",
            True,
        ),
        ("the seed's way: grey KMeans, k in 2..8 by silhouette", "intensity", "none", False),
    ):
        started = time.perf_counter()
        x, _ = bsds.features_of(image, preset, "column", smoothing)
        best, best_s = None, -np.inf
        for k in bsds.GRID_K:
            params = {"n_clusters": k, "n_init": 2, "max_iter": 300}
            result = cluster_features(x, "kmeans", params, seed=0)
            s = configured_metrics(
                x, result.labels, bsds.METRICS, seed=0, compression=result.row_compression
            )["silhouette"]
            if s is not None and s > best_s:
                best, best_s = result.labels, s
        labels = best.reshape(image.shape[:2])
        if regions:
            labels, _ = bsds.as_regions(labels)
        rows.append((label, labels, time.perf_counter() - started))
    rgb = to_display_rgb(image)
    for label, run in (
        (
            "scikit-image felzenszwalb(scale=500, sigma=0.8, min_size=200)",
            lambda: felzenszwalb(rgb, scale=500, sigma=0.8, min_size=200),
        ),
        (
            "scikit-image slic(n_segments=100, compactness=10)",
            lambda: slic(rgb, n_segments=100, compactness=10, start_label=0),
        ),
    ):
        started = time.perf_counter()
        labels = run()
        rows.append((label, labels, time.perf_counter() - started))
    return rows


def report_image(args: tuple[Path, Path, dict[str, Any], list[float]]) -> dict[str, Any]:
    image_path, gt_path, chosen, levels = args
    image = read_image(image_path)
    annotations = read_bsds_mat(gt_path)
    humans = human_boundaries(annotations)
    thresholds = np.asarray(levels)
    settings_dict = {"edges": "gradient", **{k: v for k, v in chosen.items() if k != "candidate"}}
    out: dict[str, Any] = {"stem": image_path.stem, "rows": {}}

    started = time.perf_counter()
    smoothed = to_float01(colour_channels(smooth_image(image, SMOOTHING)))
    settings = HierarchyConfig.from_dict(settings_dict)
    hierarchy = ucm_of(image, settings, smoothed)
    build_seconds = time.perf_counter() - started
    for cut in CUTS:
        started = time.perf_counter()
        labels = cut_hierarchy(hierarchy, HierarchyConfig.from_dict({**settings_dict, "cut": cut}))
        seconds = build_seconds + time.perf_counter() - started
        out["rows"][f"cascade, cut={cut}"] = _flat_scores(labels, annotations, humans, seconds)
    out["levels_region"] = region_scores_by_level(hierarchy, annotations, thresholds).tolist()
    # a pixel is a boundary of the cut at t when its strength is > t, i.e. >= the next float
    out["levels_boundary"] = boundary_counts_over_thresholds(
        boundary_strength(hierarchy.ucm), humans, np.nextafter(thresholds, np.inf)
    ).tolist()
    out["cascade_seconds"] = build_seconds
    for label, labels, seconds in flat_rows(image):
        out["rows"][label] = _flat_scores(labels, annotations, humans, seconds)
    return out


def _flat_scores(labels, annotations, humans, seconds) -> dict[str, Any]:
    scores = compare_to_annotators(labels, annotations)
    return {
        **{s: scores[s] for s in REGION},
        "boundary": segmentation_boundary_counts(labels, humans)[0].tolist(),
        "segments": len(np.unique(labels)),
        "seconds": seconds,
    }


def report_table(
    records: list[dict[str, Any]], levels: np.ndarray, chosen: dict, command: str, split: str
) -> str:
    n = len(records)
    lines = [
        f"BSDS500 **{split}** split, {n} images, one run, settings from the train split "
        f"(`cascade_train.json`: {chosen['candidate']}; "
        + ", ".join(f"`{k}: {v}`" for k, v in chosen.items() if k != "candidate")
        + f"): `{command}`.",
        "",
        "Region scores are means over images of the mean over annotators (VI in bits); boundary "
        "scores follow Berkeley's benchmark (`segclust.boundaries`: one-to-one matching within "
        "0.0075 x the diagonal, counts summed over images). A flat segmentation is one "
        "threshold, so its boundary ODS = OIS = its F. ODS rows: one threshold for the whole "
        f"test split, chosen per score among {len(levels)} levels "
        f"({levels[0]:.3g}..{levels[-1]:.3g}, log-spaced) — this is how published ODS figures "
        "are made, and it reads the test ground truth to pick the level; the fixed cut "
        "(threshold from train) does not. OIS rows pick the best level per image: an oracle. "
        "Seconds per image, one thread, same run and machine.",
        "",
        "| method | Covering ↑ | PRI ↑ | VI ↓ | boundary F (ODS) ↑ | boundary P | boundary R "
        "| OIS F | AP | segments | s / image |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = list(records[0]["rows"])
    for name in names:
        rows = [r["rows"][name] for r in records]
        counts = np.array([r["boundary"] for r in rows])[:, None, :]
        b = boundary_scores(counts)
        lines.append(
            f"| {name} | {np.mean([r['covering'] for r in rows]):.3f} | "
            f"{np.mean([r['pri'] for r in rows]):.3f} | {np.mean([r['vi'] for r in rows]):.3f} | "
            f"{b.ods_f:.3f} | {b.ods_p:.3f} | {b.ods_r:.3f} | | | "
            f"{np.mean([r['segments'] for r in rows]):.1f} | "
            f"{np.mean([r['seconds'] for r in rows]):.2f} |"
        )
    region = region_ods_ois(np.array([r["levels_region"] for r in records]), levels)
    bound = boundary_scores(np.array([r["levels_boundary"] for r in records]), levels)
    seconds = np.mean([r["cascade_seconds"] for r in records])
    ods, ois = region["ods"], region["ois"]
    lines.append(
        f"| cascade, ODS (one level for the split, picked on test) | {ods['covering']:.3f} | "
        f"{ods['pri']:.3f} | {ods['vi']:.3f} | {bound.ods_f:.3f} | {bound.ods_p:.3f} | "
        f"{bound.ods_r:.3f} | {bound.ois_f:.3f} | {bound.ap:.3f} | | {seconds:.2f} |"
    )
    lines.append(
        f"| cascade, OIS (best level per image: oracle) | {ois['covering']:.3f} | "
        f"{ois['pri']:.3f} | {ois['vi']:.3f} | {bound.ois_f:.3f} | {bound.ois_p:.3f} | "
        f"{bound.ois_r:.3f} | | | | |"
    )
    lines += [
        "",
        "ODS levels (merge heights): "
        + ", ".join(f"{s} {ods[f'{s}_threshold']:.3g}" for s in REGION)
        + f", boundary {bound.ods_threshold:.3g}.",
        "",
        "Published ODS rows on the BSDS500 test split (not run here; quoted):",
        "",
        "| method | Covering | PRI | VI | boundary F (ODS) | source |",
        "|---|---|---|---|---|---|",
    ]
    for name, cov, pri, vi, f, source in PUBLISHED:
        shown = "" if f is None else f"{f:.2f}"
        lines.append(f"| {name} | {cov:.2f} | {pri:.2f} | {vi:.2f} | {shown} | {source} |")
    return "\n".join(lines) + "\n"


def run_all(fn, tasks: list, jobs: int) -> list:
    if jobs <= 1:
        return [fn(t) for t in tasks]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(fn, tasks, chunksize=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("select", "report"))
    parser.add_argument("--bsds", type=Path, required=True, help="a BSDS500-layout folder")
    parser.add_argument("--out", type=Path, required=True, help="markdown report")
    parser.add_argument("--settings", type=Path, help="report: the JSON that select wrote")
    parser.add_argument("--levels", type=int, default=40, help="report: thresholds for ODS/OIS")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--step", type=int, default=1, help="every STEP-th image")
    parser.add_argument("--jobs", type=int, default=1, help="images in parallel")
    args = parser.parse_args()
    command = "python benchmarks/cascade.py " + " ".join(sys.argv[1:])
    pairs = images_of(args.bsds, args.limit, args.step)
    if not pairs:
        sys.exit(f"no images with ground truth under {args.bsds}")
    started = time.perf_counter()
    if args.mode == "select":
        records = run_all(select_image, pairs, args.jobs)
        text, chosen = select_report(records, command)
        args.out.with_suffix(".json").write_text(json.dumps(chosen, indent=2) + "\n")
    else:
        if args.settings is None:
            sys.exit("report needs --settings (the JSON written by select on the train split)")
        chosen = json.loads(args.settings.read_text())["chosen"]
        levels = threshold_grid(1.0, 150.0, args.levels)
        tasks = [(p, g, chosen, levels.tolist()) for p, g in pairs]
        records = run_all(report_image, tasks, args.jobs)
        split = "train" if "train" in args.bsds.resolve().name else "test"
        text = report_table(records, levels, chosen, command, split)
        with gzip.open(args.out.with_suffix(".json.gz"), "wt") as fh:
            json.dump(records, fh)
    text += f"\nWall time {time.perf_counter() - started:.0f} s, {args.jobs} processes.\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
