"""Full-resolution benchmark: the pipeline's clustering and scores at 0.25 to 12 megapixels.

Builds photos of each size from a bundled sample (cubic upscaling, and a variant with mild
Gaussian noise so that distinct values are realistic), runs every seed feature set × every
registered algorithm (``segclust.algorithms``; ``--algorithms`` picks some) with the config
defaults through the pipeline's own code, and, where it still fits (``--naive-seconds``,
``--naive-gb``), the naive way: the registry's scikit-learn estimator on every pixel. Prints
Markdown tables: wall time (clustering, then scores), peak memory, the silhouette (value,
method, standard error), the naive time and memory, the speed-up and the ARI between the two
labelings; then the tuning table and the ``dvc repro`` line unless switched off.

    python benchmarks/scale.py                         # everything (over an hour on 2 cores)
    python benchmarks/scale.py --sizes 0.25 1 --no-tune --no-dvc   # a quick look

Every run is a fresh process, so peak memory (``VmHWM``) is that run's own. A naive run
is skipped (and says so) when the same run at the next smaller size already failed or took
more than a quarter of the budget. Nothing here is a test: numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from segclust import algorithms as _registry

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "samples" / "chelsea.png"
FEATURES = ("intensity", "intensity_xy", "sobel")
# Every registered algorithm (segclust.algorithms): a new entry is benchmarked without edits here.
ALGORITHMS = tuple(_registry.ALGORITHMS)
NOISE_SIGMA = 3.0  # grey levels (of 255) of Gaussian noise in the "noisy" variant
# DBSCAN's min_samples counts pixels; conf/cluster/dbscan.yaml is set for the ~25k-pixel
# bundled samples. Neighbour counts grow with N, so eps is shrunk by
# (SAMPLE_PIXELS / N)^(1/d) to keep the same density threshold at every size (the tuner's
# refit rule, segclust.tuning.density_matched_eps).
SAMPLE_PIXELS = 25_600


def load_group(group: str, name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "conf" / group / f"{name}.yaml").read_text())


def make_photo(megapixels: float, noisy: bool, seed: int = 0) -> np.ndarray:
    """A 4:3 BGR photo of about ``megapixels`` upscaled (cubic) from the bundled sample."""
    import cv2

    small = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR)
    height = round((megapixels * 1e6 * 3 / 4) ** 0.5)
    width = round(height * 4 / 3)
    photo = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    if noisy:
        rng = np.random.default_rng(seed)
        noise = rng.normal(0.0, NOISE_SIGMA, photo.shape).astype(np.float32)
        photo = np.clip(photo + noise, 0, 255).astype(np.uint8)
    return photo


def cluster_params(algorithm: str, n_pixels: int, dims: int) -> dict[str, Any]:
    params = load_group("cluster", algorithm)
    params.pop("algorithm")
    rule = _registry.ALGORITHMS[algorithm].refit_rule
    if rule is not None and n_pixels > SAMPLE_PIXELS:  # same density as on the samples
        params = rule(params, SAMPLE_PIXELS, n_pixels, dims)
    return params


def inertia(x: np.ndarray, labels: np.ndarray) -> float:
    """KMeans' objective for these labels: squared distances to the cluster means."""
    total = 0.0
    for c in np.unique(labels[labels >= 0]):
        members = x[labels == c].astype(np.float64)
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def features_for(photo: np.ndarray, feature: str) -> tuple[np.ndarray, tuple[int, int], float]:
    from segclust.config import FeatureConfig, ScalerConfig
    from segclust.features import feature_matrix

    config = FeatureConfig.from_dict(load_group("features", feature))
    started = time.perf_counter()
    x, _ = feature_matrix(photo, config, ScalerConfig("standard"))
    return x, photo.shape[:2], time.perf_counter() - started


def peak_gb() -> float:
    """This process's own peak resident memory (VmHWM), in GiB.

    Not ``ru_maxrss``: on Linux a spawned child inherits its parent's high-water mark
    through fork + exec, so that would report the parent's peak as the child's.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def warm_up() -> None:
    """One tiny fit of each registered estimator, so neither side pays OpenMP / BLAS start-up."""
    x = np.random.default_rng(0).normal(size=(300, 3)).astype(np.float32)
    context = _registry.FitContext(seed=0, shape=(15, 20))
    for entry in _registry.ALGORITHMS.values():
        params = entry.default_params()
        if "min_cluster_size" in params:
            params["min_cluster_size"] = 10
        entry.sklearn(params, context).fit_predict(x)


def run_ours(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """The pipeline's own path: features, cluster_features, configured_metrics."""
    from segclust.clustering import cluster_features
    from segclust.config import ClusterConfig, MetricsConfig
    from segclust.metrics import configured_metrics

    photo = make_photo(job["mp"], job["noisy"])
    x, _, feature_s = features_for(photo, job["feature"])
    cluster = ClusterConfig.from_dict(
        {"algorithm": job["algorithm"], **cluster_params(job["algorithm"], x.shape[0], x.shape[1])}
    )
    warm_up()
    started = time.perf_counter()
    result = cluster_features(
        x, cluster.algorithm, dict(cluster.params), seed=0, shape=photo.shape[:2]
    )
    cluster_s = time.perf_counter() - started
    started = time.perf_counter()
    scores = configured_metrics(
        x,
        result.labels,
        MetricsConfig(),
        compression=result.row_compression,
    )
    metrics_s = time.perf_counter() - started
    np.save(out, result.labels)
    return {
        "pixels": int(x.shape[0]),
        "eps": cluster.params.get("eps"),
        "inertia": inertia(x, result.labels) if job["algorithm"] == "kmeans" else None,
        "feature_s": feature_s,
        "cluster_s": cluster_s,
        "metrics_s": metrics_s,
        "peak_gb": peak_gb(),
        "compressed": result.compressed,
        "distinct": result.distinct_rows,
        "n_clusters": scores["n_clusters"],
        "silhouette": scores["silhouette"],
        "method": scores["silhouette_method"],
        "stderr": scores["silhouette_stderr"],
    }


def run_naive(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """The seed's way: the registry's scikit-learn estimator on every pixel, no compression."""
    photo = make_photo(job["mp"], job["noisy"])
    x, shape, _ = features_for(photo, job["feature"])
    p = cluster_params(job["algorithm"], x.shape[0], x.shape[1])
    entry = _registry.ALGORITHMS[job["algorithm"]]
    estimator = entry.sklearn(p, _registry.FitContext(seed=0, shape=shape))
    warm_up()
    started = time.perf_counter()
    labels = estimator.fit_predict(x)
    seconds = time.perf_counter() - started
    np.save(out, labels)
    objective = inertia(x, labels) if job["algorithm"] == "kmeans" else None
    return {"seconds": seconds, "peak_gb": peak_gb(), "inertia": objective}


def _child(kind: str, job: dict[str, Any], out: Path, memory_gb: float | None, queue) -> None:
    if memory_gb is not None:
        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = (run_ours if kind == "ours" else run_naive)(job, out)
        queue.put({"ok": True, **result})
    except MemoryError:
        queue.put({"ok": False, "why": f"MemoryError (> {memory_gb} GB)"})
    except Exception as exc:  # noqa: BLE001 - reported in the table, not raised
        queue.put({"ok": False, "why": f"{type(exc).__name__}: {exc}".splitlines()[0][:60]})


def in_fresh_process(
    kind: str, job: dict[str, Any], out: Path, seconds: float | None, memory_gb: float | None
) -> dict[str, Any]:
    """Run one job in a new process (own peak memory), killed after ``seconds``."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(kind, job, out, memory_gb, queue))
    process.start()
    try:
        return queue.get(timeout=seconds)
    except Exception:  # noqa: BLE001 - queue.Empty: over the time budget
        process.kill()
        return {"ok": False, "why": f"over {seconds:.0f} s"}
    finally:
        process.join()


def ari(a: Path, b: Path) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.load(a), np.load(b)))


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def scale_table(
    sizes: list[float],
    naive_seconds: float,
    naive_gb: float,
    features: list[str],
    naive_variants: tuple[str, ...] = ("clean", "noisy"),
    algorithms: tuple[str, ...] = ALGORITHMS,
) -> list[str]:
    lines = [
        "| MP | variant | features | algorithm | compressed (distinct rows) | clusters | "
        "cluster s | scores s | peak GB | silhouette | method | stderr | naive s | naive GB | "
        "speed-up | ARI vs naive | inertia ours/naive |",
        "|" + "---|" * 17,
    ]
    given_up: dict[tuple, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for noisy in (False, True):
            for mp_size in sizes:
                for feature in features:
                    for algorithm in algorithms:
                        job = {
                            "mp": mp_size,
                            "noisy": noisy,
                            "feature": feature,
                            "algorithm": algorithm,
                        }
                        ours_file = Path(tmp) / "ours.npy"
                        naive_file = Path(tmp) / "naive.npy"
                        ours = in_fresh_process("ours", job, ours_file, 900, None)
                        key = (noisy, feature, algorithm)
                        naive: dict[str, Any]
                        variant = "noisy" if noisy else "clean"
                        if not naive_seconds or variant not in naive_variants:
                            naive = {"ok": False, "why": "not run"}
                        elif key in given_up:
                            naive = {"ok": False, "why": given_up[key]}
                        else:
                            naive = in_fresh_process(
                                "naive", job, naive_file, naive_seconds, naive_gb
                            )
                            if not naive["ok"]:
                                given_up[key] = f"skipped: {naive['why']} at a smaller size"
                            elif naive["seconds"] > naive_seconds / 4:
                                given_up[key] = f"skipped: {naive['seconds']:.0f} s at {mp_size} MP"
                        lines.append(row(job, ours, naive, ours_file, naive_file))
                        print(lines[-1], flush=True)
    return lines


def row(
    job: dict[str, Any],
    ours: dict[str, Any],
    naive: dict[str, Any],
    ours_file: Path,
    naive_file: Path,
) -> str:
    head = (
        f"| {job['mp']} | {'noisy' if job['noisy'] else 'clean'} | {job['feature']} | "
        f"{job['algorithm']} |"
    )
    if not ours["ok"]:
        return head + f" ours failed: {ours['why']} |" + " |" * 12
    compressed = f"yes ({ours['distinct']:,})" if ours["compressed"] else "no"
    algorithm = job["algorithm"]
    if ours["eps"] is not None:
        algorithm += f" (eps {ours['eps']:.3g})"
    head = head.replace(f" {job['algorithm']} |", f" {algorithm} |")
    cells = [
        compressed,
        str(ours["n_clusters"]),
        f"{ours['cluster_s']:.2f}",
        f"{ours['metrics_s']:.2f}",
        f"{ours['peak_gb']:.2f}",
        fmt(ours["silhouette"], ".4f"),
        ours["method"],
        fmt(ours["stderr"], ".4f"),
    ]
    if naive["ok"]:
        cells += [
            f"{naive['seconds']:.2f}",
            f"{naive['peak_gb']:.2f}",
            f"{naive['seconds'] / max(ours['cluster_s'], 1e-9):.1f}×",
            f"{ari(ours_file, naive_file):.4f}",
            fmt(ours["inertia"] / naive["inertia"] if naive["inertia"] else None, ".5f"),
        ]
    else:
        cells += [naive["why"], "", "", "", ""]
    return head + " " + " | ".join(cells) + " |"


def tune_row(megapixels: float, trials: int, algorithms: tuple[str, ...] = ALGORITHMS) -> str:
    """Optuna tuning of every algorithm on one photo: search mode and wall time."""
    from dataclasses import replace

    import optuna

    from segclust.config import ClusterConfig, MetricsConfig, TuneConfig
    from segclust.errors import InputTooLargeError
    from segclust.tuning import tune_clustering

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    photo = make_photo(megapixels, noisy=True)
    tune = TuneConfig.from_dict(load_group("tune", "default"))
    lines = []
    for feature in FEATURES:
        x, shape, _ = features_for(photo, feature)
        for algorithm in algorithms:
            cluster = ClusterConfig.from_dict(
                {"algorithm": algorithm, **cluster_params(algorithm, x.shape[0], x.shape[1])}
            )
            started = time.perf_counter()
            try:
                result = tune_clustering(
                    x, shape, cluster, replace(tune, n_trials=trials), metrics=MetricsConfig()
                )
            except InputTooLargeError as exc:
                lines.append(f"| {megapixels} noisy | {feature} | {algorithm} | {trials} | {exc} |")
                continue
            seconds = time.perf_counter() - started
            best = "no valid trial" if result.best is None else result.best_params
            lines.append(
                f"| {megapixels} noisy | {feature} | {algorithm} | {trials} | {result.search} "
                f"({result.search_points:,} rows) | {seconds:.1f} | {best} |"
            )
            print(lines[-1], flush=True)
    return "\n".join(
        [
            "| photo | features | algorithm | trials | search | seconds (search + refit) "
            "| best params |",
            "|---|---|---|---|---|---|---|",
            *lines,
        ]
    )


def dvc_repro_row(megapixels: float) -> str:
    """`dvc repro` of the whole pipeline, in a scratch clone, on one photo of this size."""
    import cv2

    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "project"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        photos = Path(tmp) / "photos"
        photos.mkdir()
        cv2.imwrite(str(photos / "photo.png"), make_photo(megapixels, noisy=True))
        params = yaml.safe_load((clone / "params.yaml").read_text())
        params["data"]["root"] = str(photos)
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        bin_dir = str(Path(sys.executable).parent)  # the stages' `python` must be this one
        env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
        dvc = shutil.which("dvc", path=bin_dir) or "dvc"
        started = time.perf_counter()
        done = subprocess.run(
            [dvc, "repro", "--quiet", "--allow-missing"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        timings = {}
        for stage in ("features", "cluster", "tune", "render"):
            path = clone / "metrics" / "timings" / f"{stage}.json"
            if path.exists():
                per_image = json.loads(path.read_text()).get("seconds", {})
                timings[stage] = round(sum(per_image.values()), 1)
        status = "ok" if done.returncode == 0 else f"failed: {done.stderr.strip()[-200:]}"
        return (
            f"`dvc repro` (features → cluster → tune → render → evaluate) on one "
            f"{megapixels}-MP photo: {seconds:.1f} s wall, {status}; stage seconds {timings}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.25, 1, 4, 12])
    parser.add_argument("--naive-seconds", type=float, default=120)
    parser.add_argument("--naive-gb", type=float, default=12)
    parser.add_argument("--tune-trials", type=int, default=50)
    parser.add_argument("--no-tune", action="store_true")
    parser.add_argument("--no-dvc", action="store_true")
    parser.add_argument("--no-table", action="store_true", help="skip the size × setting table")
    parser.add_argument("--no-naive", action="store_true", help="only the pipeline's own runs")
    parser.add_argument(
        "--naive-variants",
        nargs="+",
        default=["clean", "noisy"],
        choices=["clean", "noisy"],
        help="which photo variants also get the naive run",
    )
    parser.add_argument(
        "--algorithms",
        nargs="+",
        default=list(ALGORITHMS),
        choices=list(ALGORITHMS),
        help="registered algorithms to run (default: all)",
    )
    parser.add_argument(
        "--features",
        nargs="+",
        default=list(FEATURES),
        help="conf/features presets (default: the seed's three; e.g. rgb lab for colour)",
    )
    parser.add_argument("--out", type=Path, help="also write the tables to this Markdown file")
    args = parser.parse_args()
    started = time.perf_counter()
    naive_seconds = 0 if args.no_naive else args.naive_seconds
    table = (
        []
        if args.no_table
        else scale_table(
            args.sizes,
            naive_seconds,
            args.naive_gb,
            args.features,
            tuple(args.naive_variants),
            tuple(args.algorithms),
        )
    )
    parts = [] if args.no_table else ["\n".join(table)]
    if not args.no_tune:
        parts.append(tune_row(max(args.sizes), args.tune_trials, tuple(args.algorithms)))
    if not args.no_dvc:
        parts.append(dvc_repro_row(max(args.sizes)))
    parts.append(
        f"{os.cpu_count()} CPUs; total {time.perf_counter() - started:.0f} s. Naive budget: "
        f"{args.naive_seconds:.0f} s and {args.naive_gb:.0f} GB per run."
    )
    report = "\n\n".join(parts)
    print("\n" + report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
