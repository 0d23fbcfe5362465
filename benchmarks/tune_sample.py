"""How big a silhouette sample the Optuna trials need: choices, agreement with people, time.

The recommended setting (``conf/config.yaml``) tunes k by the silhouette on every BSDS
image. A trial only ranks one image's settings, so its silhouette can be a smaller seeded
estimate than the one reported (``tune.silhouette_sample_size`` queries ×
``tune.silhouette_reference_size`` reference points). For every image of a BSDS500-layout
folder this runs the tune stage's own code (features as the ``features`` stage makes them,
then :func:`segclust.tuning.tune_clustering`) once per sample size, on one thread, and
prints one table: seconds of tuning per image, how often the chosen parameters equal those
of the largest sample, and the tuned segments' (connected regions, as ``evaluate`` scores
them) Covering, PRI and VI against the human annotations.

    python benchmarks/tune_sample.py --bsds ../shared/data/bsds500-train \\
        --out benchmarks/results/tune_sample.md

Nothing here is a test: numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import optuna

from segclust.config import Config, load_config
from segclust.evaluation import compare_to_annotators
from segclust.features import feature_matrix
from segclust.groundtruth import find_ground_truth
from segclust.imageio import list_images, read_image
from segclust.regions import segments_for
from segclust.smoothing import smooth_image
from segclust.tuning import tune_clustering

ROOT = Path(__file__).resolve().parents[1]
# (queries, reference points): the metrics group's reported estimate first, then smaller
SAMPLES = ((5000, 20000), (2000, 10000), (1000, 5000), (500, 2000))


def score_image(args: tuple[Path, Path, Config]) -> dict:
    path, truth, config = args
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    image = read_image(path)
    x, _ = feature_matrix(smooth_image(image, config.smoothing), config.features, config.scaler)
    annotations = find_ground_truth(truth, path.stem)
    rows = {}
    for queries, reference in SAMPLES:
        tune = replace(
            config.tune, silhouette_sample_size=queries, silhouette_reference_size=reference
        )
        started = time.perf_counter()
        result = tune_clustering(
            x,
            image.shape[:2],
            config.cluster,
            tune,
            backend="sklearn",
            seed=config.seed,
            metrics=config.metrics,
        )
        seconds = time.perf_counter() - started
        segments = segments_for(result.best.labels, config.regions)
        rows[f"{queries}x{reference}"] = {
            "seconds": seconds,
            "params": result.best_params,
            **compare_to_annotators(segments, annotations),
        }
    return {"image": path.stem, "rows": rows}


def table(results: list[dict], command: str) -> str:
    names = [f"{q}x{r}" for q, r in SAMPLES]
    reference = names[0]
    lines = [
        f"Tuning k by silhouette (recommended setting, {len(results)} images, one thread "
        f"per process): `{command}`. Seconds = `tune_clustering` per image (trials and the "
        f"winner's refit and reported score); same choice = the chosen parameters equal "
        f"those of {reference.replace('x', ' × ')}; scores are the tuned segments' "
        "(connected regions) means.",
        "",
        "| trial silhouette (queries × reference) | s/image | same choice | Covering | PRI | VI |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        rows = [r["rows"][name] for r in results]
        same = sum(r["rows"][name]["params"] == r["rows"][reference]["params"] for r in results)
        lines.append(
            f"| {name.replace('x', ' × ')} | {np.mean([r['seconds'] for r in rows]):.2f} | "
            f"{same}/{len(results)} | {np.mean([r['covering'] for r in rows]):.4f} | "
            f"{np.mean([r['pri'] for r in rows]):.4f} | {np.mean([r['vi'] for r in rows]):.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bsds", type=Path, required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    paths = list_images(args.bsds / "images", None, (".jpg", ".png"))[: args.limit]
    config = load_config(ROOT / "params.yaml")
    work = [(p, args.bsds / "groundTruth", config) for p in paths]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(score_image, work))
    text = table(results, "python " + " ".join(sys.argv))
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(
            json.dumps(results, indent=1, sort_keys=True, default=str), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
