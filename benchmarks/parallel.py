"""Wall time of the pipeline's stages with one worker, two, and a Dask LocalCluster of two.

Runs every stage (features → evaluate) as DVC runs them (``python -m segclust.stages.<name>``
in a work folder with the committed ``params.yaml``), on the first ``--images`` photos of a
BSDS500-layout folder, once per execution setting, and prints one table: seconds per stage
and in all, and whether every output file has the same bytes as with one worker (SHA-256 of
each file under ``data/``, ``plots/`` and ``metrics/``, timings excluded). Peak memory is not
measured here. Nothing here is a test: numbers are measured, not asserted.

    python benchmarks/parallel.py --bsds ../shared/data/bsds500-train --images 20 \\
        --out benchmarks/results/parallel.md
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("features", "cluster", "tune", "regions", "hierarchy", "render", "evaluate")
SETTINGS = (
    ("joblib, 1 worker", {"jobs": 1}),
    ("joblib, 2 workers", {"jobs": 2}),
    ("Dask LocalCluster, 2 workers", {"jobs": 2, "engine": "dask", "address": None}),
)


def run(work: Path, execution: dict, images: Path, truth: Path) -> tuple[dict, dict]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["root"] = str(images)
    params["data"]["ground_truth"] = str(truth)
    params["execution"] = {**params.get("execution", {}), **execution}
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    seconds = {}
    for stage in STAGES:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", f"segclust.stages.{stage}"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"{stage} failed:\n{result.stderr}")
        seconds[stage] = time.perf_counter() - started
    hashes = {
        str(p.relative_to(work)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(work.rglob("*"))
        if p.is_file() and "timings" not in p.parts and p.name != "params.yaml"
    }
    return seconds, hashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bsds", type=Path, required=True)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.bsds = args.bsds.resolve()  # the stages run in their own work folders
    lines = [
        f"The pipeline's stages on the first {args.images} images of `{args.bsds.name}`, "
        f"default params, one run per setting, {os.cpu_count()} cores: `python "
        + " ".join(sys.argv)
        + "`. Seconds per stage (wall, including process start); identical = every output "
        "file has the bytes of the one-worker run.",
        "",
        "| setting | " + " | ".join(STAGES) + " | total s | × one worker | identical |",
        "|---|" + "---|" * (len(STAGES) + 3),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        for path in sorted((args.bsds / "images").glob("*.jpg"))[: args.images]:
            shutil.copy(path, images / path.name)
        reference, base = None, None
        for index, (name, execution) in enumerate(SETTINGS):
            seconds, hashes = run(
                Path(tmp) / f"run{index}", execution, images, args.bsds / "groundTruth"
            )
            total = sum(seconds.values())
            if reference is None:
                reference, base = hashes, total
            same = "yes" if hashes == reference else "NO"
            lines.append(
                f"| {name} | "
                + " | ".join(f"{seconds[s]:.1f}" for s in STAGES)
                + f" | {total:.1f} | {total / base:.2f} | {same} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
