"""`dvc exp show` and `dvc metrics show` against the number of images, before and after the
per-image scores moved from the metrics files to tables (issue 14).

For each layout (``--before``: a commit whose metrics files held every image's scores;
``--after``: this one) and each size, the script copies that commit's tree into a fresh git
repository, fills ``data/samples`` with N small synthetic photos (two-tone 24×32 images,
seeded noise) and ``data/ground_truth`` with their human segmentation, runs the real
pipeline (`dvc repro`, ``tune.n_trials`` 2 to keep it short), commits, and times:

* ``dvc exp show --csv``: its columns (the header) and wall time;
* ``dvc metrics show --json``: the metric values it lists (leaf keys) and wall time.

The stages of each layout run from that layout's own ``src`` (``PYTHONPATH``). Nothing here
is a test: the numbers are measured, not asserted.

    python benchmarks/exp_show.py --sizes 5 100 1000 --before e427913 \\
        --out benchmarks/results/exp_show.md
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import repo_env, two_region_grey, write_image  # noqa: E402


def sh(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result


def environment(src: Path) -> dict[str, str]:
    # this layout's code, ahead of the editable install
    return {**repo_env(), "PYTHONPATH": str(src)}


def tree_of(rev: str, target: Path) -> None:
    """The files of commit ``rev`` of this repository, without its generated outputs."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, capture_output=True, check=True
    ).stdout
    target.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    for generated in ("dvc.lock", "metrics", "plots", "data/samples", "data/ground_truth"):
        path = target / generated
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def fill(repo: Path, n: int) -> None:
    samples, truth = repo / "data" / "samples", repo / "data" / "ground_truth"
    for i in range(n):
        image = two_region_grey(24, 32, seed=i)
        write_image(samples / f"img{i:05d}.png", image)
        labels = np.zeros((24, 32), np.uint8)
        labels[:, 16:] = 1
        write_image(truth / f"img{i:05d}.png", labels)
    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["tune"]["n_trials"] = 2
    params["data"]["ground_truth"] = "data/ground_truth"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))


def leaf_count(d: object) -> int:
    if isinstance(d, dict):
        return sum(leaf_count(v) for v in d.values()) if d else 1
    return 1


def measure(rev: str, n: int, work: Path) -> dict[str, float]:
    repo = work / f"{rev}-{n}"
    tree_of(rev, repo)
    fill(repo, n)
    env = environment(repo / "src")
    sh(repo, "git", "init", "-q", "-b", "main", env=env)
    sh(repo, "git", "add", "-A", env=env)
    sh(repo, "git", "commit", "-qm", "inputs", env=env)
    started = time.perf_counter()
    sh(repo, sys.executable, "-m", "dvc", "repro", "--allow-missing", env=env)
    repro = time.perf_counter() - started
    sh(repo, "git", "add", "-A", env=env)
    sh(repo, "git", "commit", "-qm", "results", env=env)
    started = time.perf_counter()
    shown = sh(repo, sys.executable, "-m", "dvc", "exp", "show", "--csv", env=env).stdout
    exp_seconds = time.perf_counter() - started
    header = next(csv.reader(io.StringIO(shown)))
    rows = json.loads(
        sh(repo, sys.executable, "-m", "dvc", "exp", "show", "--json", env=env).stdout
    )
    workspace = rows[0]["data"]["metrics"]
    metric_columns = sum(leaf_count(entry.get("data", {})) for entry in workspace.values())
    started = time.perf_counter()
    metrics = sh(repo, sys.executable, "-m", "dvc", "metrics", "show", "--json", env=env).stdout
    metrics_seconds = time.perf_counter() - started
    data = json.loads(metrics)[""]["data"]
    values = sum(leaf_count(entry.get("data", {})) for entry in data.values())
    shutil.rmtree(repo)
    return {
        "exp_columns": len(header),
        "exp_metric_columns": metric_columns,
        "exp_seconds": exp_seconds,
        "metric_values": values,
        "metrics_seconds": metrics_seconds,
        "repro_seconds": repro,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[5, 100, 1000])
    parser.add_argument("--before", required=True, help="a commit with per-image metrics")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        "`dvc exp show` and `dvc metrics show` against the number of images, one run on this "
        "machine: `python " + " ".join(sys.argv) + "`. Before = per-image scores inside the "
        "metrics files (commit `" + args.before + "`); after = summaries in the metrics files, "
        "per-image tables in `plots/images/` (commit `" + args.after + "`). Columns = the "
        "header of `dvc exp show --csv` (params, deps and metrics); metric columns = the "
        "metric leaves of the workspace row of `dvc exp show --json`; values = leaf values of "
        "`dvc metrics show --json`.",
        "",
        "| images | layout | exp show columns | of them metrics | exp show s | metric values "
        "| metrics show s | dvc repro s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            for layout, rev in (("before", args.before), ("after", args.after)):
                r = measure(rev, n, Path(tmp))
                lines.append(
                    f"| {n} | {layout} | {r['exp_columns']} | {r['exp_metric_columns']} | "
                    f"{r['exp_seconds']:.1f} | {r['metric_values']} | "
                    f"{r['metrics_seconds']:.1f} | {r['repro_seconds']:.0f} |"
                )
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
