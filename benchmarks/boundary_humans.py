"""Human against human on the BSDS500 boundary benchmark: the published F = 0.80.

Berkeley's protocol (``boundaryBenchHuman.m`` of the BSDS300 benchmark code): each annotator's
boundary map in turn is the "machine" and is scored by the boundary benchmark
(:func:`segclust.boundaries.boundary_counts`, tolerance 0.0075 of the image diagonal) against
the image's other annotators; the counts are summed over annotators and images and give one
precision, recall and F. BSDS500 (Arbelaez et al., TPAMI 2011) reports F = 0.80 for humans.
Annotators' boundaries are ``boundary_map(Segmentation, thin=True)``, which is the stored
``Boundaries`` field of every file (checked here as it goes).

    python benchmarks/boundary_humans.py --limit 10          # quick look
    python benchmarks/boundary_humans.py --out benchmarks/results/boundary_humans.md

Nothing here is a test: numbers are measured (tests/test_boundaries.py checks every 4th photo
against the published 0.80 with a tolerance of 0.02; this run is the whole split).
Seconds are wall time on one core; "per call" is one ``boundary_counts`` (one annotator against
all the others of an image), the unit that a threshold sweep repeats.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy
import scipy.io

from segclust.boundaries import boundary_counts, boundary_scores, human_boundaries
from segclust.groundtruth import read_bsds_mat

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BSDS = ROOT.parent / "shared" / "data" / "bsds500"


def run(folder: Path, limit: int | None) -> tuple[list[str], dict[str, float]]:
    files = sorted(folder.glob("*.mat"))[:limit]
    if not files:
        sys.exit(f"no .mat files in {folder}")
    per_image, call_seconds = [], []
    runs = pairs = mismatched = 0
    started = time.perf_counter()
    for path in files:
        humans = human_boundaries(read_bsds_mat(path))
        stored = scipy.io.loadmat(str(path))["groundTruth"]
        mismatched += sum(
            not np.array_equal(b, stored[0, k]["Boundaries"][0, 0].astype(bool))
            for k, b in enumerate(humans)
        )
        counts = []
        for k in range(len(humans)):
            others = humans[:k] + humans[k + 1 :]
            t = time.perf_counter()
            counts.append(boundary_counts(humans[k], others))
            call_seconds.append(time.perf_counter() - t)
            pairs += len(others)
        runs += len(humans)
        per_image.append(np.sum(counts, axis=0))
    seconds = time.perf_counter() - started
    scores = boundary_scores(np.array(per_image)[:, None, :])
    calls = np.array(call_seconds) * 1000
    lines = [
        "| images | annotator runs | annotator pairs | P | R | F | seconds |",
        "|---|---|---|---|---|---|---|",
        f"| {len(files)} | {runs} | {pairs} | {scores.ods_p:.4f} | {scores.ods_r:.4f} "
        f"| {scores.ods_f:.4f} | {seconds:.1f} |",
        "",
        f"Per `boundary_counts` call (one annotator against the image's {pairs / runs:.1f} "
        f"others on average): mean {calls.mean():.1f} ms, median {np.median(calls):.1f} ms, "
        f"95th percentile {np.percentile(calls, 95):.1f} ms, max {calls.max():.1f} ms; "
        f"per annotator pair: mean {calls.sum() / pairs:.1f} ms.",
        "",
        f"`boundary_map(Segmentation, thin=True)` differs from the stored `Boundaries` in "
        f"{mismatched} of {runs} annotations.",
    ]
    return lines, {"f": scores.ods_f, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bsds", type=Path, default=DEFAULT_BSDS, help="BSDS500 folder")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    folder = args.bsds / "groundTruth"
    if not folder.is_dir():
        sys.exit(f"{folder} is absent: the BSDS500 ground truth lives beside the project")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines, _ = run(folder, args.limit)
    command = " ".join(["python", *sys.argv])
    header = (
        f"Command: `{command}` — run {when} on one core of {os.cpu_count()}, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}."
        "\n\nHuman against human, BSDS500 test split (each annotator scored against the "
        "others; published F = 0.80):"
    )
    text = header + "\n\n" + "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
