"""Per-photo cost of every stage on one core, as a ratio to Felzenszwalb-Huttenlocher timed
in the same run.

Runs each stage as DVC runs it (``python -m segclust.stages.<name>``) in a work folder with
the composed params (``+experiment=best`` by default) on the first ``--images`` photos of a
BSDS500-layout folder, one worker (``execution.jobs: 1``), the per-image cache off. A stage's
seconds per photo are the mean of its ``metrics/timings/<stage>.json`` (the per-image work,
without the process start, which the table gives apart), and that mean without the first
photo, whose time also holds the imports its work needs on first use. FH (scikit-image, scale 500,
sigma 0.8, min_size 200, as in the BSDS tables) runs on the same photos in this process,
before and after the stages, and the mean of both runs is the unit. The learned boundary
maps (the ``boundaries`` stage) are shown apart from the segmenting stages, as the issue
that set the target asks, and so is their benchmark (``evaluate_boundaries``) apart from
``evaluate``, which scores the segmentations. The run's agreement with people
(``metrics/evaluate.json``) is printed beside the costs, so that a cheaper setting is read
with what it gives. With ``--profile`` each stage also runs once under cProfile (the
standard library's deterministic profiler) and the top lines of each are printed.

    python benchmarks/stage_costs.py --bsds ../shared/data/bsds500 --images 16 \\
        --out benchmarks/results/stage_costs.md

    python benchmarks/stage_costs.py --bsds ../shared/data/bsds500-train --images 50 \\
        --override +experiment=best --override smoothing.spatial_radius=4   # a variant, on train

Nothing here is a test: numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import yaml

from segclust.presets import compose_params

ROOT = Path(__file__).resolve().parents[1]
SEGMENTING = ("features", "cluster", "tune", "regions", "hierarchy", "render")
ORDER = (
    "features", "boundaries", "cluster", "tune", "regions", "hierarchy", "render", "evaluate",
    "evaluate_boundaries",
)  # fmt: skip


def fh_seconds(paths: list[Path]) -> float:
    """Mean seconds per photo of scikit-image's Felzenszwalb-Huttenlocher (the call only)."""
    import cv2
    from skimage.segmentation import felzenszwalb

    seconds = []
    for path in paths:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        started = time.perf_counter()
        felzenszwalb(rgb, scale=500, sigma=0.8, min_size=200)
        seconds.append(time.perf_counter() - started)
    return float(np.mean(seconds))


def work_folder(tmp: Path, bsds: Path, stems: list[str], overrides: list[str]) -> Path:
    params = compose_params(overrides)
    params["data"] |= {
        "root": str(bsds / "images"),
        "ground_truth": str(bsds / "groundTruth"),
        "images": [f"{s}.jpg" for s in stems],
    }
    params["execution"] |= {"jobs": 1, "cache": False}
    work = tmp / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / "models").symlink_to(ROOT / "models")
    return work


def run_stage(work: Path, stage: str, profile: Path | None = None) -> float:
    command = [sys.executable]
    if profile:
        command += ["-m", "cProfile", "-o", str(profile)]
    command += ["-m", f"segclust.stages.{stage}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def per_photo(work: Path, stage: str) -> tuple[float, float]:
    """(mean seconds per photo, mean without the first photo) of the stage's timings.

    The first photo a stage process handles also pays the imports its work needs on first
    use (scikit-learn's clustering, Optuna, higra: about 1 s in ``cluster`` and ``tune``),
    which 10,000 photos share; FH's import is outside its timing too.
    """
    path = work / "metrics" / "timings" / f"{stage}.json"
    values = list(json.loads(path.read_text())["seconds"].values()) if path.exists() else []
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.mean(values[1:] or values))


def agreement_lines(work: Path) -> list[str]:
    """The run's own agreement with people (``metrics/evaluate.json`` and
    ``evaluate_boundaries.json``), so that a setting's cost is read beside its quality; none
    without ground truth."""
    scores = json.loads((work / "metrics" / "evaluate.json").read_text())
    edges = json.loads((work / "metrics" / "evaluate_boundaries.json").read_text())
    if not scores.get("images_evaluated"):
        return []
    lines = [
        f"Agreement with people in the same run ({scores['images_evaluated']} photos; "
        "Covering is the mean over photos):",
        "",
        "| segment map | Covering | PRI | VI | boundary F |",
        "|---|---|---|---|---|",
    ]
    for which in ("configured", "tuned", "hierarchy"):
        if which in scores:
            m = scores[which]
            lines.append(
                f"| {which} | {m['covering']['mean']:.3f} | {m['pri']:.3f} | {m['vi']:.3f} "
                f"| {m['boundary_f']:.3f} |"
            )
    if "hierarchy_levels" in scores:
        ods = scores["hierarchy_levels"]["ods"]
        lines.append(
            f"| hierarchy, ODS level | {ods['covering']:.3f} | {ods['pri']:.3f} | "
            f"{ods['vi']:.3f} | {ods['boundary_f']:.3f} |"
        )
    if edges.get("images"):
        lines += ["", f"Learned edge map: ODS F {edges['ods_f']:.3f}, AP {edges['ap']:.3f}."]
    return [*lines, ""]


def top_lines(profile: Path, n: int) -> str:
    out = io.StringIO()
    pstats.Stats(str(profile), stream=out).sort_stats("tottime").print_stats(n)
    text = out.getvalue()
    return text[text.find("   ncalls") :].rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bsds", type=Path, required=True)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--override", action="append", default=None,
                        help="Hydra override (repeatable); default +experiment=best")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="also profile every stage")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    overrides = args.override or ["+experiment=best"]
    paths = sorted((args.bsds / "images").glob("*.jpg"))[: args.images]
    stems = [p.stem for p in paths]
    command = "python benchmarks/stage_costs.py " + " ".join(sys.argv[1:])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    fh_before = fh_seconds(paths)
    seconds, steady, walls, profiles = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        work = work_folder(Path(tmp), args.bsds.resolve(), stems, overrides)
        for stage in ORDER:
            walls[stage] = run_stage(work, stage)
            seconds[stage], steady[stage] = per_photo(work, stage)
            print(
                f"{stage}: {seconds[stage]:.3f} s/photo ({steady[stage]:.3f} after the first),"
                f" {walls[stage]:.1f} s wall",
                flush=True,
            )
        agreement = agreement_lines(work)
        if args.profile:
            for stage in ORDER:
                profile = Path(tmp) / f"{stage}.prof"
                run_stage(work, stage, profile)
                profiles[stage] = top_lines(profile, 12)
    fh = (fh_before + fh_seconds(paths)) / 2
    segmenting = sum(seconds[s] for s in SEGMENTING)
    segmenting_steady = sum(steady[s] for s in SEGMENTING)
    lines = [
        f"`{command}` at commit {commit}: the first {len(paths)} photos of "
        f"`{args.bsds.name}`, overrides {overrides}, one worker, per-image cache off, "
        f"{os.cpu_count()} cores. Seconds per photo inside each stage (its "
        "`metrics/timings`): the mean over every photo, and the mean without the first, "
        "which also pays the imports the work needs on first use (FH's timing leaves its "
        "import out too); wall = the stage's process, start and imports included.",
        "",
        "| stage | s / photo | × FH | s / photo after the first | × FH | stage wall s |",
        "|---|---|---|---|---|---|",
    ]
    for stage in ORDER:
        lines.append(
            f"| {stage} | {seconds[stage]:.3f} | {seconds[stage] / fh:.1f} | "
            f"{steady[stage]:.3f} | {steady[stage] / fh:.1f} | {walls[stage]:.1f} |"
        )
    lines += [
        f"| **segmenting stages** ({', '.join(SEGMENTING)}) | {segmenting:.3f} | "
        f"{segmenting / fh:.1f} | {segmenting_steady:.3f} | {segmenting_steady / fh:.1f} | "
        f"{sum(walls[s] for s in SEGMENTING):.1f} |",
        f"| Felzenszwalb-Huttenlocher (scikit-image), same photos and run | {fh:.3f} | 1.0 "
        f"| {fh:.3f} | 1.0 | |",
        "",
    ]
    lines += agreement
    for stage, text in profiles.items():
        lines += [f"cProfile of `{stage}` (top by own time):", "", "```", text, "```", ""]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
