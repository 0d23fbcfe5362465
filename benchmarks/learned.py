"""Learned features on BSDS500: settings chosen on train, reported on test; time and 12-MP memory.

Three commands, in this order:

    # 1. choose the learned blocks' dataset-level settings on the TRAIN split
    python benchmarks/learned.py select --bsds ../shared/data/bsds500-train --jobs 2 \\
        --out benchmarks/results/learned_train.md
    # 2. report the TEST split once with train's choice, beside the best colour/texture rows
    python benchmarks/learned.py report --bsds ../shared/data/bsds500 --jobs 2 \\
        --settings benchmarks/results/learned_train.json --out benchmarks/results/learned_test.md
    # 3. seconds and peak memory of the cnn block on a 12-MP photo (appended to the test report)
    python benchmarks/learned.py memory --out benchmarks/results/learned_test.md

Every row is the pipeline's clustering path on one feature set: the photo smoothed (or not) as
named, ``feature_matrix`` (standard scaler, ``column`` scope unless named: what
``dvc exp run -S features=<preset>`` gives), KMeans (n_init 2) for every k in 2..8, k chosen
per image by the sampled silhouette (no ground truth), connected regions (``regions=connected``)
— the best flat row of ``benchmarks/bsds.py``. Scores: Covering, PRI, VI (bits), ARI against
every annotator (means over annotators, then images). Seconds per image: features, every k and
its silhouette, the regions; one thread per process (torch too: :mod:`segclust.learned`),
``--jobs`` processes.

``select`` tries ``CANDIDATES`` (and ``REFERENCES``, for context) on the train images and
keeps, per family (cnn, pca, autoencoder per image and trained on the split), the one with
the best mean Covering of its regions;
``report`` runs those four and the reference rows (``REFERENCES``) on the test images in the
same process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import yaml

from segclust.clustering import cluster_features
from segclust.config import (
    FeatureConfig,
    MetricsConfig,
    RegionsConfig,
    ScalerConfig,
    SmoothingConfig,
)
from segclust.evaluation import compare_to_annotators
from segclust.features import feature_matrix
from segclust.groundtruth import read_bsds_mat
from segclust.imageio import read_image
from segclust.metrics import configured_metrics
from segclust.regions import segments_for
from segclust.smoothing import smooth_image

ROOT = Path(__file__).resolve().parents[1]
GRID_K = (2, 3, 4, 5, 6, 7, 8)
SCORES = ("covering", "pri", "vi", "ari")
# The cheap silhouette settings of benchmarks/bsds.py (stderr ~0.01)
METRICS = MetricsConfig(
    silhouette_max_exact=2000, silhouette_sample_size=2000, silhouette_reference_size=5000
)
REGIONS = RegionsConfig.from_dict(
    yaml.safe_load((ROOT / "conf" / "regions" / "connected.yaml").read_text())
)

# (label, family, smoothing, scaler scope, blocks). cnn rows see the mean-shift-smoothed photo
# beside lab (the pipeline's default smoothing); the compressors get texture, so no smoothing.
# Narrowed by the first run on 25 train images (commit de6dcc3, learned_train.md there):
# stages 2+4 beat 2 and 3+5, weight 1.0 beat 0.5 and 0.25 (the largest tried, so larger ones
# are tried here), 3 dims beat 6 for PCA and the autoencoder alike.
# A block with ``train_on: dataset`` is fitted once on the whole split of the command
# (``--fit-bsds``: the train split for select and report alike, so test pixels never train it).
CANDIDATES: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("lab + cnn 2+4 (w 1.0)", "cnn", "meanshift", "column",
     {"lab": {}, "cnn": {"weight": 1.0, "layers": "2+4"}}),
    ("lab + cnn 2+4 (w 1.5)", "cnn", "meanshift", "column",
     {"lab": {}, "cnn": {"weight": 1.5, "layers": "2+4"}}),
    ("lab + cnn 2+4 (w 2.0)", "cnn", "meanshift", "column",
     {"lab": {}, "cnn": {"weight": 2.0, "layers": "2+4"}}),
    ("pca 3 of lab+lbp+glcm", "pca", "none", "column", {"pca": {"dims": 3}}),
    ("autoencoder 3 of lab+lbp+glcm, per image", "autoencoder", "none", "column",
     {"autoencoder": {"dims": 3}}),
    ("autoencoder 3 of lab+lbp+glcm, trained on the train split's pixels",
     "autoencoder (dataset)", "none", "column",
     {"autoencoder": {"dims": 3, "train_on": "dataset", "sample": 100_000}}),
)  # fmt: skip
# The best colour and texture rows of benchmarks/bsds.py, measured again in the same run
REFERENCES: tuple[tuple[str, str, str, str, dict[str, Any]], ...] = (
    ("meanshift-smoothed lab (best colour row)", "reference", "meanshift", "column", {"lab": {}}),
    ("lab_texture, block scope (texture row)", "reference", "none", "block",
     {"lab": {}, "lbp": {"weight": 0.5}, "glcm": {"weight": 0.5}}),
)  # fmt: skip


def images_of(bsds: Path, limit: int | None, step: int) -> list[tuple[Path, Path]]:
    """Every ``step``-th image of the split (sorted by name), at most ``limit`` of them."""
    images = sorted((bsds / "images").glob("*.jpg"))[::step][:limit]
    if not images:
        sys.exit(f"no images in {bsds / 'images'}")
    return [(p, bsds / "groundTruth" / f"{p.stem}.mat") for p in images]


def smoothing(name: str) -> SmoothingConfig:
    return SmoothingConfig.from_dict(
        yaml.safe_load((ROOT / "conf" / "smoothing" / f"{name}.yaml").read_text())
    )


def score_row(
    smoothed: np.ndarray,
    annotations: list,
    scope: str,
    blocks: dict[str, Any],
    seed: int,
    fitted: dict[int, Any] | None = None,
) -> dict[str, Any]:
    """One feature set on one photo: k by silhouette, connected regions, human scores."""
    shape = smoothed.shape[:2]
    started = time.perf_counter()
    config = FeatureConfig.from_dict({"name": "bench", "blocks": blocks})
    scaler = ScalerConfig("standard", scope=scope)
    x, names = feature_matrix(smoothed, config, scaler, fitted)
    feature_seconds = time.perf_counter() - started
    best = None
    for k in GRID_K:
        result = cluster_features(x, "kmeans", {"n_clusters": k, "n_init": 2, "max_iter": 300},
                                  seed=seed)  # fmt: skip
        criteria = configured_metrics(
            x, result.labels, METRICS, seed=seed, compression=result.row_compression
        )
        value = criteria["silhouette"]
        if value is not None and (best is None or value > best[0]):
            best = (value, k, result.labels)
    if best is None:
        return {"missing": "no k with a silhouette"}
    regions = segments_for(best[2].reshape(shape), REGIONS)
    seconds = time.perf_counter() - started
    human = compare_to_annotators(regions, annotations)
    return {s: float(human[s]) for s in SCORES} | {
        "k": best[1],
        "segments": int(regions.max()) + 1,
        "columns": len(names),
        "feature_seconds": feature_seconds,
        "seconds": seconds,
        "device": next((n.split("@")[1] for n in names if "@" in n), "cpu"),
    }


WARMED: set[str] = set()  # devices whose network this process has loaded and run


def warm_network(rows: list[tuple]) -> None:
    """Load and run the network once per process and device, outside the per-image seconds."""
    devices = {b["cnn"].get("device", "auto") for *_, b in rows if "cnn" in b} - WARMED
    if not devices:
        return
    import torch

    from segclust.learned import pretrained_extractor, resolve_device

    for setting in devices:
        device = resolve_device(setting, "features.blocks.cnn")
        extract, _ = pretrained_extractor(device)  # cached per process
        with torch.no_grad():
            extract(torch.zeros(1, 3, 64, 64, device=device), 7)
        WARMED.add(setting)


def fit_dataset_rows(rows: list[tuple], fit_images: list[tuple[Path, Path]]) -> dict[str, Any]:
    """For each row with a block trained on the dataset: its fitted blocks, by row label."""
    from segclust.features import fit_on_dataset

    fitted: dict[str, Any] = {}
    for label, _family, smooth, _scope, blocks in rows:
        config = FeatureConfig.from_dict({"name": "bench", "blocks": blocks})
        method = smoothing(smooth)

        def load(i: int, method: SmoothingConfig = method) -> np.ndarray:
            return smooth_image(read_image(fit_images[i][0]), method)

        started = time.perf_counter()
        states = fit_on_dataset(load, len(fit_images), config)
        if states:
            fitted[label] = states
            for state in states.values():
                print(
                    f"{label}: trained on {state.rows} pixels of {len(fit_images)} images, "
                    f"loss {state.loss:.4f}, {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                )
    return fitted


def image_records(
    image_path: Path, gt_path: Path, rows: list[tuple], seed: int, fitted: dict[str, Any]
) -> list[dict]:
    """Every row on one image; smoothing done once per method."""
    warm_network(rows)
    image = read_image(image_path)
    annotations = read_bsds_mat(gt_path)
    smoothed_by: dict[str, tuple[np.ndarray, float]] = {}
    records = []
    for label, family, smooth, scope, blocks in rows:
        if smooth not in smoothed_by:
            t = time.perf_counter()
            smoothed_by[smooth] = (smooth_image(image, smoothing(smooth)), time.perf_counter() - t)
        smoothed, smooth_seconds = smoothed_by[smooth]
        record = score_row(smoothed, annotations, scope, blocks, seed, fitted.get(label))
        if "seconds" in record:
            record["seconds"] += smooth_seconds
        records.append({"image": image_path.stem, "row": label, "family": family} | record)
    return records


def run_rows(
    images: list[tuple[Path, Path]],
    rows: list[tuple],
    seed: int,
    jobs: int = 1,
    fitted: dict[str, Any] | None = None,
) -> list[dict]:
    """Every row on every image, ``jobs`` processes of one thread each (joblib/loky)."""
    from joblib import Parallel, delayed

    fitted = fitted or {}
    records: list[dict] = []
    started = time.perf_counter()
    work = (delayed(image_records)(i, g, rows, seed, fitted) for i, g in images)
    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator")
    for done, mine in enumerate(parallel(work), start=1):
        records += mine
        print(
            f"\r{done}/{len(images)} images, {time.perf_counter() - started:.0f} s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
    return records


def summarise(records: list[dict], rows: list[tuple]) -> list[dict[str, Any]]:
    out = []
    for label, family, smooth, scope, blocks in rows:
        mine = [r for r in records if r["row"] == label and "missing" not in r]
        missing = sum(1 for r in records if r["row"] == label and "missing" in r)
        summary = {"row": label, "family": family, "smoothing": smooth, "scope": scope}
        summary |= {"blocks": blocks, "images": len(mine), "missing": missing}
        for key in (*SCORES, "k", "segments", "feature_seconds", "seconds"):
            summary[key] = float(np.mean([r[key] for r in mine])) if mine else None
        summary["columns"] = mine[0]["columns"] if mine else None
        summary["device"] = sorted({r["device"] for r in mine})
        out.append(summary)
    return out


def table(summaries: list[dict[str, Any]], chosen: set[str] = frozenset()) -> str:
    lines = [
        "| feature set | smoothing | columns | Covering ↑ | PRI ↑ | VI ↓ | ARI ↑ | mean k "
        "| segments | features s / image | s / image |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        mark = " **(chosen)**" if s["row"] in chosen else ""
        lines.append(
            f"| {s['row']}{mark} | {s['smoothing']} | {s['columns']} | {s['covering']:.3f} "
            f"| {s['pri']:.3f} | {s['vi']:.3f} | {s['ari']:.3f} | {s['k']:.1f} "
            f"| {s['segments']:.1f} | {s['feature_seconds']:.2f} | {s['seconds']:.2f} |"
        )
    return "\n".join(lines)


def command_line() -> str:
    return "python " + " ".join(
        [os.path.relpath(sys.argv[0], ROOT), *(str(a) for a in sys.argv[1:])]
    )


def stamp() -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit} (+ working tree)"


FAMILIES = ("cnn", "pca", "autoencoder", "autoencoder (dataset)")


def subset_of(images: list, args: argparse.Namespace) -> str:
    if args.step == 1 and args.limit is None:
        return f"all {len(images)} images"
    return f"{len(images)} of its 200 images (every {args.step}. by name from the first)"


def how_run(args: argparse.Namespace) -> str:
    if args.jobs == 1:
        return "one process, one thread"
    return f"{args.jobs} worker processes of one thread each (joblib), one image each at a time"


def select(args: argparse.Namespace) -> None:
    images = images_of(args.bsds, args.limit, args.step)
    started = time.perf_counter()
    rows = list(REFERENCES) + list(CANDIDATES)
    fitted = fit_dataset_rows(rows, images)  # select: the split of the run is train
    records = run_rows(images, rows, args.seed, args.jobs, fitted)
    summaries = summarise(records, rows)
    chosen = {}
    for family in FAMILIES:
        mine = [s for s in summaries if s["family"] == family and s["covering"] is not None]
        chosen[family] = max(mine, key=lambda s: s["covering"])
    wall = time.perf_counter() - started
    report = "\n".join(
        [
            f"BSDS500 **train** split, {subset_of(images, args)}, {how_run(args)}: "
            f"`{command_line()}` ({stamp()}; {wall:.0f} s wall). No test image was read.",
            "",
            "Each row: the photo smoothed as named, `feature_matrix` (standard scaler, column "
            "scope), KMeans (n_init 2) for k in 2..8, k chosen per image by the sampled "
            "silhouette, connected regions (`regions=connected`); scores of the regions against "
            "every annotator (VI in bits). The first two rows are the references (the best "
            "colour and texture rows of `benchmarks/bsds.py`); per family of candidates the "
            "row with the best mean Covering is chosen (`learned_train.json`) and is the one "
            "`learned.py report` runs on test. The candidates were narrowed by a first run on "
            "25 of these images (commit de6dcc3): cnn stages 2+4 beat 2 and 3+5, weight 1.0 "
            "beat 0.5 and 0.25, 3 dims beat 6 for PCA and the autoencoder. The dataset-trained "
            "autoencoder is fitted once on 100,000 pixels pooled evenly (500 per image) from "
            "these train images. Seconds per image are measured inside each worker; with 2 "
            "workers on 2 cores they include some memory contention.",
            "",
            table(summaries, {c["row"] for c in chosen.values()}),
            "",
        ]
    )
    print(report)
    if args.out:
        args.out.write_text(report, encoding="utf-8")
        args.out.with_suffix(".json").write_text(
            json.dumps({"chosen": chosen, "candidates": summaries}, indent=1) + "\n"
        )


def report(args: argparse.Namespace) -> None:
    chosen = json.loads(args.settings.read_text())["chosen"]
    rows = list(REFERENCES) + [
        (c["row"], c["family"], c["smoothing"], c["scope"], c["blocks"]) for c in chosen.values()
    ]
    images = images_of(args.bsds, args.limit, args.step)
    started = time.perf_counter()
    # a block trained on the dataset is trained on the TRAIN split's pixels, never the test's
    fitted = fit_dataset_rows(rows, images_of(args.fit_bsds, None, 1))
    records = run_rows(images, rows, args.seed, args.jobs, fitted)
    summaries = summarise(records, rows)
    wall = time.perf_counter() - started
    text = "\n".join(
        [
            f"BSDS500 **test** split, {subset_of(images, args)}, {how_run(args)}, settings "
            f"from the train split (`{args.settings.name}`), read once: `{command_line()}` "
            f"({stamp()}; {wall:.0f} s wall).",
            "",
            "Rows as in `learned_train.md` (KMeans k in 2..8 by silhouette, connected regions; "
            "VI in bits); the first two are the best colour and texture rows of "
            "`benchmarks/bsds.py`, measured again in this run. The dataset-trained autoencoder "
            f"was trained on the pixels of the train split (`{args.fit_bsds.name}`, all its "
            "images), not on test's. Devices: "
            + ", ".join(sorted({d for s in summaries for d in s["device"]}))
            + ". Seconds per image include smoothing, features, every k and its silhouette, "
            "and the regions (the dataset autoencoder's one training is not in them).",
            "",
            table(summaries),
            "",
        ]
    )
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(records) + "\n")


MEMORY_SCRIPT = """
import json, resource, sys, time
import cv2, numpy as np
from segclust.config import FeatureConfig, ScalerConfig
from segclust.features import feature_matrix
from segclust.imageio import read_image
source, blocks = sys.argv[1], json.loads(sys.argv[2])
small = read_image(source)
image = cv2.resize(small, (4000, 3000), interpolation=cv2.INTER_CUBIC)
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM'):
            return int(line.split()[1]) / 1024 ** 2
before = hwm()
started = time.perf_counter()
config = FeatureConfig.from_dict({'name': 'bench', 'blocks': blocks})
x, names = feature_matrix(image, config, ScalerConfig('standard'))
print(json.dumps({'seconds': time.perf_counter() - started, 'peak_gb': hwm(),
                  'before_gb': before, 'shape': list(x.shape)}))
"""

MEMORY_ROWS = (
    ("lab only (reference)", {"lab": {}}),
    ("lab + cnn 2+4, default: shrunk to 160,000 px", {"lab": {}, "cnn": {"layers": "2+4"}}),
    (
        "lab + cnn 2+4, full resolution, 512-px tiles, 64-px halo",
        {"lab": {}, "cnn": {"layers": "2+4", "max_pixels": 0, "tile": 512}},
    ),
    (
        "lab + cnn 2+4, full resolution, one tile (no tiling)",
        {"lab": {}, "cnn": {"layers": "2+4", "max_pixels": 0, "tile": 0}},
    ),
    ("pca 3 of lab+lbp+glcm", {"pca": {"dims": 3}}),
    ("autoencoder 3 of lab+lbp+glcm, trained on the photo", {"autoencoder": {"dims": 3}}),
)


def memory(args: argparse.Namespace) -> None:
    source = sorted((args.bsds / "images").glob("*.jpg"))[0]
    lines = [
        "",
        f"### 12 MP: seconds and peak memory of the features (`{command_line()}`, {stamp()})",
        "",
        f"`{source.name}` enlarged to 4000×3000 (bicubic); `feature_matrix` alone in a fresh "
        "process, one thread; peak = the process's VmHWM (resident high-water mark), which "
        "includes the decoded photo, Python and the libraries (`before` = at the start).",
        "",
        "| features | s | peak GB | before GB | matrix |",
        "|---|---|---|---|---|",
    ]
    for label, blocks in MEMORY_ROWS:
        if args.skip_untiled and "no tiling" in label:
            continue
        done = subprocess.run(
            [sys.executable, "-c", MEMORY_SCRIPT, str(source), json.dumps(blocks)],
            capture_output=True,
            text=True,
            timeout=args.timeout,
            check=False,
        )
        if done.returncode:
            why = (done.stderr.strip().splitlines() or ["?"])[-1]
            lines.append(f"| {label} | failed: {why} | | | |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        lines.append(
            f"| {label} | {r['seconds']:.1f} | {r['peak_gb']:.2f} | {r['before_gb']:.2f} "
            f"| {r['shape'][0]:,}×{r['shape'][1]} |"
        )
        print(lines[-1], file=sys.stderr)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("select", "report", "memory"):
        p = sub.add_parser(name)
        default = "bsds500-train" if name == "select" else "bsds500"
        p.add_argument("--bsds", type=Path, default=ROOT.parent / "shared" / "data" / default)
        p.add_argument("--out", type=Path)
        p.add_argument("--limit", type=int, default=None, help="at most N images")
        p.add_argument("--step", type=int, default=1, help="every STEP-th image by name")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--jobs", type=int, default=1, help="worker processes (one image each)")
        if name == "report":
            p.add_argument("--settings", type=Path, required=True)
            p.add_argument(
                "--fit-bsds",
                type=Path,
                default=ROOT.parent / "shared" / "data" / "bsds500-train",
                help="the split a block with train_on: dataset is trained on",
            )
        if name == "memory":
            p.add_argument("--timeout", type=int, default=600)
            p.add_argument("--skip-untiled", action="store_true")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    {"select": select, "report": report, "memory": memory}[args.command](args)


if __name__ == "__main__":
    main()
