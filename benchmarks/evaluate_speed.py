"""The evaluate stage's work per BSDS500 photo, before and after issue 22, beside Felzenszwalb.

Issue 22 measured ``evaluate`` at 3.6 s per BSDS photo on one core, 18× Felzenszwalb-
Huttenlocher on the same photo, and asked for at most 6× with identical metrics. This runs
both implementations of the per-photo evaluation on the same inputs, alternating, and
asserts that every number they return is the same:

* **before**: :func:`old_evaluate_image`, the stage's per-photo function as it was at
  commit BEFORE, with that commit's ``segclust/boundaries.py`` read from Git (every map
  matched against every annotator from scratch, ``skimage.morphology.thin``), each
  hierarchy level cut and relabelled, then one contingency table per level and annotator;
* **after**: :func:`segclust.stages.evaluate.evaluate_image` (one
  :class:`~segclust.boundaries.BoundaryMatcher` per photo reusing each solved component,
  thinning on the foreground only, level tables merged from the finest cut's) and
  :func:`segclust.stages.evaluate_boundaries.score_image` (the learned edge map, which
  ``evaluate`` scored at BEFORE and its own stage scores now), timed apart and together;
* **FH**: ``skimage.segmentation.felzenszwalb(rgb, scale=500, sigma=0.8, min_size=200)``.

The inputs are the pipeline's own: the stages ``features`` to ``hierarchy`` are run once in
a scratch folder (``--work``, kept, so a second run starts at the timing) on the first N
photos of the test split, with the committed ``params.yaml`` (``tune.n_trials`` 3,
one job), as ``tests/test_stages.py`` does.

    python benchmarks/evaluate_speed.py                 # 16 photos, 3 repeats
    python benchmarks/evaluate_speed.py 4 --repeats 1   # quick look

Seconds are wall time on one core (one thread), the median over repeats per photo, then the
mean over photos; ratios are to FH's mean, and per photo to that photo's FH. Nothing here is
a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np
import scipy
import yaml
from skimage.segmentation import felzenszwalb

from segclust import hierarchy as hierarchy_module
from segclust.evaluation import compare_to_annotators
from segclust.groundtruth import find_ground_truth
from segclust.hierarchy import Hierarchy, boundary_strength
from segclust.levels import REGION_SCORES, evaluation_levels
from segclust.report import rounded
from segclust.stages import evaluate, evaluate_boundaries

sys.path.insert(0, str(Path(__file__).resolve().parent))
from git_source import module_at

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BSDS = ROOT.parent / "shared" / "data" / "bsds500"
STAGES = ("features", "boundaries", "cluster", "tune", "regions", "hierarchy")


# --- before: the stage's per-photo evaluation as it was ----------------------------------------

BEFORE = "1e87485"  # the last commit before issue 22's work


def old_boundaries() -> types.ModuleType:
    """``segclust.boundaries`` as it was at BEFORE (it imports NumPy, SciPy and skimage only),
    read from Git: the matching and thinning exactly as they ran."""
    return module_at(BEFORE, "src/segclust/boundaries.py")


def old_evaluate_image(
    stem: str, gt_root: Path, levels: np.ndarray | None, old: types.ModuleType
) -> tuple:
    """:func:`segclust.stages.evaluate.evaluate_image` at BEFORE (less its seconds), with the
    boundary benchmark of that commit (``old``)."""
    hierarchy_module._kept_graph.cache_clear()  # it built the pixel graph per photo
    annotations = find_ground_truth(gt_root, stem)
    humans = old.human_boundaries(annotations)
    entry: dict = {"n_annotators": len(annotations)}
    image_counts: dict[str, np.ndarray] = {}
    for which, folder in evaluate.MAPS.items():
        path = folder / f"{stem}.npy"
        if not path.exists():
            continue
        labels = np.load(path)
        counts = old.segmentation_boundary_counts(labels, humans)[0]
        p, r, f = (float(v) for v in old.precision_recall(counts))
        scores = compare_to_annotators(labels, annotations)
        scores |= {"boundary_p": p, "boundary_r": r, "boundary_f": f}
        entry[which] = {k: rounded(scores[k]) for k in evaluate.SCORES}
        image_counts[which] = counts
    edges = None
    edge_path = evaluate_boundaries.BOUNDARIES_DIR / f"{stem}.npy"
    if edge_path.exists():
        thin_map = np.load(edge_path, mmap_mode="r")[1]
        if thin_map.shape == humans[0].shape:
            edges = old.boundary_counts_over_thresholds(
                np.asarray(thin_map), humans, evaluate_boundaries.EDGE_THRESHOLDS
            )
    ucm_path = evaluate.HIERARCHY_DIR / "ucm" / f"{stem}.npy"
    if levels is None or not ucm_path.exists():
        return stem, entry, image_counts, None, None, edges
    hierarchy = Hierarchy.from_ucm(np.load(ucm_path))
    regions = np.empty((len(levels), len(REGION_SCORES)))
    for i, threshold in enumerate(levels):
        scores = compare_to_annotators(hierarchy.cut(threshold), annotations)
        regions[i] = [scores[name] for name in REGION_SCORES]
    boundaries = old.boundary_counts_over_thresholds(
        boundary_strength(hierarchy.ucm), humans, np.nextafter(levels, np.inf)
    )
    return stem, entry, image_counts, regions, boundaries, edges


# --- inputs ------------------------------------------------------------------------------------


def prepare(work: Path, bsds: Path, stems: list[str]) -> None:
    """Run the stages up to ``hierarchy`` in ``work`` on ``stems`` (skipped when done)."""
    if all((work / "data" / "hierarchy" / "ucm" / f"{s}.npy").exists() for s in stems):
        return
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"] |= {
        "root": str(bsds / "images"),
        "ground_truth": str(bsds / "groundTruth"),
        "images": [f"{s}.jpg" for s in stems],
    }
    params["tune"]["n_trials"] = 3
    params["execution"]["jobs"] = 1
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    if not (work / "models").exists():
        (work / "models").symlink_to(ROOT / "models")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    for stage in STAGES:
        print(f"running {stage} on {len(stems)} photos", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", f"segclust.stages.{stage}"], cwd=work, env=env, check=True
        )


# --- timing ------------------------------------------------------------------------------------


def same(old: tuple, new: tuple) -> bool:
    """Every number of the two results equal (floats bit for bit)."""
    stem, entry, counts, regions, boundaries, edges = old
    # the share of merges outside the levels is a later addition to the entry, no metric
    added = {k: v for k, v in new[1].items() if k != "merges_outside_levels"}
    return (
        stem == new[0]
        and entry == added
        and counts.keys() == new[2].keys()
        and all(np.array_equal(counts[k], new[2][k]) for k in counts)
        and all(
            (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
            for a, b in zip((regions, boundaries, edges), new[3:6], strict=True)
        )
    )


def fh_seconds(photo: Path) -> float:
    rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    started = time.perf_counter()
    felzenszwalb(rgb, scale=500, sigma=0.8, min_size=200)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=16, help="photos (default 16)")
    parser.add_argument("--bsds", type=Path, default=DEFAULT_BSDS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/segclust-evaluate-speed"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    bsds = args.bsds.resolve()
    stems = sorted(p.stem for p in (bsds / "images").glob("*.jpg"))[: args.n]
    if not stems:
        sys.exit(f"no photos in {bsds / 'images'}")
    work = args.work.resolve()
    out = args.out.resolve() if args.out else None  # before moving into the work folder
    prepare(work, bsds, stems)
    old = old_boundaries()
    os.chdir(work)
    gt_root = bsds / "groundTruth"
    params = yaml.safe_load(Path("params.yaml").read_text())
    levels = evaluation_levels(params["hierarchy"]["edges"], params["hierarchy"]["thresholds"])
    runs = {
        "FH": lambda stem: fh_seconds(bsds / "images" / f"{stem}.jpg"),
        "before": lambda stem: old_evaluate_image(stem, gt_root, levels, old),
        "segments": lambda stem: evaluate.evaluate_image(stem, gt_root, levels)[:5],
        "edges": lambda stem: evaluate_boundaries.score_image(stem, gt_root)[1],
    }
    for run in runs.values():  # warm up (imports, first calls), untimed
        run(stems[0])
    seconds: dict[str, dict[str, list[float]]] = {k: {s: [] for s in stems} for k in runs}
    for repeat in range(args.repeats):
        for n, stem in enumerate(stems):
            names = list(runs)
            turn = (n + repeat) % len(names)
            names = names[turn:] + names[:turn]  # alternate the order
            results = {}
            for name in names:
                started = time.perf_counter()
                results[name] = runs[name](stem)
                seconds[name][stem].append(time.perf_counter() - started)
            if not same(results["before"], (*results["segments"], results["edges"])):
                sys.exit(f"{stem}: the metrics differ before and after")
            times = ", ".join(f"{k} {seconds[k][stem][-1]:.2f} s" for k in runs)
            print(f"repeat {repeat + 1}, {stem}: identical; {times}", file=sys.stderr)
    seconds["after"] = {
        s: [a + b for a, b in zip(seconds["segments"][s], seconds["edges"][s], strict=True)]
        for s in stems
    }
    median = {k: {s: float(np.median(v)) for s, v in per.items()} for k, per in seconds.items()}
    mean = {k: float(np.mean(list(per.values()))) for k, per in median.items()}
    ratio = np.array([median["after"][s] / median["FH"][s] for s in stems])
    segments_ratio = np.array([median["segments"][s] / median["FH"][s] for s in stems])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Command: `python benchmarks/evaluate_speed.py {args.n} --repeats {args.repeats}` — run "
        f"{when} on one core of {os.cpu_count()}, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, SciPy {scipy.__version__}.",
        "",
        f"{len(stems)} BSDS500 test photos, {args.repeats} repeat(s); every metric identical "
        f"before ({BEFORE}) and after (asserted).",
        "",
        "| per photo | seconds | × FH |",
        "|---|---|---|",
        *(
            f"| {label} | {mean[key]:.3f} | {mean[key] / mean['FH']:.1f} |"
            for key, label in (
                ("FH", "Felzenszwalb-Huttenlocher"),
                ("before", "evaluate, before (the edge map included)"),
                ("after", "after: both stages"),
                ("segments", "after: `evaluate` (segment maps, hierarchy levels)"),
                ("edges", "after: `evaluate_boundaries` (the learned edge map)"),
            )
        ),
        "",
        f"After / before: {mean['after'] / mean['before']:.3f} "
        f"({mean['before'] / mean['after']:.1f}× faster). Per photo, after / FH: median "
        f"{np.median(ratio):.1f}, range {ratio.min():.1f}–{ratio.max():.1f}; "
        f"{int((ratio <= 6).sum())} of {ratio.size} photos at 6× or less.",
        "",
        "| photo | FH s | before s | after s | after × FH | `evaluate` × FH |",
        "|---|---|---|---|---|---|",
        *(
            f"| {s} | {median['FH'][s]:.2f} | {median['before'][s]:.2f} "
            f"| {median['after'][s]:.2f} | {r:.1f} | {seg:.1f} |"
            for s, r, seg in zip(stems, ratio, segments_ratio, strict=True)
        ),
    ]
    print("\n".join(lines))
    if out:
        out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
