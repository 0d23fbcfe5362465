"""The committed boundary models, trained again from the train split: the same bytes?

For every entry of ``boundaries.models`` in the committed ``params.yaml``, runs the training
stage's own code (:func:`segclust.stages.train_boundaries.train_model`) on the whole
training split with the committed params and seed, in a scratch folder, and compares the
SHA-256 of the result with the model kept in Git (``models/boundaries_<name>.npz``); also
with 1 worker against ``--jobs`` workers for the first model. Prints a table, the wall time,
and the versions that made the bytes (a model from other library versions is refused at
load, so these are the versions the committed bytes belong to).

    python benchmarks/reproduce_boundaries.py --jobs 2 \\
        --out benchmarks/results/boundaries_reproduce.md
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import yaml

from segclust.boundary_model import library_versions, model_bytes
from segclust.groundtruth import training_pairs
from segclust.imageio import IMAGE_EXTENSIONS
from segclust.stages.train_boundaries import TrainSettings, train_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--models", nargs="*", help="model names (default: every entry)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.chdir(ROOT)  # the training folders in params.yaml are relative to the project
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    names = args.models or list(params["boundaries"]["models"])
    lines = [
        f"`python {' '.join(sys.argv)}`: each committed model trained again from "
        f"`{params['boundaries']['train']['images']}` with the committed `params.yaml`.",
        "",
        "| model | workers | committed sha256 | retrained sha256 | same bytes | s |",
        "|---|---|---|---|---|---|",
    ]
    runs = [(name, args.jobs) for name in names] + [(names[0], 1)]
    for name, jobs in runs:
        settings = TrainSettings.load_dict({**params, "execution": {"jobs": jobs}}, name)
        train = settings.boundaries.train
        pairs = training_pairs(train["images"], train["ground_truth"], IMAGE_EXTENSIONS)
        started = time.perf_counter()
        data = model_bytes(train_model(settings, pairs))
        seconds = time.perf_counter() - started
        committed = (ROOT / settings.boundaries.model_path(name)).read_bytes()
        a, b = hashlib.sha256(committed).hexdigest(), hashlib.sha256(data).hexdigest()
        lines.append(
            f"| {name} | {jobs} | {a[:16]} | {b[:16]} | {'yes' if a == b else '**no**'} | "
            f"{seconds:.0f} |"
        )
        print(lines[-1], flush=True)
    versions = library_versions(settings.boundaries.models[names[-1]].cues)
    lines += ["", "Libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + "."]
    lines += ["", f"Python {sys.version.split()[0]}, {os.cpu_count()} cores."]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
