"""The cascade on large photos: wall time per step and peak memory, up to 12 MP.

Runs what the ``hierarchy`` stage runs on one photo, with the committed settings
(``conf/smoothing/meanshift.yaml`` as the pipeline's default smoothing and
``conf/hierarchy/gradient.yaml``, the hand-made cue; with ``--edges learned``,
``conf/hierarchy/default.yaml`` on the learned boundaries of ``--model``, which the
``boundaries`` stage makes first): ``boundaries`` = the learned maps at the working
resolution (``boundaries.max_pixels``: cues, classifier, thinning); ``hierarchy`` = resizing
to the working resolution, smoothing, boundary strength, watershed leaves and the
average-linkage tree; ``ucm`` = the ultrametric contour map at full size (what the stage
stores); ``cut`` = the configured cut at full size. Each size runs in a fresh process;
peak memory is that process's ``VmHWM`` (``/proc/self/status``), which includes the photo and
Python itself.

The photo is ``benchmarks/limits.py``'s: the bundled ``chelsea.png`` resized to the pixel
count, with seeded noise (sigma 2 grey levels), so it has a real photo's edges and texture.

    python benchmarks/cascade_large.py --sizes 0.25M 1M 4M 12M \\
        --out benchmarks/results/cascade_large.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from limits import make_photo, parse_size, peak_gb  # noqa: E402

SCALE_PHOTO = ROOT.parent / "shared" / "data" / "bsds500-train" / "images" / "100075.jpg"


def run_one(pixels: int, queue: Any, edges: str = "gradient", model: str = "base") -> None:
    from segclust.config import HierarchyConfig, SmoothingConfig
    from segclust.hierarchy import build_hierarchy, cut_hierarchy

    def conf(group: str, name: str) -> dict:
        return yaml.safe_load((ROOT / "conf" / group / f"{name}.yaml").read_text())

    import cv2

    cv2.setNumThreads(1)  # one thread, as the pipeline's workers run each photo
    name = {"gradient": "gradient", "learned": "cnn" if model == "cnn" else "default"}[edges]
    settings = HierarchyConfig.from_dict(conf("hierarchy", name))
    smoothing = SmoothingConfig.from_dict(conf("smoothing", "meanshift"))
    photo = make_photo(pixels)
    seconds: dict[str, float] = {}
    probability = None
    if edges == "learned":
        from segclust.boundary_maps import boundary_maps
        from segclust.boundary_model import BoundariesConfig, load_model

        best = conf("experiment", "best")["boundaries"] if model == "cnn" else {}
        boundaries = BoundariesConfig.from_dict(
            {**conf("boundaries", "default"), **best, "model": model}
        )
        started = time.perf_counter()
        trained = load_model(ROOT / boundaries.model_path())
        probability = boundary_maps(photo, trained, boundaries, "cpu")[0]
        seconds["boundaries"] = time.perf_counter() - started
    started = time.perf_counter()
    hierarchy = build_hierarchy(photo, smoothing, settings, None, probability)
    seconds["hierarchy"] = time.perf_counter() - started
    started = time.perf_counter()
    ucm = hierarchy.ucm
    seconds["ucm"] = time.perf_counter() - started
    started = time.perf_counter()
    cut = cut_hierarchy(hierarchy, settings)
    seconds["cut"] = time.perf_counter() - started
    queue.put(
        {
            "shape": photo.shape[:2],
            "levels": int(hierarchy.levels.size),
            "regions": int(cut.max()) + 1,
            "ucm_mb": ucm.nbytes / 2**20,
            "seconds": seconds,
            "peak_gb": peak_gb(),
        }
    )


def scale_check(factor: int, queue: Any) -> None:
    """A BSDS500 train photo (481×321) enlarged ``factor`` times (cubic): regions of the
    default cut and median height of the UCM, built at full size and at the working
    resolution."""
    import cv2
    import numpy as np

    from segclust.config import HierarchyConfig, SmoothingConfig
    from segclust.hierarchy import build_hierarchy, cut_hierarchy

    def conf(group: str, name: str) -> dict:
        return yaml.safe_load((ROOT / "conf" / group / f"{name}.yaml").read_text())

    settings = HierarchyConfig.from_dict(conf("hierarchy", "gradient"))
    smoothing = SmoothingConfig.from_dict(conf("smoothing", "meanshift"))
    photo = cv2.imread(str(SCALE_PHOTO), cv2.IMREAD_COLOR)
    photo = cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    out = {"shape": photo.shape[:2]}
    for name, limit in (("full", 10**9), ("working", settings.max_pixels)):
        started = time.perf_counter()
        hierarchy = build_hierarchy(photo, smoothing, replace(settings, max_pixels=limit))
        cut = cut_hierarchy(hierarchy, settings)
        ucm = hierarchy.ucm
        out[name] = {
            "regions": int(cut.max()) + 1,
            "median": float(np.median(ucm[ucm > 0])),
            "seconds": time.perf_counter() - started,
        }
    queue.put(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["0.25M", "1M", "4M", "12M"])
    parser.add_argument("--scale-factors", nargs="*", type=int, default=[1, 2, 4])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--edges", choices=("gradient", "learned"), default="gradient")
    parser.add_argument("--model", default="base", help="with --edges learned: base or cnn")
    args = parser.parse_args()
    steps = ("hierarchy", "ucm", "cut")
    settings = "`conf/hierarchy/gradient.yaml`"
    if args.edges == "learned":
        steps = ("boundaries", *steps)
        preset = "cnn" if args.model == "cnn" else "default"
        settings = f"`conf/hierarchy/{preset}.yaml` on the learned boundaries of model {args.model}"
    lines = [
        "The cascade on one photo per size, fresh process each, one thread: "
        "`python " + " ".join(sys.argv) + "`. Settings: "
        f"`conf/smoothing/meanshift.yaml`, {settings}. Peak = the "
        "process's VmHWM (photo and Python included).",
        "",
        "| pixels | shape | levels | regions of the cut | UCM MB | "
        + " | ".join(f"{s} s" for s in steps)
        + " | total s | peak GB |",
        "|---|---|---|---|---|" + "---|" * (len(steps) + 2),
    ]
    context = mp.get_context("spawn")
    for size in args.sizes:
        queue = context.Queue()
        process = context.Process(
            target=run_one, args=(parse_size(size), queue, args.edges, args.model)
        )
        process.start()
        result = queue.get()
        process.join()
        s = result["seconds"]
        lines.append(
            f"| {size} | {result['shape'][0]}×{result['shape'][1]} | {result['levels']} | "
            f"{result['regions']} | {result['ucm_mb']:.0f} | "
            + " | ".join(f"{s[k]:.1f}" for k in steps)
            + f" | {sum(s.values()):.1f} | {result['peak_gb']:.2f} |"
        )
        print(lines[-1], flush=True)
    factors = args.scale_factors if SCALE_PHOTO.is_file() and args.edges == "gradient" else ()
    lines += (
        []
        if not factors
        else [
            "",
            f"Why a working resolution: BSDS500 train photo `{SCALE_PHOTO.name}` enlarged with "
            "cubic interpolation, cut with the default threshold, built at full size against "
            "built at `hierarchy.max_pixels`. Median UCM height = median positive edge height.",
            "",
            "| enlarged | shape | full size: regions | median height | s | working: regions "
            "| median height | s |",
            "|---|---|---|---|---|---|---|---|",
        ]
    )
    for factor in factors:
        queue = context.Queue()
        process = context.Process(target=scale_check, args=(factor, queue))
        process.start()
        r = queue.get()
        process.join()
        f, w = r["full"], r["working"]
        lines.append(
            f"| {factor}× | {r['shape'][0]}×{r['shape'][1]} | {f['regions']} | "
            f"{f['median']:.2f} | {f['seconds']:.1f} | {w['regions']} | {w['median']:.2f} | "
            f"{w['seconds']:.1f} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
