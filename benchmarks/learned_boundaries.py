"""Learned boundaries on BSDS500: the model and the hierarchy chosen on train, reported on test.

Two commands, in this order:

    # 1. choose on the TRAIN split, by 4-fold cross-validation over its images (no test image
    #    is read): the classifier and cues, the thinning, then the hierarchy's settings
    python benchmarks/learned_boundaries.py select --bsds ../shared/data/bsds500-train \\
        --jobs 2 --out benchmarks/results/boundaries_train.md
    # 2. report the TEST split once: the committed models (trained by `dvc repro
    #    train_boundaries` on the whole train split) with the settings train chose
    python benchmarks/learned_boundaries.py report --bsds ../shared/data/bsds500 --jobs 2 \\
        --settings benchmarks/results/boundaries_train.json \\
        --out benchmarks/results/boundaries_test.md

``select``: the texton dictionary is learned once on every train photo (unsupervised: it reads
no labels). Each photo's training pixels are sampled once per cue set, as the training stage
samples them. For each candidate of ``CANDIDATES`` and each of 4 folds (photo i is in fold
i mod 4, by name), the classifier is fitted on the other three folds' pixels and predicts
the held-out photos: every train photo gets an out-of-fold boundary map, as a test photo
would. Those maps are thinned and scored with the boundary benchmark
(:mod:`segclust.boundaries`: ODS, OIS, AP over ``--thresholds`` levels), the thinning
variants for the best classifier of each cue set, then the hierarchy's settings on the
out-of-fold maps (leaf size, the share of colour in the merging order) by mean Covering at
one fixed threshold, as ``benchmarks/cascade.py`` chose the hand-made cascade's. The choice
goes to ``boundaries_train.json``; ``conf/boundaries/default.yaml`` and
``conf/hierarchy/default.yaml`` hold the same values (a test checks).

``report``: per test photo, in the same run and on the same machine: the learned boundary maps
(base cues; base + CNN cues when torch is installed) scored as edge maps (ODS/OIS/AP, the way
SE and HED are published), the hierarchy built on each (the fixed cut from train, ODS and OIS
over its levels: OIS is an oracle), today's hand-made cascade (``hierarchy.edges:
gradient``), scikit-image's Felzenszwalb-Huttenlocher and SLIC; paired per-image
differences (mean and standard error) against FH and the hand-made cascade; seconds per
photo for each row; the boundary precision-recall curves as a PNG with the published points.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from segclust.boundaries import (
    berkeley_thresholds,
    boundary_counts_over_thresholds,
    boundary_scores,
    human_boundaries,
    precision_recall,
)
from segclust.boundary_cues import CueSpec, cnn_cues, cue_stack, lab_unit
from segclust.boundary_maps import boundary_maps, thin_boundaries
from segclust.boundary_model import (
    BoundariesConfig,
    BoundaryModel,
    ModelSpec,
    fit_classifier,
    learn_textons,
    load_model,
    per_image_seed,
    sample_training_pixels,
    texton_rows,
)
from segclust.config import HierarchyConfig
from segclust.evaluation import compare_to_annotators
from segclust.hierarchy import CUTS, boundary_strength, cut_hierarchy, photo_hierarchy
from segclust.levels import (
    evaluation_levels,
    region_ods_ois,
    region_scores_by_level,
    threshold_grid,
)
from segclust.pixels import colour_channels, to_float01
from segclust.smoothing import smooth_image
from segclust.stages.train_boundaries import read_annotations, read_photo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
import cascade  # noqa: E402  (benchmarks/cascade.py: FH, SLIC, the hand-made cascade)

REGION = ("covering", "pri", "vi")
# Seconds per photo are the worker process's CPU time (one thread everywhere: BLAS, OpenMP
# and torch are held to one), so they do not grow when other work shares the cores.
cpu_seconds = time.process_time
FOLDS = 4
MAX_PIXELS = 160_000
DEFAULTS = BoundariesConfig()
CUE_SETS = {"base": CueSpec(), "cnn": CueSpec(cnn="1+2+3+4")}
# name -> (cue set, classifier: a registry entry's settings, or "hgb" for the benchmark-only
# gradient-boosted trees that the prediction-time budget rules out of the pipeline)
CANDIDATES: dict[str, tuple[str, Any]] = {
    "logistic regression (Pb's model), base cues": ("base", {"name": "logistic"}),
    "MLP 32, base cues": ("base", {"name": "mlp", "hidden": "32"}),
    "MLP 64+32, base cues": ("base", {"name": "mlp"}),
    "gradient-boosted trees (100 x 31 leaves), base cues": ("base", "hgb"),
    "MLP 64+32, base + CNN stages 1-4": ("cnn", {"name": "mlp"}),
}
THINNING = [(1.0, 1), (2.0, 1), (1.0, 2), (0.0, 1)]  # (smooth sigma, suppression radius)
# cues + classifier + thinning, s / BSDS photo on one core, that a classifier may take: the
# issue's budget for the whole of the learned boundaries and the hierarchy is 1.0 s (2.0 s
# with the CNN), and the hierarchy takes up to about 0.4 s
MAP_BUDGET = {"base": 0.6, "cnn": 1.6}
# the hierarchy on the out-of-fold maps: leaves and the share of colour in the merging order
HIERARCHY_CANDIDATES = [
    {"leaf_area": area, "colour_weight": weight}
    for area in (50, 100, 200, 400)
    for weight in (0.25, 0.5, 0.75)
]
SELECT_THRESHOLDS = threshold_grid(0.03, 0.9, 20)
SELECT_RELATIVE = threshold_grid(0.5, 6.0, 12)
SELECT_REGIONS = (4, 8, 12, 16, 24, 32, 48)
# Published BSDS500 test figures (ODS), quoted with their source; boundary F of the edge map.
PUBLISHED_EDGES = (
    ("gPb (Arbeláez et al. 2011)", 0.71, 0.74, 0.65),
    ("gPb-owt-ucm (Arbeláez et al. 2011)", 0.73, 0.76, 0.73),
    ("Sketch tokens (Lim et al. 2013)", 0.73, 0.75, 0.78),
    ("Structured Edges, SE (Dollár & Zitnick 2015)", 0.75, 0.77, 0.80),
    ("HED (Xie & Tu 2015)", 0.78, 0.80, 0.83),
    ("Human (Arbeláez et al. 2011)", 0.80, 0.80, None),
)
PUBLISHED_REGIONS = (
    ("gPb-owt-ucm (Arbeláez et al. 2011)", 0.59, 0.83, 1.69),
    ("PMI (Isola et al. 2014)", 0.60, 0.82, 1.65),
    ("MCG (Pont-Tuset et al. 2017)", 0.61, 0.83, 1.57),
    ("Felzenszwalb-Huttenlocher (Arbeláez et al. 2011)", 0.52, 0.80, 2.21),
    ("Human (Arbeláez et al. 2011)", 0.72, 0.88, 1.17),
)


def pairs_of(bsds: Path, limit: int | None) -> list[tuple[str, Path, list[Path]]]:
    pairs = [
        (p.stem, p, [bsds / "groundTruth" / f"{p.stem}.mat"])
        for p in sorted((bsds / "images").glob("*.jpg"))
        if (bsds / "groundTruth" / f"{p.stem}.mat").is_file()
    ]
    return pairs[:limit] if limit else pairs


def one_thread() -> None:
    """OpenCV's own thread pool held to one thread too (threadpoolctl does not reach it), so
    a photo's CPU seconds are one core's."""
    import cv2

    cv2.setNumThreads(1)


def run_all(fn, tasks: list, jobs: int) -> list:
    one_thread()
    if jobs <= 1:
        return [fn(t) for t in tasks]
    with ProcessPoolExecutor(jobs, initializer=one_thread) as pool:
        return list(pool.map(fn, tasks, chunksize=1))


def phase(work_dir: Path, name: str, resume: bool, compute):
    """``compute()``, kept in ``work_dir/<name>.joblib``; with ``resume``, read back from there
    when a run stopped after it (only within one version of the code and the data)."""
    import joblib

    path = work_dir / f"{name}.joblib"
    if resume and path.is_file():
        print(f"{name}: read back from {path}", flush=True)
        return joblib.load(path)
    result = compute()
    work_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(result, path)
    return result


def load_pair(pair) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Photo (BGR in [0, 1]), annotations and their thinned boundary maps."""
    photo, full = read_photo(pair[1], MAX_PIXELS)
    annotations = read_annotations(pair, photo.shape[:2], full)
    return photo, annotations, human_boundaries(annotations)


def cues_of(photo: np.ndarray, spec: CueSpec, textons: np.ndarray) -> np.ndarray:
    cnn = cnn_cues(photo, spec.cnn_stages, "cpu") if spec.cnn_stages else None
    return cue_stack(photo, spec, textons, cnn)


# --- select (train) ------------------------------------------------------------------------------


def _texton_task(pair) -> np.ndarray:
    photo, _ = read_photo(pair[1], MAX_PIXELS)
    texton_pixels = DEFAULTS.train["texton_pixels"]
    return texton_rows(
        lab_unit(photo)[:, :, 0], texton_pixels, per_image_seed(0, f"textons:{pair[0]}")
    )


def _rows_task(args) -> dict[str, Any]:
    pair, textons, work = args
    photo, _, humans = load_pair(pair)
    out = {}
    for name, spec in CUE_SETS.items():
        if name in work["cue_sets"]:
            cues = cues_of(photo, spec, textons)
            out[name] = sample_training_pixels(
                cues,
                humans,
                count=DEFAULTS.train["pixels_per_image"],
                negative_distance=DEFAULTS.train["negative_distance"],
                seed=per_image_seed(0, pair[0]),
            )
    return out


def _fit_task(args) -> Any:
    candidate, _fold, rows, labels, weights = args
    cue_set, classifier = CANDIDATES[candidate]
    if classifier == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        model = HistGradientBoostingClassifier(
            max_iter=100, max_leaf_nodes=31, early_stopping=False, random_state=0
        )
        with threadpool_limits(limits=1):
            return model.fit(rows, labels, sample_weight=weights)
    spec = ModelSpec.from_dict({"cues": CUE_SETS[cue_set].as_dict(), "classifier": classifier}, "c")
    return fit_classifier(spec, rows, labels, weights, 0)


def _probability(estimator: Any, cues: np.ndarray) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        p = estimator.predict_proba(cues.reshape(-1, cues.shape[-1]))[:, 1]
    return p.astype(np.float32).reshape(cues.shape[:2])


def _thin(probability: np.ndarray, smooth: float, radius: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    p = probability
    if smooth > 0:
        p = cv2.GaussianBlur(probability, (0, 0), smooth, borderType=cv2.BORDER_REFLECT)
    return p, thin_boundaries(p, smooth=0.0, radius=radius)


def _predict_task(args) -> dict[str, Any]:
    """Out-of-fold maps of one photo, thinned and scored (``work["variants"]``: candidate ->
    thinning variants); the raw probability of the candidates in ``work["save"]`` saved."""
    pair, fold, textons, models_dir, work = args
    photo, _, humans = load_pair(pair)
    thresholds = np.asarray(work["thresholds"])
    out: dict[str, Any] = {"stem": pair[0], "counts": {}, "seconds": {}}
    cues_by_set: dict[str, tuple[np.ndarray, float]] = {}
    for candidate, variants in work["variants"].items():
        cue_set = CANDIDATES[candidate][0]
        if cue_set not in cues_by_set:
            started = cpu_seconds()
            cues = cues_of(photo, CUE_SETS[cue_set], textons)
            cues_by_set[cue_set] = (cues, cpu_seconds() - started)
        cues, cue_seconds = cues_by_set[cue_set]
        import joblib

        estimator = joblib.load(models_dir / f"{work['slug'][candidate]}_{fold}.joblib")
        started = cpu_seconds()
        probability = _probability(estimator, cues)
        predict_seconds = cpu_seconds() - started
        for smooth, radius in variants:
            started = cpu_seconds()
            _, thin = _thin(probability, smooth, radius)
            seconds = cue_seconds + predict_seconds + cpu_seconds() - started
            key = _key(candidate, smooth, radius)
            out["counts"][key] = boundary_counts_over_thresholds(thin, humans, thresholds).tolist()
            out["seconds"][key] = seconds
        if candidate in work["save"]:
            np.save(work["maps"] / work["slug"][candidate] / f"{pair[0]}.npy", probability)
    return out


def _key(candidate: str, smooth: float, radius: int) -> str:
    return f"{candidate} | smooth {smooth:g}, radius {radius}"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")[:60]


def _fit_folds(pairs, jobs, textons, candidates, cue_sets, models_dir) -> dict[str, float]:
    """Every candidate's classifier on each fold's complement, saved in ``models_dir``;
    CPU seconds per fold of each candidate."""
    import joblib

    started = time.perf_counter()
    rows = run_all(_rows_task, [(p, textons, {"cue_sets": cue_sets}) for p in pairs], jobs)
    print(f"rows of {len(pairs)} photos in {time.perf_counter() - started:.0f} s", flush=True)
    folds = np.arange(len(pairs)) % FOLDS
    models_dir.mkdir(parents=True, exist_ok=True)
    tasks = []
    for candidate in candidates:
        cue_set = CANDIDATES[candidate][0]
        for fold in range(FOLDS):
            train = [r[cue_set] for r, f in zip(rows, folds, strict=True) if f != fold]
            stacked = [np.concatenate([t[k] for t in train]) for k in range(3)]
            tasks.append((candidate, fold, *stacked))
    del rows
    started = time.perf_counter()
    fit_seconds: dict[str, float] = {}
    for (candidate, fold, *_), model in zip(tasks, run_all(_timed_fit, tasks, jobs), strict=True):
        estimator, seconds = model
        fit_seconds[candidate] = fit_seconds.get(candidate, 0.0) + seconds / FOLDS
        joblib.dump(estimator, models_dir / f"{_slug(candidate)}_{fold}.joblib")
    print(f"fitted {len(tasks)} models in {time.perf_counter() - started:.0f} s", flush=True)
    return fit_seconds


def select_boundaries(
    pairs, jobs: int, work_dir: Path, thresholds: np.ndarray, resume: bool = False
) -> tuple:
    def textons_of() -> np.ndarray:
        return learn_textons(np.concatenate(run_all(_texton_task, pairs, jobs)), 32, 0)

    textons = phase(work_dir, "textons", resume, textons_of)
    candidates = [c for c in CANDIDATES if CANDIDATES[c][0] in _usable_cue_sets()]
    cue_sets = sorted({CANDIDATES[c][0] for c in candidates})
    folds = np.arange(len(pairs)) % FOLDS
    slug = {c: _slug(c) for c in candidates}
    models_dir = work_dir / "models"
    fit_seconds = phase(
        work_dir, "fits", resume,
        lambda: _fit_folds(pairs, jobs, textons, candidates, cue_sets, models_dir),
    )  # fmt: skip
    maps = work_dir / "maps"
    items = [(p, int(f), textons, models_dir) for p, f in zip(pairs, folds, strict=True)]
    # pass 1: every candidate with the default thinning
    work = {"thresholds": thresholds.tolist(), "slug": slug, "maps": maps, "save": set()}
    work["variants"] = {c: THINNING[:1] for c in candidates}
    started = time.perf_counter()
    records = phase(
        work_dir, "pass1", resume,
        lambda: run_all(_predict_task, [(*item, work) for item in items], jobs),
    )  # fmt: skip
    print(f"out-of-fold maps scored in {time.perf_counter() - started:.0f} s", flush=True)
    # the classifier of each cue set: the best ODS F among those within the time budget (or,
    # when none is, the fastest: a choice the report then says was over the budget)
    best_of_set = {}
    for cue_set in cue_sets:
        of_set = [c for c in candidates if CANDIDATES[c][0] == cue_set]
        eligible = [
            c for c in of_set
            if _mean_seconds(records, _key(c, *THINNING[0])) <= MAP_BUDGET[cue_set]
        ]  # fmt: skip
        if eligible:
            best_of_set[cue_set] = max(
                eligible, key=lambda c: _ods(records, _key(c, *THINNING[0]), thresholds)
            )
        else:
            best_of_set[cue_set] = min(
                of_set, key=lambda c: _mean_seconds(records, _key(c, *THINNING[0]))
            )
    # pass 2: the other thinning variants of the chosen ones, and their maps kept
    for candidate in best_of_set.values():
        (maps / slug[candidate]).mkdir(parents=True, exist_ok=True)
    work["variants"] = {c: THINNING[1:] for c in best_of_set.values()}
    work["save"] = set(best_of_set.values())
    started = time.perf_counter()
    more = phase(
        work_dir, "pass2", resume,
        lambda: run_all(_predict_task, [(*item, work) for item in items], jobs),
    )  # fmt: skip
    for record, extra in zip(records, more, strict=True):
        record["counts"] |= extra["counts"]
        record["seconds"] |= extra["seconds"]
    print(f"thinning variants scored in {time.perf_counter() - started:.0f} s", flush=True)
    return textons, records, fit_seconds, slug, best_of_set


def chosen_thinning(records, best_of_set, thresholds) -> dict[str, dict[str, Any]]:
    """Per cue set: its classifier and the thinning variant with the best ODS F."""
    chosen = {}
    for cue_set, candidate in best_of_set.items():
        smooth, radius = max(THINNING, key=lambda v: _ods(records, _key(candidate, *v), thresholds))
        chosen[cue_set] = {
            "candidate": candidate,
            "classifier": CANDIDATES[candidate][1],
            "smooth": smooth,
            "thin_radius": radius,
            "ods_f": _ods(records, _key(candidate, smooth, radius), thresholds),
        }
    return chosen


def _mean_seconds(records, key: str) -> float:
    return float(np.mean([r["seconds"][key] for r in records]))


def _ods(records, key: str, thresholds: np.ndarray) -> float:
    return boundary_scores(np.array([r["counts"][key] for r in records]), thresholds).ods_f


def _timed_fit(task) -> tuple[Any, float]:
    started = cpu_seconds()
    model = _fit_task(task)
    return model, cpu_seconds() - started


def _usable_cue_sets() -> set[str]:
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"base"}
    return set(CUE_SETS)


def _hierarchy_task(args) -> dict[str, Any]:
    """The hierarchy settings on one photo's out-of-fold map (smoothed as the ``boundaries``
    stage smooths it): region scores at every level."""
    pair, map_path, candidates, smooth = args
    photo, annotations, _ = load_pair(pair)
    probability, _ = _thin(np.load(map_path), smooth, 1)
    smoothed = to_float01(colour_channels(smooth_image(_bgr8(photo), cascade.SMOOTHING)))
    out: dict[str, Any] = {"stem": pair[0]}
    for i, overrides in enumerate(candidates):
        settings = HierarchyConfig.from_dict({"edges": "learned", **overrides})
        hierarchy = photo_hierarchy(photo, smoothed, settings, None, probability)
        positive = hierarchy.ucm[hierarchy.ucm > 0]
        median = float(np.median(positive)) if positive.size else 0.0
        out[str(i)] = {
            "fixed": region_scores_by_level(hierarchy, annotations, SELECT_THRESHOLDS).tolist(),
            "relative": region_scores_by_level(
                hierarchy, annotations, SELECT_RELATIVE * median
            ).tolist(),
            "regions": [
                [compare_to_annotators(hierarchy.cut_regions(n), annotations)[s] for s in REGION]
                for n in SELECT_REGIONS
            ],
        }
    return out


def _bgr8(photo: np.ndarray) -> np.ndarray:
    return np.round(photo * 255).astype(np.uint8)


def select_hierarchy(pairs, jobs: int, maps: Path, smooth: float) -> list[dict]:
    tasks = [(p, maps / f"{p[0]}.npy", HIERARCHY_CANDIDATES, smooth) for p in pairs]
    return run_all(_hierarchy_task, tasks, jobs)


def _best(scores: np.ndarray) -> int:
    return int(np.argmax(scores.mean(axis=0)[:, 0]))  # by mean Covering


def select_report(
    pairs, textons, records, fit_seconds, chosen, hierarchy_records, thresholds, command
) -> tuple[str, dict[str, Any]]:
    n = len(pairs)
    lines = [
        f"BSDS500 **train** split, {n} images, one run: `{command}`.",
        "",
        f"Boundary maps: every train photo predicted by the model of the {FOLDS}-fold "
        "cross-validation that did not see it (photo i in fold i mod 4); the classifier "
        "fitted on the other folds' sampled pixels (6,000 per photo, half on a boundary, "
        "consensus-weighted). Thinned maps scored by the boundary benchmark "
        f"(`segclust.boundaries`) over {len(thresholds)} thresholds "
        f"({thresholds[0]:.2g}..{thresholds[-1]:.2g}). Seconds per photo: cues + "
        "classifier + thinning, CPU seconds on one thread (the CNN's time included in its "
        "rows); fit s: CPU seconds per fold.",
        "",
        "| candidate | thinning | ODS F | P | R | OIS F | AP | fit s (per fold) | s / photo |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = list(records[0]["counts"])
    table: dict[str, dict[str, Any]] = {}
    for key in keys:
        counts = np.array([r["counts"][key] for r in records])
        s = boundary_scores(counts, thresholds)
        candidate, thinning = key.split(" | ")
        seconds = float(np.mean([r["seconds"][key] for r in records]))
        table[key] = {"ods_f": s.ods_f, "ois_f": s.ois_f, "ap": s.ap, "seconds": seconds}
        lines.append(
            f"| {candidate} | {thinning} | {s.ods_f:.3f} | {s.ods_p:.3f} | {s.ods_r:.3f} | "
            f"{s.ois_f:.3f} | {s.ap:.3f} | {fit_seconds[candidate]:.0f} | {seconds:.2f} |"
        )
    lines += [
        "",
        "The classifier of each cue set: the best ODS F (default thinning) among the rows whose "
        "cues + classifier + thinning take at most "
        + ", ".join(f"{v:g} s ({k})" for k, v in MAP_BUDGET.items())
        + " per photo, which leaves the hierarchy about 0.4 s of the issue's 1 s (2 s with the "
        "CNN) budget; then its best thinning. The gradient-boosted trees "
        "(scikit-learn's HistGradientBoostingClassifier) are measured here only: over the "
        "budget, they are not a pipeline option.",
        "",
        "Chosen: "
        + "; ".join(
            f"**{k}**: {v['candidate']}, smooth {v['smooth']:g}, radius {v['thin_radius']} "
            f"(ODS F {v['ods_f']:.3f}"
            + (
                "; no row of this cue set was within its budget: the fastest"
                if table[_key(v["candidate"], *THINNING[0])]["seconds"] > MAP_BUDGET[k]
                else ""
            )
            + ")"
            for k, v in chosen.items()
        )
        + ".",
    ]
    # the hierarchy, on the chosen cue set's out-of-fold maps
    hier: dict[str, Any] = {}
    for cue_set, records_h in hierarchy_records.items():
        lines += [
            "",
            f"Hierarchy on the out-of-fold **{cue_set}** maps (`hierarchy.edges: learned`): one "
            "threshold for every photo (chosen by mean Covering), a multiple of each photo's "
            "median leaf-boundary height (`relative`), a number of regions; OIS = each photo's "
            "best fixed threshold (an oracle). VI in bits.",
            "",
            "| leaf_area | colour_weight | fixed: threshold | Covering | PRI | VI | relative: x "
            "| Covering | regions: n | Covering | OIS Covering |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        best_i, best_cov = 0, -1.0
        rows_h = []
        for i, overrides in enumerate(HIERARCHY_CANDIDATES):
            fixed = np.array([r[str(i)]["fixed"] for r in records_h])
            relative = np.array([r[str(i)]["relative"] for r in records_h])
            regions = np.array([r[str(i)]["regions"] for r in records_h])
            a, b, c = _best(fixed), _best(relative), _best(regions)
            row = {
                **overrides,
                "threshold": round(float(SELECT_THRESHOLDS[a]), 4),
                "fixed": fixed.mean(axis=0)[a].tolist(),
                "relative_threshold": round(float(SELECT_RELATIVE[b]), 3),
                "relative": relative.mean(axis=0)[b].tolist(),
                "n_regions": int(SELECT_REGIONS[c]),
                "regions": regions.mean(axis=0)[c].tolist(),
                "ois_covering": float(fixed[:, :, 0].max(axis=1).mean()),
            }
            rows_h.append(row)
            lines.append(
                f"| {overrides['leaf_area']} | {overrides['colour_weight']:g} | "
                f"{row['threshold']:.3g} | {row['fixed'][0]:.3f} | {row['fixed'][1]:.3f} | "
                f"{row['fixed'][2]:.3f} | {row['relative_threshold']:.3g} | "
                f"{row['relative'][0]:.3f} | {row['n_regions']} | {row['regions'][0]:.3f} | "
                f"{row['ois_covering']:.3f} |"
            )
            if row["fixed"][0] > best_cov:
                best_i, best_cov = i, row["fixed"][0]
        best = rows_h[best_i]
        hier[cue_set] = {
            k: best[k]
            for k in ("leaf_area", "colour_weight", "threshold", "relative_threshold", "n_regions")
        }
        lines += [
            "",
            f"Chosen for {cue_set}: "
            + ", ".join(f"`{k}: {v}`" for k, v in hier[cue_set].items())
            + ".",
        ]
    settings = {"boundaries": chosen, "hierarchy": hier, "textons": textons.tolist()}
    return "\n".join(lines) + "\n", settings


def select(args, command: str) -> str:
    pairs = pairs_of(args.bsds, args.limit)
    thresholds = np.linspace(0.04, 0.96, args.thresholds)
    work_dir = args.work
    textons, records, fit_seconds, slug, best_of_set = select_boundaries(
        pairs, args.jobs, work_dir, thresholds, args.resume
    )
    with gzip.open(args.out.with_suffix(".maps.json.gz"), "wt") as fh:
        json.dump(records, fh)
    chosen = chosen_thinning(records, best_of_set, thresholds)
    hierarchy_records = {}
    for cue_set, candidate in best_of_set.items():
        started = time.perf_counter()
        hierarchy_records[cue_set] = phase(
            work_dir, f"hierarchy_{cue_set}", args.resume,
            partial(
                select_hierarchy, pairs, args.jobs, work_dir / "maps" / slug[candidate],
                chosen[cue_set]["smooth"],
            ),
        )  # fmt: skip
        print(
            f"hierarchy candidates on {cue_set} in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    text, settings = select_report(
        pairs,
        textons,
        records,
        fit_seconds,
        chosen,
        hierarchy_records,
        thresholds,
        command,
    )
    args.out.with_suffix(".json").write_text(json.dumps(settings, indent=2) + "\n")
    return text


# --- report (test) -------------------------------------------------------------------------------

EDGE_THRESHOLDS = berkeley_thresholds(40)
LEARNED_LEVELS = evaluation_levels("learned", 40)  # the evaluate stage's levels
GRADIENT_LEVELS = evaluation_levels("gradient", 40)
_LOADED: dict[str, BoundaryModel] = {}


def _loaded(path: Path) -> BoundaryModel:
    if str(path) not in _LOADED:
        _LOADED[str(path)] = load_model(path)
    return _LOADED[str(path)]


def _scores(labels, annotations, humans, seconds) -> dict[str, Any]:
    row = cascade._flat_scores(labels, annotations, humans, seconds)
    row["f"] = float(precision_recall(np.asarray(row["boundary"]))[2])
    return row


def _hierarchy_rows(label, hierarchy, settings, annotations, humans, seconds, levels, out) -> None:
    """The three cuts of one hierarchy (``settings``: its config as a dict, every cut's
    value in it), and its region and boundary scores at every level."""
    for cut in CUTS:
        started = cpu_seconds()
        labels = cut_hierarchy(hierarchy, HierarchyConfig.from_dict({**settings, "cut": cut}))
        out["rows"][f"{label}, cut={cut}"] = _scores(
            labels, annotations, humans, seconds + cpu_seconds() - started
        )
    out["levels"][label] = {
        "region": region_scores_by_level(hierarchy, annotations, levels).tolist(),
        # a pixel is a boundary of the cut at t when its strength is > t
        "boundary": boundary_counts_over_thresholds(
            boundary_strength(hierarchy.ucm), humans, np.nextafter(levels, np.inf)
        ).tolist(),
        "seconds": seconds,
    }


def report_image(args) -> dict[str, Any]:
    from segclust.imageio import read_image

    pair, chosen, models, gradient = args
    image = read_image(pair[1])
    photo, annotations, humans = load_pair(pair)
    out: dict[str, Any] = {"stem": pair[0], "rows": {}, "levels": {}, "edges": {}}
    smoothing_seconds = None
    smoothed = None
    for name, path in models.items():
        settings = chosen["boundaries"][name]
        config = replace_map(settings)
        started = cpu_seconds()
        maps = boundary_maps(image, _loaded(path), config, "cpu")
        map_seconds = cpu_seconds() - started
        out["edges"][name] = {
            "counts": boundary_counts_over_thresholds(maps[1], humans, EDGE_THRESHOLDS).tolist(),
            "seconds": map_seconds,
        }
        hier = {"edges": "learned", **chosen["hierarchy"][name]}
        h_settings = HierarchyConfig.from_dict(hier)
        started = cpu_seconds()
        if h_settings.colour_weight > 0 and smoothed is None:
            smoothed = to_float01(colour_channels(smooth_image(image, cascade.SMOOTHING)))
            smoothing_seconds = cpu_seconds() - started
        hierarchy = photo_hierarchy(photo, smoothed, h_settings, None, maps[0])
        seconds = map_seconds + (smoothing_seconds or 0.0) + cpu_seconds() - started
        _hierarchy_rows(
            f"learned {name}", hierarchy, hier, annotations, humans, seconds,
            LEARNED_LEVELS, out,
        )  # fmt: skip
    # today's hand-made cascade, with its own train-chosen settings
    started = cpu_seconds()
    g_smoothed = to_float01(colour_channels(smooth_image(image, cascade.SMOOTHING)))
    g_dict = {"edges": "gradient", **gradient}
    hierarchy = cascade.ucm_of(image, HierarchyConfig.from_dict(g_dict), g_smoothed)
    _hierarchy_rows(
        "hand-made cascade (gradient)", hierarchy, g_dict, annotations, humans,
        cpu_seconds() - started, GRADIENT_LEVELS, out,
    )  # fmt: skip
    for label, labels, seconds in _fh_slic(image):
        out["rows"][label] = _scores(labels, annotations, humans, seconds)
    return out


def replace_map(settings: dict[str, Any]) -> BoundariesConfig:
    return BoundariesConfig.from_dict(
        {"smooth": settings["smooth"], "thin_radius": settings["thin_radius"],
         "max_pixels": MAX_PIXELS, "device": "cpu"}
    )  # fmt: skip


def _fh_slic(image: np.ndarray) -> list[tuple[str, np.ndarray, float]]:
    from skimage.segmentation import felzenszwalb, slic

    from segclust.pixels import to_display_rgb

    rgb = to_display_rgb(image)
    rows = []
    for label, run in (
        ("Felzenszwalb-Huttenlocher (scikit-image, 500, 0.8, 200)",
         lambda: felzenszwalb(rgb, scale=500, sigma=0.8, min_size=200)),
        ("SLIC (scikit-image, 100 segments)",
         lambda: slic(rgb, n_segments=100, compactness=10, start_label=0)),
    ):  # fmt: skip
        started = cpu_seconds()
        labels = run()
        rows.append((label, labels, cpu_seconds() - started))
    return rows


FH = "Felzenszwalb-Huttenlocher (scikit-image, 500, 0.8, 200)"
GRADIENT_CUT = "hand-made cascade (gradient), cut=threshold"


def _paired(records, a: str, b: str) -> str:
    """Mean ± standard error of the per-image difference a − b, per score."""
    parts = []
    for score, sign in (("covering", 1), ("pri", 1), ("vi", -1), ("f", 1)):
        d = np.array([r["rows"][a][score] - r["rows"][b][score] for r in records])
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        better = int(np.sum(sign * d > 0))
        parts.append(f"{d.mean():+.3f} ± {se:.3f} ({better}/{len(d)} better)")
    return " | ".join(parts)


def report_table(records, chosen, gradient, command, split, models) -> str:
    n = len(records)
    lines = [
        f"BSDS500 **{split}** split, {n} images, one run: `{command}`. Models: "
        + ", ".join(f"`{p}` (sha256 {sha[:12]})" for p, sha in models.values())
        + ", trained by `dvc repro train_boundaries` on the 200 train photos; every setting "
        "from the train split (`boundaries_train.json`; the hand-made cascade's from "
        "`cascade_train.json`). Nothing read per image from the ground truth but for the ODS "
        "(one level for the split, chosen on it, as published ODS figures are) and OIS rows "
        "(each image's best level: an oracle). VI in bits. Boundary F of a flat "
        "segmentation: its boundaries matched as Berkeley's benchmark does (ODS = OIS). "
        "Seconds per photo: CPU seconds on one thread (process time, so other work on the "
        "machine does not inflate them), same run and machine.",
        "",
        "| method | Covering ↑ | PRI ↑ | VI ↓ | boundary F ↑ | P | R | segments | s / image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in records[0]["rows"]:
        rows = [r["rows"][name] for r in records]
        b = boundary_scores(np.array([r["boundary"] for r in rows])[:, None, :])
        lines.append(
            f"| {name} | {np.mean([r['covering'] for r in rows]):.3f} | "
            f"{np.mean([r['pri'] for r in rows]):.3f} | {np.mean([r['vi'] for r in rows]):.3f} "
            f"| {b.ods_f:.3f} | {b.ods_p:.3f} | {b.ods_r:.3f} | "
            f"{np.mean([r['segments'] for r in rows]):.1f} | "
            f"{np.mean([r['seconds'] for r in rows]):.2f} |"
        )
    lines += [
        "",
        "Each hierarchy over its levels (40, log-spaced): ODS = one level for the split, OIS = "
        "each image's best level (oracle); boundary F of the UCM as Berkeley scores a UCM.",
        "",
        "| hierarchy | ODS Covering | PRI | VI | boundary F | OIS Covering | PRI | VI | "
        "boundary F | AP |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    curves = {}
    for label in records[0]["levels"]:
        levels = LEARNED_LEVELS if label.startswith("learned") else GRADIENT_LEVELS
        region = region_ods_ois(np.array([r["levels"][label]["region"] for r in records]), levels)
        counts = np.array([r["levels"][label]["boundary"] for r in records])
        bound = boundary_scores(counts, levels)
        curves[f"{label} (UCM)"] = counts.sum(axis=0)
        ods, ois = region["ods"], region["ois"]
        lines.append(
            f"| {label} | {ods['covering']:.3f} | {ods['pri']:.3f} | {ods['vi']:.3f} | "
            f"{bound.ods_f:.3f} | {ois['covering']:.3f} | {ois['pri']:.3f} | {ois['vi']:.3f} | "
            f"{bound.ois_f:.3f} | {bound.ap:.3f} |"
        )
    lines += [
        "",
        f"The learned boundary maps as edge maps (thinned; {len(EDGE_THRESHOLDS)} probability "
        "thresholds), as SE and HED are published:",
        "",
        "| edge map | ODS F | P | R | OIS F | AP | s / image |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in records[0]["edges"]:
        counts = np.array([r["edges"][name]["counts"] for r in records])
        e = boundary_scores(counts, EDGE_THRESHOLDS)
        curves[f"learned {name} (edge map)"] = counts.sum(axis=0)
        seconds = np.mean([r["edges"][name]["seconds"] for r in records])
        lines.append(
            f"| learned {name} ({chosen['boundaries'][name]['candidate']}) | {e.ods_f:.3f} | "
            f"{e.ods_p:.3f} | {e.ods_r:.3f} | {e.ois_f:.3f} | {e.ap:.3f} | {seconds:.2f} |"
        )
    lines += [
        "",
        "Paired per-image differences (mean ± standard error over images; how many images "
        "are better): Covering, PRI, VI (lower is better, so 'better' counts decreases), "
        "boundary F of the image's cut.",
        "",
        "| learned cut (threshold from train) against | Covering | PRI | VI | boundary F |",
        "|---|---|---|---|---|",
    ]
    for name in records[0]["edges"]:
        a = f"learned {name}, cut=threshold"
        lines.append(f"| {name} − FH | {_paired(records, a, FH)} |")
        lines.append(f"| {name} − hand-made cascade | {_paired(records, a, GRADIENT_CUT)} |")
    lines += [
        "",
        "Published figures on the BSDS500 test split (quoted, not run here). Edge maps "
        "(boundary ODS F / OIS F / AP):",
        "",
        "| method | ODS F | OIS F | AP |",
        "|---|---|---|---|",
    ]
    for name, ods, ois, ap in PUBLISHED_EDGES:
        lines.append(f"| {name} | {ods:.2f} | {ois:.2f} | {'' if ap is None else f'{ap:.2f}'} |")
    lines += ["", "Regions (ODS Covering / PRI / VI):", "", "| method | Covering | PRI | VI |",
              "|---|---|---|---|"]  # fmt: skip
    for name, cov, pri, vi in PUBLISHED_REGIONS:
        lines.append(f"| {name} | {cov:.2f} | {pri:.2f} | {vi:.2f} |")
    return "\n".join(lines) + "\n", curves


def pr_figure(curves: dict[str, np.ndarray], path: Path) -> None:
    """Data-set precision-recall curves, iso-F lines, Berkeley's gPb-owt-ucm curve and the
    published ODS F of SE and HED (as iso-F lines: only their F is quoted here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tests.test_boundaries import GPB_P, GPB_R

    fig, ax = plt.subplots(figsize=(6.4, 6.0), dpi=100)
    grid = np.linspace(0.01, 1, 200)
    for f in (0.5, 0.6, 0.7, 0.8, 0.9):
        r = grid[grid > f / 2]
        ax.plot(r, f * r / (2 * r - f), color="0.88", lw=0.8, zorder=0)
    for f, name in ((0.75, "SE 0.75"), (0.78, "HED 0.78")):
        r = grid[grid > f / 2 + 0.01]
        ax.plot(r, f * r / (2 * r - f), ls=":", lw=1.0, color="0.45", zorder=1)
        ax.annotate(name, (0.97, f * 0.97 / (2 * 0.97 - f)), fontsize=7, color="0.35",
                    ha="right", va="bottom")  # fmt: skip
    ax.plot(np.array(GPB_R.split(), float), np.array(GPB_P.split(), float), color="black",
            lw=1.2, label="gPb-owt-ucm (Berkeley's published curve), ODS F 0.73")  # fmt: skip
    for label, counts in curves.items():
        p, r, f = precision_recall(counts)
        keep = (p > 0) & (r > 0)
        ax.plot(r[keep], p[keep], lw=1.5, label=f"{label}, best F {f.max():.3f}")
    ax.plot([0.80], [0.80], marker="o", color="tab:green", ls="none", label="human, F 0.80")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="recall", ylabel="precision",
           title="BSDS500 test: boundary precision-recall")  # fmt: skip
    ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def sample_figure(chosen: dict[str, Any], models: dict[str, Path], path: Path) -> None:
    """Two bundled samples: the photo, each model's thin boundary map, and the hierarchy cut
    of the last model (the settings train chose): the README's picture."""
    import cv2

    from segclust.imageio import read_image
    from segclust.render import captioned, cluster_colours, contour_panel, side_by_side, ucm_panel

    rows = []
    for stem in ("chelsea", "coffee"):
        source = next((ROOT / "data" / "samples").glob(f"{stem}.*"))
        image = read_image(source)
        rgb = image[:, :, ::-1].copy()
        panels = [captioned(_enlarged(rgb), stem)]
        for name, model_path in models.items():
            maps = boundary_maps(
                image, _loaded(model_path), replace_map(chosen["boundaries"][name])
            )
            panels.append(
                captioned(ucm_panel(maps[1], min_width=480, gamma=1.0), f"{name}: thin map")
            )
        hier = {"edges": "learned", **chosen["hierarchy"][name]}
        smoothed = to_float01(colour_channels(smooth_image(image, cascade.SMOOTHING)))
        hierarchy = photo_hierarchy(
            to_float01(image), smoothed, HierarchyConfig.from_dict(hier), None, maps[0]
        )
        cut = cut_hierarchy(hierarchy, HierarchyConfig.from_dict(hier))
        colours = cluster_colours(int(cut.max()) + 1)
        outline = contour_panel(rgb, cut, colours, min_width=480, thickness=1)
        panels.append(captioned(outline, f"{name}: cut, {int(cut.max()) + 1} regions"))
        rows.append(side_by_side(panels))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))


def _enlarged(rgb: np.ndarray) -> np.ndarray:
    from segclust.render import enlarge, upscale_factor

    return enlarge(rgb, upscale_factor(rgb.shape[1], 480))


def report(args, command: str) -> str:
    if args.settings is None:
        raise SystemExit("report needs --settings (the JSON that select wrote on train)")
    chosen = json.loads(args.settings.read_text())
    from segclust.boundary_model import file_digest

    models = {
        name: ROOT / BoundariesConfig().model_path(name)
        for name in chosen["boundaries"]
        if name in _usable_cue_sets() and (not args.models or name in args.models)
    }
    gradient = {
        k: v for k, v in json.loads((ROOT / "benchmarks/results/cascade_train.json").read_text())
        ["chosen"].items() if k != "candidate"
    }  # fmt: skip
    pairs = pairs_of(args.bsds, args.limit)
    tasks = [(p, chosen, models, gradient) for p in pairs]
    records = run_all(report_image, tasks, args.jobs)
    split = "train" if "train" in args.bsds.resolve().name else "test"
    shown = {n: (str(p.relative_to(ROOT)), file_digest(p)) for n, p in models.items()}
    text, curves = report_table(records, chosen, gradient, command, split, shown)
    with gzip.open(args.out.with_suffix(".json.gz"), "wt") as fh:
        json.dump(records, fh)
    pr_figure(curves, args.out.with_name(args.out.stem + "_pr.png"))
    sample_figure(chosen, models, args.out.with_name(args.out.stem + "_samples.png"))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("select", "report"))
    parser.add_argument("--bsds", type=Path, required=True, help="a BSDS500-layout folder")
    parser.add_argument("--out", type=Path, required=True, help="markdown report")
    parser.add_argument("--settings", type=Path, help="report: the JSON that select wrote")
    parser.add_argument("--thresholds", type=int, default=15, help="boundary thresholds scored")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--jobs", type=int, default=1, help="images in parallel")
    parser.add_argument("--models", nargs="*", help="report: these models only (base, cnn)")
    parser.add_argument(
        "--resume", action="store_true",
        help="select: read back the phases a stopped run finished (same code and data only)",
    )  # fmt: skip
    parser.add_argument(
        "--work", type=Path, default=ROOT / ".bench-cache" / "learned_boundaries",
        help="scratch folder for fold models and maps (not committed)",
    )  # fmt: skip
    args = parser.parse_args()
    command = "python benchmarks/learned_boundaries.py " + " ".join(sys.argv[1:])
    started = time.perf_counter()
    text = select(args, command) if args.mode == "select" else report(args, command)
    text += f"\nWall time {time.perf_counter() - started:.0f} s, {args.jobs} processes.\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
